"""Evaluate a trained model on any labelled table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genrelens.bundle import labelled_rows
from genrelens.data.split import select
from genrelens.data.table import load_table, rows_line, rows_summary
from genrelens.errors import DataError
from genrelens.metrics import add_calibration, evaluate
from genrelens.predict import NO_INPUT, GenreClassifier


def evaluate_table(model_dir: Path | None, data: Path | None, split: str | None = None, encoding: str = "utf-8",
                   posters: Path | None = None, precision: str | None = None, report=None, sep: str | None = None,
                   columns=None) -> dict:
    """Metrics (``weighted_f1``, ``micro_f1``, ``macro_f1``, ``samples_f1``, ``ece``, ``brier``, ``per_label``,
    ``n_rows``, ``labels``, ``calibrated``, ``rows`` (see :func:`rows_summary`), ...) of the model on ``data``
    (None: the default data set; with ``split``, the table the model was trained on, read as training read it);
    rows without any of the model's labels are counted, not scored; an adapted model reads the genres through its
    label map. ``sep``, ``columns``: see ``load_table``."""
    from genrelens.data.labels import LabelSet
    from genrelens.data.split import SPLITS

    if split is not None and split not in SPLITS:
        raise ValueError(f"--split must be train, val or test, not {split!r}")
    clf = GenreClassifier.load(model_dir, cache=True, precision=precision, report=report)
    if split is not None and data is None:  # the model's own split: of the table it was trained on, read as then
        df, table_report = clf.config.read_table(read={"posters": posters, "sep": sep, "columns": columns})
        data = clf.config.data
    else:
        df, table_report = load_table(data, skip_bad=True, encoding=encoding, posters=posters, sep=sep,
                                      columns=columns)
    mapping = (clf.bundle.lineage or {}).get("label_map") or {}
    if mapping:  # an adapted model: the table's genres through its label map, as adapt read them
        df["genres"] = [[mapping.get(g, g) for g in gs] for gs in df["genres"]]
    n_table = len(df)
    ids, missing = _split_ids(df, clf, split, data) if split else (None, 0)
    in_split = select(df, ids) if ids is not None else df
    part, y, unlabelled = labelled_rows(df, ids, clf.labels)
    has_label = LabelSet(clf.labels, aliases=False).encode(in_split["genres"]).sum(1) > 0
    if not len(part):
        rows = rows_summary(table_report.n_read, table_report.skipped, [list(g) for g in in_split["genres"]], 0,
                            0, split, n_table - len(in_split))
        raise DataError(f"no row of {data or 'the default data set'} to evaluate: {rows_line(rows)}; the model's "
                        f"labels: {', '.join(clf.labels)}")
    proba, errors = clf.score(list(part["plot"]), list(part["poster"]), root=Path(df.attrs["root"]),
                              titles=list(part["title"]))
    # a row with nothing the model reads is not scored (as predict answers it), so it is dropped, not scored from
    # the label frequencies into the metrics
    blind = np.array([errors.get(i, "").endswith(NO_INPUT) for i in range(len(part))], dtype=bool)
    if blind.all():
        raise DataError(f"none of the {len(part):,} labelled rows of {data or 'the default data set'} has anything "
                        f"this model reads ({clf.name} reads {_reads(clf)}): nothing to evaluate")
    y, proba = y[~blind], proba[~blind]
    errors = {i: e for i, e in errors.items() if not blind[i]}
    out = add_calibration(evaluate(y, clf.decide(proba), clf.labels), y, proba)
    out["calibrated"] = clf.calibrated  # False: a model trained before calibration (scores, not probabilities)
    if clf.calibration_note:
        out["note"] = clf.calibration_note
    out.update(model=clf.name, model_dir=str(clf.model_dir), rows_without_model_labels=unlabelled,
               rows_skipped=table_report.n_skipped, rows_with_input_problems=len(errors), precision=clf.precision,
               precision_choice=clf.precision_choice.to_json() if clf.precision_choice else None)
    if split:
        out.update(split=split, split_rows_missing=missing)
    out["rows"] = rows_summary(
        table_report.n_read, table_report.skipped, [list(g) for g in in_split["genres"][~has_label]],
        len(part) - int(blind.sum()), len(errors), split, n_table - len(in_split), table_report.columns,
        table_report.notices, n_no_input=int(blind.sum()))
    return out


def _reads(clf: GenreClassifier) -> str:
    """What the model reads, in words."""
    what = [w for w, has in (("titles", clf.reads_titles), ("plots", clf.uses_text), ("posters", clf.uses_poster))
            if has]
    return " and ".join(what) or "nothing of a movie"


def _split_ids(df, clf: GenreClassifier, split: str, data: Path | None) -> tuple[list[str], int]:
    """``(ids of the model's split, how many of them df lacks)``; DataError when under half are found (the table
    is not the one the model was trained on)."""
    from genrelens.errors import DataError

    ids = clf.bundle.split_ids(split)
    part = select(df, ids)
    if len(part) * 2 < len(ids):
        trained = clf.config.data or "the default data set"
        raise DataError(f"only {len(part)} of the {len(ids)} movies of the model's {split!r} split are in "
                        f"{data or 'the default data set'}: --split picks rows of the table the model was trained "
                        f"on ({trained}); to score every row of this table, drop --split")
    return ids, len(ids) - len(part)
