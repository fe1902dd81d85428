"""Long plots built from real ones: training augmentation for whole-synopsis reading, and long-text stress
variants of a test split.

The default data's plots are short (median 46 words), real catalogue synopses are long (several summaries
joined). Both functions join a movie's plot with plots of other movies of the same split, so every word is
real text and no model ever sees, at test time, a text it was trained on.
"""

from __future__ import annotations

import numpy as np


def same_genres_concat(plots: list[str], y: np.ndarray, fraction: float, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Augmentation: for a random ``fraction`` of the movies with a plot, their plot followed by the plot of
    another movie with exactly the same genres (``y [n, L]`` multi-hot), so the labels stay exact.

    Returns ``(texts, source)``: the new texts and, for each, the row it takes its labels (and poster) from.
    Movies whose genre set no other movie shares are skipped."""
    rng = np.random.default_rng([seed, 7])
    has = np.array([bool(p and p.strip()) for p in plots])
    keys = np.array(["".join("1" if v else "0" for v in row) for row in np.asarray(y) > 0])
    groups: dict[str, np.ndarray] = {k: np.flatnonzero(has & (keys == k)) for k in np.unique(keys[has])}
    candidates = np.flatnonzero(has)
    size = int(round(fraction * len(candidates)))
    chosen = rng.choice(candidates, size=size, replace=False) if len(candidates) else []
    texts, source = [], []
    for i in sorted(chosen):
        pool = groups[keys[i]]
        if len(pool) < 2:
            continue
        j = i
        while j == i:
            j = int(rng.choice(pool))
        texts.append(f"{plots[i]} {plots[j]}")
        source.append(i)
    return texts, np.asarray(source, dtype=np.int64)


def append_shared_genre(plots: list[str], y: np.ndarray, donor_plots: list[str], donor_y: np.ndarray,
                        seed: int = 0, n_donors: int = 2, same_genres: bool = False,
                        shuffle: bool = False, exclude_self: bool = False) -> tuple[list[str], np.ndarray]:
    """Long-text stress variants: each plot joined with the plots of ``n_donors`` randomly chosen donors
    (drawn with replacement); labels stay the movie's own. Donors should be movies the model never trained
    on (a model that memorized a donor's plot would read its labels back); ``exclude_self``: donors and
    movies are the same list, and a movie is never its own donor.

    ``same_genres=False``: each donor shares at least one of the movie's genres, and its plot is appended
    (the donors add text about their other genres too: a noisy synopsis). ``same_genres=True``: donors have
    exactly the movie's genres where any does (else the most genres in common), as when a catalogue joins
    several summaries of one film; with ``shuffle`` the movie's own plot takes a random place among them.

    Returns ``(texts, donors int [n, n_donors])``: a text per movie (unchanged when it has no plot or no donor
    shares a genre; its donors are then -1)."""
    rng = np.random.default_rng([seed, 11])
    y, donor_y = np.asarray(y) > 0, np.asarray(donor_y) > 0
    has_donor = np.array([bool(p and p.strip()) for p in donor_plots])
    texts, donors = [], []
    for i, plot in enumerate(plots):
        pool = np.zeros(0, dtype=np.int64)
        if plot and plot.strip():
            ok = has_donor.copy()
            if exclude_self:
                ok[i] = False
            common = (donor_y & y[i]).sum(1)
            if same_genres:
                exact = ok & (donor_y == y[i]).all(1)
                best = common[ok].max() if ok.any() else 0
                near = ok & (common == best) & (best > 0)
                pool = np.flatnonzero(exact if exact.any() else near)
            else:
                pool = np.flatnonzero(ok & (common > 0))
        if len(pool) == 0:
            texts.append(plot)
            donors.append([-1] * n_donors)
            continue
        picked = [int(j) for j in rng.choice(pool, size=n_donors)]
        parts = [plot, *(donor_plots[j] for j in picked)]
        if shuffle:
            parts = [parts[k] for k in rng.permutation(len(parts))]
        texts.append(" ".join(parts))
        donors.append(picked)
    return texts, np.asarray(donors, dtype=np.int64)
