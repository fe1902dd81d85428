"""``table_stats`` on 2,000 rows of the development data: shapes, sums, symmetry, oversampling."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from genrelens.data.stats import render_stats, stats_markdown, table_stats
from genrelens.data.table import load_table

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "movies" / "movies.csv"
pytestmark = pytest.mark.skipif(not REAL.exists(), reason="development data not present")

KEYS = {"rows", "labels", "modality", "years", "languages", "plot_words", "label_combinations",
        "genre_combinations", "label_counts", "cooccurrence", "rows_without_labels", "table1"}


@pytest.fixture(scope="module")
def subset():
    df, _ = load_table(REAL)
    return df.sample(2000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def stats(subset) -> dict[str, Any]:
    return table_stats(subset, k=10, seed=0, oversample_method="study")


def test_keys_and_json(stats: dict[str, Any]) -> None:
    assert KEYS <= set(stats)
    assert json.loads(json.dumps(stats)) == stats
    assert len(stats["labels"]) == 10 and stats["rows"] == 2000


def test_counts_add_up(subset, stats: dict[str, Any]) -> None:
    assert sum(stats["modality"].values()) == 2000 and stats["modality"]["neither"] == 0
    mod = stats["modality"]
    assert mod["plot_and_poster"] + mod["plot_only"] == (subset["plot"] != "").sum()
    years = stats["years"]
    assert sum(years["per_decade"].values()) + years["missing"] == 2000
    assert 1900 <= years["min"] <= years["max"] <= 2018
    assert sum(stats["languages"]["top"].values()) <= 2000 - stats["languages"]["missing"]
    pw = stats["plot_words"]
    assert pw["rows"] == (subset["plot"] != "").sum() and pw["min"] <= pw["median"] <= pw["p95"] <= pw["max"]
    assert 1 <= stats["label_combinations"] <= stats["genre_combinations"]
    t1 = stats["table1"]
    assert sum(t1["split_sizes"].values()) == 2000
    assert t1["train"]["n"] == t1["split_sizes"]["train"] and t1["val"]["n"] == t1["split_sizes"]["val"]
    for part in ("train", "train_oversampled", "val"):
        for row in t1[part]["labels"].values():
            assert row["share"] == pytest.approx(row["count"] / t1[part]["n"], abs=1e-4)


def test_cooccurrence(stats: dict[str, Any]) -> None:
    c = np.array(stats["cooccurrence"])
    assert c.shape == (10, 10) and (c == c.T).all()
    assert np.diag(c).tolist() == [stats["label_counts"][g] for g in stats["labels"]]
    assert (c <= np.diag(c)[:, None]).all()  # a pair never outnumbers either label


def test_rows_without_labels(subset, stats: dict[str, Any]) -> None:
    labels = set(stats["labels"])
    assert stats["rows_without_labels"] == sum(not labels & set(g) for g in subset["genres"])


def test_oversampling_raises_rare_labels(stats: dict[str, Any]) -> None:
    t1 = stats["table1"]
    plain, over = t1["train"], t1["train_oversampled"]
    assert over["n"] > plain["n"]
    rarest = min(stats["labels"], key=lambda g: plain["labels"][g]["count"])
    assert over["labels"][rarest]["share"] > plain["labels"][rarest]["share"]
    for g in stats["labels"]:  # duplicates only add rows
        assert over["labels"][g]["count"] >= plain["labels"][g]["count"]


def test_explicit_labels_and_no_oversampling(subset) -> None:
    s = table_stats(subset, labels=["Drama", "science fiction"], oversample_method="none")
    assert s["labels"] == ["Drama", "Sci-Fi"]
    assert s["table1"]["train"] == s["table1"]["train_oversampled"]
    assert np.array(s["cooccurrence"]).shape == (2, 2)


def test_outputs(stats: dict[str, Any]) -> None:
    md = stats_markdown(stats)
    assert md.startswith("# Data statistics: 2,000 rows")
    for title in ("Rows per modality", "Table 1", "Label co-occurrence", "Rows per decade", "Top languages"):
        assert f"## {title}" in md
    assert all(g in md for g in stats["labels"])
    out = io.StringIO()
    render_stats(stats, Console(file=out, width=160))
    assert "Table 1" in out.getvalue() and "plot + poster" in out.getvalue()


def test_a_missing_poster_file_or_a_url_is_no_poster(tmp_path: Path) -> None:
    """``data stats`` counted a poster cell naming a missing file, or a web address (never fetched), as a poster."""
    import shutil

    import pandas as pd

    rows = pd.read_csv(REAL, dtype=str, keep_default_na=False)
    rows = rows[(rows["plot"] != "") & (rows["poster"] != "")].head(12).reset_index(drop=True)
    (tmp_path / "posters").mkdir()
    for rel in rows["poster"][:10]:
        shutil.copy(REAL.parent / rel, tmp_path / rel)  # rows 11 and 12: their files are not there
    rows.loc[11, "poster"] = "https://image.tmdb.org/t/p/w185/x.jpg"
    rows.loc[0, "plot"] = ""  # poster only
    rows.loc[10, "plot"] = ""  # a missing poster file and no plot: neither
    rows.to_csv(tmp_path / "movies.csv", index=False)
    df, _ = load_table(tmp_path / "movies.csv")
    stats = table_stats(df, oversample_method="none")
    assert stats["modality"] == {"plot_and_poster": 9, "plot_only": 1, "poster_only": 1, "neither": 1}
    assert stats["posters_not_read"] == {"file missing": 1, "url": 1}
    out = io.StringIO()
    render_stats(stats, Console(file=out, width=200))
    assert "posters named but not read" in out.getvalue() and "1 file missing, 1 URL" in out.getvalue()
