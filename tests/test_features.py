"""genrelens.encoders.features: per-movie features with masks; missing plots and posters are zero rows."""

import numpy as np

from genrelens.data.images import resolve_poster_path
from genrelens.encoders.cache import FeatureCache
from genrelens.encoders.features import poster_features, text_features
from genrelens.errors import PosterError


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


class FakePoster:
    """A poster encoder whose feature is (file size, 1): the real CNN is tested in test_poster.py."""

    name, dim, maps_shape = "fake-poster", 2, (1, 1, 1)

    def load(self, src, root=None):
        path = resolve_poster_path(src, root)
        if not path.is_file():
            raise PosterError(f"poster file not found: {str(src)!r}")
        return path.stat().st_size

    def preprocess(self, images):
        return np.asarray(images, dtype=np.float32)

    def features(self, pixels):
        return np.stack([pixels, np.ones_like(pixels)], axis=1)

    def cache_key_prefix(self):
        return "fake-poster:v1"


def test_poster_features_none_missing_and_bad(tmp_path):
    (tmp_path / "p.jpg").write_bytes(b"12345")
    items = [None, "p.jpg", float("nan"), "x.jpg", "../outside.jpg"]
    for cache in (None, FeatureCache(tmp_path / "c")):
        feats, ok, errors = poster_features(FakePoster(), items, cache=cache, progress=False, root=tmp_path)
        assert feats.shape == (5, 2) and ok.tolist() == [False, True, False, False, False]
        assert sorted(errors) == [3, 4] and "outside the data folder" in errors[4]  # None, NaN: just missing
        assert feats[1].tolist() == [5.0, 1.0] and not feats[[0, 2, 3, 4]].any()
