"""Where a cold ``genrelens predict`` spends its time, step by step in one fresh process.

    python benchmarks/cold_start_phases.py --model-dir DIR [--poster FILE] [--precision auto] [--runs 3]

Each run is a new interpreter (``-c`` with this file's ``phases``), timed with ``perf_counter`` (wall) and
``process_time`` (CPU) around: the CLI's own imports, ``import torch``, ``import transformers``, the rest of
``genrelens.predict``, ``GenreClassifier.load`` and one movie. ``benchmarks/cold_start.py`` times the whole
command; this says which part to cut.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import sys, time
T = [(time.perf_counter(), time.process_time())]
out = []
def mark(name):
    T.append((time.perf_counter(), time.process_time()))
    out.append(f"{name}: {T[-1][0] - T[-2][0]:.2f} s wall, {T[-1][1] - T[-2][1]:.2f} s CPU")
import typer, rich.console
mark("import typer, rich")
import torch
mark("import torch")
import transformers
mark("import transformers")
from genrelens.predict import GenreClassifier
mark("rest of genrelens.predict")
clf = GenreClassifier.load(sys.argv[1], precision=sys.argv[3])
mark(f"GenreClassifier.load ({clf.precision})")
clf.predict(["A retired hitman is pulled back in for one last job."], [sys.argv[2]])
mark("one movie")
out.append(f"total {T[-1][0] - T[0][0]:.2f} s wall, {T[-1][1] - T[0][1]:.2f} s CPU")
print("; ".join(out))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--poster", type=Path, default=None, help="default: the first poster of the default data")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    poster = args.poster
    if poster is None:
        from genrelens.data.table import default_data_path

        posters = default_data_path().parent / "posters"
        poster = posters / sorted(os.listdir(posters))[0]
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs before")
    for _ in range(args.runs):
        subprocess.run([sys.executable, "-c", CHILD, str(args.model_dir), str(poster), args.precision], check=True)
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) after")


if __name__ == "__main__":
    main()
