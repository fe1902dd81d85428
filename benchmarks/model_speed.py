"""Batch prediction speed of model folders against each other, interleaved in one run (issue 14's budget:
the new default at >= 0.6x today's movies/s), plus each one's REST latency for a ~100-word plot + poster.

    python benchmarks/model_speed.py BASE_DIR OTHER_DIR [...] [--n 256] [--reps 3] [--requests 100]

(b) of benchmarks/speed.py for each folder: ``GenreClassifier.score`` over the same ``--n`` test movies (plot
and poster; the first folder's test split), repeated ``--reps`` times in turn (A B A B ...), best time kept;
then ``genrelens serve`` per folder with sequential single-movie requests (p50/p95). Prints the CPU first
and ``ratio`` = movies/s of each folder / the first folder's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from speed import WORDS, rest_latency, test_movies  # noqa: E402  (benchmarks/speed.py)

from genrelens.encoders.precision import describe_cpu  # noqa: E402
from genrelens.predict import GenreClassifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100, help="sequential REST requests per folder (0: skip)")
    ap.add_argument("--precision", default="fp32")
    args = ap.parse_args()
    cpu = describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags'])}; load average {os.getloadavg()[0]:.1f} (1 min) "
          "before the run", flush=True)
    clfs = [GenreClassifier.load(d, precision=args.precision) for d in args.model_dirs]
    movies = [test_movies(clf, args.n, None) for clf in clfs]  # what each reads: with titles, for a model that does
    for clf, (plots, posters) in zip(clfs, movies):  # warm-up: ONNX sessions, first-call allocations
        clf.score(plots[:16], posters[:16])
    best = [float("inf")] * len(clfs)
    for _ in range(args.reps):
        for i, clf in enumerate(clfs):
            t = time.perf_counter()
            clf.score(*movies[i])
            best[i] = min(best[i], time.perf_counter() - t)
    plots, posters = movies[0]
    base = len(plots) / best[0]
    for d, clf, secs in zip(args.model_dirs, clfs, best):
        rate = len(plots) / secs
        print(f"{clf.name:<12} {d}: {rate:6.1f} movies/s over {len(plots)} test movies (best of {args.reps}), "
              f"ratio {rate / base:.2f}", flush=True)
    if args.requests:
        for d, clf, (plots, posters) in zip(args.model_dirs, clfs, movies):  # >= 100 words, cut to 100 (speed.py)
            r = rest_latency(d, plots, posters, args.requests)
            print(f"{clf.name:<12} REST {args.requests} sequential requests, {WORDS}-word plot + poster: "
                  f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
