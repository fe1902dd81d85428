"""Review reasons that depend on the input: out_of_distribution (novelty in the model's feature space), language,
short_text (genrelens/models/novelty.py), saved through the bundle and fitted on an existing folder."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genrelens.bundle import NOVELTY, NOVELTY_WEIGHTS, ModelBundle
from genrelens.data.labels import LabelSet
from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.models.novelty import (
    LANGUAGE,
    LENGTH_EDGES,
    OUT_OF_DISTRIBUTION,
    SHORT_TEXT,
    WORDS_KEY,
    Novelty,
    plot_openings,
    review_reasons,
    short_text_reasons,
    word_count,
)
from genrelens.predict import GenreClassifier

NON_MOVIE = Path(__file__).parent / "data" / "non_movie_texts.tsv"
CHINESE = "一个年轻女子在上海寻找失散多年的父亲，却卷入了一场危险的阴谋，警察和黑帮都在追捕她。"
FRENCH = ("Un jeune homme timide tombe amoureux d'une femme mariée à Paris, et doit choisir entre sa famille et "
          "cette passion qui le dévore.")
ENGLISH = ("A retired detective is pulled back into one last case when a serial killer starts leaving clues "
           "addressed to him across New York.")
CAKE = ("Preheat the oven to 180 degrees. Whisk 200 g of flour, 150 g of sugar, 3 eggs and 100 g of melted butter "
        "until smooth, pour into a greased tin and bake for 30 minutes.")


def non_movie_texts() -> list[str]:
    return [line.split("\t", 1)[1] for line in NON_MOVIE.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def clf(tiny_model_dir) -> GenreClassifier:
    return GenreClassifier.load(tiny_model_dir)


def split_features(clf: GenreClassifier, split: str):
    """The head input batch of the model's own ``split`` (posters included; the movies with one of its labels, as
    training keeps them) and its plots."""
    df, _ = load_table(clf.config.data, skip_bad=True)
    part = select(df, clf.bundle.artifact("split")[split])
    part = part[LabelSet(clf.labels).encode(part["genres"]).sum(1) > 0].reset_index(drop=True)
    plots = list(part["plot"])
    feats, _ = clf.features(plots, list(part["poster"]), root=Path(df.attrs["root"]), titles=list(part["title"]))
    return feats, plots


def auroc(neg: np.ndarray, pos: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half."""
    neg, pos = np.asarray(neg)[:, None], np.asarray(pos)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def test_non_movie_text_set_is_large_and_varied():
    kinds = [line.split("\t", 1)[0] for line in NON_MOVIE.read_text(encoding="utf-8").splitlines() if line]
    texts = non_movie_texts()
    assert len(texts) >= 300 and len(set(texts)) == len(texts)
    assert {"documentation", "recipe", "product", "news", "licence"} <= set(kinds)
    assert min(word_count(t) for t in texts) >= 8


def test_training_saves_novelty_and_it_round_trips_through_the_bundle(tiny_model_dir, tmp_path):
    """Training fits the novelty score at its end; save_pretrained/from_pretrained keep it exactly."""
    assert (tiny_model_dir / NOVELTY).exists() and (tiny_model_dir / NOVELTY_WEIGHTS).exists()
    bundle = ModelBundle.from_pretrained(tiny_model_dir)
    nov = bundle.novelty
    # a fine-tuned text encoder is scored in its probe (a frozen layer), not in its genre-tuned features
    assert isinstance(nov, Novelty) and set(nov.references) == {"text_probe", "poster"}
    assert all(r.dtype == np.float16 for r in nov.references.values())
    assert nov.languages == ["en"]  # the subset's plots are English (TMDB overviews)
    copy = bundle.save_pretrained(tmp_path / "copy")
    back = ModelBundle.from_pretrained(copy).novelty
    assert back.cutoff == nov.cutoff and back.scales == nov.scales and back.languages == nov.languages
    assert all(np.array_equal(back.references[m], nov.references[m]) for m in nov.references)
    assert json.loads((copy / NOVELTY).read_text())["language_detector"] == "py3langid"
    manifest = json.loads((copy / "genrelens_model.json").read_text())
    assert {NOVELTY, NOVELTY_WEIGHTS} <= set(manifest["files"])


