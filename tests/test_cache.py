"""Feature cache: hits and misses, corrupt entries, failed rows, atomic layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from genrelens.encoders.cache import FeatureCache, content_key_file, default_cache_dir


class Counting:
    """A fake encoder: item -> [len, ord(first char), 1.0], counting the items it computes."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, items: list[str]) -> np.ndarray:
        self.calls.append(list(items))
        return np.array([[len(s), ord(s[0]) if s else 0, 1.0] for s in items], dtype=np.float32)

    @property
    def computed(self) -> int:
        return sum(len(c) for c in self.calls)


ITEMS = ["alpha", "beta", "gamma", "delta", "alpha"]  # a duplicate is computed once


def test_second_call_computes_nothing(tmp_path: Path) -> None:
    cache, fn = FeatureCache(tmp_path), Counting()
    first = cache.get_or_compute("enc-a", ITEMS, ITEMS, fn, progress=False, batch_size=2)
    assert first.shape == (5, 3) and first.dtype == np.float32
    assert fn.computed == 4 and len(fn.calls) == 2 and cache.last.misses == 4 and cache.last.hits == 0
    second = cache.get_or_compute("enc-a", ITEMS, ITEMS, fn, progress=False)
    assert fn.computed == 4 and cache.last.misses == 0 and cache.last.hits == 5
    assert np.array_equal(first, second) and cache.stats.hits == 5 and cache.stats.misses == 4
    assert np.array_equal(first[0], first[4])


def test_prefix_separates_encoders(tmp_path: Path) -> None:
    cache, fn = FeatureCache(tmp_path), Counting()
    cache.get_or_compute("enc-a", ITEMS, ITEMS, fn, progress=False)
    cache.get_or_compute("enc-b", ITEMS[:2], ITEMS[:2], fn, progress=False)
    assert cache.last.misses == 2
    assert (cache._dir("enc-b") / "prefix.txt").read_text() == "enc-b"


def test_only_new_items_are_computed(tmp_path: Path) -> None:
    cache, fn = FeatureCache(tmp_path), Counting()
    cache.get_or_compute("p", ITEMS[:2], ITEMS[:2], fn, progress=False)
    out = cache.get_or_compute("p", ITEMS, ITEMS, fn, progress=False)
    assert fn.calls[-1] == ["gamma", "delta"] and out[2, 0] == 5


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_shape", "nan"])
def test_corrupt_entry_is_recomputed(tmp_path: Path, damage: str) -> None:
    cache, fn = FeatureCache(tmp_path), Counting()
    want = cache.get_or_compute("p", ITEMS, ITEMS, fn, progress=False)
    path = cache.path_for("p", "beta")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-5])
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_shape":
        np.save(path, np.zeros(7, dtype=np.float32))
    else:
        np.save(path, np.full(3, np.nan, dtype=np.float32))
    got = cache.get_or_compute("p", ITEMS, ITEMS, fn, progress=False)
    assert fn.calls[-1] == ["beta"] and cache.last.corrupt == 1 and np.array_equal(got, want)
    cache.get_or_compute("p", ITEMS, ITEMS, fn, progress=False)
    assert cache.last.misses == 0  # repaired on disk


def test_failed_rows_are_not_stored(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)

    def flaky(items: list[str]) -> np.ndarray:
        out = np.ones((len(items), 2), dtype=np.float32)
        out[[i for i, s in enumerate(items) if s == "bad"]] = np.nan
        return out

    got = cache.get_or_compute("p", ["ok", "bad"], ["ok", "bad"], flaky, progress=False)
    assert np.isnan(got[1]).all() and cache.last.failed == 1
    cache.get_or_compute("p", ["ok", "bad"], ["ok", "bad"], flaky, progress=False)
    assert cache.last.hits == 1 and cache.last.misses == 1


def test_checks_and_edge_cases(tmp_path: Path) -> None:
    cache, fn = FeatureCache(tmp_path), Counting()
    assert cache.get_or_compute("p", [], [], fn, progress=False, dim=3).shape == (0, 3)
    with pytest.raises(ValueError):
        cache.get_or_compute("p", ["a"], [], fn, progress=False)
    with pytest.raises(ValueError, match="dim"):
        cache.get_or_compute("p", ["a"], ["a"], fn, progress=False, dim=4)
    cache.get_or_compute("p", ["a"], ["a"], fn, progress=True)  # progress bar path
    assert not list(tmp_path.rglob("*.tmp"))


def test_content_key_and_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"poster bytes")
    assert content_key_file(path) == hashlib.sha256(b"poster bytes").hexdigest()
    monkeypatch.setenv("GENRELENS_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
