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
``confidence`` and ``review`` flag, computed from calibrated probabilities: a movie is flagged when its
confidence is below a cut-off chosen on the validation split (saved in ``calibration.json``).
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
DEFAULT_REVIEW_BAND = 0.05  # the older rule (``--review-band``): a label within this distance of its threshold
REVIEW_MAX_SHARE = 0.3  # the confidence cut-off flags at most this share of validation movies (a queue
#   a team can work through; the least confident 30% of the default model hold 93% wrong sets, vs 81% overall)


def to_logit(proba: np.ndarray) -> np.ndarray:
    """Raw sigmoid scores -> logits (float64), clipped to +-LOGIT_CLIP."""
    from scipy.special import expit, logit

    lim = expit(-LOGIT_CLIP)
    return logit(np.clip(np.asarray(proba, dtype=np.float64), lim, 1 - lim))


@dataclass
class LabelMap:
    """One label's map: ``method`` and its parameters (``t``; ``a, b``; or ``x, y`` knots)."""

    method: str
    params: dict = field(default_factory=dict)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Logits ``[n]`` -> calibrated probabilities ``[n]`` (float64)."""
        from scipy.special import expit  # here, not at the top: scipy costs a cold start time

        z = np.clip(np.asarray(z, dtype=np.float64), -LOGIT_CLIP, LOGIT_CLIP)
        if self.method == "temperature":
            p = expit(z / self.params["t"])
        elif self.method == "platt":
            p = expit(self.params["a"] * z + self.params["b"])
        elif self.method == "isotonic":
            p = np.interp(z, self.params["x"], self.params["y"])
        elif self.method == "identity":
            p = expit(z)
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
        from scipy.special import expit

        def nll(log_t: float) -> float:
            p = np.clip(expit(z / np.exp(log_t)), 1e-12, 1 - 1e-12)
            return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())

        r = minimize_scalar(nll, bounds=(-3.0, 5.0), method="bounded")
        return LabelMap("temperature", {"t": float(np.exp(r.x))})
    if method == "platt":
        from scipy.special import logit
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4, max_iter=1000).fit(z[:, None], y.astype(int))
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a < MIN_SLOPE:  # scores that do not rise with the label: keep the map increasing, near the base rate
            ybar = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
            a, b = MIN_SLOPE, float(logit(ybar) - MIN_SLOPE * z.mean())
        return LabelMap("platt", {"a": a, "b": b})
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(z, y)
        # a 1e-6 rise per knot (visible in float32) makes the steps strictly increasing, so a threshold carried
        # through the map keeps every decision
        knots_y = np.clip(iso.y_thresholds_ + 1e-6 * np.arange(len(iso.y_thresholds_)), 0.0, 1.0)
        return LabelMap("isotonic", {"x": iso.X_thresholds_.tolist(), "y": knots_y.tolist()})
    raise ValueError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")


def keeps_decisions(m: LabelMap, z: np.ndarray, z_t: float) -> bool:
    """Whether ``m(z) >= m(z_t)`` decides as ``z >= z_t`` over ``z`` and a fine grid of logits: a map may be flat
    where it clips (``PROBA_EPS``) or where isotonic regression saw few rows, and a threshold carried onto a flat
    part would change decisions (with 30 calibration rows, a rare label once fired for every movie)."""
    grid = np.concatenate([np.asarray(z, dtype=np.float64), np.linspace(-LOGIT_CLIP, LOGIT_CLIP, 6401)])
    return bool(np.array_equal(m(grid) >= m(np.array([z_t]))[0], grid >= z_t))


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
    review: dict | None = None  # the review cut-off chosen on validation (``choose_review_cutoff``); None: older file

    @property
    def min_confidence(self) -> float | None:
        """Movies whose confidence is below this are flagged for review (None: a calibration without it)."""
        return None if not self.review else float(self.review["min_confidence"])

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
                "thresholds": {g: float(t) for g, t in zip(self.labels, self.thresholds)}, "info": self.info,
                **({"review": self.review} if self.review else {})}

    @classmethod
    def from_json(cls, obj: dict) -> Calibrator:
        if obj.get("format") != FORMAT:
            raise ValueError(f"calibration format {obj.get('format')!r} is not {FORMAT}")
        labels = list(obj["labels"])
        return cls(labels, [LabelMap.from_json(obj["maps"][g]) for g in labels],
                   np.array([obj["thresholds"][g] for g in labels], dtype=np.float32), obj.get("info", {}),
                   obj.get("review"))


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
    z_t = None if raw_thresholds is None else to_logit(np.asarray(raw_thresholds, dtype=np.float64))
    maps, chosen = [], {}
    oof = np.zeros_like(z)
    for j, g in enumerate(labels):
        scores, p_oof, fitted = {}, {}, {}
        for m in methods:
            p = p_oof[m] = out_of_fold(m, z[:, j], y[:, j], seed=seed)
            scores[m] = {"brier": float(((p - y[:, j]) ** 2).mean()),
                         "ece": float(ece_per_label(y[:, j:j + 1], p[:, None])[0])}
            fitted[m] = fit_map(m, z[:, j], y[:, j])
        ranked = sorted(methods, key=lambda m: scores[m]["brier"])
        if z_t is not None:  # only a map that keeps every decision of the raw threshold may carry it
            ranked = [m for m in ranked if keeps_decisions(fitted[m], z[:, j], z_t[j])]
            if not ranked:
                fitted["identity"], p_oof["identity"] = LabelMap("identity"), LabelMap("identity")(z[:, j])
                ranked = ["identity"]
        best = ranked[0]
        oof[:, j] = p_oof[best]
        maps.append(fitted[best])
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
    pred = decide_sets(cal.transform(proba_val), cal.thresholds)
    # out-of-fold probabilities: the cut-off is not fitted on confidences the maps were fitted on
    cal.review = choose_review_cutoff(confidence(oof, pred), (y > 0) != pred)
    return cal


def decide_sets(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The model's decisions (``genrelens.models.thresholds.decide``)."""
    from genrelens.models.thresholds import decide

    return np.asarray(decide(proba, thresholds), dtype=bool)