def test_non_movie_texts_score_above_test_movies(clf):
    """Even a barely trained model's features set recipes, documentation, licences and news apart from plots."""
    test_feats, _ = split_features(clf, "test")
    movie = clf.bundle.novelty.score(test_feats)
    movie = movie[np.isfinite(movie)]
    texts = non_movie_texts()
    other_feats, _ = clf.features(texts, [None] * len(texts))
    other = clf.bundle.novelty.score(other_feats)
    assert np.isfinite(other).all()
    flagged = other > clf.bundle.novelty.cutoff
    assert flagged.mean() >= 0.8, flagged.mean()
    assert auroc(movie, other) >= 0.9
    assert (movie > clf.bundle.novelty.cutoff).mean() <= 0.25  # 5% on validation; a 60-movie test split varies


def test_text_probe_is_the_same_at_training_and_prediction(tiny_model_dir):
    """The probe that training fits novelty on (the frozen pass's states of the probe layer, pooled) is the one
    prediction computes: the ONNX graph's second output and eager torch agree, and both are MiniLM's layer 4 (the
    tiny model fine-tunes its top layer only: the probe stays 2 layers below the top); a title alone has no
    probe."""
    from genrelens.bundle import build_text
    from genrelens.train.finetune import bottom_pass

    clf = GenreClassifier.load(tiny_model_dir)
    onnx_enc = clf.text_encoder
    torch_enc = build_text(clf.config, tiny_model_dir, backend="torch")
    assert onnx_enc.session is not None and torch_enc.session is None
    assert clf.config.ft_layers == 1 and onnx_enc.probe_layer == torch_enc.probe_layer == 4  # MiniLM-L6
    texts = [ENGLISH, CAKE, "A heist goes wrong."]
    feats_o, probe_o = onnx_enc.encode_with_probe(texts)
    feats_t, probe_t = torch_enc.encode_with_probe(texts)
    np.testing.assert_allclose(feats_o, onnx_enc.encode(texts), atol=1e-6)
    np.testing.assert_allclose(probe_o, probe_t, atol=1e-4)
    np.testing.assert_allclose(feats_o, feats_t, atol=1e-4)
    assert not np.allclose(probe_o, feats_o, atol=1e-2)  # another layer than the output
    ids = torch_enc.tokenizer(texts, truncation=True, max_length=clf.config.max_length)["input_ids"]
    _, probes = bottom_pass(torch_enc.model, torch_enc.tokenizer, ids, clf.config.ft_layers, torch_enc.probe_layer,
                            progress=False)
    np.testing.assert_allclose(probe_o, probes, atol=1e-4)
    feats, _ = clf.features([ENGLISH, None], [None, None], titles=["Heat", "Heat"])
    assert feats["text_probe_mask"].tolist() == [True, False]
    assert feats["text_mask"].tolist() == [True, clf.reads_titles]


def test_fit_novelty_on_an_existing_folder_respects_the_false_flag_rate(tiny_model_dir, tmp_path):
    """A model folder without novelty files (trained before them) gets them from ``fit_novelty``: its cut-off
    flags at most the asked share of the validation movies, scored again as prediction scores them."""
    from genrelens.trust import fit_novelty

    folder = tmp_path / "old"
    shutil.copytree(tiny_model_dir, folder)
    (folder / NOVELTY).unlink()
    (folder / NOVELTY_WEIGHTS).unlink()
    assert ModelBundle.from_pretrained(folder).novelty is None
    nov = fit_novelty(folder, false_flag_rate=0.2)
    assert nov.false_flag_rate == 0.2 and nov.report["val_flagged"] <= 0.2
    loaded = GenreClassifier.load(folder)
    assert loaded.bundle.novelty is not None and loaded.bundle.novelty.cutoff == pytest.approx(nov.cutoff)
    feats, _ = split_features(loaded, "val")
    score = loaded.bundle.novelty.score(feats)
    flagged = score[np.isfinite(score)] > nov.cutoff
    assert 0.05 <= flagged.mean() <= 0.2 + 1e-9  # the rate asked for, not nothing


def test_the_issue_examples_each_get_a_reason(clf):
    """A one-word plot, a cake recipe and a Chinese plot each get a reason; an ordinary English plot none."""
    plots = ["love", CAKE, CHINESE, ENGLISH]
    feats, _ = clf.features(plots, [None] * 4)
    reasons = review_reasons(clf.bundle.novelty, plots, feats)
    assert SHORT_TEXT in reasons[0]
    assert OUT_OF_DISTRIBUTION in reasons[1] and SHORT_TEXT not in reasons[1]
    assert LANGUAGE in reasons[2] and SHORT_TEXT not in reasons[2]
    assert LANGUAGE not in reasons[3] and SHORT_TEXT not in reasons[3]


