"""Quality on long catalogue text: a model's test split scored as is, on its movies whose plot is longer
than 128 tokens, and on a long-text variant built honestly from the same data.

Two variants (``genrelens.data.augment.append_shared_genre``), posters unchanged, labels the test movie's own.
The added plots are those of *other test movies*: held-out text (training movies would leak: a model that
fitted those very plots reads their labels back).

- "summaries": the test plot and the plots of two other test movies with exactly its genres (else the most
  genres in common), in random order: a catalogue that joins several summaries of one film (the unseen IMDb
  data of issue 14: median ~110 words, 10% over 350), where the first 128 tokens need not be the most telling;
- "noisy": the test plot followed by the plots of two other test movies that each share one of its genres:
  the extra text also speaks of genres the movie lacks.

``python benchmarks/long_text.py <model dir>...`` prints the table that docs/results.md quotes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genrelens.bundle import labelled_rows
from genrelens.data.augment import append_shared_genre
from genrelens.data.table import load_table
from genrelens.metrics import evaluate
from genrelens.predict import GenreClassifier

LONG_TOKENS = 128  # "long" plots: more MiniLM tokens than today's default reads
VARIANTS = ("test", "long plots", "summaries", "noisy")


def token_lengths(plots: list[str]) -> np.ndarray:
    """MiniLM WordPiece tokens per plot (special tokens included), the unit of ``max_length``."""
    from genrelens.encoders.text import load_tokenizer, minilm_dir

    tok = load_tokenizer(minilm_dir())
    return np.array([len(ids) for ids in tok([p or "" for p in plots])["input_ids"]])


def long_text_parts(data: str | Path | None, split: dict, labels: list[str], seed: int = 0, read: dict | None = None):
    """``{variant: (plots, posters, y, root, titles)}`` for the three variants of a model's test split (``split``:
    the model's ``split.json``; ``read``: how to read ``data``, ``RunConfig.table_options``); a model that reads
    titles reads each movie's own title before the text."""
    df, _ = load_table(data, skip_bad=True, **(read or {}))
    test, y, _ = labelled_rows(df, split["test"], labels)
    plots = [p if isinstance(p, str) else "" for p in test["plot"]]
    posters, titles = list(test["poster"]), list(test["title"])
    is_long = token_lengths(plots) > LONG_TOKENS
    root = Path(df.attrs["root"])

    def rows(keep, *cols) -> list:
        return [[x for x, k in zip(col, keep) if k] for col in cols]

    parts = {"test": (plots, posters, y, root, titles)}
    long_plots, long_posters, long_titles = rows(is_long, plots, posters, titles)
    parts["long plots"] = (long_plots, long_posters, y[is_long], root, long_titles)
    for name, same in (("summaries", True), ("noisy", False)):
        texts, _ = append_shared_genre(plots, y, plots, y, seed=seed, same_genres=same, shuffle=same,
                                       exclude_self=True)
        has = np.array([bool(p) for p in texts])
        kept_texts, kept_posters, kept_titles = rows(has, texts, posters, titles)
        parts[name] = (kept_texts, kept_posters, y[has], root, kept_titles)
    return parts


def words(plots: list[str]) -> dict[str, float]:
    n = np.array([len(p.split()) for p in plots])
    return {"median_words": float(np.median(n)) if len(n) else 0.0,
            "p90_words": float(np.percentile(n, 90)) if len(n) else 0.0}


def evaluate_long(model_dir: str | Path, data: str | Path | None = None, seed: int = 0,
                  parts: dict | None = None, titles: bool = True) -> dict:
    """Weighted/micro/macro F1 of the model in ``model_dir`` on each variant of its test split
    (``parts``: reuse ``long_text_parts`` of another model with the same split and labels; ``titles``: False
    withholds the titles from a model that reads them, as for a catalogue without titles)."""
    clf = GenreClassifier.load(model_dir, cache=True, precision="fp32")
    parts = parts or long_text_parts(data if data is not None else clf.config.data, clf.bundle.artifact("split"),
                                     clf.labels, seed, read=clf.config.table_options(data))
    out = {"model": clf.name, "model_dir": str(model_dir), "seed": clf.config.seed}
    for name, (plots, posters, y, root, names) in parts.items():
        proba, _ = clf.score(plots, posters, root=root, titles=names if titles else None)
        m = evaluate(y, clf.decide(proba), clf.labels)
        out[name] = {"n_rows": len(y), **{k: m[k] for k in ("weighted_f1", "micro_f1", "macro_f1")},
                     **words([p for p in plots if p])}
    return out
