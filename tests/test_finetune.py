"""genrelens.train.finetune: the frozen bottom + trainable top split reproduces the whole encoder; batching."""

import numpy as np
import pytest
import torch

from genrelens.encoders.text import TextEncoder
from genrelens.train.finetune import (
    TopLayersClassifier,
    bottom_pass,
    bottom_states,
    embed_states,
    extended_mask,
    length_batches,
    pad_states,
    state_batches,
)

TEXTS = ["A detective hunts a killer.", "Love in Paris, and a wedding that goes wrong in every way.", "Zombies!"]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder("minilm", max_length=32)


def test_bottom_states_plus_top_layers_equal_the_whole_encoder(encoder):
    states = bottom_states(encoder.model, encoder.tokenizer, TEXTS, n_top=2, max_length=32, progress=False)
    lengths = [len(ids) for ids in encoder.tokenizer(TEXTS, truncation=True, max_length=32)["input_ids"]]
    assert [s.shape for s in states] == [(n, 384) for n in lengths] and states[0].dtype == torch.float16
    clf = TopLayersClassifier(encoder.model, n_top=2, n_labels=3)
    pooled = embed_states(clf, states, batch_size=2)
    assert np.allclose(pooled, encoder.encode(TEXTS), atol=2e-2)  # float16 states: close, not equal
    assert embed_states(clf, states, logits=True).shape == (3, 3)
    assert clf.top[0] is encoder.model.encoder.layer[-2]  # the top layers are the encoder's own: training moves it
    with pytest.raises(ValueError, match="n_top must be in 1..6"):
        bottom_states(encoder.model, encoder.tokenizer, TEXTS, n_top=7, max_length=32, progress=False)


@pytest.mark.parametrize("n_top", [1, 2, 6])
def test_bottom_states_are_the_full_models_hidden_states_without_running_the_top(encoder, n_top):
    ids = encoder.tokenizer(TEXTS, truncation=True, max_length=32)["input_ids"]
    calls = []
    hooks = [layer.register_forward_hook(lambda *_, k=k: calls.append(k))
             for k, layer in enumerate(encoder.model.encoder.layer)]
    try:
        states = bottom_states(encoder.model, encoder.tokenizer, TEXTS, n_top=n_top, max_length=32, progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert set(calls) == set(range(6 - n_top))  # the top layers did not run
    assert len(encoder.model.encoder.layer) == 6  # and the model has all its layers again
    with torch.inference_mode():  # the same padded batch through the whole model, as bottom_states ran it
        batch = encoder.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        full = encoder.model(**batch, output_hidden_states=True).hidden_states[6 - n_top]
    for row, (text_ids, state) in enumerate(zip(ids, states)):
        assert torch.equal(state, full[row, : len(text_ids)].to(torch.float16))


@pytest.mark.parametrize(("n_top", "probe"), [(1, 4), (1, 5), (2, 4), (3, 2)])
def test_the_frozen_pass_pools_its_probe_layer_as_the_whole_encoder_does(encoder, n_top, probe):
    """``bottom_pass`` returns, beside the frozen states, the mean-pooled states of a frozen hidden layer (below
    the last frozen one or that one) in the same pass: what prediction's ONNX graph gives as the probe."""
    from genrelens.encoders.pooling import mean_pool

    ids = encoder.tokenizer(TEXTS, truncation=True, max_length=32)["input_ids"]
    states, probes = bottom_pass(encoder.model, encoder.tokenizer, ids, n_top, probe, batch_size=2, progress=False)
    assert len(states) == len(TEXTS) and probes.shape == (len(TEXTS), 384) and probes.dtype == np.float32
    with torch.inference_mode():
        batch = encoder.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        full = encoder.model(**batch, output_hidden_states=True).hidden_states[probe]
    np.testing.assert_allclose(probes, mean_pool(full, batch["attention_mask"]).numpy(), atol=1e-4)
    assert bottom_pass(encoder.model, encoder.tokenizer, ids, n_top, None, progress=False)[1] is None
    with pytest.raises(ValueError, match="must be a frozen one"):
        bottom_pass(encoder.model, encoder.tokenizer, ids, n_top, 7 - n_top, progress=False)


def test_pad_states_and_masks():
    hidden, mask = pad_states([torch.ones(2, 3), torch.ones(4, 3)])
    assert hidden.shape == (2, 4, 3) and mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert hidden[0, 2:].abs().sum() == 0
    ext = extended_mask(mask, torch.float32)
    assert ext.shape == (2, 1, 1, 4) and ext[0, 0, 0, 0] == 0 and ext[0, 0, 0, 3] == torch.finfo(torch.float32).min


def test_length_batches_cover_every_row_once_with_similar_lengths():
    lengths = np.array([5, 50, 6, 51, 7, 52, 8, 53])
    batches = length_batches(lengths, batch_size=4, seed=0, epoch=1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(8))
    assert sorted(sorted(lengths[b].tolist()) for b in batches) == [[5, 6, 7, 8], [50, 51, 52, 53]]
    assert [b.tolist() for b in length_batches(lengths, 4, 0, 1)] == [b.tolist() for b in batches]


def test_state_batches_follow_the_rows_with_repeats():
    states = [torch.ones(n, 2) for n in (1, 2, 3)]
    y = np.eye(3, dtype=np.float32)
    seen = []
    for inputs, targets in state_batches(states, y, np.array([0, 2, 2]), batch_size=2, seed=0, epoch=0):
        assert inputs["hidden"].shape[0] == targets.shape[0] == inputs["mask"].shape[0]
        seen += [int(t.argmax()) for t in targets]
    assert sorted(seen) == [0, 2, 2]
