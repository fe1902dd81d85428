"""Evaluate a trained model on any labelled table."""

from __future__ import annotations

from pathlib import Path

from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.metrics import evaluate
from genrelens.predict import GenreClassifier


def evaluate_table(model_dir: Path | None, data: Path | None, split: str | None = None,
                   precision: str | None = None, report=None) -> dict:
    """Metrics (``weighted_f1``, ``micro_f1``, ``macro_f1``, ``samples_f1``, ``per_label``, ``n_rows``,
    ``labels``, ...) of the model on ``data``; rows without any of the model's labels are counted, not scored."""
    from genrelens.data.labels import LabelSet

    clf = GenreClassifier.load(model_dir, cache=True, precision=precision, report=report)
    df, table_report = load_table(data, skip_bad=True)
    if split:
        df = select(df, clf.bundle.artifact("split")[split])
    labels = LabelSet(clf.labels)
    y = labels.encode(df["genres"])
    keep = y.sum(1) > 0
    part = df[keep].reset_index(drop=True)
    proba, errors = clf.score(list(part["plot"]), list(part["poster"]), root=Path(df.attrs["root"]))
    out = evaluate(y[keep], clf.decide(proba), clf.labels)
    out.update(model=clf.name, model_dir=str(clf.model_dir), rows_without_model_labels=int((~keep).sum()),
               rows_skipped=len(table_report.skipped), rows_with_input_problems=len(errors), precision=clf.precision,
               precision_choice=clf.precision_choice.to_json() if clf.precision_choice else None)
    return out
