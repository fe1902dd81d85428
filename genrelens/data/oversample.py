"""Oversampling of rare labels in the training rows (validation and test are never oversampled).

Both methods return row indices: every original row once, plus duplicates. Deterministic for a seed.
Hand-written: no maintained library implements multi-label ROS on index arrays without pulling heavy deps.
"""

from __future__ import annotations

import numpy as np

METHODS = ("none", "study", "mlros")
STUDY_GROWTH = 76 / 46  # the study's train set grew from 46K to 76K rows


def oversample(y: np.ndarray, method: str = "none", seed: int = 0, target: float | None = None) -> np.ndarray:
    """Indices into ``y`` (multi-hot ``[n, n_labels]``) after oversampling; ``target`` = final size / n."""
    n = len(y)
    if method == "none":
        return np.arange(n)
    if method == "study":
        return study_oversample(y, growth=target or STUDY_GROWTH, seed=seed)
    if method == "mlros":
        return ml_ros(y, growth=target or 1.25, seed=seed)
    raise ValueError(f"unknown oversampling method {method!r}; choose from {METHODS}")


def study_oversample(y: np.ndarray, growth: float = STUDY_GROWTH, seed: int = 0) -> np.ndarray:
    """The study's approach: duplicate random rows that carry the currently rarest label until n*growth rows.

    Picking the rarest label each time drives the label counts toward balance, as the study's
    duplication of under-represented genres did.
    """
    y = np.asarray(y) > 0
    rng = np.random.default_rng(seed)
    n_extra = int(round(len(y) * growth)) - len(y)
    counts = y.sum(0).astype(np.int64)
    usable = np.flatnonzero(counts > 0)
    if not len(usable):  # no row carries a label: nothing to balance
        return np.arange(len(y))
    rows_of = {j: np.flatnonzero(y[:, j]) for j in usable}
    extra = []
    for _ in range(max(n_extra, 0)):
        j = usable[np.argmin(counts[usable])]
        r = rng.choice(rows_of[j])
        extra.append(r)
        counts += y[r]
    return np.concatenate([np.arange(len(y)), np.asarray(extra, dtype=np.int64)])


def imbalance_ratios(y: np.ndarray) -> np.ndarray:
    """IRLbl per label: count of the most frequent label / count of this label (inf for absent labels)."""
    counts = np.asarray(y > 0).sum(0).astype(float)
    with np.errstate(divide="ignore"):
        return counts.max() / counts


def ml_ros(y: np.ndarray, growth: float = 1.25, seed: int = 0) -> np.ndarray:
    """ML-ROS (Charte et al., 2015): clone rows of minority labels (IRLbl > MeanIR) until n*growth rows.

    A label leaves the minority set once its IRLbl falls to MeanIR or below (MeanIR is fixed at the start,
    as in the paper).
    """
    y = np.asarray(y) > 0
    rng = np.random.default_rng(seed)
    n_extra = int(round(len(y) * growth)) - len(y)
    counts = y.sum(0).astype(np.int64)
    present = np.flatnonzero(counts > 0)
    if not len(present):
        return np.arange(len(y))
    ir = counts[present].max() / counts[present]
    mean_ir = ir.mean()
    minority = [j for j, r in zip(present, ir) if r > mean_ir]
    bags = {j: np.flatnonzero(y[:, j]) for j in minority}
    extra: list[int] = []
    while len(extra) < n_extra and minority:
        for j in list(minority):
            r = rng.choice(bags[j])
            extra.append(r)
            counts += y[r]
            if counts[present].max() / counts[j] <= mean_ir:
                minority.remove(j)
            if len(extra) >= n_extra:
                break
    return np.concatenate([np.arange(len(y)), np.asarray(extra, dtype=np.int64)])
