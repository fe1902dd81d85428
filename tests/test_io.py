"""genrelens.io: atomic writes that leave the old file on failure and follow the user's umask."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from genrelens.io import (
    atomic_dir,
    atomic_path,
    current_umask,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


@pytest.fixture()
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_current_umask_reads_without_changing(umask_027):
    assert current_umask() == 0o027
    assert current_umask() == 0o027


def test_writes_follow_the_umask(tmp_path, umask_027):
    write_text_atomic(tmp_path / "a" / "t.txt", "héllo")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a" / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "a" / "t.txt").stat().st_mode & 0o777 == 0o640
    with atomic_dir(tmp_path / "folder") as d:
        (d / "x").write_text("1")
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o750


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_dir_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as d:
        (d / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_json_writes_arrays_and_paths_and_refuses_other_objects(tmp_path):
    write_json_atomic(tmp_path / "j.json", {"a": np.arange(3), "p": Path("x/y"), "s": "é"})
    text = (tmp_path / "j.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"a": [0, 1, 2], "p": "x/y", "s": "é"} and "é" in text
    with pytest.raises(TypeError, match="set"):
        write_json_atomic(tmp_path / "k.json", {"s": {1}})
    assert not (tmp_path / "k.json").exists()
