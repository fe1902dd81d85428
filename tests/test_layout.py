"""Every module of the package has its own test file, found by name (docs/architecture.md, "Tests").

Rule: ``genrelens/<mod>.py`` -> ``tests/test_<mod>.py``; ``genrelens/<pkg>/<mod>.py`` -> ``tests/test_<mod>.py``
when no other module and no package is named ``<mod>``, else ``tests/test_<pkg>_<mod>.py`` (deeper packages
join with ``_``). ``ALIASES`` names the older test files whose names differ from the rule.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, TESTS = ROOT / "genrelens", ROOT / "tests"

# module (relative to genrelens/) -> its test file, where the file predates the rule
ALIASES = {
    "encoders/registry.py": "test_encoder_registry.py",
    "models/losses.py": "test_losses_models.py",
    "experiments/benchmark.py": "test_benchmark.py",
    "train/adapt.py": "test_adapt.py",  # the adapt workflow and its command are tested together
    "cli/adapt.py": "test_adapt.py",
    "cli/install.py": "test_runs_install.py",  # training writes new run folders; install makes one the default
    "cli/helptext.py": "test_cli_output.py",
}


def modules(package: Path = PACKAGE) -> list[Path]:
    """The package's modules (``__init__``/``__main__`` aside), relative to ``package``."""
    return sorted(p.relative_to(package) for p in package.rglob("*.py")
                  if p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts)


def expected_test_file(module: Path, all_modules: list[Path], aliases: dict[str, str] = ALIASES) -> str:
    """The test file name the rule gives ``module`` (a path relative to the package folder)."""
    if module.as_posix() in aliases:
        return aliases[module.as_posix()]
    name = module.stem
    if len(module.parts) == 1:
        return f"test_{name}.py"
    names = Counter(m.stem for m in all_modules)
    packages = {part for m in all_modules for part in m.parts[:-1]}
    if names[name] == 1 and name not in packages:
        return f"test_{name}.py"
    return "test_" + "_".join([*module.parts[:-1], name]) + ".py"


def test_rule_on_known_names():
    mods = [Path(p) for p in ("predict.py", "cli/predict.py", "train/run.py", "evaluate/run.py", "cli/train.py",
                              "train/loop.py", "data/split.py", "models/registry.py", "encoders/registry.py")]
    got = {m.as_posix(): expected_test_file(m, mods, aliases={}) for m in mods}
    assert got == {"predict.py": "test_predict.py", "cli/predict.py": "test_cli_predict.py",
                   "train/run.py": "test_train_run.py", "evaluate/run.py": "test_evaluate_run.py",
                   "cli/train.py": "test_cli_train.py",  # "train" is also a package
                   "train/loop.py": "test_loop.py", "data/split.py": "test_split.py",
                   "models/registry.py": "test_models_registry.py",
                   "encoders/registry.py": "test_encoders_registry.py"}


def test_aliases_are_current():
    """An alias names a module that still exists and a test file that still exists."""
    mods = {m.as_posix() for m in modules()}
    stale = [f"{m} -> tests/{t}" for m, t in ALIASES.items() if m not in mods or not (TESTS / t).exists()]
    assert not stale, "stale entries in ALIASES of tests/test_layout.py: " + "; ".join(stale)


def test_every_module_has_its_test_file():
    mods = modules()
    assert len(mods) > 40, "the package's modules were not found"
    missing = [(m, expected_test_file(m, mods)) for m in mods]
    missing = [(m, t) for m, t in missing if not (TESTS / t).exists()]
    if missing:
        pytest.fail("modules without their test file (create it with a few real tests of the module, or, for an "
                    "older test file named otherwise, add it to ALIASES in tests/test_layout.py):\n"
                    + "\n".join(f"  genrelens/{m.as_posix()}: create tests/{t}" for m, t in missing))


def test_the_import_graph_has_no_module_cycles():
    """No module of genrelens imports (directly or through others) a module that imports it back, lazy imports
    included: the layers in pyproject.toml keep packages apart, this keeps modules apart."""
    import grimp

    graph = grimp.build_graph("genrelens", include_external_packages=False)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
