"""Calibrate an existing model folder, and measure calibration and the review queue on its splits.

``calibrate_model_dir`` does for a model trained before calibration existed what training now does at its
end: fit the per-label calibrator on the validation split (the folder's ``split.json``), save it through the
bundle (``calibration.json``), and add the test split's before/after figures to ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genrelens.errors import ModelError
from genrelens.metrics import add_calibration, evaluate
from genrelens.models.calibration import (
    DEFAULT_REVIEW_BAND,
    calibration_summary,
    fit_calibrator,
    review_report,
)
from genrelens.models.thresholds import decide
from genrelens.predict import GenreClassifier


def split_scores(clf: GenreClassifier, data: str | Path | None, splits: tuple[str, ...] = ("val", "test"),
                 progress: bool = False, read: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, object]]:
    """``{split: (y bool [n, L], raw scores [n, L], table)}`` for the model's own splits of ``data`` (default:
    the data it was trained on; ``read``: see ``RunConfig.read_table``); rows without any of its labels are left
    out, as in training."""
    clf.bundle.split_ids(splits[0])  # ModelError before reading the table when the folder has no split
    df, _ = clf.config.read_table(data, read)
    out = {}
    for s in splits:
        part, y, _ = clf.bundle.labelled_split(df, s)
        raw, _ = clf.score(list(part["plot"]), list(part["poster"]), root=Path(df.attrs["root"]),
                           progress=progress, calibrated=False, titles=list(part["title"]))
        out[s] = (y > 0, raw, part)
    return out


def calibrate_model_dir(model_dir: str | Path | None, data: str | Path | None = None,
                        band: float = DEFAULT_REVIEW_BAND, progress: bool = False, read: dict | None = None) -> dict:
    """Fit and save the calibrator of a trained model folder; update its ``metrics.json``.

    Returns ``{"calibration": before/after on test, "review": review-queue figures on test (the flag: confidence
    below the cut-off chosen on validation; ``band``: the older rule's figures beside it), "review_cutoff": the
    cut-off and its validation figures, "val": ...}``."""
    clf = GenreClassifier.load(model_dir, cache=True, precision="fp32")  # calibrated on fp32 scores
    if clf.bundle.spec.fitted:
        why = ("keeps its logistic regression's own probabilities (thresholds tuned on validation)"
               if clf.bundle.spec.text == "lexical" else "answers the training label frequencies for every movie")
        raise ModelError(f"the {clf.name} model {why}: nothing to calibrate (calibration is for the trained "
                         "neural models)")
    if not clf.bundle.split_ids("val"):
        raise ModelError(f"{clf.model_dir} has no validation split to calibrate on (an adapted model: `genrelens "
                         "adapt` fitted its calibration on its calibration rows)")
    scores = split_scores(clf, data, progress=progress, read=read)
    y_val, raw_val, _ = scores["val"]
    y_test, raw_test, _ = scores["test"]
    cal = fit_calibrator(y_val, raw_val, clf.labels, seed=clf.config.seed, raw_thresholds=clf.raw_thresholds)
    p_test, p_val = cal.transform(raw_test), cal.transform(raw_val)
    pred = decide(p_test, cal.thresholds)
    summary = {"calibration": calibration_summary(y_test, raw_test, cal, clf.raw_thresholds),
               "review": review_report(y_test, p_test, pred, cal.thresholds, band, cal.min_confidence),
               "review_cutoff": cal.review,
               "val": calibration_summary(y_val, raw_val, cal, clf.raw_thresholds)}
    metrics = clf.bundle.artifact("metrics")
    if metrics:
        metrics = dict(metrics)
        metrics["test"] = add_calibration(evaluate(y_test, pred, clf.labels), y_test, p_test)
        metrics["val"] = add_calibration(evaluate(y_val, decide(p_val, cal.thresholds), clf.labels), y_val, p_val)
        metrics.update(calibration=summary["calibration"], review=summary["review"])
    clf.bundle.save_calibration(cal, metrics or None)
    return summary


def fit_novelty(bundle_or_dir, data: str | Path | None = None, false_flag_rate: float | None = None,
                max_reference: int | None = None, progress: bool = False, save: bool = True,
                read: dict | None = None):
    """Fit the review reasons' novelty score (``models/novelty.py``) of a trained model: the reference set from
    (at most ``max_reference`` of) its training movies, the cut-off on its validation split at ``false_flag_rate``,
    the training languages from the training plots; saved into the folder through the bundle (``save``).

    ``bundle_or_dir``: a ``ModelBundle``, a ``GenreClassifier`` or a model folder (None: the default model);
    ``data``: the table it was trained on (default: its config's); movies with none of the model's labels are
    left out, as training leaves them out; ``read``: see ``RunConfig.read_table``. Returns the ``Novelty``."""
    from genrelens.bundle import ModelBundle, labelled_rows
    from genrelens.models.novelty import DEFAULT_MAX_REFERENCE, DEFAULT_RATE, Novelty, plot_openings

    if isinstance(bundle_or_dir, GenreClassifier):
        clf = bundle_or_dir
    elif isinstance(bundle_or_dir, ModelBundle):
        clf = GenreClassifier(bundle_or_dir)
    else:
        clf = GenreClassifier.load(bundle_or_dir, cache=True, precision="fp32")
    split = clf.bundle.artifact("split")
    if split is None:
        raise ModelError(f"{clf.model_dir} has no split.json: cannot find its training and validation splits")
    df, _ = clf.config.read_table(data, read)
    max_reference = max_reference or DEFAULT_MAX_REFERENCE
    seed = clf.config.seed
    feats, plots = {}, {}
    for s in ("train", "val"):
        part, _, _ = labelled_rows(df, split[s], clf.labels)  # as training keeps them
        if s == "train" and len(part) > max_reference:  # the reference set is subsampled anyway: encode no more
            part = part.sample(max_reference, random_state=seed).reset_index(drop=True)
        plots[s] = [p if isinstance(p, str) else None for p in part["plot"]]
        feats[s], _ = clf.features(plots[s], list(part["poster"]), root=Path(df.attrs["root"]), progress=progress,
                                   titles=list(part["title"]))
        if s == "val":
            opening_plots, opening_titles = plot_openings(plots[s], list(part["title"]))
    openings = None
    if "text_probe" in feats["val"] and opening_plots:
        openings, _ = clf.features(opening_plots, None, progress=progress, titles=opening_titles)
    novelty = Novelty.fit(feats["train"], feats["val"], plots["train"], false_flag_rate=false_flag_rate or DEFAULT_RATE,
                          max_reference=max_reference, seed=seed, openings=openings)
    if save:
        clf.bundle.save_novelty(novelty)
    return novelty
