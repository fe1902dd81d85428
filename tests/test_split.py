"""genrelens.data.split: a seeded split is deterministic, disjoint, complete and saved/loaded whole."""

import numpy as np
import pandas as pd
import pytest

from genrelens.data.split import SPLITS, load_split, make_split, save_split, select

GENRES = [["Drama"], ["Comedy"], ["Drama", "Romance"], ["Horror"], ["Comedy", "Romance"], ["Action"]]


def _table(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": [f"m{i:03d}" for i in range(n)],
                         "genres": [GENRES[i % len(GENRES)] for i in range(n)],
                         "plot": ["" if i % 5 == 0 else f"plot {i}" for i in range(n)],
                         "poster": [None if rng.random() < 0.3 else f"posters/{i}.jpg" for i in range(n)]})


def test_deterministic_disjoint_and_complete():
    df = _table()
    a, b = make_split(df, k=5, seed=3), make_split(df, k=5, seed=3)
    assert a == b
    assert make_split(df, k=5, seed=4) != a
    sets = [set(a[s]) for s in SPLITS]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(df["id"])
    assert len(a["train"]) == pytest.approx(0.7 * len(df), abs=3)


def test_bad_fractions_and_tiny_tables_are_refused():
    with pytest.raises(ValueError, match="summing to 1"):
        make_split(_table(), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="at least 10 rows"):
        make_split(_table(5))


def test_save_load_and_select(tmp_path):
    df = _table()
    df.attrs["root"] = "/data"
    split = make_split(df, seed=0, labels=["Drama", "Comedy"])
    save_split(split, tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == split
    part = select(df, split["val"])
    assert list(part["id"]) == sorted(split["val"]) and part.attrs["root"] == "/data"
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(ValueError, match="lacks"):
        load_split(tmp_path / "bad.json")
