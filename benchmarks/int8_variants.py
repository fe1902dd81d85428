"""ONNX Runtime int8 quantization options against fp32, per encoder: which keeps the features closest.

    python benchmarks/int8_variants.py [--n 256]

Posters (EfficientNet-Lite0, static QDQ, calibrated on 128 posters that are not among the scored ones) and
plots (MiniLM-L6, dynamic, the feed-forward output MatMuls kept fp32) are quantized with each option: 8-bit
signed weights per channel (the ``int8`` path on CPUs with VNNI), the same with ``reduce_range`` (7-bit
weights), unsigned weights (U8U8: the ``int8`` path on CPUs without VNNI, see encoders/precision.py), and
per-tensor weights. For each, the min / 1st-percentile / mean cosine similarity of the features with the fp32
ONNX ones.

ONNX Runtime picks its int8 kernels from cpuid: on a CPU with VNNI every option is computed exactly; on one
without, 8-bit signed weights go through VPMADDUBSW, whose int16 pair sums can saturate (up to
2 x 255 x 128 > 32767), while 7-bit weights (|w| <= 64: 2 x 255 x 64 = 32640) and U8U8 cannot. The figures
of the 7-bit and U8U8 rows are therefore the same on every x86-64 CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from genrelens.data.table import load_table
from genrelens.encoders import precision as prec
from genrelens.encoders.onnx import ort_session
from genrelens.encoders.poster import PosterEncoder
from genrelens.encoders.text import TextEncoder

VARIANTS = {  # name -> quantizer keyword arguments
    "s8 per-channel (int8 path with VNNI)": {"per_channel": True},
    "s8 per-channel reduce_range (7-bit)": {"per_channel": True, "reduce_range": True},
    "u8u8 per-channel (int8 path without VNNI)": {"per_channel": True, "weight_type": "QUInt8"},
    "s8 per-tensor": {"per_channel": False},
}


def cos_stats(a: np.ndarray, b: np.ndarray) -> str:
    c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return f"cos min {c.min():.4f}  p1 {np.percentile(c, 1):.4f}  mean {c.mean():.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args()
    from onnxruntime.quantization import QuantType

    cpu = prec.describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags'])}; load average {os.getloadavg()[0]:.1f} (1 min)")
    df, _ = load_table(None, skip_bad=True)
    root = Path(df.attrs["root"])
    plots = [p for p in df["plot"] if p.strip()][: args.n]
    paths = [p for p in df["poster"] if p is not None]

    poster = PosterEncoder("effnet-lite0")
    calib = poster.preprocess([poster.load(p, root) for p in paths[: prec.CALIBRATION_POSTERS]])
    pixels = poster.preprocess([poster.load(p, root) for p in paths[prec.CALIBRATION_POSTERS :][: args.n]])
    ref = poster.features(pixels)
    text = TextEncoder("minilm").use_onnx()
    tref = text.encode(plots)
    with tempfile.TemporaryDirectory() as work:
        fp32_text = Path(work) / "text-fp32.onnx"
        shutil.copy(text.onnx_file, fp32_text)  # the shared cache may prune its exports meanwhile
        fp32_poster = Path(work) / "poster-fp32.onnx"
        shutil.copy(poster.onnx_path, fp32_poster)
        for name, kw in VARIANTS.items():
            kw = {**kw, "weight_type": getattr(QuantType, kw.get("weight_type", "QInt8"))}
            out = Path(work) / f"poster-{len(os.listdir(work))}.onnx"
            prec.quantize_poster_int8(fp32_poster, lambda: calib, "bench", out=out, **kw)
            sess = ort_session(out, poster.num_threads)
            got = sess.run(None, {"pixels": pixels})[0]
            print(f"poster  {name:44s} {cos_stats(got, ref)}")
            tout = Path(work) / f"text-{len(os.listdir(work))}.onnx"
            prec.quantize_text_int8(fp32_text, out=tout, **kw)
            text.session = ort_session(tout, text.session_threads)
            print(f"text    {name:44s} {cos_stats(text.encode(plots), tref)}")


if __name__ == "__main__":
    main()
