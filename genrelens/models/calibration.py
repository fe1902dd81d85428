"""Per-label probability calibration, fitted on the validation split after training.

The double soft F1 loss pushes a model's sigmoid scores to 0 or 1, so they are scores, not probabilities.
For each label one of three monotone maps from the raw score's logit ``z`` to a probability is fitted and
the best is kept, measured by out-of-fold Brier score (5-fold cross-fitting on validation, so isotonic
regression is not rewarded for memorising a rare label's few positives):

- ``temperature``: ``sigmoid(z / T)``;
- ``platt``: ``sigmoid(a z + b)`` (scikit-learn's logistic regression on ``z``);
- ``isotonic``: scikit-learn's isotonic regression on ``z`` (a non-decreasing step function, stored as
  the knots that ``np.interp`` applies).

Every map is non-decreasing in ``z``. The fitted calibrator is plain JSON (``calibration.json`` in the model
folder, written and read by ``genrelens.bundle``; no pickle), with the thresholds re-tuned on the calibrated
scale. Also here: the review queue's
``confidence`` and ``review`` flag, computed from calibrated probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FORMAT = 1
METHODS = ("temperature", "platt", "isotonic")
LOGIT_CLIP = 16.0  # float32 sigmoid saturates beyond ~16.6: raw scores carry no information past it
PROBA_EPS = 1e-4  # calibrated probabilities stay in [eps, 1 - eps] (a finite surprise for isotonic's ends)
FOLDS = 5
MIN_SLOPE = 1e-3  # Platt maps stay increasing (a decreasing map would turn decisions around)
THRESHOLD_GRID = np.round(np.arange(0.01, 0.991, 0.01), 2)
DEFAULT_REVIEW_BAND = 0.05


def to_logit(proba: np.ndarray) -> np.ndarray:
    """Raw sigmoid scores -> logits (float64), clipped to +-LOGIT_CLIP."""
    p = np.asarray(proba, dtype=np.float64)
    lim = 1 / (1 + np.exp(LOGIT_CLIP))
    p = np.clip(p, lim, 1 - lim)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@dataclass
class LabelMap:
    """One label's map: ``method`` and its parameters (``t``; ``a, b``; or ``x, y`` knots)."""

    method: str
    params: dict = field(default_factory=dict)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Logits ``[n]`` -> calibrated probabilities ``[n]`` (float64)."""
        z = np.clip(np.asarray(z, dtype=np.float64), -LOGIT_CLIP, LOGIT_CLIP)
        if self.method == "temperature":
            p = _sigmoid(z / self.params["t"])
        elif self.method == "platt":
            p = _sigmoid(self.params["a"] * z + self.params["b"])
        elif self.method == "isotonic":
            p = np.interp(z, self.params["x"], self.params["y"])
        elif self.method == "identity":
            p = _sigmoid(z)
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return np.clip(p, PROBA_EPS, 1 - PROBA_EPS)

    def to_json(self) -> dict:
        return {"method": self.method, **{k: (list(map(float, v)) if isinstance(v, list | np.ndarray) else float(v))
                                          for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, obj: dict) -> LabelMap:
        obj = dict(obj)
        return cls(obj.pop("method"), obj)


def fit_map(method: str, z: np.ndarray, y: np.ndarray) -> LabelMap:
    """Fit one ``method`` on logits ``z [n]`` and outcomes ``y [n]`` (0/1)."""
    z, y = np.clip(np.asarray(z, dtype=np.float64), -LOGIT_CLIP, LOGIT_CLIP), np.asarray(y, dtype=np.float64)
    if y.min() == y.max():  # one class only: nothing to fit, keep the scores' order and squash them
        return LabelMap("platt", {"a": 1.0, "b": 0.0}) if method != "isotonic" else LabelMap(
            "isotonic", {"x": [-LOGIT_CLIP, LOGIT_CLIP], "y": [float(y[0]), float(y[0])]})
    if method == "temperature":
        from scipy.optimize import minimize_scalar

        def nll(log_t: float) -> float:
            p = np.clip(_sigmoid(z / np.exp(log_t)), 1e-12, 1 - 1e-12)
            return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())

        r = minimize_scalar(nll, bounds=(-3.0, 5.0), method="bounded")
        return LabelMap("temperature", {"t": float(np.exp(r.x))})
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4, max_iter=1000).fit(z[:, None], y.astype(int))
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a < MIN_SLOPE:  # scores that do not rise with the label: keep the map increasing, near the base rate
            ybar = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
            a, b = MIN_SLOPE, float(np.log(ybar / (1 - ybar)) - MIN_SLOPE * z.mean())
        return LabelMap("platt", {"a": a, "b": b})
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(z, y)
        # a 1e-6 rise per knot (visible in float32) makes the steps strictly increasing, so a threshold carried
        # through the map keeps every decision
        knots_y = np.clip(iso.y_thresholds_ + 1e-6 * np.arange(len(iso.y_thresholds_)), 0.0, 1.0)
        return LabelMap("isotonic", {"x": iso.X_thresholds_.tolist(), "y": knots_y.tolist()})
    raise ValueError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per row, stratified on the label (positives spread over the folds)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


def out_of_fold(method: str, z: np.ndarray, y: np.ndarray, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Cross-fitted probabilities ``[n]``: each row calibrated by a map fitted on the other folds."""
    fold, p = _folds(y, k, seed), np.zeros(len(y))
    for f in range(k):
        test = fold == f
        p[test] = fit_map(method, z[~test], y[~test])(z[test])
    return p


