"""genrelens.models.lexical: hand-written TF-IDF equals scikit-learn's; the channel fits, saves, loads, fuses."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from genrelens.errors import ModelError
from genrelens.models.lexical import LexicalChannel, LexicalHead, TfidfFeatures, choose_weight, fuse, fused_proba

TEXTS = ["A detective hunts a killer in the dark city.", "Two friends fall in love in Paris.",
         "The killer returns; the detective is afraid.", "Love, love and a wedding in Paris!",
         "Café owners fight a zombie outbreak", "A zombie detective in a dark café"]
Y = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0], [1, 0]])


@pytest.mark.parametrize("ngram_max", [1, 2])
def test_tfidf_features_equal_scikit_learn(ngram_max):
    vec = TfidfVectorizer(ngram_range=(1, ngram_max), sublinear_tf=True, strip_accents="unicode", lowercase=True)
    x = vec.fit_transform(TEXTS).toarray()
    feats = TfidfFeatures(vec.get_feature_names_out(), vec.idf_, ngram_max)
    for r, text in enumerate(TEXTS + ["nothing known here"]):
        idx, values = feats.row(text)
        dense = np.zeros(len(feats.terms))
        dense[idx] = values
        expected = vec.transform([text]).toarray()[0] if r == len(TEXTS) else x[r]
        assert np.allclose(dense, expected)
    with pytest.raises(ModelError, match="idf values"):
        TfidfFeatures(["a"], np.ones(2), 1)


def test_channel_fits_saves_and_loads(tmp_path):
    ch = LexicalChannel(min_df=1, C=10.0).fit(TEXTS, Y)
    p = ch.proba(["a killer detective", "love in Paris", ""])
    assert p.shape == (3, 2) and p[0, 0] > p[0, 1] and p[1, 1] > p[1, 0]
    top = dict(ch.top_terms(0, "the killer in Paris", k=10))  # signed pushes towards label 0
    assert top["killer"] > 0 > top["paris"] and "the killer" in top
    assert list(top) == sorted(top, key=lambda t: -abs(top[t]))
    ch.weight = 0.3
    ch.save(tmp_path / "lex.json", tmp_path / "lex.safetensors")
    back = LexicalChannel.load(tmp_path / "lex.json", tmp_path / "lex.safetensors")
    assert back.weight == 0.3 and np.allclose(back.logits(TEXTS), ch.logits(TEXTS))
    with pytest.raises(ModelError, match="not fitted"):
        LexicalChannel().logits(["x"])
    with pytest.raises(ValueError, match="needs training plots"):
        LexicalChannel().fit([], Y[:0])


def test_fusion_only_on_rows_with_a_plot():
    p_model = np.array([[0.2, 0.8], [0.6, 0.4]])
    p_lex = np.array([[1.0, 0.0], [1.0, 0.0]])
    out = fuse(p_model, p_lex, np.array([True, False]), 0.25)
    assert out.dtype == np.float32 and np.allclose(out, [[0.4, 0.6], [0.6, 0.4]])
    assert np.allclose(fused_proba(p_model, np.zeros((2, 2)), np.array([True, True]), 1.0), 0.5)
    w, scores = choose_weight(Y, np.full((6, 2), 0.5), Y.astype(float), np.ones(6, bool), grid=[0.0, 0.5])
    assert w == 0.5 and scores[0.5] > scores[0.0]


def test_lexical_head_uses_the_prior_without_a_plot():
    import torch

    head = LexicalHead(n_labels=2)
    head.missing_logits.copy_(torch.tensor([-1.0, 1.0]))
    out = head({"lexical": torch.tensor([[3.0, 4.0], [5.0, 6.0]], dtype=torch.float64),
                "text_mask": torch.tensor([True, False])})
    assert out.tolist() == [[3.0, 4.0], [-1.0, 1.0]]
