"""genrelens.encoders.features: per-movie features with masks; missing plots and posters are zero rows."""

import numpy as np
import pytest

from genrelens.encoders.cache import FeatureCache
from genrelens.encoders.features import poster_features, text_features


class FakeText:
    """A text encoder whose feature is (length, word count, 1): checkable by hand."""

    dim = 3

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=32, progress=False):
        self.calls += 1
        return np.array([[len(t), len(t.split()), 1.0] for t in texts], dtype=np.float32)

    def cache_key_prefix(self):
        return "fake-text:v1"


def test_text_features_mask_empty_plots():
    feats, mask = text_features(FakeText(), ["ab cd", "", "  ", "x"], progress=False)
    assert mask.tolist() == [True, False, False, True]
    assert feats.tolist() == [[5, 2, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]]


def test_text_features_through_the_cache(tmp_path):
    enc, cache = FakeText(), FeatureCache(tmp_path)
    first = text_features(enc, ["ab cd", "x"], cache=cache, progress=False)[0]
    second = text_features(enc, ["x", "ab cd", ""], cache=cache, progress=False)[0]
    assert enc.calls == 1  # the second call read every plot from the cache
    assert np.array_equal(second[:2], first[::-1]) and not second[2].any()


@pytest.fixture(scope="module")
def poster_encoder():
    from genrelens.encoders.poster import PosterEncoder

    return PosterEncoder("effnet-lite0", backend="torch")


def test_poster_features_none_missing_and_bad(poster_encoder, real_data, tmp_path):
    good = sorted((real_data.parent / "posters").glob("*.jpg"))[0]
    feats, ok, errors = poster_features(poster_encoder, [None, str(good), float("nan"), str(tmp_path / "x.jpg")],
                                        cache=FeatureCache(tmp_path / "c"), progress=False)
    assert feats.shape == (4, 1280) and ok.tolist() == [False, True, False, False]
    assert list(errors) == [3]  # None and NaN are just missing, not errors
    assert feats[1].any() and not feats[[0, 2, 3]].any()