@dataclass
class Calibrator:
    """Per-label maps from raw scores to calibrated probabilities, plus the thresholds on that scale."""

    labels: list[str]
    maps: list[LabelMap]
    thresholds: np.ndarray  # float32 [n_labels], on the calibrated scale
    info: dict = field(default_factory=dict)  # how it was chosen (out-of-fold scores per method), data sizes

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Raw sigmoid scores ``[n, n_labels]`` -> calibrated probabilities ``float32 [n, n_labels]``."""
        proba = np.asarray(proba)
        if proba.ndim != 2 or proba.shape[1] != len(self.maps):
            raise ValueError(f"expected scores [n, {len(self.maps)}], got {proba.shape}")
        z = to_logit(proba)
        return np.stack([m(z[:, j]) for j, m in enumerate(self.maps)], axis=1).astype(np.float32) if len(z) \
            else np.zeros_like(proba, dtype=np.float32)

    @property
    def methods(self) -> dict[str, str]:
        return {g: m.method for g, m in zip(self.labels, self.maps)}

    def to_json(self) -> dict:
        return {"format": FORMAT, "input": "logit of the raw sigmoid score, clipped to +-16",
                "labels": self.labels, "maps": {g: m.to_json() for g, m in zip(self.labels, self.maps)},
                "thresholds": {g: float(t) for g, t in zip(self.labels, self.thresholds)}, "info": self.info}

    @classmethod
    def from_json(cls, obj: dict) -> Calibrator:
        if obj.get("format") != FORMAT:
            raise ValueError(f"calibration format {obj.get('format')!r} is not {FORMAT}")
        labels = list(obj["labels"])
        return cls(labels, [LabelMap.from_json(obj["maps"][g]) for g in labels],
                   np.array([obj["thresholds"][g] for g in labels], dtype=np.float32), obj.get("info", {}))


def tune_calibrated_thresholds(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per-label F1-optimal thresholds on calibrated probabilities (grid 0.01..0.99)."""
    from genrelens.models.thresholds import tune_thresholds

    return tune_thresholds(y, proba, grid=THRESHOLD_GRID)


def fit_calibrator(y_val: np.ndarray, proba_val: np.ndarray, labels: list[str],
                   methods: tuple[str, ...] = METHODS, seed: int = 0,
                   raw_thresholds: np.ndarray | None = None) -> Calibrator:
    """Choose and fit each label's map on validation (``y_val, proba_val [n, n_labels]``, raw scores).

    Thresholds on the calibrated scale: with ``raw_thresholds`` (the F1-tuned ones of the raw scores), each is
    carried through its label's map, so every decision stays what it was (the maps are strictly increasing
    where it matters); without, they are tuned afresh for F1 on the calibrated validation probabilities.
    (Tuning afresh cost 0.006 weighted F1 on a test split where carrying cost nothing: docs/trust.md.)"""
    from genrelens.metrics import ece_per_label

    y = (np.asarray(y_val) > 0).astype(np.float64)
    z = to_logit(proba_val)
    maps, chosen = [], {}
    for j, g in enumerate(labels):
        scores = {}
        for m in methods:
            p = out_of_fold(m, z[:, j], y[:, j], seed=seed)
            scores[m] = {"brier": float(((p - y[:, j]) ** 2).mean()),
                         "ece": float(ece_per_label(y[:, j:j + 1], p[:, None])[0])}
        best = min(methods, key=lambda m: scores[m]["brier"])
        maps.append(fit_map(best, z[:, j], y[:, j]))
        chosen[g] = {"method": best, "out_of_fold": scores, "positives": int(y[:, j].sum())}
    cal = Calibrator(list(labels), maps, np.full(len(labels), 0.5, np.float32),
                     {"fitted_on": "val", "n_rows": int(len(y)), "folds": FOLDS, "selection": "out-of-fold Brier",
                      "labels": chosen})
    if raw_thresholds is None:
        cal.thresholds = tune_calibrated_thresholds(y, cal.transform(proba_val))
        cal.info["thresholds"] = "tuned for F1 on the calibrated validation probabilities"
    else:
        cal.thresholds = cal.transform(np.asarray(raw_thresholds, dtype=np.float64)[None])[0]
        cal.info["thresholds"] = "the raw F1-tuned thresholds carried through each label's map"
        cal.info["raw_thresholds"] = [float(t) for t in raw_thresholds]
    return cal


