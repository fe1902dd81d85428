"""Multi-label losses on logits ``[batch, n_labels]`` and multi-hot targets of the same shape."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def double_soft_f1(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The study's macro double soft F1: mean over labels of 1 - 0.5*softF1(pos) - 0.5*softF1(neg).

    Soft counts come from probabilities: tp = sum(p*y), fp = sum(p*(1-y)), fn = sum((1-p)*y), tn = ...
    """
    p = torch.sigmoid(logits)
    y = y.to(p.dtype)
    tp, fp = (p * y).sum(0), (p * (1 - y)).sum(0)
    fn, tn = ((1 - p) * y).sum(0), ((1 - p) * (1 - y)).sum(0)
    f1_pos = 2 * tp / (2 * tp + fn + fp + EPS)
    f1_neg = 2 * tn / (2 * tn + fn + fp + EPS)
    return (1 - 0.5 * f1_pos - 0.5 * f1_neg).mean()


def bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over movies and labels."""
    return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))


def asymmetric(
    logits: torch.Tensor, y: torch.Tensor, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05
) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., 2021): focusing on hard negatives, easy negatives shifted by ``clip``."""
    y = y.to(logits.dtype)
    p = torch.sigmoid(logits)
    p_neg = (p - clip).clamp(min=0) if clip > 0 else p
    loss_pos = y * (1 - p).pow(gamma_pos) * torch.log(p.clamp(min=EPS))
    loss_neg = (1 - y) * p_neg.pow(gamma_neg) * torch.log((1 - p_neg).clamp(min=EPS))
    return -(loss_pos + loss_neg).mean()


def get_loss(name: str):
    """The loss function registered under ``name`` (``genrelens.models.registry.LOSSES``)."""
    from genrelens.models.registry import LOSSES

    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return globals()[LOSSES[name]]
