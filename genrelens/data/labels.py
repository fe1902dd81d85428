"""Genre names and the label set: normalization, top-K selection, multi-hot encoding."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from genrelens.errors import DataError

STUDY_LABELS = ["Drama", "Comedy", "Romance", "Thriller", "Action", "Crime", "Horror", "Adventure", "Mystery",
                "Sci-Fi"]

# Spellings that differ from IMDb's name by more than case/spacing.
_ALIASES = {
    "science fiction": "Sci-Fi", "sci fi": "Sci-Fi", "scifi": "Sci-Fi", "sci-fi": "Sci-Fi",
    "sf": "Sci-Fi", "film noir": "Film-Noir", "film-noir": "Film-Noir", "tv movie": "TV Movie",
    "children's": "Children", "childrens": "Children", "kids": "Children", "musicals": "Musical",
    "romantic": "Romance", "thrillers": "Thriller", "documentaries": "Documentary",
}


def normalize_genre(name: str, aliases: bool = True) -> str:
    """``'  science   FICTION '`` -> ``'Sci-Fi'`` (``'Science Fiction'`` without ``aliases``: a name the user
    chose for a label); ``'drama'`` -> ``'Drama'``; empty stays empty."""
    key = " ".join(str(name).replace("_", " ").split()).lower()
    if not key:
        return ""
    if aliases and key in _ALIASES:
        return _ALIASES[key]
    return key.title().replace("Tv ", "TV ")  # str.title keeps hyphens: "film-noir" -> "Film-Noir"


def normalize_genres(names: Iterable[str], aliases: bool = True) -> list[str]:
    """Normalize and de-duplicate, keeping first-seen order; empty names dropped."""
    out: list[str] = []
    for n in names:
        g = normalize_genre(n, aliases)
        if g and g not in out:
            out.append(g)
    return out


GENRE_SEPARATORS = "|,;/"  # no genre name of the data contains one ("Sci-Fi" has a hyphen only)
_SPLIT = re.compile(r"[|,;/]")


def split_genres(value) -> list[str]:
    """One genres cell -> normalized genre names, whatever the convention: ``Action|Sci-Fi``,
    ``Action, Sci-Fi``, ``Action; Sci-Fi``, ``Action/Sci-Fi`` (mixed too), a list, or a JSON list of names or of
    ``{"name": ...}`` objects (TMDB's raw ``genres`` column). Empty or missing -> ``[]``."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        return normalize_genres(str(x.get("name", "")) if isinstance(x, dict) else str(x)
                                for x in items if x is not None)
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return split_genres(parsed)
        text = text[1:-1]
    return normalize_genres(x.strip().strip("'\"") for x in _SPLIT.split(text))


def label_counts(genre_lists: Iterable[Sequence[str]]) -> Counter:
    """How many movies carry each genre."""
    return Counter(g for gs in genre_lists for g in set(gs))


def check_label_spec(labels: Sequence[str], source: str = "labels") -> list[str]:
    """Sanity of a label list on its own (no table needed): not empty, no empty names, no duplicates after
    normalization. Returns the normalized list; raises ValueError naming ``source``."""
    names = [str(x) for x in labels]
    if not names or not any(x.strip() for x in names):
        raise ValueError(f"{source}: the label list is empty (give genre names, e.g. Drama,Comedy, or 'study')")
    if any(not x.strip() for x in names):
        raise ValueError(f"{source}: an empty label name in {names!r} (a doubled or trailing comma?)")
    seen: dict[str, str] = {}
    for x in names:
        g = normalize_genre(x)
        if g in seen:
            raise ValueError(f"{source}: {x!r} repeats {seen[g]!r} (both are {g!r})")
        seen[g] = x
    return list(seen)


def check_labels(labels: Sequence[str], genre_lists: Iterable[Sequence[str]], source: str = "labels") -> None:
    """Refuse labels that no movie of the table carries (a typo trains a label that can never be learnt), naming
    a close match and listing the table's genres with their counts. Raises DataError."""
    counts = label_counts(genre_lists)
    absent = [g for g in normalize_genres(labels) if not counts.get(g)]
    if not absent:
        return
    present = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    hints = []
    for g in absent:
        close = difflib.get_close_matches(g, list(counts), n=1, cutoff=0.6) or difflib.get_close_matches(
            g.lower(), [c.lower() for c in counts], n=1, cutoff=0.6)
        match = next((c for c in counts if close and c.lower() == close[0].lower()), None)
        hints.append(f"{g!r}" + (f" (did you mean {match!r}?)" if match else ""))
    listed = ", ".join(f"{g} {n:,}" for g, n in present) or "none: the table has no genres"
    raise DataError(f"{source}: no movie of the table has the label(s) {', '.join(hints)}. "
                     f"Genres in the table (movies): {listed}")


class LabelSet:
    """An ordered list of labels and the mapping between genre lists and multi-hot rows."""

    def __init__(self, labels: Sequence[str], aliases: bool = True):
        """``aliases=False`` keeps names as written ("Science Fiction", a label map's choice), which still match
        the genres that read as their alias (Sci-Fi)."""
        labels = normalize_genres(labels, aliases)
        if not labels:
            raise ValueError("a label set needs at least one label")
        self.labels: list[str] = labels
        self.index = {g: i for i, g in enumerate(labels)}
        for i, g in enumerate(labels):
            self.index.setdefault(normalize_genre(g), i)

    @classmethod
    def top_k(cls, genre_lists: Iterable[Sequence[str]], k: int = 10) -> LabelSet:
        """The K most frequent genres (ties broken by name for determinism)."""
        counts = Counter(g for gs in genre_lists for g in gs)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([g for g, _ in ranked[:k]])

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, genre_lists: Iterable[Sequence[str]]) -> np.ndarray:
        """Genre lists -> multi-hot ``float32[n, n_labels]``; genres outside the set are ignored."""
        rows = list(genre_lists)
        y = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        for r, gs in enumerate(rows):
            for g in gs:
                j = self.index.get(normalize_genre(g, aliases=False), self.index.get(normalize_genre(g)))
                if j is not None:
                    y[r, j] = 1.0
        return y

    def decode(self, y: np.ndarray) -> list[list[str]]:
        """Multi-hot (or boolean) ``[n, n_labels]`` -> genre lists."""
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in np.asarray(y) > 0]

    def to_json(self) -> list[str]:
        return list(self.labels)
