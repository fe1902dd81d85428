"""One typed config per run: the CLI builds it, the model folder stores it (``config.json``), and the model
bundle rebuilds the model from it. Names are checked against the registries (models, losses, encoders)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from genrelens.io import write_json_atomic

OVERSAMPLING = ("none", "study", "mlros")
THRESHOLDS = ("tuned", "fixed")


@dataclass
class RunConfig:
    """Everything that defines a training run. Saved as ``config.json`` beside the run's outputs."""

    model: str = "integrated"
    data: str | None = None  # None: the default data set
    out: str = "runs/latest"
    labels: list[str] | str = "study"  # "study" (the study's 10), "top<K>" (top-K of train) or a list
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_file: str | None = None  # reuse a saved split (the benchmark shares one across models)
    seed: int = 0
    oversample: str = "none"  # none | study | mlros
    oversample_target: float | None = None  # final train size / original; None: the method's default
    loss: str = "double-soft-f1"
    text_encoder: str = "minilm"
    poster_encoder: str = "effnet-lite0"
    max_length: int = 128  # tokens; dynamic padding keeps short plots cheap
    # dense head (and training of heads over cached features)
    hidden: int = 512
    dropout: float = 0.3
    modality_dropout: float = 0.15
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_ratio: float = 0.05
    patience: int = 8
    # text encoder fine-tuning (text-finetuned, and stage 1 of integrated/fusion)
    ft_layers: int = 2  # top transformer layers that train; the rest run once, frozen (see finetune.py)
    ft_epochs: int = 4  # 2 -> 4: +0.016 weighted F1 for +2-3 min per run (docs/results.md, cost against quality)
    ft_batch_size: int = 32
    ft_lr: float = 5e-5
    ft_patience: int = 1
    poster_finetune: bool = False  # poster model: fine-tune the CNN's last block (eager torch, not cached)
    thresholds: str = "tuned"  # tuned (per label, on validation) | fixed (0.5, the study's)
    skip_bad: bool = False
    cache_dir: str | None = None
    precision: str = "fp32"  # "bf16": forward passes of fine-tuning and heads under CPU bf16 autocast (opt-in)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from genrelens.encoders.registry import POSTER_ENCODERS, TEXT_ENCODERS
        from genrelens.models.registry import LOSSES, MODELS

        for what, value, known in (("model", self.model, MODELS), ("loss", self.loss, LOSSES),
                                   ("oversampling", self.oversample, OVERSAMPLING),
                                   ("thresholds", self.thresholds, THRESHOLDS),
                                   ("text encoder", self.text_encoder, TEXT_ENCODERS),
                                   ("poster encoder", self.poster_encoder, POSTER_ENCODERS)):
            if value not in known:
                raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(known)}")
        if self.poster_finetune and not MODELS[self.model].poster_maps:
            raise ValueError(f"poster_finetune applies to the poster model only, not {self.model}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError("training precision must be 'fp32' or 'bf16'")
        self.split_fractions = tuple(self.split_fractions)

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, dataclasses.asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**data)
