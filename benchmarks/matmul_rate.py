"""This CPU's fp32 matrix-product rate in torch, on the shapes of a MiniLM layer, beside the rate of the layers
themselves: how close the text stage of training already is to what the CPU can multiply.

    python benchmarks/matmul_rate.py [--tokens 4096] [--runs 20]

Prints GFLOP/s (2 x m x k x n per product, median of ``--runs``) for the layer's four products (query/key/value
and output 384x384, the feed-forward 384x1536 and 1536x384) on ``--tokens`` rows, then for one whole MiniLM layer
forward over a batch of 32 windows of 128 tokens (its multiply-adds counted as the products' only: attention's
own products and the element-wise work are left out, so the layer's figure is a lower bound).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def rate(fn, flops: float, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return flops / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    m, d, f = args.tokens, 384, 1536
    with torch.inference_mode():
        for k, n in ((d, d), (d, f), (f, d)):
            a, b = torch.randn(m, k), torch.randn(k, n)
            gflops = rate(lambda a=a, b=b: a @ b, 2 * m * k * n, args.runs)
            print(f"matmul {m}x{k} @ {k}x{n}: {gflops:.1f} GFLOP/s")
        from genrelens.encoders.text import TextEncoder
        from genrelens.train.finetune import encoder_layers, extended_mask

        layer = encoder_layers(TextEncoder().model)[0].eval()
        hidden, mask = torch.randn(32, 128, d), torch.ones(32, 128, dtype=torch.long)
        ext = extended_mask(mask, hidden.dtype)
        flops = 2 * 32 * 128 * (4 * d * d + 2 * d * f)
        gflops = rate(lambda: layer(hidden, attention_mask=ext), flops, args.runs)
        print(f"one MiniLM layer, 32 windows x 128 tokens: {gflops:.1f} GFLOP/s (its products only)")


if __name__ == "__main__":
    main()
