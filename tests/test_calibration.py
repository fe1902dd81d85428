"""Calibration, ECE/Brier and the review queue: hand-computed cases, then real models on real movies."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from genrelens.bundle import CALIBRATION
from genrelens.metrics import brier, ece, ece_per_label, reliability_bins
from genrelens.models.calibration import (
    Calibrator,
    LabelMap,
    choose_review_cutoff,
    confidence,
    fit_calibrator,
    fit_map,
    review_flags,
    review_report,
    to_logit,
)
from genrelens.models.thresholds import decide


def test_ece_and_brier_by_hand():
    # label 0: p 0.1 (y 0), 0.1 (y 1) in bin 1; 0.9 (y 1) x2 in bin 13 -> ECE = 2/4 * |0.5 - 0.1| + 2/4 * |1 - 0.9|
    y = np.array([[0, 1], [1, 1], [1, 0], [1, 0]])
    p = np.array([[0.1, 1.0], [0.1, 1.0], [0.9, 0.0], [0.9, 0.0]])
    per = ece_per_label(y, p)
    assert per[0] == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert per[1] == pytest.approx(0.0)  # 1.0 falls in the last bin, 0.0 in the first: both exact
    assert ece(y, p) == pytest.approx(per.mean())
    assert brier(y, p) == pytest.approx(np.mean([(0.01 + 0.81 + 0.01 + 0.01) / 4, 0.0]))
    b = reliability_bins(y[:, 0], p[:, 0])
    assert b["count"].sum() == 4 and b["count"][1] == 2 and b["count"][13] == 2


def test_confidence_and_review_by_hand():
    p = np.array([[0.9, 0.2, 0.5], [0.99, 0.01, 0.02]])
    pred = np.array([[True, False, True], [True, False, False]])
    assert confidence(p, pred) == pytest.approx([0.9 * 0.8 * 0.5, 0.99 * 0.99 * 0.98])
    thr = np.array([0.5, 0.5, 0.4])
    assert review_flags(p, thr, band=0.1).tolist() == [True, False]  # 0.5 vs 0.4: within 0.1
    assert review_flags(p, thr, band=0.05).tolist() == [False, False]


def test_review_cutoff_by_hand():
    """The cut-off flags the least confident rows, at most ``max_share`` of them, where the catch of wrong sets
    beyond random is largest; tied confidences go to the same side."""
    conf = np.array([0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    wrong = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    r = choose_review_cutoff(conf, wrong, max_share=0.5)
    assert 0.2 < r["min_confidence"] <= 0.3  # flags the four least confident: all wrong (catch 4/5 vs share 0.4)
    assert r["share_flagged"] == pytest.approx(0.4) and r["share_of_wrong_caught"] == pytest.approx(0.8)
    r = choose_review_cutoff(conf, wrong, max_share=0.25)  # at most 2.5 rows: 0.1 is tied, so only the first
    assert 0.05 < r["min_confidence"] <= 0.1 and r["share_flagged"] == pytest.approx(0.1)
    r = choose_review_cutoff(conf, wrong[::-1], max_share=0.5)  # confidence useless: flag as few as possible
    assert r["share_flagged"] == pytest.approx(0.1)
    json.dumps(r)  # saved in calibration.json


def test_maps_are_monotone_and_json_round_trips():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-z / 3))).astype(int)  # overconfident scores: the truth is z / 3
    grid = np.linspace(-20, 20, 200)
    for method in ("temperature", "platt", "isotonic"):
        m = fit_map(method, z, y)
        out = m(grid)
        assert (np.diff(out) >= -1e-12).all() and out.min() > 0 and out.max() < 1
        back = LabelMap.from_json(json.loads(json.dumps(m.to_json())))
        assert np.allclose(back(grid), out)
    assert fit_map("temperature", z, y).params["t"] == pytest.approx(3, rel=0.25)


@pytest.fixture(scope="module")
def frozen(tmp_path_factory, real_data, cache_dir):
    """A text-frozen model trained on 1,500 real plots (it sees genres in plots far better than the tiny
    integrated model): ``(classifier, y [n, L], raw scores [n, L])`` on its own test split."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import train_tiny

    from genrelens.predict import GenreClassifier
    from genrelens.trust import split_scores

    folder = tmp_path_factory.mktemp("plots")
    df = pd.read_csv(real_data, dtype=str, keep_default_na=False)
    df[df["plot"] != ""].sample(1500, random_state=5).assign(poster="").to_csv(folder / "movies.csv", index=False)
    out = folder / "text-frozen"
    train_tiny("text-frozen", folder / "movies.csv", out, cache_dir, epochs=20, patience=5)
    clf = GenreClassifier.load(out)
    y, raw, _ = split_scores(clf, None)["test"]
    return clf, y, raw


