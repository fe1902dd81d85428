"""A few real movies for the web page to try: from the model's data, its test split when known.

The list is fixed once built; posters are served only by their position in that list (never by a path
taken from the request), and only from inside the data folder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from genrelens.bundle import read_artifact
from genrelens.data.images import resolve_poster_path
from genrelens.data.table import load_table, resolve_data_path
from genrelens.errors import GenrelensError


@dataclass(frozen=True)
class Example:
    """One example movie; ``poster_path`` is an absolute, checked file path (or None)."""

    id: str
    title: str
    year: int | None
    plot: str
    genres: list[str]
    poster_path: Path | None

    def public(self, poster_url: str | None) -> dict:
        return {"id": self.id, "title": self.title, "year": self.year, "plot": self.plot,
                "genres": self.genres, "poster": poster_url}


def _test_ids(model_dir: Path) -> set[str] | None:
    split = read_artifact(model_dir, "split")
    try:
        return set(split["test"]) if split else None
    except (KeyError, TypeError):
        return None


def load_examples(model_dir: Path, data: str | None, n: int = 6, seed: int = 0, read: dict | None = None
                  ) -> list[Example]:
    """Up to ``n`` movies with a plot and a readable poster, covering as many genres as possible.

    ``data``: the model's training table (its config), else the default data; ``read``: how to read it
    (``RunConfig.table_options``). Empty when no data is found.
    """
    try:
        path = resolve_data_path(data)
        df, _ = load_table(path, skip_bad=True, need_genres=False, **(read or {}))
    except (GenrelensError, OSError, ValueError):
        return []
    root = Path(df.attrs.get("root", path.parent))
    ids = _test_ids(model_dir)
    pool = df[(df["plot"] != "") & df["poster"].notna()]
    if ids:
        in_test = pool[pool["id"].isin(ids)]
        pool = in_test if len(in_test) >= n else pool
    rows = list(pool.itertuples(index=False))
    random.Random(seed).shuffle(rows)
    picked, seen = [], set()
    for prefer_new in (True, False):  # first one movie per leading genre, then fill up
        for r in rows:
            if len(picked) >= n:
                break
            first = r.genres[0] if r.genres else ""
            if any(p.id == r.id for p in picked) or (prefer_new and first in seen):
                continue
            poster = _checked_poster(r.poster, root)
            if poster is None:
                continue
            seen.add(first)
            year = None if r.year is None or str(r.year) == "<NA>" else int(r.year)
            picked.append(Example(str(r.id), str(r.title), year, str(r.plot), list(r.genres), poster))
    return picked


def _checked_poster(path: str | None, root: Path) -> Path | None:
    try:
        p = resolve_poster_path(path, root) if path else None
    except GenrelensError:
        return None
    return p if p is not None and p.is_file() else None
