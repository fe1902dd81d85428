"""Where batch scoring time goes: ``GenreClassifier.score`` on test movies, split into its stages.

    python benchmarks/profile_score.py [--model-dir DIR] [--n 256] [--rounds 2] [--precision fp32] [--threads N]

Stages (each timed around the call that does it, so the figures add up to the wall time less "other"):
tokenizer (tokenizing and windowing the texts), padding (each length-sorted batch padded), text ONNX run,
window pooling, poster decode (open + JPEG draft decode + resize), poster preprocess (crop, normalize to
float32), poster ONNX run, lexical channel (TF-IDF logits), head (the trained head + late fusion),
calibration, other (Python glue: text building, masks, feature arrays). No feature cache. Best of
``--rounds`` (the whole run, stage figures of the best round). For the CPU capped to AVX2 (every library,
ONNX Runtime included, where cpuid can be capped), run it as
``bash -c '. scripts/cpu_cap_env.sh && .venv/bin/python benchmarks/profile_score.py'`` (so that the cap's
``LD_PRELOAD`` does not stay in your shell), or through ``bash benchmarks/cpu_kind.sh --cap-avx2``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genrelens.data.split import load_split, select
from genrelens.data.table import load_table
from genrelens.encoders import precision as prec
from genrelens.predict import GenreClassifier


class Stages:
    """Accumulated seconds per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t
        return timed


class TimedSession:
    """An ONNX Runtime session whose ``run`` calls are timed as ``name``."""

    def __init__(self, session: Any, stages: Stages, name: str) -> None:
        self.session, self.run = session, stages.wrap(name, session.run)

    def __getattr__(self, key: str) -> Any:
        return getattr(self.session, key)


def instrument(clf: GenreClassifier, stages: Stages) -> None:
    text, poster, bundle = clf.text_encoder, clf.poster_encoder, clf.bundle
    if text is not None:
        text.window_ids = stages.wrap("tokenizer", text.window_ids)
        text.tokenizer.pad = stages.wrap("padding", text.tokenizer.pad)
        text.pool_windows = stages.wrap("window pooling", text.pool_windows)
        if text.session is not None:
            text.session = TimedSession(text.session, stages, "text graph run")
    if poster is not None:
        poster.load = stages.wrap("poster decode", poster.load)
        poster.preprocess = stages.wrap("poster preprocess", poster.preprocess)
        if poster.session is not None:
            poster.session = TimedSession(poster.session, stages, "poster graph run")
    if bundle.lexical is not None:
        bundle.lexical.logits = stages.wrap("lexical channel", bundle.lexical.logits)
    if clf.calibrator is not None:
        clf.calibrator.transform = stages.wrap("calibration", clf.calibrator.transform)
    head = bundle.model
    head.forward = stages.wrap("head", head.forward)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: torch's)")
    ap.add_argument("--any-movies", action="store_true",
                    help="the first movies of the model's data with a plot and a poster, whatever the split (for a "
                         "stand-in model whose split is not of that data)")
    args = ap.parse_args()
    cpu = prec.describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags']) or 'none'}; torch capability "
          f"{cpu['torch_capability']}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} (1 min) before")
    clf = GenreClassifier.load(args.model_dir, precision=args.precision)
    if args.threads:
        from genrelens.encoders.onnx import ort_session

        if clf.text_encoder is not None and clf.text_encoder.session is not None:
            clf.text_encoder.session_threads = args.threads
            clf.text_encoder.session = ort_session(clf.text_encoder.onnx_file, args.threads)
        if clf.poster_encoder is not None and clf.poster_encoder.session is not None:
            clf.poster_encoder.num_threads = args.threads
            clf.poster_encoder.session = ort_session(clf.poster_encoder.onnx_path, args.threads)
    df, _ = load_table(clf.config.data, skip_bad=True)
    if not args.any_movies:
        df = select(df, load_split(clf.model_dir / "split.json")["test"])
    df = df[(df["plot"].str.strip() != "") & df["poster"].notna()].head(args.n)
    plots, posters, titles = list(df["plot"]), list(df["poster"]), list(df["title"])
    root = Path(df.attrs["root"])
    clf.score(plots[:8], posters[:8], root=root, titles=titles[:8])  # warm-up
    stages = Stages()
    instrument(clf, stages)
    best: tuple[float, dict[str, float]] = (float("inf"), {})
    for _ in range(args.rounds):
        stages.seconds.clear()
        t = time.perf_counter()
        clf.score(plots, posters, root=root, titles=titles)
        wall = time.perf_counter() - t
        if wall < best[0]:
            best = (wall, dict(stages.seconds))
    wall, seconds = best
    print(f"{len(plots)} movies, precision {clf.precision}, {clf.name}: {wall:.2f} s, {len(plots) / wall:.1f} movies/s")
    seconds["other"] = wall - sum(seconds.values())
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:18s} {s:7.2f} s  {100 * s / wall:5.1f}%")


if __name__ == "__main__":
    main()
