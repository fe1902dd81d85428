"""Shared fixtures: the real default data, small real subsets of it, and a tiny trained model."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from genrelens.data.table import default_data_path

DATA = default_data_path()
# Models load in fp32 unless a test asks otherwise (tests/test_precision.py exercises "auto" itself), and
# `genrelens train`/`calibrate` skip their closing accuracy guard (minutes on a CPU with bf16/VNNI units) unless a
# test asks for it.
os.environ.setdefault("GENRELENS_PRECISION", "fp32")
os.environ.setdefault("GENRELENS_PRECISION_CHECK", "0")
# Output width comes from each test's CliRunner env (COLUMNS=200), never from the terminal pytest started in:
# rich fixes a console's width when it is created if COLUMNS and LINES are set then (pytest-xdist's workers
# set COLUMNS=80), and the CLI's console is created at import.
for _var in ("COLUMNS", "LINES"):
    os.environ.pop(_var, None)
# `pytest -n N` (pytest-xdist; `make test` runs 2 workers): the workers share the cores instead of each one's
# torch and ONNX Runtime threads competing for all of them; processes the tests start inherit the setting.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def write_subset(folder: Path, n: int = 400, seed: int = 0, with_posters: bool = True) -> Path:
    """A real ``n``-row sample of the default data (all three modality kinds), posters copied beside it."""
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    both = df[(df["plot"] != "") & (df["poster"] != "")]
    plot_only = df[(df["plot"] != "") & (df["poster"] == "")]
    poster_only = df[(df["plot"] == "") & (df["poster"] != "")]
    sub = pd.concat([both.sample(n // 2, random_state=seed), plot_only.sample(n // 4, random_state=seed),
                     poster_only.sample(n - n // 2 - n // 4, random_state=seed)]).sample(frac=1, random_state=seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "posters").mkdir(exist_ok=True)
    if with_posters:
        for rel in sub["poster"][sub["poster"] != ""]:
            shutil.copy(DATA.parent / rel, folder / rel)
    sub.to_csv(folder / "movies.csv", index=False)
    return folder / "movies.csv"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"default data not found at {DATA}")
    return DATA


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name``, filled by ``build(folder)`` once per test run: under pytest-xdist the first worker to
    ask builds it while the others wait on a file lock, then every worker reads the same folder (the models the
    suite trains are trained once, not once per worker)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder = root / f"shared-{name}"
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def subset_csv(tmp_path_factory, real_data) -> Path:
    """400 real movies with their posters, in a folder of their own."""
    return built_once(tmp_path_factory, "subset", write_subset) / "movies.csv"


@pytest.fixture(scope="session")
def small_subset_csv(tmp_path_factory, real_data) -> Path:
    """160 real movies with their posters: for the tests whose training is slow per movie (CNN feature maps, bf16
    emulated on CPUs without bf16 units)."""
    folder = built_once(tmp_path_factory, "small-subset", lambda folder: write_subset(folder, n=160, seed=1))
    return folder / "movies.csv"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """The feature cache of the suite's training runs (shared by the workers: entries are written atomically)."""
    return built_once(tmp_path_factory, "feature-cache", lambda folder: None)


def train_tiny(model: str, data: Path, out: Path, cache: Path, **kw):
    """Train ``model`` for a few steps (seconds) and return its metrics."""
    from genrelens.config import RunConfig
    from genrelens.train.run import train

    # fp32 unless asked: the suite's models are the same on every CPU (training's `auto` is bf16 on some)
    cfg = RunConfig(model=model, data=str(data), out=str(out), cache_dir=str(cache),
                    **{"epochs": 3, "ft_epochs": 1, "ft_layers": 1, "max_length": 64, "patience": 2,
                       "precision": "fp32", **kw})
    return train(cfg, progress=False)


class TinyRuns:
    """Tiny models trained once per test run (``built_once``), by model name (``train_tiny``'s defaults):
    ``runs(model)`` is the folder, ``runs.metrics[model]`` what training returned. Shared by every module and every
    worker: copy a folder before changing it."""

    def __init__(self, factory, data: Path, cache: Path) -> None:
        self.factory, self.data, self.cache = factory, data, cache
        self.metrics: dict[str, dict] = {}

    def __call__(self, model: str) -> Path:
        def build(folder: Path) -> None:
            metrics = train_tiny(model, self.data, folder / model, self.cache)
            (folder / "returned.json").write_text(json.dumps(metrics))

        folder = built_once(self.factory, f"tiny-{model}", build)
        self.metrics[model] = json.loads((folder / "returned.json").read_text())
        return folder / model


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, subset_csv, cache_dir) -> TinyRuns:
    return TinyRuns(tmp_path_factory, subset_csv, cache_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_runs: TinyRuns) -> Path:
    """An ``integrated`` model trained for a few steps on the 400-movie subset (text + poster, missing allowed)."""
    return tiny_runs("integrated")


@pytest.fixture(scope="session")
def tiny_catalogue_dir(tiny_runs: TinyRuns) -> Path:
    """A ``catalogue`` model (token windows + the late-fused TF-IDF channel) trained for a few steps."""
    return tiny_runs("catalogue")


@pytest.fixture(scope="session")
def tiny_naive_dir(tiny_runs: TinyRuns) -> Path:
    """A ``naive`` model (the most frequent training labels; trained in a second)."""
    return tiny_runs("naive")


@pytest.fixture()
def naive_copy(tiny_naive_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny naive model that a test may change."""
    shutil.copytree(tiny_naive_dir, tmp_path / "naive")
    return tmp_path / "naive"


# Fixtures that train a model with real encoders (minutes on 2 cores): a test that needs one, directly or through
# another fixture, is `slow`, so `make test-fast` (-m "not slow") leaves it out; `make test` runs everything.
TRAINING_FIXTURES = {"tiny_model_dir", "tiny_catalogue_dir", "grid", "frozen", "report"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})  # a fixture named by a parameter
        if TRAINING_FIXTURES & (set(getattr(item, "fixturenames", ())) | {v for v in params.values()
                                                                          if isinstance(v, str)}):
            item.add_marker(pytest.mark.slow)
