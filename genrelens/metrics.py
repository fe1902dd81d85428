"""Multi-label metrics as the study reports them, on multi-hot arrays ``[n_movies, n_labels]``.

Weighted F1 is per-label F1 weighted by the label's frequency (support) in the evaluated set, which is
scikit-learn's ``average="weighted"``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

PAIR_STATES = ("neither", "first only", "second only", "both")


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true) > 0, np.asarray(y_pred) > 0
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must both be [n_movies, n_labels]")
    return y_true.astype(int), y_pred.astype(int)


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """All metrics as one JSON-ready dict (keys: weighted_f1, micro_f1, macro_f1, samples_f1, per_label, ...)."""
    y_true, y_pred = _check(y_true, y_pred)
    kw = {"zero_division": 0}
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, average=None, **kw)
    weighted = float(f1_score(y_true, y_pred, average="weighted", **kw))
    total = support.sum()
    per_label = {
        name: {
            "precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(support[j]),
            "frequency": float(support[j] / len(y_true)) if len(y_true) else 0.0,
            # the label's share of the weighted F1 (the study's appendix): its term in the weighted sum
            "weighted_f1_share": float(f[j] * support[j] / total) if total else 0.0,
        }
        for j, name in enumerate(labels)
    }
    return {
        "n_rows": int(len(y_true)),
        "labels": list(labels),
        "weighted_f1": weighted,
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", **kw)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", **kw)),
        "samples_f1": samples_f1(y_true, y_pred),
        "per_label": per_label,
        "predicted_combinations": n_combinations(y_pred),
        "true_combinations": n_combinations(y_true),
        "top_predicted_combinations": top_combinations(y_pred, labels),
    }


def samples_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-movie F1 (0 for a movie with no true and no predicted label, as scikit-learn's zero_division=0)."""
    if not len(y_true):
        return 0.0
    if y_true.shape[1] == 1:  # scikit-learn reads one column as binary, not multilabel; per-movie F1 = hit or not
        return float((y_true & y_pred).mean())
    return float(f1_score(y_true, y_pred, average="samples", zero_division=0))


def n_combinations(y: np.ndarray) -> int:
    """Number of distinct label sets (rows) in a multi-hot array."""
    return len({tuple(row) for row in np.asarray(y) > 0})


def top_combinations(y: np.ndarray, labels: list[str], n: int = 15) -> list[tuple[str, int]]:
    """The ``n`` most common label sets, as ("A|B", count)."""
    counts = Counter("|".join(labels[j] for j in np.flatnonzero(row)) or "(none)" for row in np.asarray(y) > 0)
    return counts.most_common(n)


def pair_confusion(y_true: np.ndarray, y_pred: np.ndarray, a: int, b: int) -> np.ndarray:
    """4x4 counts for labels ``a`` and ``b``: rows = true state, columns = predicted state (PAIR_STATES).

    E.g. with a=Comedy, b=Drama, cell [1, 2] counts comedies (not dramas) predicted as dramas only.
    """
    y_true, y_pred = _check(y_true, y_pred)
    ts = y_true[:, a] + 2 * y_true[:, b]
    ps = y_pred[:, a] + 2 * y_pred[:, b]
    out = np.zeros((4, 4), dtype=np.int64)
    np.add.at(out, (ts, ps), 1)
    return out


def cooccurrence(y: np.ndarray) -> np.ndarray:
    """``[n_labels, n_labels]`` counts of movies carrying both labels (diagonal = label counts)."""
    y = (np.asarray(y) > 0).astype(np.int64)
    return y.T @ y


def _proba_check(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = (np.asarray(y_true) > 0).astype(np.float64), np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(f"y_true {y.shape} and proba {p.shape} must both be [n_movies, n_labels]")
    return y, p


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> dict:
    """One label's reliability table over ``n_bins`` equal-width bins of [0, 1] (1.0 falls in the last bin):
    per bin ``count``, ``mean_proba`` (confidence) and ``frequency`` (observed positive rate); ``y, p [n]``."""
    y, p = np.asarray(y, dtype=np.float64).ravel(), np.asarray(p, dtype=np.float64).ravel()
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        freq = np.bincount(idx, weights=y, minlength=n_bins) / count
    return {"count": count, "mean_proba": mean_p, "frequency": freq}


def ece_per_label(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """Expected calibration error per label ``[n_labels]``: over ``n_bins`` equal-width bins of the
    label's positive-class probability, sum of (bin share) x |observed positive rate - mean probability|."""
    y, p = _proba_check(y_true, proba)
    out = np.zeros(y.shape[1])
    if not len(y):
        return out
    for j in range(y.shape[1]):
        b = reliability_bins(y[:, j], p[:, j], n_bins)
        used = b["count"] > 0
        out[j] = float((b["count"][used] / len(y) * np.abs(b["frequency"][used] - b["mean_proba"][used])).sum())
    return out


def ece(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Mean over labels of the 15-bin expected calibration error (see ``ece_per_label``)."""
    return float(ece_per_label(y_true, proba, n_bins).mean())


def brier_per_label(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Brier score per label ``[n_labels]``: mean squared difference between probability and outcome."""
    y, p = _proba_check(y_true, proba)
    return ((p - y) ** 2).mean(0) if len(y) else np.zeros(y.shape[1])


def brier(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean over labels of the Brier score."""
    return float(brier_per_label(y_true, proba).mean())


def calibration_metrics(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict:
    """``{"ece", "brier", "per_label": {label: {"ece", "brier"}}}`` (ECE: 15 equal-width bins)."""
    e, b = ece_per_label(y_true, proba), brier_per_label(y_true, proba)
    return {"ece": float(e.mean()), "brier": float(b.mean()),
            "per_label": {g: {"ece": float(e[j]), "brier": float(b[j])} for j, g in enumerate(labels)}}


def add_calibration(metrics: dict, y_true: np.ndarray, proba: np.ndarray) -> dict:
    """Add ``ece``, ``brier`` and per-label ``ece``/``brier`` to an ``evaluate`` dict (in place; returned)."""
    cal = calibration_metrics(y_true, proba, metrics["labels"])
    metrics["ece"], metrics["brier"] = cal["ece"], cal["brier"]
    for g, v in cal["per_label"].items():
        metrics["per_label"][g].update(v)
    return metrics
