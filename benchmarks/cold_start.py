"""Cold start of ``genrelens predict --plot ... --poster ...``: wall and CPU seconds of whole processes.

    python benchmarks/cold_start.py --model-dir DIR [--runs 3] [--precision fp32] [--src OTHER_CHECKOUT]

Each run is a fresh process (imports, model load, one movie, exit), after one untimed warm-up run (it may
export ONNX graphs into the cache). ``--src`` runs the genrelens package of another checkout instead (e.g. an
older commit: ``git archive <commit> genrelens | tar -x -C /tmp/old``), interleaved with this one, so both
see the same machine load. CPU seconds (user + sys) are the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BOOT = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
        "sys.path.insert(0, {src!r}); import genrelens; assert genrelens.__file__.startswith({src!r}); "
        "from genrelens.cli import main; sys.argv = ['genrelens', *sys.argv[1:]]; main()")


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--precision", default="fp32", help="--precision of this checkout's predict")
    ap.add_argument("--src", type=Path, default=None, help="another checkout's folder holding genrelens/")
    ap.add_argument("--plot", default="A retired hitman is pulled back in for one last job.")
    ap.add_argument("--poster", type=Path, default=None, help="default: the first poster of the default data")
    args = ap.parse_args()
    poster = args.poster
    if poster is None:
        from genrelens.data.table import default_data_path

        posters = default_data_path().parent / "posters"
        poster = posters / sorted(os.listdir(posters))[0]
    tail = ["predict", "--model-dir", str(args.model_dir), "--plot", args.plot, "--poster", str(poster)]
    variants = {"this checkout": [sys.executable, "-m", "genrelens.cli", *tail, "--precision", args.precision]}
    if args.src:
        variants = {f"{args.src}": [sys.executable, "-c", BOOT.format(src=str(args.src.resolve())), *tail],
                    **variants}
    for cmd in variants.values():
        run_once(cmd)  # warm-up: exports, file cache
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(args.runs):
        for name, cmd in variants.items():
            results[name].append(run_once(cmd))
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    for name, rs in results.items():
        walls, cpus = sorted(r[0] for r in rs), sorted(r[1] for r in rs)
        print(f"{name}: wall median {walls[len(walls) // 2]:.2f} s (min {walls[0]:.2f}), CPU median "
              f"{cpus[len(cpus) // 2]:.2f} s (min {cpus[0]:.2f}) over {len(rs)} runs")


if __name__ == "__main__":
    main()
