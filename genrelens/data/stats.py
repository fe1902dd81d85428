"""Describe a loaded movie table (``genrelens data stats``): modalities, years, languages, plot lengths,
label combinations and co-occurrence, and the study's Table 1 (label shares in train, oversampled train
and validation). Everything returned is plain JSON-serializable Python.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from genrelens.data.labels import LabelSet
from genrelens.data.oversample import oversample
from genrelens.data.split import MIN_SPLIT_ROWS, make_split

TOP_LANGUAGES = 10
COOC_TITLE = "Label co-occurrence (rows with both; diagonal = rows with the label)"


def _modality(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``(has plot, has poster, {"file missing": n, "url": n})``: a poster is a file that is there; a cell naming
    a missing file or a web address (never fetched) is counted apart, not as a poster."""
    from genrelens.data.table import is_url

    has_plot = np.array([isinstance(p, str) and bool(p) for p in df["plot"]], dtype=bool)
    named = [p if isinstance(p, str) and p else "" for p in df["poster"]]
    urls = np.array([is_url(p) for p in named], dtype=bool)
    has_poster = np.array([bool(p) and not u and os.path.isfile(p) for p, u in zip(named, urls, strict=True)],
                          dtype=bool)
    missing = int(sum(bool(p) for p in named) - urls.sum() - has_poster.sum())
    return has_plot, has_poster, {"file missing": missing, "url": int(urls.sum())}


