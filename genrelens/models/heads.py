"""Models over per-movie features: unimodal heads, the integrated (concatenation) model and fusion (GMU).

Every model takes a feature batch ``{"text": [b, d_t], "text_mask": bool[b], "poster": [b, d_p],
"poster_mask": bool[b]}`` (only the modalities it uses) and returns logits ``[b, n_labels]``.
A missing modality (mask False) is replaced by a learned placeholder; in training, modality dropout hides a
present modality at random so the model learns to answer from the other one.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Module:
    """Linear when ``hidden`` is 0, else Linear-GELU-Dropout-Linear; dropout on the input either way."""
    if hidden <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
    )


class UnimodalHead(nn.Module):
    """A dense head over one modality; movies lacking it get the training prior (``missing_logits``)."""

    def __init__(self, modality: str, dims: dict[str, int], n_labels: int, hidden: int = 512,
                 dropout: float = 0.3, norm: bool = True, **_):
        super().__init__()
        self.modality = modality
        self.modalities = (modality,)
        d = dims[modality]
        self.norm = nn.LayerNorm(d) if norm else nn.Identity()
        self.head = mlp(d, hidden, n_labels, dropout)
        self.register_buffer("missing_logits", torch.zeros(n_labels))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, mask = batch[self.modality], batch[f"{self.modality}_mask"]
        logits = self.head(self.norm(x))
        return torch.where(mask[:, None], logits, self.missing_logits.expand_as(logits))


class _Bimodal(nn.Module):
    """Shared input handling for text+poster models: normalization, placeholders, modality dropout."""

    modalities = ("text", "poster")

    def __init__(self, dims: dict[str, int], modality_dropout: float = 0.15):
        super().__init__()
        self.dims = dims
        self.modality_dropout = modality_dropout
        self.norms = nn.ModuleDict({m: nn.LayerNorm(dims[m]) for m in self.modalities})
        self.placeholders = nn.ParameterDict({m: nn.Parameter(torch.zeros(dims[m])) for m in self.modalities})

    def inputs(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        masks = {m: batch[f"{m}_mask"].bool() for m in self.modalities}
        if self.training and self.modality_dropout > 0:
            both = masks["text"] & masks["poster"]
            drop = both & (torch.rand(both.shape, device=both.device) < self.modality_dropout)
            which = torch.rand(both.shape, device=both.device) < 0.5  # hide text or poster, never both
            masks = {"text": masks["text"] & ~(drop & which), "poster": masks["poster"] & ~(drop & ~which)}
        out = []
        for m in self.modalities:
            x = self.norms[m](batch[m])
            out.append(torch.where(masks[m][:, None], x, self.placeholders[m].expand_as(x)))
        return out


class ConcatHead(_Bimodal):
    """The study's integrated model: [text features, poster features] concatenated, then a dense head."""

    def __init__(self, dims: dict[str, int], n_labels: int, hidden: int = 512, dropout: float = 0.3,
                 modality_dropout: float = 0.15, **_):
        super().__init__(dims, modality_dropout)
        self.head = mlp(dims["text"] + dims["poster"], hidden, n_labels, dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat(self.inputs(batch), dim=1))


class GatedFusionHead(_Bimodal):
    """Gated multimodal unit (Arevalo et al., 2017): h = z*tanh(W_t t) + (1-z)*tanh(W_p p), z = sigmoid(W_z[t,p]).

    The gate ``z`` learns, per movie and per hidden unit, how much to trust the plot versus the poster.
    """

    def __init__(self, dims: dict[str, int], n_labels: int, hidden: int = 512, dropout: float = 0.3,
                 modality_dropout: float = 0.15, **_):
        super().__init__(dims, modality_dropout)
        hidden = hidden or 512
        self.text_proj = nn.Linear(dims["text"], hidden)
        self.poster_proj = nn.Linear(dims["poster"], hidden)
        self.gate = nn.Linear(dims["text"] + dims["poster"], hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_labels))

    def forward(self, batch: dict[str, torch.Tensor], return_gate: bool = False):
        t, p = self.inputs(batch)
        z = torch.sigmoid(self.gate(torch.cat([t, p], dim=1)))
        h = z * torch.tanh(self.text_proj(t)) + (1 - z) * torch.tanh(self.poster_proj(p))
        logits = self.head(h)
        return (logits, z) if return_gate else logits


class FineTunedPosterHead(nn.Module):
    """The poster model with the CNN's last block fine-tuned: ``batch["poster"]`` holds that block's input
    maps ``[b, C, h, w]``; ``top`` (a trainable copy of the last block + head conv + pooling) turns them into
    ``[b, dim]`` features for a dense head. ``top`` trains at ``top_lr_scale`` x the head's learning rate."""

    modalities = ("poster",)

    def __init__(self, top: nn.Module, n_labels: int, hidden: int = 512, dropout: float = 0.3, dim: int = 1280,
                 top_lr_scale: float = 0.1):
        super().__init__()
        self.top, self.top_lr_scale = top, top_lr_scale
        self.head = UnimodalHead("poster", {"poster": dim}, n_labels, hidden=hidden, dropout=dropout)

    @property
    def missing_logits(self) -> torch.Tensor:
        return self.head.missing_logits

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": list(self.head.parameters()), "lr": lr},
                {"params": list(self.top.parameters()), "lr": lr * self.top_lr_scale}]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head({"poster": self.top(batch["poster"]), "poster_mask": batch["poster_mask"]})
