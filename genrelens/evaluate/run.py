"""Evaluate a trained model on any labelled table."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from genrelens.bundle import labelled_rows
from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.errors import DataError
from genrelens.metrics import add_calibration, evaluate
from genrelens.predict import NO_INPUT, GenreClassifier

NO_INPUT_ROWS = "with nothing this model reads"  # metrics["rows"]["dropped"]: labelled rows not scored


def _reason(why: str) -> str:
    """A problem's kind, as ``data validate`` names it: ``duplicate id (first in row 4)`` -> ``duplicate id``,
    ``unmatched quote: ...`` -> ``unmatched quote``, ``7 fields but the header has 6 ...`` -> ``wrong number of
    fields``."""
    if re.match(r"\d+ fields but the header has", why):
        return "wrong number of fields"
    return re.split(r" \(|: |; ", why, maxsplit=1)[0]


def rows_summary(n_read: int, skipped: list[tuple[int, str, str]], unlabelled_genres: list[list[str]],
                 n_used: int, n_input_problems: int = 0, split: str | None = None, n_outside_split: int = 0,
                 columns: dict[str, str] | None = None, notices: list[str] | None = None, n_no_input: int = 0
                 ) -> dict:
    """Which rows of the table an evaluation used, which it dropped and why (``metrics["rows"]``).

    skipped: the loader's bad rows ``(row, id, reason)``, one per problem (a row can have several); unlabelled_genres:
    the genres of the rows that carry none of the model's labels (their commonest genres are named, so a convention
    problem shows); n_no_input: labelled rows with nothing the model reads (not scored). ``dropped`` counts rows,
    each once (``read = used + n_dropped + outside_split``);
    ``bad_row_problems`` counts the bad rows' problems by kind."""
    problems = Counter(_reason(why) for _, _, why in skipped)
    genres = Counter(g for gs in unlabelled_genres for g in gs)
    dropped = {}
    if skipped:
        dropped["bad rows"] = len({r for r, _, _ in skipped})
    if unlabelled_genres:
        dropped["none of the model's labels"] = len(unlabelled_genres)
    if n_no_input:
        dropped[NO_INPUT_ROWS] = int(n_no_input)
    return {"read": int(n_read), "used": int(n_used), "dropped": dropped, "n_dropped": int(sum(dropped.values())),
            "bad_row_problems": dict(problems.most_common()),
            "split": split, "outside_split": int(n_outside_split), "with_input_problems": int(n_input_problems),
            "unlabelled_genres": dict(genres.most_common(5)), "columns": dict(columns or {}),
            "notices": list(notices or [])}


def rows_line(rows: dict) -> str:
    """One line for evaluate's text output: ``rows: 100 read, 31 used, 69 dropped (2 bad rows: 2 no genres; 67 with
    none of the model's labels; their commonest genres: ...)``; rows are counted once, the bad rows' problems each."""
    parts = [f"{rows['read']:,} read"]
    if rows.get("split"):
        parts.append(f"{rows['outside_split']:,} outside the {rows['split']!r} split")
    parts.append(f"{rows['used']:,} used")
    why = []
    for reason, n in rows["dropped"].items():
        if reason == "none of the model's labels":
            common = ", ".join(rows.get("unlabelled_genres") or {}) or "no genres"
            why.append(f"{n:,} with none of the model's labels (their commonest genres: {common})")
        elif reason == "bad rows":
            problems = rows.get("bad_row_problems") or {}
            m = sum(problems.values())
            head = f"{n:,} bad row{'' if n == 1 else 's'}"
            if m != n:
                head += f" with {m:,} problems, a row can have several"
            why.append(head + ": " + ", ".join(f"{k:,} {kind}" for kind, k in problems.items()))
        else:
            why.append(f"{n:,} {reason}")
    parts.append(f"{rows['n_dropped']:,} dropped" + (f" ({'; '.join(why)})" if why else ""))
    line = "rows: " + ", ".join(parts)
    if rows.get("with_input_problems"):
        line += f"; {rows['with_input_problems']:,} scored with less input than they had (unreadable posters)"
    return line


def evaluate_table(model_dir: Path | None, data: Path | None, split: str | None = None, encoding: str = "utf-8",
                   posters: Path | None = None, precision: str | None = None, report=None, sep: str | None = None,
                   columns=None) -> dict:
    """Metrics (``weighted_f1``, ``micro_f1``, ``macro_f1``, ``samples_f1``, ``ece``, ``brier``, ``per_label``,
    ``n_rows``, ``labels``, ``calibrated``, ``rows`` (see :func:`rows_summary`), ...) of the model on ``data``;
    rows without any of the model's labels are counted, not scored. ``sep``, ``columns``: see ``load_table``."""
    from genrelens.data.labels import LabelSet
    from genrelens.data.split import SPLITS

    if split is not None and split not in SPLITS:
        raise ValueError(f"--split must be train, val or test, not {split!r}")
    clf = GenreClassifier.load(model_dir, cache=True, precision=precision, report=report)
    df, table_report = load_table(data, skip_bad=True, encoding=encoding, posters=posters, sep=sep, columns=columns)
    n_table = len(df)
    ids, missing = _split_ids(df, clf, split, data) if split else (None, 0)
    in_split = select(df, ids) if ids is not None else df
    part, y, unlabelled = labelled_rows(df, ids, clf.labels)
    has_label = LabelSet(clf.labels).encode(in_split["genres"]).sum(1) > 0
    proba, errors = clf.score(list(part["plot"]), list(part["poster"]), root=Path(df.attrs["root"]),
                              titles=list(part["title"]))
    # a row with nothing the model reads is not scored (as predict answers it), so it is dropped, not scored from
    # the label frequencies into the metrics
    blind = np.array([errors.get(i, "").endswith(NO_INPUT) for i in range(len(part))], dtype=bool)
    if len(part) and blind.all():
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
