"""genrelens.models.registry: every model in the table builds a head that answers [batch, n_labels]."""

import pytest
import torch

from genrelens.models.losses import get_loss
from genrelens.models.registry import DEFAULT_MODEL, LOSSES, MODELS, build_head, get_spec

DIMS = {"text": 8, "poster": 6}


def _batch(n: int) -> dict[str, torch.Tensor]:
    return {"text": torch.randn(n, 8), "text_mask": torch.tensor([True, False, True][:n]),
            "poster": torch.randn(n, 6), "poster_mask": torch.tensor([True, True, False][:n]),
            "rows": torch.zeros(n, 0), "lexical": torch.randn(n, 4)}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_builds_a_head(name):
    head = build_head(name, DIMS, n_labels=4, hidden=5, dropout=0.0, modality_dropout=0.0).eval()
    spec = get_spec(name)
    assert set(head.modalities) == ({"text"} if spec.uses_text else set()) | ({"poster"} if spec.poster else set())
    assert head(_batch(3)).shape == (3, 4)


def test_spec_properties_and_unknown_names():
    assert DEFAULT_MODEL in MODELS
    assert get_spec("integrated").text_stage and get_spec("text-frozen").text_encoder
    assert not get_spec("text-frozen").text_stage and get_spec("poster").modality == "poster"
    assert not get_spec("naive").uses_text and get_spec("naive").fitted
    with pytest.raises(ValueError, match="unknown model 'bert'"):
        get_spec("bert")
    with pytest.raises(ValueError, match="poster maps"):
        build_head("integrated", DIMS, 4, 5, 0.0, 0.0, poster_top=torch.nn.Identity())
    assert all(callable(get_loss(name)) for name in LOSSES)
