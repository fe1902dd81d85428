"""genrelens.encoders.base: the encoder interfaces, and the registry's classes that implement them."""

import importlib

import pytest

from genrelens.encoders import base
from genrelens.encoders.registry import POSTER_ENCODERS, TEXT_ENCODERS


def _methods(protocol) -> set[str]:
    """The methods and properties an implementation must have (data attributes are set per instance)."""
    return {n for cls in protocol.__mro__ if cls.__module__ == base.__name__
            for n, v in vars(cls).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}


def _cls(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(("table", "protocol"), [(TEXT_ENCODERS, base.TextEncoderLike),
                                                 (POSTER_ENCODERS, base.PosterEncoderLike)])
def test_every_registered_class_has_the_interface(table, protocol):
    methods = _methods(protocol)
    assert {"encode", "preprocess", "cache_key_prefix", "export_onnx"} <= methods
    for name, spec in table.items():
        cls = _cls(spec.cls)
        missing = sorted(m for m in methods if not hasattr(cls, m))
        assert not missing, f"{name}: {cls.__name__} lacks {missing}"


def test_a_plain_object_is_not_an_encoder():
    class Half:
        name, modality, dim = "half", "text", 3

        def encode(self, items, batch_size=32, progress=False):
            return None

    class Whole(Half):
        def preprocess(self, items):
            return items

        def cache_key_prefix(self):
            return "whole"

        def export_onnx(self, path):
            return None

    assert not isinstance(Half(), base.Encoder) and isinstance(Whole(), base.Encoder)