def test_language_reason_for_plots_in_languages_the_model_was_not_trained_on(clf):
    reasons = review_reasons(clf.bundle.novelty, [CHINESE, FRENCH, ENGLISH, None, ""])
    assert [LANGUAGE in r for r in reasons] == [True, True, False, False, False]
    assert review_reasons(None, [FRENCH]) == [[]]  # a folder without novelty.json: languages unknown, no guess


def test_short_text_counts_words_and_cjk_characters():
    assert word_count("Love, actually!") == 2 and word_count("一个年轻女子") == 6 and word_count(None) == 0
    plots = ["love", "A short film about elephant poaching.", "Two mythological creatures battle.", "", None]
    assert short_text_reasons(plots) == [[SHORT_TEXT], [], [SHORT_TEXT], [], []]


def test_review_reasons_do_not_import_scikit_learn(tiny_model_dir):
    """Prediction keeps its cold start: loading a model with novelty files and computing the reasons needs no
    scikit-learn."""
    code = (
        "import sys, json; from genrelens.predict import GenreClassifier; "
        "from genrelens.models.novelty import review_reasons; "
        f"clf = GenreClassifier.load({str(tiny_model_dir)!r}); plots = ['love', {CAKE!r}]; "
        "feats, _ = clf.features(plots, [None, None]); r = review_reasons(clf.bundle.novelty, plots, feats); "
        "print(json.dumps({'sklearn': 'sklearn' in sys.modules, 'reasons': r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sklearn"] is False and "short_text" in result["reasons"][0]


def test_cutoff_flags_the_asked_share_of_validation_and_far_points(tmp_path):
    """On features with a known shape: the validation share flagged is at most the rate (and near it), points
    far from the training cloud are flagged, a movie's novelty is its most novel modality, missing modalities
    are skipped."""
    rng = np.random.default_rng(0)
    centre = rng.normal(size=32)

    def batch(n, shift=0.0, mask=None):
        x = centre + rng.normal(size=(n, 32)) * 0.5 + shift * rng.normal(size=32)
        return {"text": x, "text_mask": np.ones(n, bool) if mask is None else mask}

    nov = Novelty.fit(batch(2000), batch(1000), false_flag_rate=0.1, max_reference=500)
    assert len(nov.references["text"]) == 500
    val = nov.score(batch(1000))
    assert 0.05 <= (val > nov.cutoff).mean() <= 0.15
    assert nov.flags(batch(50, shift=3.0)).all()
    none = nov.score(batch(3, mask=np.zeros(3, bool)))
    assert np.isnan(none).all() and not nov.flags(batch(3, mask=np.zeros(3, bool))).any()
    nov.save(tmp_path / "n.json", tmp_path / "n.safetensors")
    assert Novelty.load(tmp_path / "n.json", tmp_path / "n.safetensors").cutoff == nov.cutoff
    # no scored modality (a tfidf or naive model): never out_of_distribution, and the file stays valid JSON
    empty = Novelty.fit({"lexical": np.ones((10, 3))}, {"lexical": np.ones((5, 3))}, ["A man walks into a bar."])
    assert empty.cutoff == float("inf") and not empty.flags({"lexical": np.ones((2, 3))}).any()
    empty.save(tmp_path / "e.json", tmp_path / "e.safetensors")
    assert json.loads((tmp_path / "e.json").read_text())["cutoff"] is None
    assert Novelty.load(tmp_path / "e.json", tmp_path / "e.safetensors").cutoff == float("inf")


def test_text_probe_scale_follows_plot_length(tmp_path):
    """Short texts lie farther from their neighbours: with per-length scales (fitted on validation plots and their
    openings) short and long plots of the same kind are flagged alike, near the asked rate, while far texts of any
    length still are; one scale for all lengths would flag most short plots."""
    rng = np.random.default_rng(1)
    centre = rng.normal(size=32)

    def batch(words, far=False):
        words = np.asarray(words)
        noise = 0.3 + 2.0 / np.sqrt(words)  # fewer words, noisier states
        x = centre + rng.normal(size=(len(words), 32)) * noise[:, None] + (4.0 * rng.normal(size=32) if far else 0)
        return {"text_probe": x, "text_probe_mask": np.ones(len(words), bool), WORDS_KEY: words}

    train, val = batch(rng.integers(40, 120, 2000)), batch(rng.integers(40, 120, 600))
    openings = batch(np.repeat([8, 15, 30], 300))
    nov = Novelty.fit(train, val, false_flag_rate=0.1, max_reference=800, openings=openings)
    assert len(nov.length_scales) == len(LENGTH_EDGES) + 1
    assert nov.length_scales[0] > nov.length_scales[1] > nov.length_scales[3]  # shorter: larger distances
    short, long = nov.flags(batch(np.full(500, 8))).mean(), nov.flags(batch(np.full(500, 80))).mean()
    assert 0.03 <= short <= 0.2 and 0.03 <= long <= 0.2, (short, long)
    assert nov.flags(batch(np.full(50, 8), far=True)).all() and nov.flags(batch(np.full(50, 80), far=True)).all()
    one_scale = Novelty.fit(train, val, false_flag_rate=0.1, max_reference=800)
    assert one_scale.length_scales and one_scale.flags(batch(np.full(500, 8))).mean() > 0.5  # no openings: no fix
    nov.save(tmp_path / "n.json", tmp_path / "n.safetensors")
    back = Novelty.load(tmp_path / "n.json", tmp_path / "n.safetensors")
    assert back.length_scales == pytest.approx(nov.length_scales)
    probe = batch(np.full(20, 12))
    np.testing.assert_array_equal(back.flags(probe), nov.flags(probe))
    assert not np.array_equal(nov.score(probe), nov.score({k: v for k, v in probe.items() if k != WORDS_KEY}))


