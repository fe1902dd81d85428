"""The text graph as genrelens runs it against the same graph after ONNX Runtime's transformer fusions
(``onnxruntime.transformers.optimizer``: one Attention op per layer, SkipLayerNormalization, BiasGelu), on the
model's own plots: plots/s interleaved over rounds, and how far the outputs move.

    python benchmarks/ort_fusion.py [--model-dir DIR] [--n 512] [--rounds 3]

The fused graph is written to a temporary folder and removed; nothing of the model changes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from genrelens.bundle import read_artifact
from genrelens.data.table import load_table
from genrelens.encoders.onnx import ort_session
from genrelens.encoders.text import padded_batches
from genrelens.predict import GenreClassifier

KEYS = ("input_ids", "attention_mask")


def run(session, enc, ids, n_windows: int, batch_size: int = 32) -> list[np.ndarray]:
    """Every window through ``session`` in genrelens' batches (longest first, cut where padding would grow)."""
    outs = [np.zeros((n_windows, o.shape[-1]), np.float32) for o in session.get_outputs()]
    for idx in padded_batches([len(x) for x in ids["input_ids"]], batch_size):
        batch = enc.tokenizer.pad({k: [ids[k][i] for i in idx] for k in KEYS}, return_tensors="np")
        for out, res in zip(outs, session.run(None, {k: np.asarray(batch[k], np.int64) for k in KEYS})):
            out[idx] = res
    return outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--n", type=int, default=512, help="test plots to encode")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from onnxruntime.transformers import optimizer

    clf = GenreClassifier.load(args.model_dir)
    enc = clf.text_encoder
    if enc is None or enc.session is None:
        raise SystemExit("needs a model that reads plots on ONNX Runtime")
    table, _ = load_table(clf.config.data)
    test = table[table["id"].isin(set(read_artifact(clf.bundle.path, "test_ids")))]
    plots = [p for p in test["plot"] if isinstance(p, str) and p.strip()][: args.n]
    ids, owner = enc.window_ids(plots)
    print(f"{len(plots)} test plots, {len(owner)} windows of {np.mean([len(x) for x in ids['input_ids']]):.1f} "
          f"tokens on average; graph {Path(enc.onnx_file).name}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        heads = enc.model.config.num_attention_heads
        fused = optimizer.optimize_model(str(enc.onnx_file), model_type="bert", num_heads=heads, hidden_size=enc.dim,
                                         opt_level=0)
        stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
        print(f"fusions ({time.perf_counter() - t:.1f} s): {stats}")
        fused.save_model_to_file(str(Path(tmp) / "fused.onnx"))
        sessions = {"as genrelens runs it": ort_session(Path(enc.onnx_file), enc.session_threads),
                    "fused": ort_session(Path(tmp) / "fused.onnx", enc.session_threads)}
        rates: dict[str, list[float]] = {name: [] for name in sessions}
        outs = {}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                t = time.perf_counter()
                outs[name] = run(session, enc, ids, len(owner))
                rates[name].append(len(plots) / (time.perf_counter() - t))
    for name, r in rates.items():
        print(f"{name}: {', '.join(f'{x:.1f}' for x in r)} plots/s")
    for i, (a, b) in enumerate(zip(*outs.values())):
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        print(f"output {i}: min cosine {cos.min():.7f}, max abs difference {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
    main()
