"""Which parts of the model keep their predictions in bf16: the text graph, the poster CNN, or both.

    python benchmarks/bf16_parts.py [--model-dir DIR] [--split val|test]

Scores the model's own split (as the accuracy guard does, no feature cache) in fp32 (ONNX Runtime), then with
the text graph and/or the poster CNN on OpenVINO in bf16 (the other part in fp32), and prints for each the
movies/s, the share of movies whose predicted genre set is the same as fp32's and the weighted F1 of both. The
``bf16`` precision path is the first row (text bf16 on OpenVINO, posters fp32 on ONNX Runtime). Needs a CPU with
bf16 units to mean anything (elsewhere OpenVINO runs bf16 requests in fp32).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from genrelens.bundle import labelled_rows, read_split
from genrelens.encoders import precision as prec
from genrelens.encoders.onnx import OpenVINOSession
from genrelens.guard import judge
from genrelens.paths import default_model_dir
from genrelens.predict import GenreClassifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--split", choices=("val", "test"), default="val")
    args = ap.parse_args()
    model_dir = args.model_dir or default_model_dir()
    cpu = prec.describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags'])}; load average {os.getloadavg()[0]:.1f} (1 min)")
    clf = GenreClassifier.load(model_dir, precision="fp32")
    df, _ = clf.config.read_table()
    part, y, _ = labelled_rows(df, read_split(model_dir, args.split), clf.labels)
    plots = clf.texts(list(part["plot"]), list(part["title"]), len(part))
    posters, root = list(part["poster"]), Path(df.attrs["root"])
    text, poster = clf.text_encoder, clf.poster_encoder
    ort = (text.session, poster.session)
    ov_text = {p: OpenVINOSession(text.onnx_file, text.session_threads, p) for p in ("fp32", "bf16")}
    ov_poster = {p: OpenVINOSession(poster.onnx_path, poster.num_threads, p) for p in ("fp32", "bf16")}

    def score(sessions) -> tuple[np.ndarray, float]:
        text.session, poster.session = sessions
        t = time.perf_counter()
        proba = clf.score(plots, posters, root=root)[0]
        return proba, len(plots) / (time.perf_counter() - t)

    ref, rate = score(ort)
    print(f"{len(plots)} {args.split} movies; fp32 (ONNX Runtime): {rate:.1f} movies/s")
    rows = {"text bf16 (OpenVINO), posters fp32 (ONNX Runtime): the bf16 path": (ov_text["bf16"], ort[1]),
            "text fp32 (ONNX Runtime), posters bf16 (OpenVINO)": (ort[0], ov_poster["bf16"]),
            "text bf16, posters bf16 (OpenVINO)": (ov_text["bf16"], ov_poster["bf16"]),
            "text fp32, posters fp32 (OpenVINO)": (ov_text["fp32"], ov_poster["fp32"])}
    for name, sessions in rows.items():
        proba, rate = score(sessions)
        _, f1_32, f1, identical, _ = judge(y, clf.decide(ref), clf.decide(proba))
        print(f"{name}: {rate:.1f} movies/s, identical genres {100 * identical:.2f}%, weighted F1 {f1:.4f} "
              f"(fp32 {f1_32:.4f}), max |dp| {np.abs(proba - ref).max():.4f}")
    text.session, poster.session = ort


if __name__ == "__main__":
    main()
