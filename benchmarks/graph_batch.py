"""Batch scoring with the encoders' graphs run N windows / posters at a time (``--sizes``), in fp32 and bf16.

    python benchmarks/graph_batch.py [--model-dir DIR] [--n 256] [--sizes 32,8]

``GenreClassifier.score`` on ``--n`` test movies with plot and poster (no feature cache), each graph batch size in
turn (``encoders.text.GRAPH_BATCH``, ``encoders.poster.GRAPH_BATCH``), best of 3 interleaved rounds; bf16 only
where the CPU has bf16 units. Prints movies/s and the largest probability difference from the first size.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from genrelens.bundle import read_split
from genrelens.encoders import poster as poster_mod
from genrelens.encoders import precision as prec
from genrelens.encoders import text as text_mod
from genrelens.paths import default_model_dir
from genrelens.predict import GenreClassifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--sizes", default="32,16,8,4")
    args = ap.parse_args()
    model_dir = args.model_dir or default_model_dir()
    sizes = [int(x) for x in args.sizes.split(",")]
    cpu = prec.describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags'])}; load average {os.getloadavg()[0]:.1f} (1 min)")
    clf = GenreClassifier.load(model_dir, precision="fp32")
    df, _ = clf.config.read_table()
    part = df[df["id"].isin(set(read_split(model_dir, "test"))) & (df["plot"] != "") & df["poster"].notna()]
    part = part.head(args.n)
    plots = clf.texts(list(part["plot"]), list(part["title"]), len(part))
    posters, root = list(part["poster"]), Path(df.attrs["root"])
    precisions = ["fp32", "bf16"] if "bf16" in prec.candidates() else ["fp32"]
    best: dict[tuple[str, int], float] = {}
    diff: dict[tuple[str, int], float] = {}
    first: dict[str, np.ndarray] = {}
    for _ in range(3):
        for precision in precisions:
            clf.set_precision(precision)
            for size in sizes:
                text_mod.GRAPH_BATCH = poster_mod.GRAPH_BATCH = size
                t = time.perf_counter()
                proba = clf.score(plots, posters, root=root)[0]
                best[precision, size] = max(best.get((precision, size), 0.0), len(plots) / (time.perf_counter() - t))
                ref = first.setdefault(precision, proba)
                diff[precision, size] = float(np.abs(proba - ref).max())
    print(f"{len(plots)} test movies with plot and poster, best of 3 rounds")
    for (precision, size), rate in best.items():
        print(f"{precision}, graph batch {size}: {rate:.1f} movies/s (max |dp| from graph batch {sizes[0]}: "
              f"{diff[precision, size]:.1e})")


if __name__ == "__main__":
    main()
