"""Models by name: which features each one reads and which head turns them into logits.

Adding a model is one entry in ``MODELS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from genrelens.models.heads import ConcatHead, FineTunedPosterHead, GatedFusionHead, UnimodalHead


@dataclass(frozen=True)
class ModelSpec:
    """``text``: None, "frozen" (pretrained encoder) or "finetuned" (stage 1 fine-tunes it); ``poster``: uses
    frozen poster CNN features; ``head``: the module over the features, built with ``head_kwargs``."""

    text: str | None
    poster: bool
    head: type[nn.Module]
    head_kwargs: dict = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    "poster": ModelSpec(None, True, UnimodalHead, {"modality": "poster"},
                        "frozen ImageNet CNN poster features + dense head"),
    "text-frozen": ModelSpec("frozen", False, UnimodalHead, {"modality": "text"},
                             "frozen pretrained text encoder + dense head"),
    "text-finetuned": ModelSpec("finetuned", False, UnimodalHead, {"modality": "text", "hidden": 0, "norm": False},
                                "text encoder fine-tuned end to end with a linear head"),
    "integrated": ModelSpec("finetuned", True, ConcatHead, {},
                            "fine-tuned text features concatenated with poster features + dense head (the study's)"),
    "fusion": ModelSpec("finetuned", True, GatedFusionHead, {},
                        "gated multimodal unit over fine-tuned text and poster features"),
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from naive, {', '.join(MODELS)}")
    return MODELS[name]


def build_head(name: str, dims: dict[str, int], n_labels: int, hidden: int, dropout: float,
               modality_dropout: float, poster_top: nn.Module | None = None) -> nn.Module:
    """The head module of model ``name`` for feature sizes ``dims`` (e.g. {"text": 384, "poster": 1280});
    ``poster_top``: the trainable last block of the poster CNN (poster model with its last block fine-tuned)."""
    spec = get_spec(name)
    if poster_top is not None:
        if name != "poster":
            raise ValueError("fine-tuning the poster CNN's last block applies to the poster model only")
        return FineTunedPosterHead(poster_top, n_labels, hidden=hidden, dropout=dropout, dim=dims["poster"])
    kw = {"hidden": hidden, "dropout": dropout, "modality_dropout": modality_dropout, **spec.head_kwargs}
    return spec.head(dims=dims, n_labels=n_labels, **kw)
