"""Models by name: what each one reads (its ``ModelSpec``) and which head turns the features into logits.

Adding a model is one entry in ``MODELS`` (plus, if new, one head module). The CLI's choices, RunConfig's
validation, the benchmark grid and the model tests are all derived from this table.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the table itself imports no torch: the CLI reads its names cheaply
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """What a model needs and how its head is built.

    ``text``: None, "frozen" (a pretrained encoder's features), "finetuned" (a text stage fine-tunes the
    encoder first) or "lexical" (only the TF-IDF channel reads the plot);
    ``poster``: reads poster CNN features; ``poster_maps``: may read the CNN's last-block input
    maps instead (``--poster-finetune``); ``head``: the module over the features ("module:Class" in
    ``genrelens.models``, imported when built), built with ``head_kwargs``;
    ``fitted``: trained by a closed-form fit instead of the gradient loop; ``study``: a row of the study's grid;
    ``defaults``: RunConfig values this model uses unless the run sets them (``windows``, ``lexical``,
    ``long_augment``, ``ft_epochs``: see ``genrelens.config``).
    """

    text: str | None
    poster: bool
    head: str
    head_kwargs: dict = field(default_factory=dict)
    description: str = ""
    study_name: str = "-"
    poster_maps: bool = False
    fitted: bool = False
    study: bool = True
    defaults: dict = field(default_factory=dict)

    @property
    def uses_text(self) -> bool:
        return self.text is not None

    @property
    def text_encoder(self) -> bool:
        """True when the model reads plots through a transformer encoder (not only the lexical channel)."""
        return self.text in ("frozen", "finetuned")

    @property
    def text_stage(self) -> bool:
        """True when training fine-tunes the text encoder before the head (the folder then holds it)."""
        return self.text == "finetuned"

    def head_class(self) -> type[nn.Module]:
        module, name = self.head.split(":")
        return getattr(importlib.import_module(f"genrelens.models.{module}"), name)

    @property
    def modality(self) -> str | None:
        """The one modality a unimodal model reads (it trains only on movies that have it)."""
        return self.head_kwargs.get("modality")


MODELS: dict[str, ModelSpec] = {
    "naive": ModelSpec(None, False, "naive:NaiveHead", {}, "the k most frequent training labels for every movie",
                       "naive (most common label)", fitted=True),
    "poster": ModelSpec(None, True, "heads:UnimodalHead", {"modality": "poster"},
                        "frozen ImageNet CNN poster features + dense head", "poster: ResNet50 features + dense",
                        poster_maps=True),
    "text-frozen": ModelSpec("frozen", False, "heads:UnimodalHead", {"modality": "text"},
                             "frozen pretrained text encoder + dense head", "text: frozen BERT + dense"),
    "text-finetuned": ModelSpec("finetuned", False, "heads:UnimodalHead",
                                {"modality": "text", "hidden": 0, "norm": False},
                                "text encoder fine-tuned end to end with a linear head", "text: BERT fine-tuned"),
    "integrated": ModelSpec("finetuned", True, "heads:ConcatHead", {},
                            "fine-tuned text features concatenated with poster features + dense head (the study's)",
                            "integrated: ResNet50 + fine-tuned BERT"),
    "fusion": ModelSpec("finetuned", True, "heads:GatedFusionHead", {},
                        "gated multimodal unit over fine-tuned text and poster features"),
    "tfidf": ModelSpec("lexical", False, "lexical:LexicalHead", {},
                       "TF-IDF word 1-2 grams + logistic regression per label (the lexical baseline)",
                       fitted=True, study=False, defaults={"lexical": True}),
    "catalogue": ModelSpec("finetuned", True, "heads:ConcatHead", {},
                           "integrated, reading the title and whole synopsis (token windows, opening-weighted) + the "
                           "TF-IDF lexical channel, late-fused (the default)", study=False,
                           defaults={"windows": 6, "window_pooling": "first", "lexical": True, "long_augment": 0.25,
                                     "title": True, "ft_epochs": 2, "ft_layers": 1}),
}
DEFAULT_MODEL = "catalogue"
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)

# losses by name -> function in genrelens.models.losses (``get_loss`` resolves them)
LOSSES: dict[str, str] = {"double-soft-f1": "double_soft_f1", "bce": "bce", "asl": "asymmetric"}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def build_head(name: str, dims: dict[str, int], n_labels: int, hidden: int, dropout: float,
               modality_dropout: float, poster_top: nn.Module | None = None) -> nn.Module:
    """The head module of model ``name`` for feature sizes ``dims`` (e.g. {"text": 384, "poster": 1280});
    ``poster_top``: the trainable last block of the poster CNN (a model with ``poster_maps``)."""
    spec = get_spec(name)
    if poster_top is not None:
        if not spec.poster_maps:
            raise ValueError(f"fine-tuning the poster CNN's last block applies to models with poster maps, not {name}")
        from genrelens.models.heads import FineTunedPosterHead

        return FineTunedPosterHead(poster_top, n_labels, hidden=hidden, dropout=dropout, dim=dims["poster"])
    if spec.fitted:
        return spec.head_class()(n_labels=n_labels)
    kw = {"hidden": hidden, "dropout": dropout, "modality_dropout": modality_dropout, **spec.head_kwargs}
    return spec.head_class()(dims=dims, n_labels=n_labels, **kw)
