"""One movie through each encoder's ONNX graph under ONNX Runtime thread settings: intra-op threads 2 or 1,
spinning threads on or off (genrelens uses 2 threads that sleep when idle: ``encoders/onnx.py``).

    python benchmarks/ort_threads.py [--model-dir DIR] [--runs 40]

Prints the median latency of the text graph (a title and a 6-sentence plot: its windows one by one, as a
single REST request runs them) and of the poster graph (one 224 px image), per setting.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from genrelens.predict import GenreClassifier

PLOT = " ".join(["A retired detective is pulled back into one last case when a serial killer starts leaving clues."]
                * 6)


def session(path: str, threads: int, spin: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    clf = GenreClassifier.load(args.model_dir)
    text, poster = clf.text_encoder, clf.poster_encoder
    if text is None or poster is None or text.session is None or poster.session is None:
        raise SystemExit("needs a model that reads plots and posters on ONNX Runtime")
    enc, owner = text.window_ids(["Heat. " + PLOT])
    feeds = [{k: np.asarray([enc[k][i]], dtype=np.int64) for k in ("input_ids", "attention_mask")}
             for i in range(len(owner))]
    image = {poster.session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, 224, 224), np.float32)}
    print(f"text: {len(owner)} window(s) of {[len(x) for x in enc['input_ids']]} tokens; poster: one 224 px image")
    for threads, spin in ((2, False), (2, True), (1, False)):
        ts, ps = session(str(text.onnx_file), threads, spin), session(str(poster.onnx_path), threads, spin)
        times: dict[str, list[float]] = {"text": [], "poster": []}
        for i in range(args.runs + 5):
            t = time.perf_counter()
            for feed in feeds:
                ts.run(None, feed)
            t2 = time.perf_counter()
            ps.run(None, image)
            if i >= 5:  # warm-up runs left out
                times["text"].append(t2 - t)
                times["poster"].append(time.perf_counter() - t2)
        print(f"{threads} intra-op thread(s), spinning {'on' if spin else 'off'}: text p50 "
              f"{1000 * np.median(times['text']):.1f} ms, poster p50 {1000 * np.median(times['poster']):.1f} ms")


if __name__ == "__main__":
    main()
