"""Pooling shared by every text path: token states -> one vector per sequence (``mean_pool``, the
sentence-transformers convention used by the encoder, its ONNX graph and fine-tuning), and the ways a long
text's window vectors are pooled (``WINDOW_POOLING``, see ``TextEncoder.pool_windows``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

WINDOW_POOLING = ("mean", "max", "first")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [n, t, d]`` over the tokens where ``mask [n, t]`` is 1 -> ``[n, d]``."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
