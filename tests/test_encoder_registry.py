"""The encoder table (``encoders/registry.py``): every entry's facts agree with its installed weights, and the
classes and RunConfig read them from there."""

from __future__ import annotations

import json

import pytest

from genrelens.config import RunConfig
from genrelens.encoders.registry import (
    POSTER_ENCODERS,
    TEXT_ENCODERS,
    EncoderSpec,
    build_poster_encoder,
    build_text_encoder,
    encoders_help,
    poster_spec,
    text_spec,
)
from genrelens.errors import ModelError


def installed(spec: EncoderSpec):
    """The spec's weights path, or skip the test naming what to install."""
    try:
        return spec.weights_path()
    except ModelError as e:
        assert spec.install.split("..")[0].rsplit("-", 1)[0] in str(e)  # the error names the package to install
        pytest.skip(f"{spec.name} weights are not installed: {e}")


@pytest.mark.parametrize("spec", TEXT_ENCODERS.values(), ids=list(TEXT_ENCODERS))
def test_text_spec_matches_its_weights(spec: EncoderSpec) -> None:
    folder = installed(spec)
    config = json.loads((folder / "config.json").read_text())
    assert spec.modality == "text" and text_spec(spec.name) is spec
    assert config["hidden_size"] == spec.dim
    assert config["num_hidden_layers"] == spec.layers
    assert spec.max_tokens <= config["max_position_embeddings"]  # mpnet: 514, two of them reserved by its offset
    encoder = build_text_encoder(spec.name, max_length=spec.max_tokens)
    assert encoder.dim == spec.dim and encoder.name == spec.name and encoder.model_dir == folder
    # the most ft_layers a run may train, and the most tokens a window may hold, come from the spec
    RunConfig(text_encoder=spec.name, ft_layers=spec.layers, max_length=spec.max_tokens)
    with pytest.raises(ValueError, match=f"{spec.name} has {spec.layers} transformer layers"):
        RunConfig(text_encoder=spec.name, ft_layers=spec.layers + 1)


@pytest.mark.parametrize("spec", POSTER_ENCODERS.values(), ids=list(POSTER_ENCODERS))
def test_poster_spec_matches_its_weights(spec: EncoderSpec) -> None:
    from efficientnet_lite_pytorch import EfficientNet

    installed(spec)
    assert spec.modality == "poster" and poster_spec(spec.name) is spec
    assert EfficientNet.get_image_size(spec.arch) == spec.input_size
    encoder = build_poster_encoder(spec.name, backend="torch")
    assert (encoder.dim, encoder.input_size, encoder.arch) == (spec.dim, spec.input_size, spec.arch)
    assert encoder.model._fc.in_features == spec.dim  # the pooled features feed the ImageNet classifier
    RunConfig(model="poster", poster_encoder=spec.name)


@pytest.mark.parametrize("table", [TEXT_ENCODERS, POSTER_ENCODERS], ids=["text", "poster"])
def test_table_is_the_only_list_of_names(table: dict[str, EncoderSpec]) -> None:
    kind = next(iter(table.values())).modality
    field = f"{kind}_encoder"
    for name, spec in table.items():
        assert spec.name == name and spec.note and spec.install and f"{name} (" in encoders_help(table)
    with pytest.raises(ValueError, match=f"unknown {kind} encoder 'nope'; known: {', '.join(sorted(table))}"):
        (text_spec if kind == "text" else poster_spec)("nope")
    with pytest.raises(ValueError, match=f"unknown {kind} encoder 'nope'"):
        RunConfig(**{field: "nope"})


def test_max_length_bounded_by_the_encoder() -> None:
    with pytest.raises(ValueError, match="max_length"):
        RunConfig(max_length=TEXT_ENCODERS["minilm"].max_tokens + 1)