@pytest.mark.slow
def test_calibration_lowers_ece_on_the_test_split(frozen):
    clf, y, raw = frozen
    m = json.loads((clf.model_dir / "metrics.json").read_text())
    before, after = ece(y, raw), ece(y, clf.calibrator.transform(raw))
    assert m["calibration"]["before"]["ece"] == pytest.approx(before, abs=1e-3)  # training's features vs ONNX's
    assert m["test"]["ece"] == pytest.approx(after, abs=1e-3)
    assert after < 0.6 * before, (before, after)
    assert brier(y, clf.calibrator.transform(raw)) < brier(y, raw)
    assert set(clf.calibrator.methods.values()) <= {"temperature", "platt", "isotonic"}
    cal = clf.calibrator
    back = Calibrator.from_json(json.loads(json.dumps(cal.to_json())))
    assert np.allclose(back.transform(raw), cal.transform(raw)) and np.allclose(back.thresholds, cal.thresholds)
    from genrelens.models.thresholds import decide

    # thresholds carried through the maps: every decision is the raw model's
    assert (decide(raw, clf.raw_thresholds) == decide(cal.transform(raw), cal.thresholds)).all()
    assert m["test"]["weighted_f1"] == pytest.approx(m["calibration"]["before"]["weighted_f1"], abs=0.003)
    for j in range(len(clf.labels)):  # every map is non-decreasing: a higher score never gets a lower probability
        order = np.argsort(raw[:, j])
        assert (np.diff(cal.transform(raw)[order, j]) >= -1e-6).all()


@pytest.mark.slow
def test_confidence_is_calibrated_and_flags_find_errors(frozen):
    """On the test split: the mean confidence matches the share of entirely right label sets (confidence is a
    probability, raw scores are not), it ranks right sets above wrong ones, and flagged movies are wrong
    more often than the others."""
    from genrelens.models.thresholds import decide

    clf, y, raw = frozen
    p = clf.calibrator.transform(raw)
    pred = decide(p, clf.thresholds)
    r = review_report(y, p, pred, clf.thresholds, band=0.05)
    assert abs(r["mean_confidence"] - r["exact_match"]) < 0.05, r
    assert r["confidence_auroc"] > 0.7, r
    assert 0 < r["share_flagged"] < 1 and r["error_rate_flagged"] > r["error_rate_not_flagged"], r
    raw_pred = decide(raw, clf.raw_thresholds)
    raw_gap = abs(confidence(raw, raw_pred).mean() - float((raw_pred == y).all(1).mean()))
    assert abs(r["mean_confidence"] - r["exact_match"]) < raw_gap


@pytest.mark.slow
def test_review_flag_catches_wrong_sets_far_better_than_random(frozen):
    """The review flag (confidence below the cut-off chosen on validation, saved in calibration.json), on the
    test split of a model trained on 1,500 real plots: it flags a sensible share, and its queue closes most of
    the gap between flagging that share at random (catches the same share of wrong sets) and the best possible
    queue of that size (catches share / share of wrong sets). The older band rule closed a sixth of that gap
    on the default model (docs/trust.md)."""
    from genrelens.models.thresholds import decide

    clf, y, raw = frozen
    saved = json.loads((clf.model_dir / CALIBRATION).read_text())
    assert saved["review"]["min_confidence"] == pytest.approx(clf.calibrator.min_confidence)
    assert clf.review_rule == {"rule": "confidence", "min_confidence": clf.calibrator.min_confidence}
    p = clf.calibrator.transform(raw)
    pred = decide(p, clf.thresholds)
    flag = clf.review(p)
    assert (flag == (confidence(p, pred) < clf.calibrator.min_confidence)).all()
    r = review_report(y, p, pred, clf.thresholds, min_confidence=clf.calibrator.min_confidence)
    share, caught, best = r["share_flagged"], r["share_of_wrong_caught"], r["best_possible_catch"]
    assert share == pytest.approx(flag.mean()) and 0.1 <= share <= 0.45, r
    assert caught > share and caught - share >= 0.5 * (best - share), r  # (here: 0.340 vs 0.322, best 0.340)
    band = r["band_rule"]  # the older rule on the same movies closes far less of its gap (here: a quarter)
    closed_by_band = (band["share_of_wrong_caught"] - band["share_flagged"]) / (band["best_possible_catch"]
                                                                                 - band["share_flagged"])
    assert (caught - share) / (best - share) > closed_by_band + 0.2, r
    assert r["error_rate_flagged"] > r["error_rate_not_flagged"], r
    m = json.loads((clf.model_dir / "metrics.json").read_text())
    assert m["review"]["rule"] == "confidence" and m["review"]["min_confidence"] == clf.calibrator.min_confidence