def test_plot_openings_cut_plots_and_drop_every_other_title():
    plots = ["one two three four five six seven eight nine ten", "too short", None]
    openings, titles = plot_openings(plots, ["A", "B", "C"], lengths=(3, 8))
    assert openings == ["one two three", "one two three four five six seven eight"]
    assert titles == ["A", "A"]
    openings, titles = plot_openings(plots * 2, ["A", "B", "C"] * 2, lengths=(3,))
    assert titles == ["A", None]  # the second copy of the long plot is row 3: odd rows go without title


def test_predictions_carry_the_reasons_on_every_entry_point(clf, tiny_model_dir):
    """predict_movies, REST and the CLI give the same review_reasons: "love" short, the recipe unlike movies, the
    Chinese plot in a language the model was not trained on; review is set whenever a reason holds."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from genrelens.cli import app as cli
    from genrelens.serve.app import create_app
    from genrelens.types import Movie

    plots = ["love", CAKE, CHINESE]
    preds = clf.predict_movies([Movie(plot=p) for p in plots])
    assert SHORT_TEXT in preds[0].review_reasons
    assert OUT_OF_DISTRIBUTION in preds[1].review_reasons
    assert LANGUAGE in preds[2].review_reasons
    assert all(p.review for p in preds)
    with TestClient(create_app(classifier=clf)) as client:
        rest = [client.post("/v1/predict", json={"plot": p}).json()["review_reasons"] for p in plots]
        batch = client.post("/v1/predict/batch", json={"movies": [{"plot": p} for p in plots]}).json()
    assert rest == [p.review_reasons for p in preds]
    assert [r["review_reasons"] for r in batch["results"]] == rest
    out = CliRunner().invoke(cli, ["predict", "--model-dir", str(tiny_model_dir), "--plot", CAKE, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["review_reasons"] == preds[1].review_reasons


@pytest.mark.parametrize(("ft_layers", "depth", "layer"), [(1, 2, 4), (2, 2, 4), (3, 2, 3), (4, 2, 2), (5, 2, None),
                                                           (1, 0, 5), (2, 0, 4)])
def test_the_probe_layer_is_a_frozen_one_at_least_probe_depth_below_the_top(ft_layers, depth, layer, tmp_path):
    """MiniLM-L6: the probe stays at layer 4 when only the top layer fine-tunes (the default model's case); a
    config saved before ``probe_depth`` existed probes its last frozen layer, as such a model was fitted, and
    equals today's config wherever that is the same layer (a benchmark reuses such runs)."""
    from genrelens.bundle import probe_layer
    from genrelens.config import RunConfig

    cfg = RunConfig(model="catalogue", ft_layers=ft_layers, probe_depth=depth)
    assert probe_layer(cfg) == layer
    assert probe_layer(RunConfig(model="integrated", ft_layers=ft_layers, probe_depth=depth)) == layer
    assert probe_layer(RunConfig(model="text-frozen", ft_layers=ft_layers)) is None  # its features are pretrained
    old = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "probe_depth"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = RunConfig.load(tmp_path / "config.json")
    assert probe_layer(loaded) == (6 - ft_layers if ft_layers <= 4 else None)  # the rule before probe_depth
    assert (loaded == dataclasses.replace(cfg, probe_depth=2)) == (ft_layers >= 2)
    assert RunConfig(model="catalogue").ft_layers == 1 and RunConfig(model="integrated").ft_layers == 2