# ---------------------------------------------------------------------------------------------- review queue

def confidence(proba: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``float [n]``: the probability that the whole predicted label set is right, taking the labels as
    independent: the product over labels of P(that label's decision is correct) (``p`` if predicted, else
    ``1 - p``). Meaningful on calibrated probabilities."""
    p, d = np.asarray(proba, dtype=np.float64), np.asarray(pred, dtype=bool)
    return np.where(d, p, 1 - p).prod(axis=1) if p.size else np.zeros(len(p))


def choose_review_cutoff(conf: np.ndarray, wrong: np.ndarray, max_share: float = REVIEW_MAX_SHARE) -> dict:
    """The confidence cut-off of the review flag (``review = confidence < min_confidence``), chosen on the
    validation split (``conf [n]``: confidences, ``wrong [n, L] or [n]``: whether each label set is wrong).

    Among cut-offs that flag at most ``max_share`` of the movies, the one whose queue catches the most wrong
    sets beyond what flagging the same share at random would (share of wrong sets caught - share flagged,
    i.e. the largest Youden's J = catch rate - false-alarm rate on right sets). Returns the cut-off and its
    validation figures (saved in ``calibration.json`` under ``review``)."""
    conf = np.asarray(conf, dtype=np.float64)
    wrong = np.asarray(wrong, dtype=bool)
    wrong = wrong.any(axis=1) if wrong.ndim == 2 else wrong
    n, n_wrong = len(conf), int(wrong.sum())
    out = {"rule": "confidence < min_confidence", "fitted_on": "val (out-of-fold calibrated probabilities)",
           "max_share": float(max_share), "n_rows": int(n)}
    if n == 0 or n_wrong in (0, n):  # nothing to separate: flag the least confident max_share
        cut = float(np.quantile(conf, max_share)) if n else 0.0
        return {**out, "min_confidence": cut, "share_flagged": float((conf < cut).mean()) if n else 0.0,
                "share_of_wrong_caught": None}
    order = np.argsort(conf, kind="stable")
    c, w = conf[order], wrong[order]
    k = np.arange(1, n + 1)
    ends = np.r_[c[1:] > c[:-1], True]  # a cut-off just above c[i] flags rows 0..i (ties go together)
    gain = np.cumsum(w) / n_wrong - k / n
    ok = ends & (k <= max_share * n)
    if not ok.any():
        ok = ends & (k == k[ends].min())
    i = int(np.flatnonzero(ok)[np.argmax(gain[ok])])
    cut = float(np.nextafter(c[i], np.inf)) if i + 1 == n else float((c[i] + c[i + 1]) / 2)
    flag = conf < cut
    return {**out, "min_confidence": cut, "share_flagged": float(flag.mean()),
            "share_of_wrong_caught": float((flag & wrong).sum() / n_wrong), "share_wrong": float(wrong.mean())}


def confidence_flags(proba: np.ndarray, pred: np.ndarray, min_confidence: float) -> np.ndarray:
    """``bool [n]``: the review flag, ``confidence < min_confidence``."""
    return confidence(proba, pred) < min_confidence


def review_flags(proba: np.ndarray, thresholds: np.ndarray, band: float = DEFAULT_REVIEW_BAND) -> np.ndarray:
    """``bool [n]``: the older review rule: some label's calibrated probability lies within ``band`` of its
    threshold. (It flags about as many wrong sets as random flagging of the same share: docs/trust.md.)"""
    p = np.asarray(proba, dtype=np.float64)
    return (np.abs(p - np.asarray(thresholds, dtype=np.float64)) <= band).any(axis=1) if p.size \
        else np.zeros(len(p), dtype=bool)


def review_report(y_true: np.ndarray, proba: np.ndarray, pred: np.ndarray, thresholds: np.ndarray,
                  band: float = DEFAULT_REVIEW_BAND, min_confidence: float | None = None) -> dict:
    """How well the review flag and the confidence find wrong label sets (``y_true, proba, pred [n, L]``).

    The flag: ``confidence < min_confidence`` when a cut-off is given (the rule of calibrated models), else
    the older band rule (``band``). Figures: share flagged, share of wrong sets caught (flagging the same share
    at random catches that share; the best possible queue of that size catches share flagged / share wrong),
    error rates inside (the queue's precision) and outside the queue, and how well ``confidence`` predicts an
    exact match. With a cut-off, ``band_rule`` holds the band rule's figures for comparison."""
    from sklearn.metrics import roc_auc_score

    y, d = np.asarray(y_true) > 0, np.asarray(pred, dtype=bool)
    wrong = (y != d).any(axis=1)
    conf = confidence(proba, d)

    def figures(flag: np.ndarray) -> dict:
        share = float(flag.mean()) if len(y) else 0.0
        return {"share_flagged": share, "share_of_wrong_caught": float((flag & wrong).sum() / max(wrong.sum(), 1)),
                "random_flagging_catches": share,
                "best_possible_catch": float(min(1.0, share / wrong.mean())) if wrong.any() else 0.0,
                "error_rate_flagged": float(wrong[flag].mean()) if flag.any() else None,
                "error_rate_not_flagged": float(wrong[~flag].mean()) if (~flag).any() else None}

    by_band = figures(review_flags(proba, thresholds, band))
    if min_confidence is None:
        out = {"rule": "band", "band": float(band), **by_band}
    else:
        out = {"rule": "confidence", "min_confidence": float(min_confidence), **figures(conf < min_confidence),
               "band_rule": {"band": float(band), **by_band}}
    out.update({"n_rows": int(len(y)), "wrong_sets": int(wrong.sum()),
                "share_wrong": float(wrong.mean()) if len(y) else 0.0,
                "mean_confidence": float(conf.mean()) if len(y) else 0.0,
                "exact_match": float((~wrong).mean()) if len(y) else 0.0})
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