def test_calibration_without_review_cutoff_keeps_the_band_rule(tiny_model_dir, tmp_path):
    """A calibration.json written before the confidence cut-off existed still loads; its review flag is the
    older band rule."""
    from genrelens.models.calibration import DEFAULT_REVIEW_BAND, review_flags
    from genrelens.predict import GenreClassifier

    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old, ignore=shutil.ignore_patterns("checkpoints"))
    saved = json.loads((old / CALIBRATION).read_text())
    assert "review" in saved
    del saved["review"]
    (old / CALIBRATION).write_text(json.dumps(saved))
    clf = GenreClassifier.load(old)
    assert clf.calibrated and clf.calibrator.min_confidence is None
    assert clf.review_rule == {"rule": "band", "band": DEFAULT_REVIEW_BAND}
    p = np.random.default_rng(0).random((50, len(clf.labels)))
    assert (clf.review(p) == review_flags(p, clf.thresholds, DEFAULT_REVIEW_BAND)).all()
    assert (clf.review(p, min_confidence=0.2) == (clf.confidence(p) < 0.2)).all()


def test_trained_model_is_calibrated_everywhere(tiny_model_dir):
    from genrelens.predict import GenreClassifier

    assert (tiny_model_dir / CALIBRATION).exists()
    saved = json.loads((tiny_model_dir / CALIBRATION).read_text())
    assert saved["labels"] and set(saved["maps"]) == set(saved["labels"])
    clf = GenreClassifier.load(tiny_model_dir)
    assert clf.calibrated and clf.calibration_note is None
    assert np.allclose(clf.thresholds, [saved["thresholds"][g] for g in clf.labels])
    plots, posters = ["A detective hunts a serial killer in a rainy city."], [None]
    raw = clf.score(plots, posters, calibrated=False)[0]
    assert np.allclose(clf.predict_proba(plots, posters), clf.calibrator.transform(raw))
    m = json.loads((tiny_model_dir / "metrics.json").read_text())
    for key in ("ece", "brier"):
        assert 0 <= m["test"][key] <= 1 and key in m["test"]["per_label"][clf.labels[0]]
    assert set(m["calibration"]) >= {"before", "after", "methods"}
    assert m["review"]["n_rows"] == m["test"]["n_rows"]


