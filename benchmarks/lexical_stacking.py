"""The lexical channel two ways, on one trained model's features (issue 14: "late fusion ... or its scores as
extra head inputs: measure both"):

- late fusion: the head as trained, its probabilities mixed with TF-IDF + logistic regression's (weight and
  thresholds chosen on validation), as the ``catalogue`` model does;
- stacking: a new head over [text features, the channel's logits, poster features], the logits of the
  training rows out of fold (5-fold ``cross_val_predict``, so the head never sees in-sample scores).

    python benchmarks/lexical_stacking.py MODEL_DIR [--data PATH]

MODEL_DIR: a trained text+poster model on the default data, best one trained without long-plot augmentation
(e.g. `integrated --lexical`), so both heads see the same training rows; its features are recomputed through its
own encoders (feature cache), its split reused. Prints validation and test weighted/micro/macro F1.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from genrelens import bundle
from genrelens.data.split import SPLITS
from genrelens.metrics import evaluate
from genrelens.models.lexical import LexicalChannel, choose_weight, fuse, sigmoid
from genrelens.models.losses import get_loss
from genrelens.models.registry import build_head
from genrelens.models.thresholds import decide, tune_thresholds
from genrelens.predict import GenreClassifier
from genrelens.train.config import loop_config
from genrelens.train.loop import fit
from genrelens.train.run import Prepared, feature_batches, plots_of, predict_logits, prepare


def oof_logits(texts: list[str], y: np.ndarray, channel: LexicalChannel, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold logits ``[n, L]`` of a channel like ``channel`` (same C) on the training plots."""
    out = np.zeros(y.shape, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(texts))
    for k in range(folds):
        held = order[k::folds]
        fit_rows = np.setdiff1d(order, held)
        ch = LexicalChannel(C=channel.C).fit([texts[i] for i in fit_rows], y[fit_rows], seed=seed)
        out[held] = ch.logits([texts[i] for i in held])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    clf = GenreClassifier.load(args.model_dir, cache=True, precision="fp32")
    cfg = clf.config
    cfg.split_file, cfg.data = str(args.model_dir / bundle.SPLIT), args.data or cfg.data
    data: Prepared = prepare(cfg, Path(tempfile.mkdtemp()))
    feats, texts, has = {}, {}, {}
    for s in SPLITS:
        part = data.parts[s]
        f, _ = clf.features(list(part["plot"]), list(part["poster"]), root=Path(part.attrs["root"]), progress=True,
                            titles=list(part["title"]))
        feats[s] = {k: v for k, v in f.items() if k in ("text", "text_mask", "poster", "poster_mask")}
        texts[s], has[s] = plots_of(part)
    y = data.y
    tr = np.flatnonzero(has["train"])
    channel = clf.bundle.lexical or LexicalChannel().fit([texts["train"][i] for i in tr], y["train"][tr])
    # late fusion over the model's own head (its probabilities before any saved fusion)
    with torch.inference_mode():
        p_head = {s: torch.sigmoid(clf.head(feats[s])).numpy() for s in ("val", "test")}
    p_lex = {s: sigmoid(channel.logits(texts[s])) for s in ("val", "test")}
    w, _ = choose_weight(y["val"], p_head["val"], p_lex["val"], has["val"])
    fused = {s: fuse(p_head[s], p_lex[s], has[s], w) for s in ("val", "test")}
    thr = tune_thresholds(y["val"], fused["val"])
    for s in ("val", "test"):
        m = evaluate(y[s], decide(fused[s], thr), clf.labels)
        print(f"late fusion (w={w})   {s}: weighted F1 {m['weighted_f1']:.4f}  micro {m['micro_f1']:.4f}  "
              f"macro {m['macro_f1']:.4f}", flush=True)
    # stacking: the channel's logits as extra head inputs (out of fold on train)
    lex = {"train": np.zeros(y["train"].shape), "val": channel.logits(texts["val"]),
           "test": channel.logits(texts["test"])}
    lex["train"][tr] = oof_logits([texts["train"][i] for i in tr], y["train"][tr], channel, seed=cfg.seed)
    stacked = {}
    for s in SPLITS:
        lx = torch.as_tensor(lex[s], dtype=torch.float32) * torch.as_tensor(has[s])[:, None]
        stacked[s] = {**feats[s], "text": torch.cat([feats[s]["text"], lx / 4.0], dim=1)}
    dims = {"text": stacked["train"]["text"].shape[1], "poster": stacked["train"]["poster"].shape[1]}
    torch.manual_seed(cfg.seed)
    head = build_head("integrated", dims, len(clf.labels), cfg.hidden, cfg.dropout, cfg.modality_dropout)
    rows = data.train_rows
    fit(head, feature_batches(stacked["train"], y["train"], rows, cfg.batch_size, cfg.seed),
        -(-len(rows) // cfg.batch_size), lambda m: predict_logits(m, stacked["val"]), y["val"],
        get_loss(cfg.loss), loop_config(cfg), Path(tempfile.mkdtemp()), False, True, desc="stacked head")
    p = {s: 1 / (1 + np.exp(-predict_logits(head, stacked[s]))) for s in ("val", "test")}
    thr = tune_thresholds(y["val"], p["val"])
    for s in ("val", "test"):
        m = evaluate(y[s], decide(p[s], thr), clf.labels)
        print(f"stacking            {s}: weighted F1 {m['weighted_f1']:.4f}  micro {m['micro_f1']:.4f}  "
              f"macro {m['macro_f1']:.4f}", flush=True)


if __name__ == "__main__":
    main()