# ---------------------------------------------------------------------------------------------- review queue

def confidence(proba: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``float [n]``: the probability that the whole predicted label set is right, taking the labels as
    independent: the product over labels of P(that label's decision is correct) (``p`` if predicted, else
    ``1 - p``). Meaningful on calibrated probabilities."""
    p, d = np.asarray(proba, dtype=np.float64), np.asarray(pred, dtype=bool)
    return np.where(d, p, 1 - p).prod(axis=1) if p.size else np.zeros(len(p))


def review_flags(proba: np.ndarray, thresholds: np.ndarray, band: float = DEFAULT_REVIEW_BAND) -> np.ndarray:
    """``bool [n]``: some label's calibrated probability lies within ``band`` of its threshold."""
    p = np.asarray(proba, dtype=np.float64)
    return (np.abs(p - np.asarray(thresholds, dtype=np.float64)) <= band).any(axis=1) if p.size \
        else np.zeros(len(p), dtype=bool)


def review_report(y_true: np.ndarray, proba: np.ndarray, pred: np.ndarray, thresholds: np.ndarray,
                  band: float = DEFAULT_REVIEW_BAND) -> dict:
    """How well the review flag and the confidence find wrong label sets (``y_true, proba, pred [n, L]``):
    share flagged, share of wrong sets caught (random flagging of the same share catches that share),
    error rates inside and outside the queue, and how well ``confidence`` predicts an exact match."""
    from sklearn.metrics import roc_auc_score

    y, d = np.asarray(y_true) > 0, np.asarray(pred, dtype=bool)
    wrong = (y != d).any(axis=1)
    flag = review_flags(proba, thresholds, band)
    conf = confidence(proba, d)
    n = max(len(y), 1)
    out = {"band": float(band), "n_rows": int(len(y)), "share_flagged": float(flag.mean()) if len(y) else 0.0,
           "wrong_sets": int(wrong.sum()), "share_wrong": float(wrong.mean()) if len(y) else 0.0,
           "share_of_wrong_caught": float((flag & wrong).sum() / max(wrong.sum(), 1)),
           "random_flagging_catches": float(flag.sum() / n),
           "error_rate_flagged": float(wrong[flag].mean()) if flag.any() else None,
           "error_rate_not_flagged": float(wrong[~flag].mean()) if (~flag).any() else None,
           "mean_confidence": float(conf.mean()) if len(y) else 0.0,
           "exact_match": float((~wrong).mean()) if len(y) else 0.0}
    out["confidence_auroc"] = (float(roc_auc_score(~wrong, conf)) if 0 < wrong.sum() < len(y) else None)
    return out


def calibration_summary(y_true: np.ndarray, raw: np.ndarray, cal: Calibrator, raw_thresholds: np.ndarray,
                        n_bins: int = 15) -> dict:
    """Before/after figures on one split (``y_true, raw [n, L]``): ECE, Brier, weighted F1 (each with its own
    thresholds) and the reliability table pooled over labels (for the reliability diagram)."""
    from genrelens.metrics import brier, ece, evaluate, reliability_bins
    from genrelens.models.thresholds import decide

    y = np.asarray(y_true) > 0
    out = {"methods": cal.methods}
    for name, p, thr in (("before", np.asarray(raw, dtype=np.float64), raw_thresholds),
                         ("after", cal.transform(raw).astype(np.float64), cal.thresholds)):
        rel = reliability_bins(y.ravel(), p.ravel(), n_bins)
        out[name] = {"ece": ece(y, p, n_bins), "brier": brier(y, p),
                     "weighted_f1": evaluate(y, decide(p, thr), cal.labels)["weighted_f1"],
                     "share_extreme": float(((p < 0.01) | (p > 0.99)).mean()),
                     "reliability": {k: [None if not np.isfinite(v) else float(v) for v in rel[k]]
                                     for k in ("count", "mean_proba", "frequency")}}
    return out
