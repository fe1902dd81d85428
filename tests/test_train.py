"""Every model trains a few steps on real data; save -> load -> predict is exact; resume is exact."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import train_tiny

from genrelens import GenreClassifier, bundle
from genrelens.models.registry import MODELS
from genrelens.predict import NO_INPUT
from genrelens.train import loop


def _movies(csv, n=12):
    df = pd.read_csv(csv, dtype=str, keep_default_na=False).head(n)
    posters = [str(csv.parent / p) if p else None for p in df["poster"]]
    return list(df["plot"]), posters


SLOW_MODELS = {"text-finetuned", "fusion"}  # trained for this test alone; the others are shared session fixtures


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_MODELS else m
                                   for m in MODELS])  # a newly registered model is tested here for free
def test_each_model_trains_and_reloads_exactly(model, subset_csv, tiny_runs):
    run = tiny_runs(model)  # trained once per session: the integrated and catalogue runs are the shared fixtures
    metrics = tiny_runs.metrics[model]
    manifest = json.loads((run / bundle.MANIFEST).read_text())
    assert manifest["format_version"] == bundle.FORMAT_VERSION and manifest["model"] == model
    for f in (bundle.CONFIG, bundle.SPLIT, bundle.LABELS, bundle.THRESHOLDS, bundle.WEIGHTS, bundle.METRICS,
              bundle.TEST_PROBA, bundle.TEST_IDS):
        assert (run / f).exists() and f in manifest["files"]
    assert (bundle.TEXT_ENCODER in manifest["files"]) == MODELS[model].text_stage
    lexical = bool(MODELS[model].defaults.get("lexical"))  # its TF-IDF channel is saved without pickle
    assert (bundle.LEXICAL in manifest["files"]) == (bundle.LEXICAL_WEIGHTS in manifest["files"]) == lexical
    assert 0 < metrics["test"]["weighted_f1"] <= 1
    clf = GenreClassifier.load(run)
    plots, posters = _movies(subset_csv)
    proba = clf.predict_proba(plots, posters)
    assert proba.shape == (12, 10) and np.isfinite(proba).all()
    np.testing.assert_array_equal(proba, GenreClassifier.load(run).predict_proba(plots, posters))
    _, problems = clf.score(plots, posters)
    no_input = {i for i, why in problems.items() if NO_INPUT in why}  # e.g. a poster-only movie for a text model
    genres = clf.predict(plots, posters, problems="ignore")
    assert [len(g) >= 1 for g in genres] == [i not in no_input for i in range(len(genres))]


def test_integrated_reload_is_exact_and_handles_missing_modalities(tiny_model_dir, subset_csv):
    clf = GenreClassifier.load(tiny_model_dir)
    plots, posters = _movies(subset_csv)
    a = clf.predict_proba(plots, posters)
    np.testing.assert_array_equal(a, GenreClassifier.load(tiny_model_dir).predict_proba(plots, posters))
    # the saved (raw) test scores are reproduced by the loaded model on the same rows, and calibrated the same
    df, ids = pd.read_csv(subset_csv, dtype=str, keep_default_na=False), json.loads(
        (tiny_model_dir / "test_ids.json").read_text())
    test = df.set_index("id").loc[ids]
    movies = list(test["plot"]), [str(subset_csv.parent / x) if x else None for x in test["poster"]]
    saved = np.load(tiny_model_dir / "test_proba.npy")
    np.testing.assert_allclose(clf.score(*movies, calibrated=False)[0], saved, atol=2e-3)
    assert clf.calibrated
    np.testing.assert_allclose(clf.predict_proba(*movies), clf.calibrator.transform(saved), atol=2e-3)
    plot_only = clf.predict_proba(plots, None)
    poster_only = clf.predict_proba(None, posters)
    assert plot_only.shape == poster_only.shape == (12, 10)
    assert not np.allclose(plot_only, poster_only)
    proba, errors = clf.score(["", "A lonely robot falls in love."], [None, None])
    assert 0 in errors and 1 not in errors


@pytest.mark.slow
def test_fusion_reuses_fine_tuned_text(tiny_model_dir, subset_csv, cache_dir, tmp_path):
    metrics = train_tiny("fusion", subset_csv, tmp_path / "fusion", cache_dir,
                         split_file=str(tiny_model_dir / "split.json"), extra={"text_from": str(tiny_model_dir)})
    assert metrics["test"]["n_rows"] > 0
    clf = GenreClassifier.load(tmp_path / "fusion")
    plots, posters = _movies(subset_csv)
    assert clf.predict_proba(plots, posters).shape == (12, 10)


@pytest.mark.slow
def test_resume_after_interruption_matches_uninterrupted(subset_csv, cache_dir, tmp_path, monkeypatch):
    kw = {"epochs": 4, "patience": 10}
    full = train_tiny("poster", subset_csv, tmp_path / "full", cache_dir, **kw)
    real_save = loop.save_training_state
    calls = {"n": 0}

    def crash_after_two_epochs(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if killed after epoch 2 was checkpointed

    monkeypatch.setattr(loop, "save_training_state", crash_after_two_epochs)
    with pytest.raises(KeyboardInterrupt):
        train_tiny("poster", subset_csv, tmp_path / "resumed", cache_dir, **kw)
    monkeypatch.setattr(loop, "save_training_state", real_save)

    from genrelens.config import RunConfig
    from genrelens.train.run import train

    resumed = train(RunConfig.load(tmp_path / "resumed" / "config.json"), resume=True, progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    assert resumed["test"]["weighted_f1"] == pytest.approx(full["test"]["weighted_f1"], abs=1e-9)
    for a, b in zip(resumed["history"], full["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)


@pytest.mark.slow
def test_poster_model_fine_tunes_the_cnn_last_block(small_subset_csv, cache_dir, tmp_path):
    from genrelens.encoders.poster import PosterEncoder

    metrics = train_tiny("poster", small_subset_csv, tmp_path / "pft", cache_dir, poster_finetune=True, epochs=1)
    assert 0 < metrics["test"]["weighted_f1"] <= 1
    clf = GenreClassifier.load(tmp_path / "pft")
    plots, posters = _movies(small_subset_csv)
    proba = clf.predict_proba(plots, posters)
    np.testing.assert_array_equal(proba, GenreClassifier.load(tmp_path / "pft").predict_proba(plots, posters))
    # the last block really trained: its weights moved away from the pretrained ones
    pretrained = PosterEncoder(backend="torch").model._conv_head.weight
    assert not np.allclose(clf.head.top.conv_head.weight.detach().numpy(), pretrained.detach().numpy())
    with pytest.raises(ValueError, match="poster model only"):
        train_tiny("integrated", small_subset_csv, tmp_path / "bad", cache_dir, poster_finetune=True)


def test_validation_with_huge_logits_warns_nothing(tmp_path) -> None:
    """The double soft F1 loss pushes logits far apart; validation turned them into probabilities with a bare
    ``np.exp``, which printed "overflow encountered in exp" during real training runs."""
    import warnings

    import torch

    from genrelens.train.config import LoopConfig

    x, y = torch.randn(16, 3), (torch.rand(16, 2) < 0.5).float()
    model = torch.nn.Linear(3, 2)

    def batches(epoch: int):
        yield x, y

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        history = loop.fit(model, batches, 1,
                           lambda m: np.array([[1000.0, -1000.0]] * 16), y.numpy(),
                           torch.nn.functional.binary_cross_entropy_with_logits, LoopConfig(epochs=1, lr=1e-3),
                           tmp_path, progress=False)
    assert len(history) == 1 and 0.0 <= history[0]["val_weighted_f1"] <= 1.0


def test_config_is_pure_and_training_resolves_auto(monkeypatch, tmp_path):
    """Building a RunConfig reads no CPU; training resolves precision ``auto`` by the CPU's flags."""
    from genrelens.config import RunConfig
    from genrelens.encoders import precision
    from genrelens.train.run import resolve_precision

    def probed(*_a, **_k):
        raise AssertionError("RunConfig read the CPU")

    with monkeypatch.context() as m:
        m.setattr(precision, "cpu_flags", probed)
        cfg = RunConfig(precision="auto", out=str(tmp_path))
        assert cfg.precision == "auto" and RunConfig(precision="bf16").precision == "bf16"
    with pytest.raises(ValueError, match="training precision"):
        RunConfig(precision="int8")
    monkeypatch.setenv(precision.ENV_FLAGS, "avx512f avx512_bf16")
    assert resolve_precision(cfg).precision == "bf16" and cfg.precision == "auto"
    monkeypatch.setenv(precision.ENV_FLAGS, "avx2")
    assert resolve_precision(cfg).precision == "fp32"
    assert resolve_precision(RunConfig(precision="bf16")).precision == "bf16"
