"""Explanations: exact Shapley shares, word attributions, poster heatmaps; CLI, REST; faithfulness on real movies."""

from __future__ import annotations

import base64
import io
import json
import string

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    from genrelens.predict import GenreClassifier

    return GenreClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def movie(subset_csv):
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    row = df[(df["plot"].str.split().str.len() >= 20) & (df["poster"] != "")].iloc[0]
    return row["plot"], subset_csv.parent / row["poster"]


def test_explain_one_movie(clf, movie):
    plot, poster = movie
    e = clf.explain(plot, poster)
    proba = clf.predict_proba([plot], [str(poster)])[0]
    assert e["genres"] == [g for g in sorted(clf.labels, key=lambda g: -proba[clf.labels.index(g)])
                           if clf.decide(proba[None])[0, clf.labels.index(g)]]
    feats, _ = clf.features([plot], [Image.open(poster)])
    with torch.inference_mode():
        full = clf.head(feats)[0].numpy()
    for g in e["genres"]:
        m = e["modalities"][g]
        # Shapley efficiency: the two shares add up to the change from "neither" to "both"
        assert m["plot"] + m["poster"] == pytest.approx(m["logit"] - m["base_logit"], abs=2e-3)
        assert m["logit"] == pytest.approx(full[clf.labels.index(g)], abs=1e-3)
        assert m["plot_share"] + m["poster_share"] == pytest.approx(1, abs=1e-3)
        words = e["words"][g]
        assert words and [abs(w["attribution"]) for w in words] == sorted((abs(w["attribution"]) for w in words),
                                                                           reverse=True)
        for w in words:
            assert plot[w["start"]:w["end"]] == w["word"]
        spoken = [w for w in plot.split() if w.strip(string.punctuation + "\u2013\u2014\u2026")]
        assert len(e["word_attributions"][g]) == len(e["plot_words"]) == len(spoken)
        png = Image.open(io.BytesIO(base64.b64decode(e["poster_heatmap"][g])))
        assert png.format == "PNG" and png.size == (224, 224)
        cells = np.array(e["poster_cells"][g])
        assert cells.shape == (7, 7) and (cells >= 0).all()


def test_word_types_by_hand():
    from genrelens.explain import plot_words, word_types

    words = plot_words("The vampire bites. A vampire's friend, the Vampire, hunts -- vampire! 42")
    assert [w for w, _, _ in words] == ["The", "vampire", "bites", "A", "vampire's", "friend", "the", "Vampire",
                                        "hunts", "vampire", "42"]  # outer punctuation trimmed, "--" is no word
    assert word_types(words).tolist() == [0, 1, 2, 0, 3, 4, 0, 1, 5, 1, 6]  # stop words: 0
    assert word_types(words, max_words=2).tolist() == [0, 1, 2, 0, 0, 0, 0, 1, 0, 1, 0]
    text = "An Alien. lands\u2014"
    assert [(w, text[s:e]) for w, s, e in plot_words(text)] == [("An", "An"), ("Alien", "Alien"), ("lands", "lands")]


def test_word_attribution_is_the_logit_drop_when_the_word_is_hidden(clf, movie):
    from genrelens.explain import _encode_ids, word_attributions, word_types

    plot, poster = movie
    feats, _ = clf.features([plot], [Image.open(poster)])
    words, attr = word_attributions(clf, plot, feats)
    types = word_types(words)
    assert (attr[types == 0] == 0).all() and (np.abs(attr[types > 0]).sum(1) > 0).any()
    j = int(np.argmax(np.abs(attr).sum(1)))  # the most influential word: hide its tokens (every occurrence) by hand
    same = [words[i] for i in np.flatnonzero(types == types[j])]
    enc = clf.text_encoder
    tok = enc.tokenizer(plot, truncation=True, max_length=enc.max_length, return_offsets_mapping=True)
    mask = torch.tensor([[0 if (e > s and any(a <= s < b for _, a, b in same)) else 1
                          for s, e in tok["offset_mapping"]]])
    ids = torch.tensor([tok["input_ids"]])
    with torch.inference_mode():
        hidden = clf.head({**feats, "text": _encode_ids(enc, ids, mask)})[0].numpy()
        full = clf.head(feats)[0].numpy()
    assert np.allclose(attr[j], full - hidden, atol=1e-3)


def test_one_modality_gets_everything(clf, movie):
    plot, poster = movie
    e = clf.explain(plot, None)
    assert all(m["poster"] == 0 and m["plot_share"] == 1 for m in e["modalities"].values())
    assert e["poster_heatmap"] == {}
    e = clf.explain(None, poster)
    assert all(m["plot"] == 0 and m["poster_share"] == 1 for m in e["modalities"].values())
    assert e["words"] == {g: [] for g in e["genres"]} and e["poster_heatmap"]


