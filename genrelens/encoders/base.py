"""What an encoder is: the interface that text and poster encoders implement (``typing.Protocol``).

A new encoder is one class implementing ``Encoder`` (``PosterEncoderLike`` for posters) plus one entry in
``encoders/registry.py``; training, the feature cache, the bundle, ONNX serving and the web service then use
it with no other change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import nn


@runtime_checkable
class Encoder(Protocol):
    """A frozen (or fine-tunable) feature extractor for one modality.

    ``name``: its registry name; ``modality``: "text" or "poster"; ``dim``: feature size.
    ``preprocess(items)``: raw items -> model inputs; ``encode(items) -> float32 [n, dim]``;
    ``cache_key_prefix()``: names weights + preprocessing for the feature cache (a change never reads stale
    features); ``export_onnx(path)``: writes an ONNX graph of ``encode``'s model.
    """

    name: str
    modality: str
    dim: int

    def preprocess(self, items: Sequence[Any]) -> Any: ...

    def encode(self, items: Sequence[Any], batch_size: int = 32, progress: bool = False) -> np.ndarray: ...

    def cache_key_prefix(self) -> str: ...

    def export_onnx(self, path: Path) -> Path | None: ...


@runtime_checkable
class TextEncoderLike(Encoder, Protocol):
    """A text encoder also exposes what its ONNX export reads (``encoders/onnx.py``): the transformer
    (``model``), ``normalize`` (L2 after pooling), ``probe_layer`` (a hidden layer exported as a second, mean-pooled
    output, or None), ``tokenize(texts)`` and ``export_key()`` (names the weights)."""

    normalize: bool
    probe_layer: int | None

    @property
    def model(self) -> nn.Module: ...

    def tokenize(self, texts: Sequence[str]) -> Any: ...

    def export_key(self) -> str: ...


@runtime_checkable
class PosterEncoderLike(Encoder, Protocol):
    """A poster encoder also says its input geometry (``input_size`` px square, decoded at ``resize_size``),
    opens posters safely (``load``) and, for ``--poster-finetune``, splits into a frozen bottom (``maps``,
    ``maps_shape``) and a trainable copy of its top (``trainable_top()``: ``[n, C, h, w] -> [n, dim]``)."""

    input_size: int
    resize_size: int

    def load(self, src: Any, root: Path | None = None) -> Any: ...

    def features(self, pixels: np.ndarray) -> np.ndarray: ...

    @property
    def maps_shape(self) -> tuple[int, int, int]: ...

    def maps(self, pixels: np.ndarray) -> np.ndarray: ...

    def trainable_top(self) -> nn.Module: ...
