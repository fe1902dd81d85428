"""Seconds per explanation (``GenreClassifier.explain``: modality Shapley values, word occlusion, Grad-CAM
per predicted genre) on real test movies of a model, one movie at a time, as the CLI and ``/v1/explain`` do
(poster read from disk, features computed: no feature cache).

    python benchmarks/explain_speed.py [--model-dir DIR] [--n 30] [--threads 2]

Prints the CPU, the load average, per-part wall and CPU seconds (modalities, words, Grad-CAM, PNGs; the rest is
reading the poster and computing the features) and, last, ``seconds per explanation: median X.XX, ...``
(wall clock; the target is <= 1.5 s on 2 cores) and the process CPU seconds per explanation (all threads of
this process: less sensitive to other jobs on a shared machine, but above the wall time when both cores work).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import genrelens.explain as ex  # noqa: E402
from genrelens.data.split import select  # noqa: E402
from genrelens.data.table import load_table  # noqa: E402
from genrelens.predict import GenreClassifier, default_model_dir  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--n", type=int, default=30, help="test movies with plot and poster, explained one by one")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = GenreClassifier.load(args.model_dir or default_model_dir())
    df, _ = load_table(args.data or clf.config.data, skip_bad=True)
    df = select(df, clf.bundle.split_ids("test"))
    df = df[(df["plot"].str.strip() != "") & df["poster"].notna()].head(args.n)
    root = Path(df.attrs["root"])
    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}, load average before "
          f"{os.getloadavg()[0]:.2f}; model {clf.model_dir} ({clf.name}, calibrated={clf.calibrated})")
    # warm-up: ONNX sessions, captum imports
    clf.explain(df["plot"].iloc[0], root / df["poster"].iloc[0], title=df["title"].iloc[0])
    parts: dict[str, list[tuple[float, float]]] = {}
    for name in ("modality_shapley", "word_attributions", "poster_cams", "heatmap_png"):
        setattr(ex, name, _timed(getattr(ex, name), parts.setdefault(name, [])))
    times, cpu, n_genres, n_words, n_occluded = [], [], [], [], []
    for plot, poster, title in zip(df["plot"], df["poster"], df["title"]):
        t, c = time.perf_counter(), time.process_time()
        e = clf.explain(plot, root / poster, title=title)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        n_genres.append(len(e["genres"]))
        n_words.append(len(e["plot_words"]))
        n_occluded.append(len(set(ex.word_types(ex.plot_words(e["text"])).tolist()) - {0}))
    t, c = np.array(times), np.array(cpu)
    print(f"{len(t)} movies: {np.mean(n_words):.0f} plot words ({np.mean(n_occluded):.0f} distinct words occluded) "
          f"and {np.mean(n_genres):.1f} predicted genres on average; load average after {os.getloadavg()[0]:.2f}")
    for name, v in parts.items():
        a = np.array(v).reshape(-1, 2)
        print(f"  {name}: {a[:, 0].sum() / len(t):.3f} s wall, {a[:, 1].sum() / len(t):.3f} s CPU per explanation")
    print(f"seconds per explanation: median {np.median(t):.2f}, mean {t.mean():.2f}, p90 {np.percentile(t, 90):.2f}, "
          f"max {t.max():.2f}")
    print(f"CPU seconds per explanation (process_time): median {np.median(c):.2f}, mean {c.mean():.2f}, "
          f"p90 {np.percentile(c, 90):.2f}")


def _timed(f, out: list):
    """``f``, appending ``(wall, CPU seconds)`` of each call to ``out``."""
    def wrapper(*a, **k):
        t, c = time.perf_counter(), time.process_time()
        try:
            return f(*a, **k)
        finally:
            out.append((time.perf_counter() - t, time.process_time() - c))
    return wrapper


if __name__ == "__main__":
    main()
