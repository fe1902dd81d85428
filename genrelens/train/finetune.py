"""Fine-tuning the text encoder on CPU: the top ``n_top`` transformer layers train, the layers below stay
frozen and run once.

Why: on 2 CPU cores a full MiniLM training step ran at ~6 plots/s (20 min per epoch of the default data);
running the frozen bottom once and training the top layers over its cached, length-sorted outputs is
~10x faster. ``n_top`` = all layers fine-tunes everything above the embeddings.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from rich.progress import track
from torch import nn

from genrelens.models.heads import UnimodalHead


def extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[b, s]`` 1/0 attention mask -> additive ``[b, 1, 1, s]`` mask for a BERT layer."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [b, s, d]`` over the tokens where ``mask [b, s]`` is 1 -> ``[b, d]``."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a BERT/MPNet-like HF model."""
    return model.encoder.layer


def bottom_states(model: nn.Module, tokenizer, texts: list[str], n_top: int, max_length: int,
                  batch_size: int = 64, progress: bool = True) -> list[torch.Tensor]:
    """Hidden states below the top ``n_top`` layers, one ``float16 [n_tokens_i, d]`` tensor per text."""
    n_layers = len(encoder_layers(model))
    if not 1 <= n_top <= n_layers:
        raise ValueError(f"n_top must be in 1..{n_layers}, got {n_top}")
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    out: list[torch.Tensor | None] = [None] * len(texts)
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    model.eval()
    with torch.inference_mode():
        for b in track(batches, description="text encoder (frozen layers)", disable=not progress):
            padded = tokenizer.pad({"input_ids": [ids[i] for i in b]}, return_tensors="pt")
            hs = model(**padded, output_hidden_states=True).hidden_states[n_layers - n_top]
            for row, i in enumerate(b):
                out[i] = hs[row, : len(ids[i])].to(torch.float16).clone()
    return out  # type: ignore[return-value]


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a list of ``[len_i, d]`` to ``[b, max_len, d]`` float32 plus a ``[b, max_len]`` mask."""
    hidden = nn.utils.rnn.pad_sequence([s.float() for s in states], batch_first=True)
    mask = torch.zeros(hidden.shape[:2], dtype=torch.long)
    for i, s in enumerate(states):
        mask[i, : len(s)] = 1
    return hidden, mask


class TopLayersClassifier(nn.Module):
    """The trainable top layers of a text encoder + mean pooling + a linear head.

    forward({"hidden": [b, s, d], "mask": [b, s]}) -> logits [b, n_labels]; ``embed`` gives the pooled
    features [b, d] that the integrated and fusion models read.
    """

    def __init__(self, model: nn.Module, n_top: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        self.top = nn.ModuleList(list(encoder_layers(model))[-n_top:])  # shared with ``model``: trains it
        dim = model.config.hidden_size
        self.head = UnimodalHead("text", {"text": dim}, n_labels, hidden=0, dropout=dropout, norm=False)

    def embed(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ext = extended_mask(mask, hidden.dtype)
        for layer in self.top:
            out = layer(hidden, attention_mask=ext)
            hidden = out[0] if isinstance(out, tuple) else out
        return mean_pool(hidden, mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = self.embed(batch["hidden"], batch["mask"])
        return self.head({"text": pooled, "text_mask": torch.ones(len(pooled), dtype=torch.bool, device=pooled.device)})


def length_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled batches of similar length (dynamic padding stays short): shuffle, sort within chunks of
    50 batches, cut, shuffle the batches."""
    rng = np.random.default_rng([seed, epoch])
    idx = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for c in range(0, len(idx), chunk):
        part = idx[c: c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i: i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def state_batches(states: list[torch.Tensor], y: np.ndarray, rows: np.ndarray, batch_size: int, seed: int,
                  epoch: int) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Training batches over ``rows`` (indices into ``states``/``y``, repeats allowed for oversampling)."""
    lengths = np.array([len(states[r]) for r in rows])
    for b in length_batches(lengths, batch_size, seed, epoch):
        hidden, mask = pad_states([states[rows[i]] for i in b])
        yield {"hidden": hidden, "mask": mask}, torch.as_tensor(y[rows[b]])


@torch.inference_mode()
def embed_states(clf: TopLayersClassifier, states: list[torch.Tensor], batch_size: int = 128,
                 logits: bool = False) -> np.ndarray:
    """Pooled features ``[n, d]`` (or logits ``[n, n_labels]``) for every state, in input order."""
    clf.eval()
    order = np.argsort([len(s) for s in states], kind="stable")
    out = None
    for i in range(0, len(order), batch_size):
        b = order[i: i + batch_size]
        hidden, mask = pad_states([states[j] for j in b])
        res = clf({"hidden": hidden, "mask": mask}) if logits else clf.embed(hidden, mask)
        if out is None:
            out = np.zeros((len(states), res.shape[1]), dtype=np.float32)
        out[b] = res.float().numpy()
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def _autocast(cfg, fn, *args, **kw):
    """``fn(*args, **kw)`` under CPU bf16 autocast when ``cfg.precision`` is bf16."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        return fn(*args, **kw)


def finetune_stage(cfg, data, run_dir, resume: bool, progress: bool, console, memo: dict | None = None):
    """The text stage of models that have one: fine-tune the text encoder's top layers on the training plots
    (or reuse those of ``cfg.extra["text_from"]``, a model folder with a text stage on the same split).

    ``memo``: a dict kept across runs of one process; it holds the latest frozen-bottom states, which the
    benchmark's runs on one split share. Returns ({split: (features [n, d], has_plot [n])}, the fine-tuned
    encoder, its linear head, history); the bundle saves encoder and head with the model.
    """
    import hashlib
    from pathlib import Path

    from genrelens.bundle import CHECKPOINTS, ModelBundle
    from genrelens.data.split import SPLITS
    from genrelens.encoders.registry import build_text_encoder
    from genrelens.models.losses import get_loss
    from genrelens.train.config import loop_config
    from genrelens.train.loop import fit

    memo = {} if memo is None else memo
    enc = build_text_encoder(cfg.text_encoder, max_length=cfg.max_length)
    idx = {s: np.flatnonzero(data.parts[s]["plot"].str.len().to_numpy() > 0) for s in SPLITS}
    texts = [data.parts[s]["plot"].iloc[i] for s in SPLITS for i in idx[s]]
    key = ("bottom_states", enc.cache_key_prefix(), cfg.ft_layers, cfg.max_length, cfg.precision,
           hashlib.sha256("\x00".join(texts).encode()).hexdigest())
    if key not in memo:
        memo.clear()  # one set of states at a time: they are large
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            memo[key] = bottom_states(enc.model, enc.tokenizer, texts, cfg.ft_layers, cfg.max_length,
                                      progress=progress)
    states, st, offset = memo[key], {}, 0
    for s in SPLITS:
        st[s] = states[offset: offset + len(idx[s])]
        offset += len(idx[s])
    clf = TopLayersClassifier(enc.model, cfg.ft_layers, len(data.labels))
    history: list[dict] = []
    text_from = cfg.extra.get("text_from")
    if text_from:
        src = ModelBundle.from_pretrained(Path(text_from), backend="torch")
        if src.text_head is None or not src.spec.text_stage:
            raise ValueError(f"text_from: {text_from} holds no fine-tuned text encoder (model {src.config.model})")
        enc.model.load_state_dict(src.text_encoder.model.state_dict())
        clf.head.load_state_dict(src.text_head.state_dict())
        console.print(f"reusing the fine-tuned text encoder of {text_from}")
    else:
        pos = -np.ones(len(data.parts["train"]), dtype=np.int64)
        pos[idx["train"]] = np.arange(len(idx["train"]))
        rows = pos[data.train_rows]
        rows = rows[rows >= 0]
        y_tr = data.y["train"][idx["train"]]
        bs = cfg.ft_batch_size
        history = fit(
            clf, lambda epoch: state_batches(st["train"], y_tr, rows, bs, cfg.seed, epoch), -(-len(rows) // bs),
            lambda m: _autocast(cfg, embed_states, m, st["val"], logits=True), data.y["val"][idx["val"]],
            get_loss(cfg.loss),
            loop_config(cfg, fine_tune=True), Path(run_dir) / CHECKPOINTS / "text", resume, progress,
            desc=f"fine-tune {cfg.text_encoder} (top {cfg.ft_layers} layers)",
        )
    feats = {}
    for s in SPLITS:
        f = np.zeros((len(data.parts[s]), enc.dim), dtype=np.float32)
        if len(idx[s]):
            f[idx[s]] = _autocast(cfg, embed_states, clf, st[s])
        mask = np.zeros(len(data.parts[s]), dtype=bool)
        mask[idx[s]] = True
        feats[s] = (f, mask)
    return feats, enc, clf.head, history
