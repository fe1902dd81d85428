"""``genrelens evaluate`` and ``genrelens calibrate``: score a labelled table, calibrate a trained model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from genrelens.cli.common import (
    MODEL_HELP,
    column_map_option,
    console,
    data_option,
    encoding_option,
    model_dir_option,
    posters_option,
    precision_check_option,
    precision_option,
    progress_option,
    results,
    sep_option,
    table_options,
    user_errors,
)
from genrelens.cli.train import run_precision_check


@user_errors(code=2)
def evaluate(
    data: Path | None = data_option(),
    model_dir: Path | None = model_dir_option(),
    posters: Path | None = posters_option(),
    encoding: str = encoding_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
    split: str | None = typer.Option(None, help="Score only this split of the model's split.json "
                                                "(train, val or test) when --data is the training data."),
    precision: str | None = precision_option(),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
) -> None:
    """Score a labelled table with a trained model (genre names mapped to the model's labels)."""
    from genrelens.data.table import rows_line
    from genrelens.evaluate.run import evaluate_table

    sep, mapping = table_options(sep, column_map)
    metrics = evaluate_table(model_dir, data, split=split, encoding=encoding, posters=posters,
                             precision=precision, report=lambda line: console.print(line, highlight=False),
                             sep=sep, columns=mapping)
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
        return
    t = Table(title=f"{metrics['model']} on {metrics['n_rows']} movies")
    for c in ("label", "precision", "recall", "F1", "support", "share of weighted F1", "ECE", "Brier"):
        t.add_column(c, justify="right" if c != "label" else "left")
    for name, r in metrics["per_label"].items():
        t.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]),
                  f"{r['weighted_f1_share']:.3f}", f"{r['ece']:.3f}", f"{r['brier']:.3f}")
    results.print(t)
    results.print(f"weighted F1 {metrics['weighted_f1']:.3f}  micro {metrics['micro_f1']:.3f}  "
                    f"macro {metrics['macro_f1']:.3f}  samples {metrics['samples_f1']:.3f}  "
                    f"ECE {metrics['ece']:.3f}  Brier {metrics['brier']:.3f}  (precision {metrics['precision']})")
    if metrics.get("note"):
        console.print(f"[yellow]note:[/] {metrics['note']}", highlight=False)
    rows = metrics["rows"]  # rows used and dropped, and why: never only in --json
    results.print(rows_line(rows), highlight=False)
    for notice in rows.get("notices") or []:
        console.print(f"[yellow]note:[/] {notice}", highlight=False)


def calibrate(
    model_dir: Path | None = model_dir_option(MODEL_HELP + " It is modified."),
    data: Path | None = typer.Option(None, "--data", help="The model's training data (default: its config's)."),
    review_band: float = typer.Option(0.05, "--review-band", min=0.0, max=1.0,
                                      help="Band of the older review rule, reported beside the confidence "
                                           "cut-off's figures."),
    as_json: bool = typer.Option(False, "--json", help="Print the before/after figures as JSON on stdout."),
    progress: bool = progress_option(),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
    precision_check: bool = precision_check_option(" (The new thresholds change the model: its old guard result "
                                                   "no longer applies.)"),
) -> None:
    """Fit the per-label calibrator of a trained model on its validation split (calibration.json) and the review
    reasons' novelty reference and trained languages (novelty.json), for a model trained before they existed."""
    from genrelens.trust import calibrate_model_dir, fit_novelty

    sep, mapping = table_options(sep, column_map)
    read = {"sep": sep, "columns": mapping}  # given: they override how training read its table
    summary = user_errors(code=2)(calibrate_model_dir)(model_dir, data, band=review_band, progress=progress,
                                                       read=read)
    novelty = user_errors(code=2)(fit_novelty)(model_dir, data, progress=progress, read=read)
    summary["novelty"] = {"cutoff": novelty.cutoff, "languages": list(novelty.languages)}
    if precision_check:
        run_precision_check(model_dir)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    c = summary["calibration"]
    t = Table(title="test split: before and after calibration")
    for col in ("", "ECE", "Brier", "weighted F1", "scores < 0.01 or > 0.99"):
        t.add_column(col, justify="right" if col else "left")
    for k in ("before", "after"):
        t.add_row(k, f"{c[k]['ece']:.4f}", f"{c[k]['brier']:.4f}", f"{c[k]['weighted_f1']:.4f}",
                  f"{c[k]['share_extreme']:.1%}")
    results.print(t)
    results.print("methods: " + ", ".join(f"{g} {m}" for g, m in c["methods"].items()))
    languages = ", ".join(novelty.languages) or "none detected"
    results.print(f"review reasons: out_of_distribution cut-off {novelty.cutoff:.4f} (chosen on validation); "
                    f"languages the model was trained on: {languages}", highlight=False)
    r = summary["review"]
    results.print(f"review queue (confidence < {r['min_confidence']:.4f}, chosen on validation): "
                    f"{r['share_flagged']:.1%} of test movies flagged, catching {r['share_of_wrong_caught']:.1%} of "
                    f"the {r['wrong_sets']} wrong label sets (random flagging: {r['random_flagging_catches']:.1%}, "
                    f"best possible: {r['best_possible_catch']:.1%})", highlight=False)
