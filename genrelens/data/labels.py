"""Genre names and the label set: normalization, top-K selection, multi-hot encoding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

STUDY_LABELS = ["Drama", "Comedy", "Romance", "Thriller", "Action", "Crime", "Horror", "Adventure", "Mystery",
                "Sci-Fi"]

# Spellings that differ from IMDb's name by more than case/spacing.
_ALIASES = {
    "science fiction": "Sci-Fi", "sci fi": "Sci-Fi", "scifi": "Sci-Fi", "sci-fi": "Sci-Fi",
    "sf": "Sci-Fi", "film noir": "Film-Noir", "film-noir": "Film-Noir", "tv movie": "TV Movie",
    "children's": "Children", "childrens": "Children", "kids": "Children", "musicals": "Musical",
    "romantic": "Romance", "thrillers": "Thriller", "documentaries": "Documentary",
}


def normalize_genre(name: str) -> str:
    """``'  science   FICTION '`` -> ``'Sci-Fi'``; ``'drama'`` -> ``'Drama'``; empty stays empty."""
    key = " ".join(str(name).replace("_", " ").split()).lower()
    if not key:
        return ""
    if key in _ALIASES:
        return _ALIASES[key]
    return key.title().replace("Tv ", "TV ")  # str.title keeps hyphens: "film-noir" -> "Film-Noir"


def normalize_genres(names: Iterable[str]) -> list[str]:
    """Normalize and de-duplicate, keeping first-seen order; empty names dropped."""
    out: list[str] = []
    for n in names:
        g = normalize_genre(n)
        if g and g not in out:
            out.append(g)
    return out


class LabelSet:
    """An ordered list of labels and the mapping between genre lists and multi-hot rows."""

    def __init__(self, labels: Sequence[str]):
        labels = normalize_genres(labels)
        if not labels:
            raise ValueError("a label set needs at least one label")
        self.labels: list[str] = labels
        self.index = {g: i for i, g in enumerate(labels)}

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
                j = self.index.get(normalize_genre(g))
                if j is not None:
                    y[r, j] = 1.0
        return y

    def decode(self, y: np.ndarray) -> list[list[str]]:
        """Multi-hot (or boolean) ``[n, n_labels]`` -> genre lists."""
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in np.asarray(y) > 0]

    def to_json(self) -> list[str]:
        return list(self.labels)
