"""The training loop's settings (``LoopConfig``), derived from a run's ``RunConfig``."""

from __future__ import annotations

from dataclasses import dataclass

from genrelens.config import RunConfig


@dataclass
class LoopConfig:
    """One call of ``loop.fit``: epochs, AdamW settings, warm-up, early-stopping patience, seed."""

    epochs: int
    lr: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    patience: int = 5
    seed: int = 0
    tuned_thresholds: bool = True
    bf16: bool = False  # forward passes under torch.autocast("cpu", torch.bfloat16); loss and weights in fp32


def loop_config(cfg: RunConfig, fine_tune: bool = False) -> LoopConfig:
    """The head's loop (``fine_tune`` False) or the text stage's loop of run ``cfg``."""
    if fine_tune:
        return LoopConfig(cfg.ft_epochs, cfg.ft_lr, cfg.weight_decay, 0.1, cfg.ft_patience, cfg.seed,
                          cfg.thresholds == "tuned", bf16=cfg.precision == "bf16")
    return LoopConfig(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.warmup_ratio, cfg.patience, cfg.seed,
                      cfg.thresholds == "tuned", bf16=cfg.precision == "bf16")
