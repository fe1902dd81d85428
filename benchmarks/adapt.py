"""Adapting a model to a catalogue whose labelling differs: learning curve, forgetting, regulariser, speed.

The catalogue: the movies with a plot of the starting model's validation and test splits (its weights never
trained on them), labelled with a streaming-style taxonomy built from TMDB's own TV genre list: Action and
Adventure become "Action & Adventure", Sci-Fi and Fantasy "Sci-Fi & Fantasy", Animation and Family
"Kids & Family", Documentary is a label; Drama, Comedy, Romance, Thriller, Crime, Horror and Mystery stay as they
are; other genres are not catalogued (a movie left with none is not in the catalogue). The adaptation reads it
with the label map ``Action = "Action & Adventure"``, ``Adventure = "Action & Adventure"``,
``Sci-Fi = "Sci-Fi & Fantasy"``.

Per seed, a stratified third of the catalogue is the evaluation set; the adaptation sees ``n`` rows of the rest
(100, 300, 1000, all). Starting model: its decisions renamed through the label map (a merged label predicted
when one of its sources is; it never predicts a new label). Forgetting: the seven labels whose definition did not
change, on the evaluation rows of the original test split, starting vs adapted.

    python benchmarks/adapt.py --model-dir MODEL [--model-dir MODEL2] [--seeds 3] [--regularisers] [--ft-layers 2]
    python benchmarks/adapt.py --model-dir MODEL --write-catalogue FOLDER   # catalogue.csv + map.toml, to time
                                                                          # `genrelens adapt` on them
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genrelens.bundle import ModelBundle
from genrelens.data.table import load_table
from genrelens.metrics import evaluate
from genrelens.train.adapt import (
    AdaptConfig,
    features_of,
    fit_on,
    model_scores,
    plan,
    replay_rows,
    start_scores,
    stratified_split,
    subsample,
)

TAXONOMY = {"Action": "Action & Adventure", "Adventure": "Action & Adventure", "Sci-Fi": "Sci-Fi & Fantasy",
            "Fantasy": "Sci-Fi & Fantasy", "Animation": "Kids & Family", "Family": "Kids & Family",
            "Documentary": "Documentary", **{g: g for g in ("Drama", "Comedy", "Romance", "Thriller", "Crime",
                                                             "Horror", "Mystery")}}
LABEL_MAP = {"Action": "Action & Adventure", "Adventure": "Action & Adventure", "Sci-Fi": "Sci-Fi & Fantasy"}
UNCHANGED = ["Drama", "Comedy", "Romance", "Thriller", "Crime", "Horror", "Mystery"]
SIZES = (100, 300, 1000, None)


def build_catalogue(model_dir: Path, folder: Path) -> tuple[Path, set[str]]:
    """Write the catalogue table (see the module docstring) into ``folder``; returns it and the test-split ids."""
    start = ModelBundle.from_pretrained(model_dir)
    split = start.artifact("split")
    df, _ = load_table(start.config.data, skip_bad=True)
    ids = set(split["val"]) | set(split["test"])
    part = df[df["id"].isin(ids) & (df["plot"].str.len() > 0)].copy()
    part["genres"] = ["|".join(dict.fromkeys(TAXONOMY[g] for g in gs if g in TAXONOMY)) for gs in part["genres"]]
    part = part[part["genres"] != ""]
    part["poster"] = [Path(p).relative_to(df.attrs["root"]).as_posix() if isinstance(p, str) else ""
                      for p in part["poster"]]
    out = folder / "catalogue.csv"
    part[["id", "title", "year", "language", "plot", "genres", "poster"]].to_csv(out, index=False)
    return out, set(split["test"])


def run(model_dir: Path, seeds: int, regularisers: bool, l2: float | None, lexical_l2: float | None = None,
        sizes: tuple = SIZES, ft_layers: int = 0) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="adapt-bench-"))
    table, test_ids = build_catalogue(model_dir, tmp)
    start = ModelBundle.from_pretrained(model_dir)
    base = AdaptConfig(start=model_dir, data=table, label_map=dict(LABEL_MAP), ft_layers=ft_layers,
                       posters=Path(start.config.data).parent if start.config.data else None)
    if l2 is not None:
        base.l2 = l2
    if lexical_l2 is not None:
        base.lexical_l2 = lexical_l2
    p = plan(base)
    t0 = time.time()
    fx = features_of(p.start, p.table, ft_layers=ft_layers)
    print(f"{start.config.model}: catalogue {len(p.y)} movies, labels {', '.join(p.labels)}; "
          f"encoded in {time.time() - t0:.0f} s")
    unchanged = [p.labels.index(g) for g in UNCHANGED]
    in_test = p.table["id"].isin(test_ids).to_numpy()
    variants = [("l2" + (f", ft {ft_layers}" if ft_layers else ""), base)]
    if regularisers:
        none = dataclasses.replace(base, l2=0.0, lexical_l2=0.0)
        variants += [("none", none), ("replay", dataclasses.replace(none, regulariser="replay")),
                     ("l2+replay", dataclasses.replace(base, regulariser="replay"))]
    rows = []
    for seed in range(seeds):
        rest, held = stratified_split(p.y, 1 / 3, seed)
        y_held = p.y[held]
        s_proba, s_pred = start_scores(p.start, p, fx.take(held))
        s_eval = evaluate(y_held, s_pred, p.labels)
        forget_rows = in_test[held]
        s_forget = evaluate(y_held[forget_rows][:, unchanged], s_pred[forget_rows][:, unchanged], UNCHANGED)
        replay = None
        for name, cfg in variants:
            cfg = dataclasses.replace(cfg, seed=seed)
            if cfg.regulariser == "replay" and replay is None:
                part, y_rep = replay_rows(p.start, p, len(rest), seed)
                replay = (features_of(p.start, part), y_rep)
            for n in sizes if name.startswith("l2") and "replay" not in name else (100, 1000):
                sub = rest[subsample(p.y[rest], n or len(rest), seed)]
                fitted = fit_on(p.start, p, fx.take(sub), p.y[sub], cfg, replay)
                _, a_pred = model_scores(fitted.model, fitted.encode(fx.take(held)))
                a_eval = evaluate(y_held, a_pred, p.labels)
                a_forget = evaluate(y_held[forget_rows][:, unchanged], a_pred[forget_rows][:, unchanged], UNCHANGED)
                rows.append({"model": start.config.model, "regulariser": name, "seed": seed, "rows": len(sub),
                             "n": n or "all", "start_wf1": s_eval["weighted_f1"], "adapted_wf1": a_eval["weighted_f1"],
                             "start_micro": s_eval["micro_f1"], "adapted_micro": a_eval["micro_f1"],
                             "start_macro": s_eval["macro_f1"], "adapted_macro": a_eval["macro_f1"],
                             "forget_start": s_forget["weighted_f1"], "forget_adapted": a_forget["weighted_f1"],
                             "seconds": fitted.seconds, "ft_seconds": fitted.fine_tune_seconds,
                             "per_label": {g: (s_eval["per_label"][g]["f1"], a_eval["per_label"][g]["f1"])
                                           for g in p.labels}})
                r = rows[-1]
                kept = (fitted.model.lineage or {}).get("kept_starting_output", [])
                print(f"  seed {seed} {name:9s} n={r['n']!s:5s} weighted F1 {r['start_wf1']:.4f} -> "
                      f"{r['adapted_wf1']:.4f} ({r['adapted_wf1'] - r['start_wf1']:+.4f}); unchanged labels on the "
                      f"test split {r['forget_start']:.4f} -> {r['forget_adapted']:.4f}; {r['seconds']:.1f} s; "
                      f"kept at the start: {', '.join(kept) or '-'}",
                      flush=True)
    return rows


def table(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    df["gain"] = df["adapted_wf1"] - df["start_wf1"]
    df["forget"] = df["forget_adapted"] - df["forget_start"]
    df["gain_micro"] = df["adapted_micro"] - df["start_micro"]
    df["gain_macro"] = df["adapted_macro"] - df["start_macro"]
    out = ["| model | regulariser | labelled rows | weighted F1 start -> adapted | gain (mean, min over seeds) "
           "| micro / macro gain | unchanged labels, test split (forgetting) | adapt s |",
           "|---|---|---|---|---|---|---|---|"]
    for (model, reg, n), g in df.groupby(["model", "regulariser", "n"], sort=False):
        out.append(f"| {model} | {reg} | {n} ({int(g['rows'].mean())}) | {g['start_wf1'].mean():.4f} -> "
                   f"{g['adapted_wf1'].mean():.4f} | {g['gain'].mean():+.4f}, {g['gain'].min():+.4f} | "
                   f"{g['gain_micro'].mean():+.4f} / {g['gain_macro'].mean():+.4f} | {g['forget'].mean():+.4f} "
                   f"(min {g['forget'].min():+.4f}) | {g['seconds'].mean():.1f} |")
    per = df[df["regulariser"].str.startswith("l2") & (df["n"].astype(str) == "1000")]
    if len(per):
        out.append("")
        out.append("Per label, 1,000 rows (F1 start -> adapted, mean over seeds):")
        for (model, reg), g in per.groupby(["model", "regulariser"], sort=False):
            labels = g["per_label"].iloc[0]
            out.append(f"- {model} ({reg}): " + "; ".join(
                f"{lab} {np.mean([r[lab][0] for r in g['per_label']]):.3f} -> "
                f"{np.mean([r[lab][1] for r in g['per_label']]):.3f}" for lab in labels))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, action="append", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--regularisers", action="store_true", help="Also compare no penalty, replay, l2 + replay.")
    ap.add_argument("--l2", type=float, default=None, help="Head pull towards the start (default: adapt's).")
    ap.add_argument("--lexical-l2", type=float, default=None, help="Lexical pull (default: adapt's).")
    ap.add_argument("--sizes", default="100,300,1000,all", help="Labelled rows of the learning curve.")
    ap.add_argument("--ft-layers", type=int, default=0, help="Also fine-tune the top text layers (adapt --ft-layers).")
    ap.add_argument("--write-catalogue", type=Path, default=None, help="Only write FOLDER/catalogue.csv (poster "
                    "paths relative to the data's folder: give adapt --posters) and FOLDER/map.toml.")
    args = ap.parse_args()
    if args.write_catalogue:
        args.write_catalogue.mkdir(parents=True, exist_ok=True)
        cat_csv, _ = build_catalogue(args.model_dir[0], args.write_catalogue)
        (args.write_catalogue / "map.toml").write_text("".join(f'"{a}" = "{b}"\n' for a, b in LABEL_MAP.items()))
        print(f"{cat_csv} ({len(pd.read_csv(cat_csv))} movies) and {args.write_catalogue / 'map.toml'}")
        return
    sizes = tuple(None if s == "all" else int(s) for s in args.sizes.split(","))
    rows = []
    for m in args.model_dir:
        rows += run(m, args.seeds, args.regularisers, args.l2, args.lexical_l2, sizes, args.ft_layers)
    print(table(rows))


if __name__ == "__main__":
    main()
