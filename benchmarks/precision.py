"""Each encoder in each precision path on this CPU: plots/s and images/s, and agreement with fp32.

    python benchmarks/precision.py [--n 256] [--rounds 2]

Text (MiniLM-L6, length-sorted batches of 32, up to 128 tokens): eager fp32, eager bf16 autocast, ONNX Runtime
fp32 (the ``fp32`` path), OpenVINO bf16 (the ``bf16`` path), ONNX Runtime int8 (the ``int8`` path). Posters
(EfficientNet-Lite0, 224 px, batches of 32, already preprocessed): eager fp32, eager bf16 autocast
(channels-last), ONNX Runtime fp32 (the ``fp32`` and ``bf16`` paths), OpenVINO fp32 and bf16 (not used),
ONNX Runtime int8 static (the ``int8`` path, calibrated on 128 posters that are not among the timed ones). Rates
are best of ``--rounds`` interleaved rounds; cos = min cosine similarity of features with the fp32 ONNX ones.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from genrelens.data.images import preprocess
from genrelens.data.table import load_table
from genrelens.encoders import precision as prec
from genrelens.encoders.onnx import OpenVINOSession, ort_session
from genrelens.encoders.poster import PosterEncoder
from genrelens.encoders.text import TextEncoder


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cpu = prec.describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags'])}; torch capability {cpu['torch_capability']}; "
          f"{torch.get_num_threads()} torch threads; load average {os.getloadavg()[0]:.1f} (1 min) before")
    df, _ = load_table(None, skip_bad=True)
    plots = [p for p in df["plot"] if p.strip()][: args.n]
    paths = [p for p in df["poster"] if p is not None]
    root = df.attrs["root"]

    text = TextEncoder("minilm").use_onnx()
    eager = TextEncoder("minilm")

    def bf16_eager(texts):
        eager.precision = "bf16"
        try:
            return eager.encode(texts)
        finally:
            eager.precision = "fp32"

    int8_text = TextEncoder("minilm").use_onnx()
    prec.apply_text(int8_text, "int8")
    bf16_text = TextEncoder("minilm").use_onnx()
    prec.apply_text(bf16_text, "bf16")
    text_paths = {"eager fp32": eager.encode, "eager bf16 autocast": bf16_eager,
                  "ONNX Runtime fp32 (fp32 path)": text.encode, "OpenVINO bf16 (bf16 path)": bf16_text.encode,
                  "ONNX Runtime int8 dynamic (int8 path)": int8_text.encode}

    poster = PosterEncoder("effnet-lite0")
    pixels = preprocess([poster.load(p, root) for p in paths[: args.n]], poster.input_size)
    calib = preprocess([poster.load(p, root) for p in paths[-128:]], poster.input_size)
    q = prec.quantize_poster_int8(poster.onnx_path, lambda: calib, "benchmark-last128", **prec.int8_options())
    int8_session = ort_session(q, poster.num_threads)
    ov_fp32 = OpenVINOSession(poster.onnx_path, poster.num_threads, "fp32")
    ov_bf16 = OpenVINOSession(poster.onnx_path, poster.num_threads, "bf16")
    module = poster.features_module
    module_cl = PosterEncoder("effnet-lite0", backend="torch").features_module.to(memory_format=torch.channels_last)

    def batched(fn):
        return lambda x: np.concatenate([fn(x[i : i + 32]) for i in range(0, len(x), 32)])

    def torch_fp32(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    def torch_bf16(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return module_cl(torch.from_numpy(x).contiguous(memory_format=torch.channels_last)).float().numpy()

    poster_paths = {"eager fp32": batched(torch_fp32), "eager bf16 autocast, channels-last": batched(torch_bf16),
                    "ONNX Runtime fp32 (fp32 and bf16 paths)": batched(poster.features),
                    "OpenVINO fp32 (not used)": batched(lambda x: ov_fp32.run(None, {"pixels": x})[0]),
                    "OpenVINO bf16 (not used)": batched(lambda x: ov_bf16.run(None, {"pixels": x})[0]),
                    "ONNX Runtime int8 static QDQ per-channel " + (
                        "(int8 path)" if prec.exact_int8() else "U8U8 (not used without VNNI: posters stay fp32)"):
                        batched(lambda x: int8_session.run(None, {"pixels": x})[0])}

    for kind, paths_, data, unit in (("text", text_paths, plots, "plots/s"),
                                     ("poster", poster_paths, pixels, "images/s")):
        ref = text.encode(plots) if kind == "text" else batched(poster.features)(pixels)
        best: dict[str, float] = {}
        out: dict[str, np.ndarray] = {}
        failed: dict[str, str] = {}
        for _ in range(args.rounds):
            for name, fn in paths_.items():
                if name in failed:
                    continue
                t = time.perf_counter()
                try:
                    out[name] = fn(data)
                except RuntimeError as e:  # e.g. OpenVINO bf16 with oneDNN capped below the CPU (ONEDNN_MAX_CPU_ISA)
                    failed[name] = str(e).strip().splitlines()[-1]
                    continue
                best[name] = max(best.get(name, 0.0), len(data) / (time.perf_counter() - t))
        for name in paths_:
            if name in failed:
                print(f"{kind} {name}: failed ({failed[name]})")
            else:
                print(f"{kind} {name}: {best[name]:.1f} {unit}, cos {cos(out[name], ref):.4f}")
    print(f"load average after: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
