"""Whole-synopsis reading (token windows), the lexical channel and the long-text data builders (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from genrelens.config import RunConfig
from genrelens.data.augment import append_shared_genre, same_genres_concat
from genrelens.data.labels import STUDY_LABELS, LabelSet
from genrelens.models.lexical import LexicalChannel, TfidfFeatures, choose_weight, fit_channel, fuse


@pytest.fixture(scope="module")
def encoder():
    from genrelens.encoders.text import TextEncoder

    return TextEncoder("minilm", max_length=32)


@pytest.fixture(scope="module")
def real_plots(real_data) -> pd.DataFrame:
    from genrelens.data.table import load_table

    df, _ = load_table(real_data)
    return df[df["plot"].str.len() > 0].reset_index(drop=True)


def _long(real_plots: pd.DataFrame, n_words: int = 120) -> str:
    words = " ".join(real_plots["plot"].iloc[:40]).split()
    return " ".join(words[:n_words])


@pytest.mark.parametrize("pooling", ["mean", "max", "first"])
def test_long_plot_equals_its_windows_pooled_by_hand(encoder, real_plots, pooling):
    plot = _long(real_plots)
    encoder.set_windows(3, stride=8, pooling=pooling)
    try:
        got = encoder.encode([plot, "A short one."])
        enc, owner = encoder.window_ids([plot])
        assert list(owner) == [0, 0, 0] and all(len(ids) <= 32 for ids in enc["input_ids"])
        # each window is real text: decode it and encode it alone (plain truncation, one window)
        encoder.set_windows(1)
        tok = encoder.tokenizer
        windows = [tok.decode(ids, skip_special_tokens=True) for ids in enc["input_ids"]]
        alone = encoder.encode(windows)
        by_hand = {"mean": alone.mean(0), "max": alone.max(0),
                   "first": 0.5 * alone[0] + 0.5 * alone[1:].mean(0)}[pooling]
        np.testing.assert_allclose(got[0], by_hand, atol=2e-5)
        np.testing.assert_allclose(got[1], encoder.encode(["A short one."])[0], atol=1e-6)  # one window
        # consecutive windows overlap by the stride
        assert enc["input_ids"][0][-1 - 8:-1] == enc["input_ids"][1][1:1 + 8]
    finally:
        encoder.set_windows(1)


def test_one_window_is_plain_truncation(encoder, real_plots):
    plot = _long(real_plots)
    enc, owner = encoder.window_ids([plot])
    assert list(owner) == [0]
    assert enc["input_ids"][0] == encoder.tokenizer(plot, truncation=True, max_length=32)["input_ids"]


def test_long_plot_cost_is_bounded(encoder, real_plots):
    huge = _long(real_plots, 400) * 300  # ~120K words
    encoder.set_windows(4, stride=8)
    try:
        enc, owner = encoder.window_ids([huge, "short"])
        assert list(owner) == [0, 0, 0, 0, 1]  # at most `windows` windows, however long the text
        assert encoder.encode([huge]).shape == (1, encoder.dim)
    finally:
        encoder.set_windows(1)


def test_window_settings_are_checked(encoder):
    with pytest.raises(ValueError, match="windows"):
        encoder.set_windows(0)
    with pytest.raises(ValueError, match="stride"):
        encoder.set_windows(2, stride=20)  # more than max_length / 2
    with pytest.raises(ValueError, match="pooling"):
        encoder.set_windows(2, stride=8, pooling="attention")
    with pytest.raises(ValueError, match="window_stride"):
        RunConfig(max_length=32, windows=2, window_stride=20)
    with pytest.raises(ValueError, match="lexical"):
        RunConfig(model="poster", lexical=True)


def test_model_defaults_fill_unset_fields():
    assert (RunConfig(model="integrated").windows, RunConfig(model="integrated").lexical) == (1, False)
    cat = RunConfig(model="catalogue")
    assert cat.windows == 6 and cat.lexical and cat.long_augment > 0
    assert RunConfig(model="catalogue", windows=2, lexical=False).windows == 2  # a set value wins


@pytest.fixture(scope="module")
def lexical_data(real_plots):
    labels = LabelSet(STUDY_LABELS)
    y = labels.encode(real_plots["genres"])
    keep = y.sum(1) > 0
    plots, y = list(real_plots["plot"][keep]), y[keep]
    return plots[:2500], y[:2500], plots[2500:3300], y[2500:3300]


def test_lexical_channel_learns_genre_words_and_reloads_identically(lexical_data, tmp_path):
    tr_x, tr_y, va_x, va_y = lexical_data
    ch, scores = fit_channel(tr_x, tr_y, va_x, va_y, grid=(1.0, 4.0))
    assert set(scores) == {1.0, 4.0} and ch.C == max(scores, key=scores.get)
    p = ch.proba(va_x)
    assert p.shape == (len(va_x), 10)
    # it ranks the right genres: per-label average precision well above each label's base rate (chance)
    from sklearn.metrics import average_precision_score

    gain = [average_precision_score(va_y[:, j], p[:, j]) - va_y[:, j].mean() for j in range(10) if va_y[:, j].any()]
    assert min(gain) > 0.05 and np.mean(gain) > 0.2
    horror = STUDY_LABELS.index("Horror")
    assert ch.proba(["A haunted house, a demon and a possessed girl."])[0, horror] > p[:, horror].mean()
    ch.weight = 0.35
    ch.save(tmp_path / "lexical.json", tmp_path / "lexical.safetensors")
    assert json.loads((tmp_path / "lexical.json").read_text())["weight"] == 0.35
    back = LexicalChannel.load(tmp_path / "lexical.json", tmp_path / "lexical.safetensors")
    np.testing.assert_array_equal(back.logits(va_x + ["", "Zzyzx qwerty"]), ch.logits(va_x + ["", "Zzyzx qwerty"]))
    assert back.weight == 0.35 and not list(tmp_path.glob("*.pkl"))


def test_tfidf_features_equal_scikit_learn(lexical_data):
    """Prediction's hand-written TF-IDF (no scikit-learn import at load) gives scikit-learn's features."""
    tr_x, _, va_x, _ = lexical_data
    vec = LexicalChannel()._new_vectorizer()
    vec.fit(tr_x)
    feats = TfidfFeatures(vec.get_feature_names_out(), vec.idf_, 2)
    texts = va_x[:300] + ["", "Zzyzx", "Amélie's CAFÉ in Zürich: a naïve crème-brûlée ROMANCE, ﬁlm noir!", "ab ab ab x"]
    want = vec.transform(texts).toarray()
    got = np.zeros_like(want)
    for r, t in enumerate(texts):
        idx, values = feats.row(t)
        got[r, idx] = values
    assert (want != 0).sum() > 5000  # real features, not an empty comparison
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_fusion_keeps_plotless_rows_and_weight_is_chosen_on_validation(lexical_data):
    tr_x, tr_y, va_x, va_y = lexical_data
    ch = LexicalChannel().fit(tr_x, tr_y)
    p_lex = ch.proba(va_x)
    uninformed = np.tile(tr_y.mean(0), (len(va_x), 1)).astype(np.float32)  # a model that knows nothing
    has = np.ones(len(va_x), dtype=bool)
    has[:10] = False
    fused = fuse(uninformed, p_lex, has, 0.4)
    np.testing.assert_array_equal(fused[:10], uninformed[:10])
    np.testing.assert_allclose(fused[10:], 0.6 * uninformed[10:] + 0.4 * p_lex[10:], rtol=1e-6)
    w, scores = choose_weight(va_y, uninformed, p_lex, np.ones(len(va_x), bool))
    assert w > 0.5 and scores[w] > scores[0.0]  # the informative channel gets the weight


def test_long_text_builders_use_real_training_plots(real_plots):
    labels = LabelSet(STUDY_LABELS)
    y = labels.encode(real_plots["genres"])
    plots = list(real_plots["plot"])
    texts, src = same_genres_concat(plots[:600], y[:600], 0.3, seed=1)
    assert 0 < len(texts) <= 180 and len(texts) == len(src)
    for t, i in zip(texts, src):
        assert t.startswith(plots[i] + " ")
        rest = t[len(plots[i]) + 1:]
        j = plots[:600].index(rest)
        assert j != i and (y[j] == y[i]).all()  # exactly the same genres: the labels stay exact
    test_plots, test_y = plots[600:700], y[600:700]
    long, donors = append_shared_genre(test_plots, test_y, plots[:600], y[:600], seed=0)
    assert donors.shape == (100, 2)
    for t, p, yi, d in zip(long, test_plots, test_y, donors):
        if d[0] < 0:
            assert t == p
            continue
        assert t == " ".join([p, plots[d[0]], plots[d[1]]])
        assert all(((y[j] > 0) & (yi > 0)).any() for j in d)  # each donor shares a genre
    assert np.median([len(t.split()) for t in long]) > 2 * np.median([len(p.split()) for p in test_plots])


def test_summaries_variant_joins_plots_of_the_same_genres_in_random_order(real_plots):
    y = LabelSet(STUDY_LABELS).encode(real_plots["genres"]) > 0
    plots = list(real_plots["plot"])
    test_plots, test_y = plots[600:700], y[600:700]
    texts, donors = append_shared_genre(test_plots, test_y, plots[:600], y[:600], seed=3, same_genres=True,
                                        shuffle=True)
    first = 0
    for t, p, yi, d in zip(texts, test_plots, test_y, donors):
        assert p in t and all(plots[j] in t for j in d)
        exact = (y[:600] == yi).all(1)
        if exact.any():
            assert all(exact[j] for j in d)  # the same genres: the labels stay right for every word
        first += t.startswith(p)
    assert 10 < first < 90  # the movie's own plot is not always first


def test_predicting_with_the_lexical_channel_does_not_import_scikit_learn(tiny_catalogue_dir, subset_csv):
    """Importing scikit-learn costs ~1.5 s of a cold ``genrelens predict``: loading and predicting with a
    catalogue model (TF-IDF channel included) must not need it; the fused scores are the saved ones."""
    code = (
        "import sys, json; from genrelens.predict import GenreClassifier; "
        f"clf = GenreClassifier.load({str(tiny_catalogue_dir)!r}); "
        "p = clf.predict_proba(plots=['A haunted house, a demon and a possessed girl.'], posters=[None]); "
        "print(json.dumps({'sklearn': 'sklearn' in sys.modules, 'lexical': clf.bundle.lexical is not None}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"sklearn": False, "lexical": True}


def test_first_window_pooling_keeps_half_the_weight_on_the_opening(encoder):
    """"first" pooling: a one-window text is its window; a longer one is half its first window + half the mean of
    the others, so appended text cannot outweigh the opening."""
    enc = encoder.set_windows(6, 16, "first")
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)
    owner = np.array([0, 0, 0, 1, 2, 2])
    try:
        np.testing.assert_allclose(enc.pool_windows(feats, owner, 4), [[1.5, 2.5], [6, 7], [9, 10], [0, 0]])
    finally:
        enc.set_windows(1)


@pytest.mark.parametrize("pooling", ["mean", "max", "first"])
def test_explanations_pool_windows_as_the_encoder_does(encoder, pooling):
    """The word-occlusion forward of explain.py pools a text's windows exactly as prediction does."""
    import torch

    from genrelens.explain import _pool_windows

    emb = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    enc = encoder.set_windows(6, 16, pooling)
    try:
        for n in (1, 4):
            by_encoder = enc.pool_windows(emb[:n], np.zeros(n, dtype=np.int64), 1)
            np.testing.assert_allclose(_pool_windows(enc, torch.from_numpy(emb[None, :n])).numpy(), by_encoder,
                                       atol=1e-6)
        # several occluded variants of one text at once: each is pooled on its own
        variants = np.stack([emb, emb[::-1]])
        pooled = _pool_windows(enc, torch.from_numpy(variants.copy())).numpy()
        for v in range(2):
            np.testing.assert_allclose(pooled[v], enc.pool_windows(variants[v], np.zeros(4, dtype=np.int64), 1)[0],
                                       atol=1e-6)
    finally:
        enc.set_windows(1)
