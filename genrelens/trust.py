"""Calibrate an existing model folder, and measure calibration and the review queue on its splits.

``calibrate_model_dir`` does for a model trained before calibration existed what training now does at its
end: fit the per-label calibrator on the validation split (``split.json`` of the folder), save
``calibration.json``, and add the test split's before/after figures to ``metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genrelens.data.labels import LabelSet
from genrelens.data.split import load_split, select
from genrelens.data.table import load_table
from genrelens.errors import ModelError
from genrelens.evaluate.metrics import add_calibration, evaluate
from genrelens.io import write_json_atomic
from genrelens.models.calibration import (
    DEFAULT_REVIEW_BAND,
    calibration_summary,
    fit_calibrator,
    review_report,
)
from genrelens.predict import GenreClassifier


def split_scores(clf: GenreClassifier, data: str | Path | None, splits: tuple[str, ...] = ("val", "test"),
                 progress: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray, object]]:
    """``{split: (y [n, L], raw scores [n, L], table)}`` for the model's own splits of ``data`` (default: the
    data it was trained on); rows without any of its labels are left out, as in training."""
    if not (clf.model_dir / "split.json").exists():
        raise ModelError(f"{clf.model_dir} has no split.json: cannot find its validation split")
    df, _ = load_table(data if data is not None else clf.config.data, skip_bad=True)
    split = load_split(clf.model_dir / "split.json")
    labels = LabelSet(clf.labels)
    out = {}
    for s in splits:
        part = select(df, split[s])
        y = labels.encode(part["genres"])
        keep = y.sum(1) > 0
        part = part[keep].reset_index(drop=True)
        raw, _ = clf.score(list(part["plot"]), list(part["poster"]), root=Path(df.attrs["root"]),
                           progress=progress, calibrated=False)
        out[s] = (y[keep] > 0, raw, part)
    return out


def calibrate_model_dir(model_dir: str | Path | None, data: str | Path | None = None,
                        band: float = DEFAULT_REVIEW_BAND, progress: bool = False) -> dict:
    """Fit and save ``calibration.json`` for a trained model folder; update its ``metrics.json``.

    Returns ``{"calibration": before/after on test, "review": review-queue figures on test, "val": ...}``."""
    clf = GenreClassifier.load(model_dir, cache=True)
    if clf.head is None:
        raise ModelError(f"the {clf.name} model answers label frequencies: nothing to calibrate")
    scores = split_scores(clf, data, progress=progress)
    y_val, raw_val, _ = scores["val"]
    y_test, raw_test, _ = scores["test"]
    cal = fit_calibrator(y_val, raw_val, clf.labels, seed=clf.config.seed)
    cal.save(clf.model_dir)
    p_test, p_val = cal.transform(raw_test), cal.transform(raw_val)
    pred = _decide(p_test, cal.thresholds)
    summary = {"calibration": calibration_summary(y_test, raw_test, cal, clf.raw_thresholds),
               "review": review_report(y_test, p_test, pred, cal.thresholds, band),
               "val": calibration_summary(y_val, raw_val, cal, clf.raw_thresholds)}
    metrics_path = clf.model_dir / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        metrics["test"] = add_calibration(evaluate(y_test, pred, clf.labels), y_test, p_test)
        metrics["val"] = add_calibration(evaluate(y_val, _decide(p_val, cal.thresholds), clf.labels), y_val, p_val)
        metrics.update(calibration=summary["calibration"], review=summary["review"])
        write_json_atomic(metrics_path, metrics)
    return summary


def _decide(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    from genrelens.train.thresholds import decide

    return decide(proba, thresholds)
