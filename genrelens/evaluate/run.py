"""Evaluate a trained model on any labelled table."""

from __future__ import annotations

from pathlib import Path

from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.metrics import add_calibration, evaluate
from genrelens.predict import GenreClassifier


def evaluate_table(model_dir: Path | None, data: Path | None, split: str | None = None) -> dict:
    """Metrics (``weighted_f1``, ``micro_f1``, ``macro_f1``, ``samples_f1``, ``ece``, ``brier``, ``per_label``,
    ``n_rows``, ``labels``, ``calibrated``, ...) of the model on ``data``; rows without any of the model's labels
    are counted, not scored."""
    from genrelens.data.labels import LabelSet

    clf = GenreClassifier.load(model_dir, cache=True)
    df, report = load_table(data, skip_bad=True)
    if split:
        df = select(df, clf.bundle.artifact("split")[split])
    labels = LabelSet(clf.labels)
    y = labels.encode(df["genres"])
    keep = y.sum(1) > 0
    part = df[keep].reset_index(drop=True)
    proba, errors = clf.score(list(part["plot"]), list(part["poster"]), root=Path(df.attrs["root"]))
    out = add_calibration(evaluate(y[keep], clf.decide(proba), clf.labels), y[keep], proba)
    out["calibrated"] = clf.calibrated  # False: a model trained before calibration (scores, not probabilities)
    if clf.calibration_note:
        out["note"] = clf.calibration_note
    out.update(model=clf.name, model_dir=str(clf.model_dir), rows_without_model_labels=int((~keep).sum()),
               rows_skipped=len(report.skipped), rows_with_input_problems=len(errors))
    return out