def test_model_without_calibration_loads_uncalibrated_then_calibrates(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from genrelens.cli import app
    from genrelens.predict import GenreClassifier

    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old, ignore=shutil.ignore_patterns("checkpoints", CALIBRATION))
    clf = GenreClassifier.load(old)
    assert not clf.calibrated and "uncalibrated" in clf.calibration_note
    thr = json.loads((old / "thresholds.json").read_text())
    assert np.allclose(clf.thresholds, [thr[g] for g in clf.labels])
    plots = ["Two friends take a road trip across the desert."]
    assert np.allclose(clf.predict_proba(plots, [None]), clf.score(plots, [None], calibrated=False)[0])

    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--model-dir", str(old), "--data", str(clf.config.data), "--split", "test",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["calibrated"] is False and "uncalibrated" in out["note"] and 0 <= out["ece"] <= 1

    res = runner.invoke(app, ["calibrate", "--model-dir", str(old), "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["calibration"]["after"]["ece"] >= 0 and (old / CALIBRATION).exists()
    assert GenreClassifier.load(old).calibrated
    m = json.loads((old / "metrics.json").read_text())
    assert m["calibration"] == summary["calibration"] and "ece" in m["test"]

    res = runner.invoke(app, ["evaluate", "--model-dir", str(old), "--data", str(clf.config.data), "--split", "test",
                              "--json"])
    out = json.loads(res.stdout)
    assert out["calibrated"] is True and "note" not in out
    assert out["ece"] == pytest.approx(m["test"]["ece"], abs=1e-6)


def test_batch_review_columns_and_review_only(tiny_model_dir, subset_csv, tmp_path):
    """Batch output gains confidence and review; --review-only writes the flagged rows, least confident first.
    The band is the median distance to a threshold of these movies, so about half of them are flagged."""
    from typer.testing import CliRunner

    from genrelens.cli import app
    from genrelens.predict import GenreClassifier

    clf = GenreClassifier.load(tiny_model_dir)
    src = pd.read_csv(subset_csv, dtype=str, keep_default_na=False).head(100)  # 100 movies: enough to rank
    table = tmp_path / "movies.csv"
    src.to_csv(table, index=False)
    movies = ("--input", str(table), "--posters", str(subset_csv.parent))
    proba, _ = clf.score(list(src["plot"]), [subset_csv.parent / p if p else None for p in src["poster"]])
    band = f"{float(np.median(np.abs(proba - clf.thresholds).min(1))):.6f}"
    runner = CliRunner()
    full, queue = tmp_path / "all.csv", tmp_path / "queue.csv"
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), *movies,
                              "--output", str(full), "--no-progress", "--review-band", band])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), *movies,
                              "--output", str(queue), "--no-progress", "--review-band", band, "--review-only"])
    assert res.exit_code == 0, res.output
    a, q = pd.read_csv(full), pd.read_csv(queue)
    assert {"confidence", "review"} <= set(a.columns) and len(a) == 100
    assert a["confidence"].between(0, 1).all()
    assert 0 < len(q) == int(a["review"].sum()) < len(a)
    assert q["review"].all() and set(q["id"]) == set(a.loc[a["review"], "id"])
    assert q["confidence"].is_monotonic_increasing  # least confident first
    assert f"{len(q)} of 100 rows" in " ".join(res.output.split())
    # the default rule: confidence below the model's saved cut-off
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), *movies,
                              "--output", str(full), "--no-progress"])
    assert res.exit_code == 0, res.output
    a = pd.read_csv(full)
    scored = a["confidence"].notna()
    cut = clf.calibrator.min_confidence
    low = a["review_reasons"].fillna("").str.split("|").map(lambda r: "low_confidence" in r)
    assert (low[scored] == (a.loc[scored, "confidence"] < cut)).sum() >= scored.sum() - 2  # float32
    assert (a["review"] == (a["review_reasons"].fillna("") != "")).all()  # review: any reason holds
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), *movies,
                              "--output", str(queue), "--no-progress", "--review-below", "0.5", "--review-only"])
    assert res.exit_code == 0, res.output
    q = pd.read_csv(queue)
    assert len(q) == int((a["confidence"] < 0.5).sum() + a["confidence"].isna().sum()) and (q["confidence"] < 0.5).all()
    res = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), *movies,
                              "--output", str(queue), "--review-below", "0.5", "--review-band", "0.1"])
    assert res.exit_code != 0 and "not both" in res.output


def test_to_logit_saturates_finitely():
    z = to_logit(np.array([0.0, 1.0, 0.5], dtype=np.float32))
    assert np.isfinite(z).all() and z[2] == pytest.approx(0.0) and z[0] == pytest.approx(-z[1]) == pytest.approx(-16)


@pytest.mark.parametrize(("model", "says"), [("tfidf", "logistic regression's own probabilities"),
                                             ("naive", "label frequencies")])
def test_calibrate_message_says_why_a_fitted_model_is_not_calibrated(tiny_runs, model, says):
    """A tfidf model does not answer label frequencies: `calibrate` says what it does answer."""
    from typer.testing import CliRunner

    from genrelens.cli import app

    res = CliRunner().invoke(app, ["calibrate", "--model-dir", str(tiny_runs(model)), "--no-progress"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and says in out and "nothing to calibrate" in out
    assert model == "naive" or "label frequencies" not in out


def test_carried_thresholds_keep_every_decision_on_few_calibration_rows():
    """Calibration fitted on a few rows (as `adapt` does with 100 labelled movies) must not change a decision: a
    rare label's isotonic steps near zero all clip to the same probability, and carrying the threshold onto such
    a flat step once predicted the label for every movie. Each label's map is one that keeps the raw decisions."""
    rng = np.random.default_rng(3)
    n = 30
    y = np.zeros((n, 3))
    y[[2, 9], 0] = 1  # two positives, both scored high: isotonic is flat (at 0) below them
    y[rng.choice(n, 12, replace=False), 1] = 1  # a common label
    raw = np.clip(rng.beta(2, 5, size=(n, 3)), 0.01, 0.99)
    raw[[2, 9], 0] = [0.97, 0.98]
    raw[:, 2] = rng.uniform(0.2, 0.4, n)  # the third label: no positive at all
    thresholds = np.array([0.3, 0.35, 0.5])
    cal = fit_calibrator(y, raw, ["A", "B", "C"], raw_thresholds=thresholds)
    fresh = np.clip(rng.beta(2, 5, size=(500, 3)), 0.001, 0.999)
    for scores in (raw, fresh, np.linspace(0.001, 0.999, 999)[:, None].repeat(3, 1)):
        np.testing.assert_array_equal(decide(cal.transform(scores), cal.thresholds, allow_empty=True),
                                      decide(scores, thresholds, allow_empty=True))
