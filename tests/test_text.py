"""genrelens.encoders.text: sentence embeddings of the installed MiniLM, long texts read as pooled windows."""

import numpy as np
import pytest

from genrelens.encoders.text import TextEncoder
from genrelens.errors import ModelError

PLOTS = ["A detective hunts a killer through a rainy city.", "Two friends fall in love in Paris.", ""]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder("minilm", max_length=16)


def test_encode_shape_order_and_batching(encoder):
    feats = encoder.encode(PLOTS + [None], batch_size=2)
    assert feats.shape == (4, 384) and feats.dtype == np.float32
    assert np.allclose(feats[0], encoder.encode([PLOTS[0]])[0], atol=1e-5)  # batch and order do not matter
    assert np.allclose(feats[2], feats[3])  # None reads as ""
    assert encoder.encode([]).shape == (0, 384)
    sim = feats[:2] @ feats[:2].T / np.outer(np.linalg.norm(feats[0:2], axis=1), np.linalg.norm(feats[0:2], axis=1))
    assert sim[0, 1] < 0.9


def test_windows_cover_long_texts_and_pool_per_text(encoder):
    long = " ".join(["The crew of a ship meets a creature."] * 6)
    encoder.set_windows(windows=3, stride=4, pooling="mean")
    try:
        enc, owner = encoder.window_ids([PLOTS[1], long])
        assert owner.tolist() == [0, 1, 1, 1]  # the long plot: 3 windows at most
        assert all(len(ids) <= 16 for ids in enc["input_ids"])
        assert encoder.encode([PLOTS[1], long]).shape == (2, 384)
    finally:
        encoder.set_windows(1)
    assert encoder.window_ids([long])[1].tolist() == [0]


@pytest.mark.parametrize(("pooling", "expected"), [("mean", [[2.0, 2.0], [5.0, 0.0]]),
                                                   ("max", [[3.0, 3.0], [5.0, 0.0]]),
                                                   ("first", [[1.0, 1.0], [5.0, 0.0]])])
def test_pool_windows(encoder, pooling, expected):
    feats = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [5.0, 0.0]], dtype=np.float32)
    owner = np.array([0, 0, 0, 1])
    encoder.set_windows(windows=3, stride=4, pooling=pooling)
    try:
        out = encoder.pool_windows(feats, owner, 2)
    finally:
        encoder.set_windows(1)
    if pooling == "first":  # half the first window + half the mean of the others
        expected = [[0.5 * 1 + 0.5 * 2.5] * 2, [5.0, 0.0]]
    assert np.allclose(out, expected)


def test_bad_settings_and_folders(encoder, tmp_path):
    with pytest.raises(ValueError, match="windows must be"):
        encoder.set_windows(0)
    with pytest.raises(ValueError, match="stride must be"):
        encoder.set_windows(2, stride=9)
    with pytest.raises(ValueError, match="window pooling"):
        encoder.set_windows(2, stride=4, pooling="sum")
    with pytest.raises(ModelError, match="not a model folder"):
        TextEncoder("minilm", model_dir=tmp_path)


def test_cache_key_names_the_weights_and_settings(encoder):
    key = encoder.cache_key_prefix()
    assert key == encoder.cache_key_prefix() and "minilm" in key
    other = TextEncoder("minilm", max_length=32)
    assert other.cache_key_prefix() != key


def test_padded_batches_keep_padding_low_and_cover_every_sequence():
    """Longest first, at most batch_size per batch, and a batch ends before a sequence much shorter than its
    longest: one movie's 128-token first window and 40-token second window run apart, not padded together."""
    from genrelens.encoders.text import PAD_RATIO, padded_batches

    assert [list(b) for b in padded_batches([128, 40], 32)] == [[0], [1]]
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 129, 500).tolist()
    batches = padded_batches(lengths, 32)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        longest = lengths[b[0]]
        assert len(b) <= 32 and all(PAD_RATIO * longest <= lengths[i] <= longest for i in b)
    assert len(batches) < 500 / 32 + 12  # still large batches
