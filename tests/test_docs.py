"""The README and docs/ speak to users: no paths of the machine the figures were measured on, no words about
who did the work or where, and every repo file they name exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _top_folders() -> set[str]:
    """The repo's own top-level folders (git's tracked files), not outputs a run left beside them (runs/, ...)."""
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return {f.split("/")[0] for f in files.splitlines() if "/" in f}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        return {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} - {"runs"}


TOP = _top_folders()
PACKAGE = {p.name for p in (ROOT / "genrelens").iterdir() if p.is_dir() and not p.name.startswith("_")}

# an absolute path of a machine: home folders, scratch and work folders (a cluster example like /shared/... is fine)
MACHINE_PATH = re.compile(r"(?<![\w.~$/-])(/(?:work|root|tmp|home|Users|mnt|scratch|var/folders)/[^\s`)'\"]*"
                          r"|[A-Za-z]:\\Users\\\S*)")
# who did the work and where: people, roles, work copies, version-control and agent words
WORK_WORDS = re.compile(r"\bhelper\w*|\bthe lead\b|\bbranch(?:es)?\b|\bsession's\b|\bwork folder\b|\broot's home\b"
                        r"|\b(?:this|that|another|other|previous|my|our) (?:session|worker)s?\b"
                        r"|\b(?:wt|w|helper)\d+-", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
EXTENSIONS = "py|md|sh|toml|png|json|csv|txt|html|js|css|cfg|ini|yml|yaml"
REPO_FILE = re.compile(rf"^(?:\./)?([\w-]+(?:/[\w.-]+)+\.(?:{EXTENSIONS}))(?:::(\w+))?$")
UPPER_MD = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_]+\.md)\b")


def lines(path: Path):
    """(line number, text) of a doc, fenced code included (commands must be runnable too)."""
    return enumerate(path.read_text(encoding="utf-8").splitlines(), 1)


def where(path: Path, n: int) -> str:
    return f"{path.relative_to(ROOT)}:{n}"


def test_the_docs_are_found():
    names = {p.name for p in DOCS}
    assert {"README.md", "trust.md", "performance.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_absolute_paths_of_a_machine(doc):
    found = [f"{where(doc, n)}: {m.group(0)}" for n, line in lines(doc) for m in MACHINE_PATH.finditer(line)]
    assert not found, "paths of one machine (use a path the reader has: runs/..., ~/..., $GENRELENS_HOME):\n" + \
        "\n".join(found)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_words_about_who_did_the_work(doc):
    found = [f"{where(doc, n)}: {m.group(0)!r} in {line.strip()[:120]!r}"
             for n, line in lines(doc) for m in WORK_WORDS.finditer(line)]
    assert not found, "words about the people or places of the work, not the reader's:\n" + "\n".join(found)


def repo_path(token: str) -> tuple[Path, str | None] | None:
    """The file of the repo a backticked token names (``tests/test_x.py::test_y`` included), if it names one."""
    m = REPO_FILE.match(token)
    if not m:
        return None
    path, test = m.group(1), m.group(2)
    first = path.split("/")[0]
    if first in TOP:
        return ROOT / path, test
    if first in PACKAGE:  # `train/run.py`: a module of the package
        return ROOT / "genrelens" / path, test
    return None  # e.g. runs/..., a model folder's files: made by the reader


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_repo_file_named_exists(doc):
    missing = []
    for n, line in lines(doc):
        for m in LINK.finditer(line):
            target = m.group(1).split("#")[0]
            if target and not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not (doc.parent / target).exists():
                missing.append(f"{where(doc, n)}: link {target}")
        for m in CODE.finditer(line):
            named = repo_path(m.group(1))
            if named is None:
                continue
            path, test = named
            if not path.is_file():
                missing.append(f"{where(doc, n)}: {m.group(1)}")
            elif test and not re.search(rf"^\s*(?:async )?def {test}\(", path.read_text(encoding="utf-8"), re.M):
                missing.append(f"{where(doc, n)}: {m.group(1)} (no such test)")
        for m in UPPER_MD.finditer(line):
            if not any((base / m.group(1)).is_file() for base in (ROOT, ROOT / "docs")):
                missing.append(f"{where(doc, n)}: {m.group(1)}")
    assert not missing, "files the docs name that the repo does not have:\n" + "\n".join(missing)


@pytest.mark.parametrize(("text", "bad"), [
    ("model `/work/models/int-s0`", True), ("see /root/.local/share/genrelens", True), ("`--out /tmp/x`", True),
    ("C:\\Users\\ana\\movies.csv", True), ("`~/.local/share/genrelens/models/default`", False),
    ("`/shared/models/integrated` on the cluster", False), ("`runs/my-run`", False), ("and/or /v1/predict", False),
])
def test_the_path_check_tells_machine_paths(text, bad):
    assert bool(MACHINE_PATH.search(text)) is bad


@pytest.mark.parametrize(("text", "bad"), [
    ("trained by the lead", True), ("a `helper17-int-s0` copy", True), ("only another branch knows", True),
    ("this session's changes", True), ("`wt15-int-s0`", True), ("other workers at the same time", True),
    ("the ONNX session built at load", False), ("each worker runs the training", False), ("--workers 2", False),
    ("leads to", False), ("the leading genre", False),
])
def test_the_word_check_tells_work_words(text, bad):
    assert bool(WORK_WORDS.search(text)) is bad


@pytest.mark.parametrize(("token", "exists"), [("tests/test_docs.py", True), ("benchmarks/nope.py", False),
                                               ("train/run.py", True), ("runs/b/results.json", None),
                                               ("tests/test_docs.py::test_the_docs_are_found", True)])
def test_the_file_check_tells_repo_files(token, exists):
    named = repo_path(token)
    assert (None if named is None else named[0].is_file()) is exists
