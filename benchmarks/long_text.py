"""Quality on long catalogue text (issue 14): weighted/micro/macro F1 of model folders on their test split, on
its plots longer than 128 tokens, and on two long-text variants built from the test split itself ("summaries":
the plot among two other test plots of the same genres, shuffled; "noisy": two other test plots sharing a
genre appended; see genrelens/experiments/long_text.py). Folders trained on one split share the variants.

    python benchmarks/long_text.py MODEL_DIR [MODEL_DIR ...] [--label NAME ...] [--json out.json] [--no-titles]
    python benchmarks/long_text.py --summarize a.json b.json ...   # the summary over earlier runs' --json files

Prints one row per model and variant, then the mean +- std per model name over the folders given (seeds).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from genrelens.bundle import read_artifact
from genrelens.experiments.long_text import VARIANTS, evaluate_long, long_text_parts
from genrelens.predict import GenreClassifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="*")
    ap.add_argument("--summarize", nargs="+", default=None, help="--json files of earlier runs: print their summary")
    ap.add_argument("--data", default=None, help="the table the models were trained on (default: theirs)")
    ap.add_argument("--label", action="append", default=[], help="a name per folder for the summary (in order)")
    ap.add_argument("--json", default=None, help="write every result to this file")
    ap.add_argument("--no-titles", action="store_true", help="withhold the titles from models that read them")
    args = ap.parse_args()
    if not args.summarize and not args.model_dirs:
        ap.error("give model folders, or --summarize with earlier --json files")
    if args.summarize:
        results = [r for f in args.summarize for r in json.loads(Path(f).read_text())]
        return summarize(results)
    parts_by_split: dict[str, dict] = {}
    results = []
    for i, d in enumerate(args.model_dirs):
        split = read_artifact(Path(d), "split")
        key = json.dumps(split, sort_keys=True)
        if key not in parts_by_split:
            clf = GenreClassifier.load(d, precision="fp32")
            parts_by_split[key] = long_text_parts(args.data or clf.config.data, split, clf.labels,
                                                  read=clf.config.table_options(args.data))
        r = evaluate_long(d, parts=parts_by_split[key], titles=not args.no_titles)
        r["label"] = args.label[i] if i < len(args.label) else r["model"]
        r["val_weighted_f1"] = val_f1(d)
        results.append(r)
        for v in VARIANTS:
            m = r[v]
            print(f"{r['label']:<24} s{r['seed']}  {v:<18} n={m['n_rows']:<5} words median {m['median_words']:>5.0f} "
                  f"p90 {m['p90_words']:>5.0f}  weighted {m['weighted_f1']:.4f}  micro {m['micro_f1']:.4f}  "
                  f"macro {m['macro_f1']:.4f}", flush=True)
    summarize(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def val_f1(model_dir: str | None) -> float:
    """Validation weighted F1 from a folder's metrics.json (older --json files did not keep it); nan if gone."""
    metrics = read_artifact(Path(model_dir), "metrics", {}) if model_dir and Path(model_dir).is_dir() else {}
    return metrics.get("val", {}).get("weighted_f1", float("nan"))


def summarize(results: list[dict]) -> None:
    """Mean +- std (over the folders of each label: seeds) per variant."""
    groups = defaultdict(list)
    for r in results:
        groups[r["label"]].append(r)
    print("\nmean +- std over the folders of each label (weighted F1 / micro / macro)")
    print("| model | seeds | validation (weighted) | " + " | ".join(VARIANTS) + " |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    for label, rs in groups.items():
        val = np.array([r.get("val_weighted_f1", val_f1(r.get("model_dir"))) for r in rs])
        cells = [f"{val.mean():.3f}" + (f" +- {val.std(ddof=1):.3f}" if len(rs) > 1 else "")]
        for v in VARIANTS:
            w, mi, ma = (np.array([r[v][k] for r in rs]) for k in ("weighted_f1", "micro_f1", "macro_f1"))
            sd = f" +- {w.std(ddof=1):.3f}" if len(rs) > 1 else ""
            cells.append(f"{w.mean():.3f}{sd} / {mi.mean():.3f} / {ma.mean():.3f}")
        print(f"| {label} | {len(rs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
