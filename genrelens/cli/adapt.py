"""``genrelens adapt``: make a trained model a catalogue's own (``genrelens.train.adapt``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from genrelens.cli.common import column_map_option, console, sep_option, table_options
from genrelens.cli.common import fail as _fail


def _names(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def adapt(
    start: Path = typer.Option(..., "--from", help="The trained model folder to start from (kept as it is)."),
    data: Path = typer.Option(..., "--data", help="Your labelled movies (CSV/JSONL/Parquet; genres column)."),
    out: Path = typer.Option(..., "--out", help="New folder for the adapted model (written only on success)."),
    label_map: Path | None = typer.Option(None, "--label-map", help="TOML of \"old\" = \"new\" lines: a starting "
                                          "label or a table genre renamed; several onto one merge."),
    labels: str | None = typer.Option(None, "--labels", help="Comma list: adapt on these labels only (default: "
                                      "every genre of the table, after the label map)."),
    drop: str | None = typer.Option(None, "--drop", help="Comma list of labels to leave out."),
    holdout: float = typer.Option(0.3, "--holdout", min=0.05, max=0.8, help="Share of your rows held out "
                                  "(stratified) to measure the starting vs the adapted model."),
    regulariser: str = typer.Option("l2", "--regulariser", help="l2 (a pull towards the starting weights) or "
                                    "replay (also mix in the starting model's training movies)."),
    l2: float = typer.Option(1.0, "--l2", min=0.0, help="Strength of the pull towards the starting head weights."),
    lexical_l2: float = typer.Option(16.0, "--lexical-l2", min=0.0, help="The same pull for the lexical channel."),
    keep_margin: float = typer.Option(0.01, "--keep-margin", min=0.0, help="Safeguard: a label the starting model "
                                      "has keeps its adapted output only where it beats the starting one by this "
                                      "much F1 on the calibration rows; elsewhere it keeps the starting output."),
    steps: int = typer.Option(200, "--steps", min=0, help="Optimiser steps (0: keep the starting weights, refit "
                              "thresholds and calibration only)."),
    seed: int = typer.Option(0, "--seed", min=0),
    shared: bool = typer.Option(False, "--shared", help="Also refit the head's shared layers (by default only its "
                                "output rows, so a label kept at the start stays exactly the start's)."),
    ft_layers: int = typer.Option(0, "--ft-layers", min=0, help="Also fine-tune this many top layers of the "
                                  "starting model's text encoder on your rows first (at most the layers above "
                                  "the layer its review reasons read: 2 for the default model; worth it with "
                                  "thousands of rows; slower)."),
    curve: bool = typer.Option(True, "--curve/--no-curve", help="Learning curve: the same adaptation on 100, 300, "
                               "1000 and all rows."),
    force: bool = typer.Option(False, "--force", help="Save the adapted model even if it is not better on the "
                               "held-out rows."),
    posters: Path | None = typer.Option(None, "--posters", help="Folder relative poster paths are resolved against."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of a CSV/JSONL table."),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip bad rows instead of stopping."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Adapt a trained model to your catalogue's labelling from a few hundred labelled movies; says on held-out
    rows whether it helped (exit 1 when not, unless --force). Bad input exits 2 before any training."""
    from genrelens.errors import GenrelensError
    from genrelens.train.adapt import CURVE, AdaptConfig, AdaptInputError, adapt, plan, save

    sep, mapping = table_options(sep, column_map)
    cfg = AdaptConfig(start=start, data=data, out=out, label_map=label_map, labels=_names(labels) or None,
                      drop=_names(drop), holdout=holdout, regulariser=regulariser, l2=l2,
                      lexical_l2=lexical_l2, keep_margin=keep_margin, steps=steps, seed=seed,
                      shared=shared, ft_layers=ft_layers, curve=CURVE if curve else None, force=force, posters=posters,
                      encoding=encoding, skip_bad=skip_bad, sep=sep, columns=mapping)
    try:
        p = plan(cfg)
    except (AdaptInputError, GenrelensError) as e:
        _fail(str(e), 2)
    from genrelens.data.table import rows_line

    console.print(rows_line(p.rows), highlight=False)
    console.print(f"labels: {', '.join(p.labels)}" + (f"; new: {', '.join(p.new)}" if p.new else "")
                  + (f"; dropped: {', '.join(p.dropped)}" if p.dropped else "")
                  + (f"; renamed: {', '.join(f'{a} -> {b}' for a, b in p.renamed.items())}" if p.renamed else ""),
                  highlight=False)
    try:
        result = adapt(cfg, p, progress=progress, say=lambda s: console.print(s, highlight=False))
    except AdaptInputError as e:
        _fail(str(e), 2)
    render(result.report)
    if as_json:
        sys.stdout.write(json.dumps(result.report, indent=2) + "\n")
    if not result.helped and not force:
        h = result.report["holdout"]
        _fail(f"the adapted model is not better on the {h['adapted']['n_rows']} held-out rows (weighted F1 "
              f"{h['starting']['weighted_f1']:.4f} -> {h['adapted']['weighted_f1']:.4f}): nothing written to {out} "
              f"(--force saves it anyway)", 1)
    save(result, out)
    console.print(f"[green]adapted model[/] -> {out} ({result.report['seconds']['total']:.0f} s)", highlight=False)


