"""Losses against hand-computed values; heads handle missing modalities; naive baseline; thresholds."""

import math

import numpy as np
import pytest
import torch

from genrelens.models.heads import ConcatHead, GatedFusionHead, UnimodalHead
from genrelens.models.losses import asymmetric, bce, double_soft_f1, get_loss
from genrelens.models.naive import NaiveModel
from genrelens.models.thresholds import decide, tune_thresholds


def test_double_soft_f1_by_hand():
    logits = torch.tensor([[0.0], [math.log(3.0)]])  # p = 0.5, 0.75
    y = torch.tensor([[1.0], [0.0]])
    tp, fp, fn, tn = 0.5, 0.75, 0.5, 0.25
    f1_pos = 2 * tp / (2 * tp + fn + fp)
    f1_neg = 2 * tn / (2 * tn + fn + fp)
    assert double_soft_f1(logits, y).item() == pytest.approx(1 - 0.5 * f1_pos - 0.5 * f1_neg, rel=1e-6)


def test_bce_and_asl_by_hand():
    logits, y = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[1.0, 0.0]])
    assert bce(logits, y).item() == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2, rel=1e-6)
    # ASL: positive term log(0.5); negative p=0.75 shifted to 0.70: 0.7^4 * log(0.3)
    expected = -(math.log(0.5) + 0.7**4 * math.log(0.3)) / 2
    assert asymmetric(logits, y).item() == pytest.approx(expected, rel=1e-5)
    assert get_loss("asl") is asymmetric
    with pytest.raises(ValueError):
        get_loss("focal")


def _batch(n=4, text=True, poster=True):
    return {"text": torch.randn(n, 8), "text_mask": torch.full((n,), text),
            "poster": torch.randn(n, 6), "poster_mask": torch.full((n,), poster)}


@pytest.mark.parametrize("cls", [ConcatHead, GatedFusionHead])
def test_bimodal_heads_answer_with_one_modality_missing(cls):
    torch.manual_seed(0)
    head = cls({"text": 8, "poster": 6}, n_labels=3, hidden=16).eval()
    full, text_only, poster_only = head(_batch()), head(_batch(poster=False)), head(_batch(text=False))
    assert full.shape == text_only.shape == poster_only.shape == (4, 3)
    assert torch.isfinite(text_only).all() and torch.isfinite(poster_only).all()
    b = _batch(poster=False)
    b2 = dict(b, poster=torch.randn(4, 6) * 100)  # a missing poster's values must not matter
    assert torch.allclose(head(b), head(b2))


def test_unimodal_head_falls_back_to_prior():
    head = UnimodalHead("poster", {"poster": 6}, n_labels=3, hidden=8).eval()
    head.missing_logits.copy_(torch.tensor([1.0, -1.0, 0.0]))
    out = head(_batch(poster=False))
    assert torch.equal(out, torch.tensor([[1.0, -1.0, 0.0]]).expand(4, 3))


def test_naive_picks_k_on_validation():
    y = np.array([[1, 0, 0]] * 6 + [[0, 1, 0]] * 3 + [[0, 0, 1]])
    m = NaiveModel().fit(y, y)
    assert m.k >= 1
    pred = m.predict(2)
    assert pred[0, 0] and pred.shape == (2, 3)
    assert np.array_equal(decide(m.predict_proba(2), m.thresholds()), pred)
    assert NaiveModel(k=1).fit(y).predict(1).tolist() == [[True, False, False]]


def test_thresholds_maximize_f1_and_predictions_never_empty():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    p = np.array([[0.3, 0.1], [0.25, 0.2], [0.1, 0.9], [0.05, 0.3]])
    thr = tune_thresholds(y, p)
    assert 0.1 < thr[0] <= 0.25 and 0.3 < thr[1] <= 0.9
    pred = decide(p, thr)
    assert pred.any(1).all()
    assert decide(p, 0.99, allow_empty=True).sum() == 0


def test_fused_proba_is_the_late_fusion():
    """Late fusion with the lexical channel, written once (models/lexical.py): rows with a plot mix the model's
    probabilities with the sigmoid of the lexical logits; rows without keep the model's."""
    from genrelens.models.lexical import fused_proba

    rng = np.random.default_rng(0)
    p, z = rng.random((6, 3)).astype(np.float32), rng.normal(0, 4, (6, 3))
    has = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    out = fused_proba(p, z, has, 0.3)
    assert out.dtype == np.float32 and out.shape == p.shape
    np.testing.assert_array_equal(out[~has], p[~has])
    np.testing.assert_allclose(out[has], 0.7 * p[has] + 0.3 / (1 + np.exp(-z[has])), rtol=1e-6)
    np.testing.assert_array_equal(fused_proba(p, z, has, 0.0), p)
