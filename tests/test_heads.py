"""genrelens.models.heads: output shapes, missing modalities (placeholders, priors) and modality dropout."""

import torch

from genrelens.models.heads import ConcatHead, FineTunedPosterHead, GatedFusionHead, UnimodalHead, mlp

DIMS = {"text": 8, "poster": 6}


def _batch(n=4):
    torch.manual_seed(0)
    return {"text": torch.randn(n, 8), "poster": torch.randn(n, 6),
            "text_mask": torch.tensor([True, False, True, True]),
            "poster_mask": torch.tensor([True, True, False, True])}


def test_mlp_linear_when_hidden_is_zero():
    assert [type(m).__name__ for m in mlp(4, 0, 2, 0.1)] == ["Dropout", "Linear"]
    assert mlp(4, 3, 2, 0.1)(torch.ones(5, 4)).shape == (5, 2)


def test_unimodal_head_answers_the_prior_without_its_modality():
    head = UnimodalHead("text", DIMS, n_labels=3, hidden=4, dropout=0.0).eval()
    head.missing_logits.copy_(torch.tensor([1.0, -2.0, 0.5]))
    out = head(_batch())
    assert out.shape == (4, 3)
    assert torch.equal(out[1], head.missing_logits)
    assert not torch.equal(out[0], head.missing_logits)


def test_bimodal_heads_use_the_placeholder_for_a_missing_modality():
    for cls in (ConcatHead, GatedFusionHead):
        head = cls(DIMS, n_labels=3, hidden=4, dropout=0.0, modality_dropout=0.0).eval()
        b = _batch()
        out = head(b)
        assert out.shape == (4, 3)
        b2 = dict(b, text=b["text"] + 100 * torch.arange(4.0)[:, None])  # change text only where it is missing
        b2["text"][[0, 2, 3]] = b["text"][[0, 2, 3]]
        assert torch.allclose(head(b2), out)  # masked text is never read
    logits, gate = GatedFusionHead(DIMS, 3, hidden=4).eval()(_batch(), return_gate=True)
    assert gate.shape == (4, 4) and ((gate > 0) & (gate < 1)).all()


def test_modality_dropout_hides_one_modality_in_training_only():
    head = ConcatHead(DIMS, n_labels=2, hidden=0, dropout=0.0, modality_dropout=1.0)
    b = _batch()
    head.train()
    t, p = head.inputs(b)
    both = b["text_mask"] & b["poster_mask"]
    hidden_text = (t == head.placeholders["text"]).all(1)
    hidden_poster = (p == head.placeholders["poster"]).all(1)
    assert (hidden_text ^ hidden_poster)[both].all()  # one of the two, never both
    head.eval()
    t, _ = head.inputs(b)
    assert (t == head.placeholders["text"]).all(1).tolist() == (~b["text_mask"]).tolist()


def test_fine_tuned_poster_head_groups_learning_rates():
    top = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    head = FineTunedPosterHead(top, n_labels=3, hidden=4, dim=6, top_lr_scale=0.1)
    out = head({"poster": torch.randn(2, 2, 3, 3), "poster_mask": torch.tensor([True, False])})
    assert out.shape == (2, 3) and torch.equal(out[1], head.missing_logits)
    assert [g["lr"] for g in head.param_groups(1.0)] == [1.0, 0.1]
