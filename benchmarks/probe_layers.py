"""Which hidden layer of the pretrained text encoder sets non-movie texts apart from movie plots: for each layer,
the mean-pooled states of movie texts ("<title>. <plot>") and of tests/data/non_movie_texts.tsv, the mean cosine
distance to the 5 nearest of 4,000 reference movies, a cut-off at the 95th percentile of 1,000 other movies, and
the share of 1,000 further movies and of the non-movie texts above it (with the AUROC between the two).

    python benchmarks/probe_layers.py [--data TABLE] [--encoder minilm]

Why: the novelty of a fine-tuned encoder is scored in its last frozen layer (``TextEncoder.probe_layer``); this
shows what each layer would give.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from genrelens.data.clean import movie_text
from genrelens.data.table import default_data_path, load_table
from genrelens.encoders.pooling import mean_pool
from genrelens.encoders.registry import build_text_encoder
from genrelens.models.novelty import knn_distance

TEXTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "non_movie_texts.tsv"


def layer_states(encoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """``[n, layers + 1, dim]``: each text's mean-pooled states at every hidden layer (0: the embeddings)."""
    order = np.argsort([len(t) for t in texts])
    out = [None] * len(texts)
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            b = order[i: i + batch_size]
            x = encoder.tokenizer([texts[j] for j in b], truncation=True, max_length=encoder.max_length,
                                  padding=True, return_tensors="pt")
            hidden = encoder.model(**x, output_hidden_states=True).hidden_states
            pooled = torch.stack([mean_pool(h, x["attention_mask"]) for h in hidden], 1).numpy()
            for row, j in enumerate(b):
                out[j] = pooled[row]
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="movie table (default: the default data)")
    ap.add_argument("--encoder", default="minilm")
    args = ap.parse_args()
    df, _ = load_table(args.data or default_data_path(), skip_bad=True)
    df = df[df["plot"].fillna("").str.strip().str.len() > 0].sample(frac=1, random_state=0)
    movies = [movie_text(t, p) for t, p in zip(df["title"], df["plot"])]
    rows = [line.split("\t", 1) for line in TEXTS.read_text(encoding="utf-8").splitlines() if line]
    kinds, other = np.array([k for k, _ in rows]), [t for _, t in rows]
    enc = build_text_encoder(args.encoder, max_length=128)
    t0 = time.perf_counter()
    ref, val, test = (layer_states(enc, movies[a:b]) for a, b in ((0, 4000), (4000, 5000), (5000, 6000)))
    far = layer_states(enc, other)
    print(f"{args.encoder}: {len(movies[:6000])} movie texts and {len(other)} non-movie texts encoded in "
          f"{time.perf_counter() - t0:.0f} s")
    print("| layer | test movies flagged | non-movie texts flagged | AUROC | lowest kind |")
    print("|---|---|---|---|---|")
    for layer in range(ref.shape[1]):
        reference = ref[:, layer] / np.linalg.norm(ref[:, layer], axis=1, keepdims=True)
        d_val, d_test, d_far = (knn_distance(x[:, layer], reference, 5) for x in (val, test, far))
        cut = np.quantile(d_val, 0.95)
        auroc = roc_auc_score(np.r_[np.zeros(len(d_test)), np.ones(len(d_far))], np.r_[d_test, d_far])
        by_kind = {k: (d_far[kinds == k] > cut).mean() for k in sorted(set(kinds))}
        low = min(by_kind, key=by_kind.get)
        print(f"| {layer} | {(d_test > cut).mean():.1%} | {(d_far > cut).mean():.1%} | {auroc:.4f} | "
              f"{low} {by_kind[low]:.0%} |")


if __name__ == "__main__":
    main()