def _label_table(y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    counts = y.sum(0).astype(int)
    n = len(y)
    return {"n": int(n), "labels": {g: {"count": int(c), "share": round(float(c) / n, 4) if n else 0.0}
                                   for g, c in zip(labels, counts, strict=True)}}


def table_stats(
    df: pd.DataFrame, labels: list[str] | None = None, k: int = 10, seed: int = 0,
    oversample_method: str = "study",
) -> dict[str, Any]:
    """Statistics of a table that follows the table contract (see ``genrelens.data.table``).

    ``labels`` defaults to the table's ``k`` most frequent genres (the labels ``make_split`` stratifies on).
    The split is ``make_split(df, k, seed=seed, labels=labels)``;
    ``oversample_method`` is applied to the train rows only.
    """
    labelset = LabelSet(labels) if labels else LabelSet.top_k(df["genres"], k)
    names = labelset.labels
    y = labelset.encode(df["genres"]).astype(np.int64)
    n = len(df)
    has_plot, has_poster, not_read = _modality(df)

    years = pd.to_numeric(df["year"], errors="coerce").dropna().astype(int)
    decades = Counter(f"{(yr // 10) * 10}s" for yr in years)
    langs = [str(x) for x in df["language"] if isinstance(x, str) and x]
    words = np.array([len(p.split()) for p, ok in zip(df["plot"], has_plot, strict=True) if ok], dtype=int)
    combos = Counter(tuple(np.flatnonzero(r)) for r in y if r.any())
    genre_combos = {tuple(sorted(g)) for g in df["genres"]}

    stats: dict[str, Any] = {
        "rows": int(n),
        "labels": names,
        "modality": {
            "plot_and_poster": int((has_plot & has_poster).sum()),
            "plot_only": int((has_plot & ~has_poster).sum()),
            "poster_only": int((~has_plot & has_poster).sum()),
            "neither": int((~has_plot & ~has_poster).sum()),
        },
        "posters_not_read": not_read,  # poster cells that are no poster: a missing file, a URL
        "years": {
            "min": int(years.min()) if len(years) else None,
            "max": int(years.max()) if len(years) else None,
            "missing": int(n - len(years)),
            "per_decade": dict(sorted(decades.items())),
        },
        "languages": {
            "distinct": len(set(langs)),
            "missing": int(n - len(langs)),
            "top": dict(Counter(langs).most_common(TOP_LANGUAGES)),
        },
        "plot_words": {
            "rows": int(len(words)),
            "min": int(words.min()) if len(words) else None,
            "median": float(np.median(words)) if len(words) else None,
            "p95": float(np.percentile(words, 95)) if len(words) else None,
            "max": int(words.max()) if len(words) else None,
        },
        "label_combinations": len(combos),  # distinct non-empty combinations of the selected labels
        "genre_combinations": len(genre_combos),  # distinct combinations of all genres
        "label_counts": {g: int(c) for g, c in zip(names, y.sum(0), strict=True)},
        "cooccurrence": (y.T @ y).astype(int).tolist(),  # [i][j] = rows with label i and label j
        "rows_without_labels": int((y.sum(1) == 0).sum()),
    }
    # the split needs MIN_SPLIT_ROWS rows; a smaller table still gets every other figure
    stats["table1"] = _table1(df, y, names, k, seed, oversample_method) if len(df) >= MIN_SPLIT_ROWS else None
    return stats


def _table1(
    df: pd.DataFrame, y: np.ndarray, names: list[str], k: int, seed: int, method: str
) -> dict[str, Any]:
    """The study's Table 1: label counts and shares in train, oversampled train and validation."""
    split = make_split(df, k=k, seed=seed, labels=names)
    pos = {mid: i for i, mid in enumerate(df["id"])}
    train = np.array([pos[m] for m in split["train"]], dtype=int)
    val = np.array([pos[m] for m in split["val"]], dtype=int)
    y_train = y[train]
    y_over = y_train[oversample(y_train, method=method, seed=seed)]
    return {
        "oversample_method": method,
        "seed": seed,
        "split_sizes": {s: len(split[s]) for s in ("train", "val", "test")},
        "train": _label_table(y_train, names),
        "train_oversampled": _label_table(y_over, names),
        "val": _label_table(y[val], names),
    }


# ---------------------------------------------------------------------------------------------- output

_MODALITY_NAMES = {"plot_and_poster": "plot + poster", "plot_only": "plot only", "poster_only": "poster only",
                   "neither": "neither"}


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _sections(stats: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table; shared by the markdown and the rich output."""
    n = stats["rows"]
    out = []
    out.append(("Rows per modality", ["modality", "rows", "share"],
                [[_MODALITY_NAMES[m], f"{c:,}", _pct(c, n)] for m, c in stats["modality"].items()]
                + [["all", f"{n:,}", "100.0%"]]))
    yr, pw, lang, none = stats["years"], stats["plot_words"], stats["languages"], stats["rows_without_labels"]
    out.append(("Overview", ["measure", "value"], [
        ["years", f"{yr['min']}-{yr['max']} ({yr['missing']:,} missing)"],
        ["languages", f"{lang['distinct']} distinct ({lang['missing']:,} rows without)"],
        ["plot words (min / median / p95 / max)",
         f"{pw['min']} / {pw['median']:g} / {pw['p95']:g} / {pw['max']}" if pw["rows"] else "no plots"],
        ["distinct label combinations", f"{stats['label_combinations']:,}"],
        ["distinct genre combinations", f"{stats['genre_combinations']:,}"],
        ["rows with none of the labels", f"{none:,} ({_pct(none, n)})"],
    ] + _not_read_row(stats)))
    out.append(("Rows per decade", ["decade", "rows"],
                [[d, f"{c:,}"] for d, c in yr["per_decade"].items()]))
    out.append(("Top languages", ["language", "rows"], [[la, f"{c:,}"] for la, c in lang["top"].items()]))
    t1 = stats["table1"]
    if t1 is None:
        out.append(("Table 1: labels per split", ["note"],
                    [[f"{n:,} rows: too few to split (at least {MIN_SPLIT_ROWS})"]]))
    else:
        parts = [("train", "train"), ("train_oversampled", f"train + {t1['oversample_method']} oversampling"),
                 ("val", "validation")]
        header = ["label"] + [h for key, name in parts for h in (f"{name} (n={t1[key]['n']:,})", "share")]
        rows = [[g] + [v for key, _ in parts for v in (f"{t1[key]['labels'][g]['count']:,}",
                                                        f"{t1[key]['labels'][g]['share']:.3f}")]
                for g in stats["labels"]]
        out.append(("Table 1: labels per split", header, rows))
    names = stats["labels"]
    out.append((COOC_TITLE, [""] + names,
                [[g] + [f"{c:,}" for c in row] for g, row in zip(names, stats["cooccurrence"], strict=True)]))
    return out


def _not_read_row(stats: dict[str, Any]) -> list[list[str]]:
    """The Overview row naming poster cells that are no poster (none when every named poster is a file)."""
    not_read = stats.get("posters_not_read") or {}
    miss, url = not_read.get("file missing", 0), not_read.get("url", 0)
    if not miss and not url:
        return []
    return [["posters named but not read (counted as no poster)", f"{miss:,} file missing, {url:,} URL"]]


def stats_markdown(stats: dict[str, Any]) -> str:
    """The statistics as a markdown document."""
    lines = [f"# Data statistics: {stats['rows']:,} rows", ""]
    for title, header, rows in _sections(stats):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def render_stats(stats: dict[str, Any], console: Any = None) -> None:
    """Print the statistics as rich tables."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    console.print(f"[bold]{stats['rows']:,} rows[/], labels: {escape(', '.join(stats['labels']))}")
    for title, header, rows in _sections(stats):
        if title == COOC_TITLE:  # number the columns so that 10+ labels fit a terminal
            header = [""] + [str(j) for j in range(1, len(header))]
            rows = [[f"{j} {r[0]}"] + [c.replace(",", "") for c in r[1:]] for j, r in enumerate(rows, 1)]
        table = Table(title=title, title_justify="left")
        for j, h in enumerate(header):
            table.add_column(escape(h), justify="left" if j == 0 else "right")
        for row in rows:
            table.add_row(*(escape(c) for c in row))
        console.print(table)