def _kept_name(label: str, sources: list[str] | str | None) -> str:
    """A kept label with the starting output it keeps, when that is not its own alone."""
    sources = [sources] if isinstance(sources, str) else sources or [label]
    kept, others = sources[0], ", ".join(sources[1:])
    if kept == label and not others:
        return label
    if not others:
        return f"{label} (the start's {kept})"
    if kept == label:
        verb = "is" if len(sources) == 2 else "are"
        return f"{label} (its own starting output only: {others}, merged into it, {verb} not in it)"
    return f"{label} ({kept}'s output only: the start has none for the merged label)"


def kept_line(lineage: dict) -> str:
    """The labels the safeguard kept at the start, as the report says it: a merged label keeps one source's output
    (the start has none of its own), and over refitted features a kept row no longer scores as the start."""
    names = [_kept_name(g, lineage.get("kept_as", {}).get(g)) for g in lineage["kept_starting_output"]]
    what = ("kept at the start" if lineage.get("kept_exactly", True) else
            "kept their starting output rows (over the refitted features, so not the start's scores)")
    return f"{what}: {', '.join(names) or 'none'}"


def render(report: dict) -> None:
    """The held-out comparison, per label, and the learning curve."""
    h = report["holdout"]
    t = Table(title=f"held-out rows ({h['adapted']['n_rows']}): starting vs adapted model")
    for col in ("", "weighted F1", "micro F1", "macro F1", "ECE"):
        t.add_column(col, justify="right" if col else "left")
    for name in ("starting", "adapted"):
        r = h[name]
        t.add_row(name, *(f"{r[k]:.4f}" for k in ("weighted_f1", "micro_f1", "macro_f1", "ece")))
    console.print(t)
    t = Table(title="per label (F1, ECE)")
    for col in ("label", "support", "F1 starting", "F1 adapted", "ECE starting", "ECE adapted"):
        t.add_column(col, justify="left" if col == "label" else "right")
    for g, a in h["adapted"]["per_label"].items():
        s = h["starting"]["per_label"][g]
        t.add_row(g, str(a["support"]), f"{s['f1']:.3f}", f"{a['f1']:.3f}", f"{s['ece']:.3f}", f"{a['ece']:.3f}")
    console.print(t)
    if report["learning_curve"]:
        t = Table(title="learning curve (adapted on a stratified sample of N fitting rows; same held-out rows)")
        for col in ("rows", "weighted F1", "micro F1", "macro F1", "ECE"):
            t.add_column(col, justify="right")
        for pt in report["learning_curve"]:
            if "skipped" in pt:
                t.add_row(str(pt["rows"]), pt["skipped"], "", "", "")
            else:
                t.add_row(str(pt["rows"]), *(f"{pt[k]:.4f}" for k in ("weighted_f1", "micro_f1", "macro_f1", "ece")))
        console.print(t)
    lin = report["lineage"]
    mapped = ", ".join(f"{a} -> {b}" for a, b in lin["label_map"].items()) or "none"
    console.print(f"lineage: started from {lin['started_from']} ({lin['start_model']}); adapted on {lin['fit_rows']} "
                  f"rows of {lin['adapted_on']} ({lin['holdout_rows']} held out); label map: {mapped}; new labels: "
                  f"{', '.join(lin['new_labels']) or 'none'}; {kept_line(lin)}", highlight=False)
    verdict = "[green]helped[/]" if report["helped"] else "[red]did not help[/]"
    console.print(f"adaptation {verdict}: weighted F1 {h['starting']['weighted_f1']:.4f} -> "
                               f"{h['adapted']['weighted_f1']:.4f} on the held-out rows")