def test_cli_explain_json_with_heatmap_files(tiny_model_dir, movie, tmp_path):
    from typer.testing import CliRunner

    from genrelens.cli import app

    plot, poster = movie
    runner = CliRunner()
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot, "--poster", str(poster),
                              "--explain", "--json", "--explain-dir", str(tmp_path / "why")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"confidence", "review", "calibrated"} <= set(out) and out["calibrated"] is True
    e = out["explanation"]
    assert set(e) >= {"modalities", "words", "poster_heatmap"} and e["genres"] == out["genres"]
    for path in e["poster_heatmap"].values():
        assert Image.open(path).size == (224, 224) and path.startswith(str(tmp_path / "why"))
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot, "--explain"])
    assert res.exit_code == 0 and "why " in res.stdout and "words for it" in res.stdout
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot,
                              "--explain-dir", str(tmp_path)])
    assert res.exit_code == 2 and "--explain-dir goes with --explain" in res.output


def test_rest_explain(tiny_model_dir, movie):
    from fastapi.testclient import TestClient

    from genrelens.serve.app import create_app

    plot, poster = movie
    with TestClient(create_app(tiny_model_dir)) as client:
        body = {"plot": plot, "poster": base64.b64encode(poster.read_bytes()).decode()}
        r = client.post("/v1/explain", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        p = client.post("/v1/predict", json=body).json()
        assert out["genres"] == p["genres"] and out["scores"] == p["scores"]
        assert out["confidence"] == p["confidence"] and out["review"] == p["review"]
        e = out["explanation"]
        assert e["genres"] == out["genres"] and set(e["poster_heatmap"]) == set(out["genres"])
        Image.open(io.BytesIO(base64.b64decode(e["poster_heatmap"][out["genres"][0]]))).verify()
        with poster.open("rb") as f:  # multipart, as the web page sends it
            r = client.post("/v1/explain", data={"plot": plot}, files={"poster": ("p.jpg", f, "image/jpeg")})
        assert r.status_code == 200 and r.json()["explanation"]["modalities"] == e["modalities"]
        r = client.post("/v1/explain", json={})
        assert r.status_code == 422 and r.json()["error"] == "no_input"
        info = client.get("/v1/model").json()
        assert info["calibrated"] is True and info["note"] is None


@pytest.mark.slow
def test_faithfulness_on_100_real_test_movies(clf, subset_csv, real_data):
    """Deleting each movie's 5 most supporting words lowers its top genre's probability clearly more than
    deleting 5 random words; greying the top 20% of the poster's Grad-CAM cells more than a random 20%.
    Movies: 100 real movies with plot and poster that the model never saw (shortish plots keep it affordable)."""
    from genrelens.explain import faithfulness

    seen = set(pd.read_csv(subset_csv, dtype=str)["id"])
    df = pd.read_csv(real_data, dtype=str, keep_default_na=False)
    n_words = df["plot"].str.split().str.len()
    df = df[n_words.between(15, 45) & (df["poster"] != "") & ~df["id"].isin(seen)].sample(100, random_state=0)
    r = faithfulness(clf, list(df["plot"]), [real_data.parent / p for p in df["poster"]])
    assert r["n_movies"] == 100
    assert r["mean_drop_words_top"] > 3 * max(r["mean_drop_words_random"], 1e-3) and r["p_value_words"] < 1e-3
    assert r["mean_drop_poster_top"] > 1.3 * r["mean_drop_poster_random"] and r["p_value_poster"] < 0.01


def test_windowed_model_with_lexical_channel(subset_csv, tiny_catalogue_dir):
    """A model reading long plots as token windows, late-fused with the TF-IDF channel ("catalogue"): the
    explanation's logits are those of the model's own (fused, raw) probabilities, and words past the first
    window are explained too."""
    from genrelens.data.table import clean_text
    from genrelens.explain import plot_words, word_types
    from genrelens.models.calibration import to_logit
    from genrelens.predict import GenreClassifier

    clf = GenreClassifier.load(tiny_catalogue_dir)
    assert clf.text_encoder.windows > 1 and clf.bundle.lexical is not None
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    n_tokens = df["plot"].map(lambda t: len(clf.text_encoder.tokenizer(t)["input_ids"]))
    row = df[(n_tokens > 1.5 * clf.text_encoder.max_length) & (df["poster"] != "")].iloc[0]
    poster = subset_csv.parent / row["poster"]
    e = clf.explain(row["plot"], poster)
    raw = clf.score([row["plot"]], [str(poster)], calibrated=False)[0][0]
    for g in e["genres"]:
        assert e["modalities"][g]["logit"] == pytest.approx(float(to_logit(raw)[clf.labels.index(g)]), abs=2e-3)
    plot = clean_text(row["plot"])  # as explain reads it
    words = plot_words(plot)
    assert [w for w, _, _ in words] == [w["word"] for w in e["plot_words"]]
    first = clf.text_encoder.tokenizer(plot, truncation=True, max_length=clf.text_encoder.max_length,
                                       return_offsets_mapping=True)["offset_mapping"]
    end_of_first = max(e for _, e in first)
    types = word_types(words)
    late = [i for i, (_, s, _) in enumerate(words)
            if s >= end_of_first and types[i] and not (types[:i] == types[i]).any()]  # first seen in window 2+
    assert late and any(e["word_attributions"][g][i] != 0 for g in e["genres"] for i in late)
