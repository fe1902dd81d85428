"""Property-based tests (hypothesis): metrics, genre normalization, and the oversampling invariants of a real
``prepare()`` (validation and test rows are never oversampled, no train row is ever dropped)."""

from __future__ import annotations

import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from genrelens.config import RunConfig
from genrelens.data.labels import STUDY_LABELS, normalize_genre, normalize_genres
from genrelens.metrics import evaluate
from genrelens.train.run import prepare

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def label_pairs(draw) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    k = draw(st.integers(2, 6))  # one label: see test_single_label_metrics
    y = draw(arrays(np.int8, (n, k), elements=st.integers(0, 1)))
    p = draw(arrays(np.int8, (n, k), elements=st.integers(0, 1)))
    return y, p


def _labels(k: int) -> list[str]:
    return [f"L{j}" for j in range(k)]


@FAST
@given(label_pairs())
def test_f1_scores_are_in_unit_interval(pair) -> None:
    y, p = pair
    m = evaluate(y, p, _labels(y.shape[1]))
    for key in ("weighted_f1", "micro_f1", "macro_f1", "samples_f1"):
        assert 0.0 <= m[key] <= 1.0, key
    assert all(0.0 <= r["f1"] <= 1.0 for r in m["per_label"].values())
    shares = sum(r["weighted_f1_share"] for r in m["per_label"].values())
    assert shares == pytest.approx(m["weighted_f1"], abs=1e-9)  # the shares add up to the weighted F1


@FAST
@given(label_pairs())
def test_perfect_predictions_score_one(pair) -> None:
    y, _ = pair
    m = evaluate(y, y, _labels(y.shape[1]))
    if y.any():
        assert m["weighted_f1"] == 1.0 and m["micro_f1"] == 1.0
    else:
        assert m["weighted_f1"] == 0.0  # no positive label anywhere: nothing to score (zero_division=0)


@FAST
@given(label_pairs(), st.randoms(use_true_random=False))
def test_metrics_ignore_row_order(pair, rnd) -> None:
    y, p = pair
    order = list(range(len(y)))
    rnd.shuffle(order)
    a, b = evaluate(y, p, _labels(y.shape[1])), evaluate(y[order], p[order], _labels(y.shape[1]))
    for key in ("weighted_f1", "micro_f1", "macro_f1", "samples_f1", "predicted_combinations"):
        assert a[key] == pytest.approx(b[key], abs=1e-12), key
    assert a["per_label"] == b["per_label"]


def test_single_label_metrics() -> None:
    y = np.array([[1], [0], [1]])
    assert evaluate(y, y, ["Drama"])["weighted_f1"] == 1.0
    m = evaluate(y, np.array([[1], [1], [0]]), ["Drama"])
    assert m["samples_f1"] == pytest.approx(1 / 3)  # one hit among three movies


GENRE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_'&\t", max_size=30)
KNOWN = st.sampled_from(STUDY_LABELS + ["science fiction", "film noir", "tv movie", "Children's", "sci fi"])


@FAST
@given(st.one_of(GENRE_TEXT, KNOWN, st.text(max_size=20)))
def test_normalize_genre_is_idempotent(name: str) -> None:
    once = normalize_genre(name)
    assert normalize_genre(once) == once
    assert once == once.strip() and "  " not in once


@FAST
@given(st.one_of(GENRE_TEXT, KNOWN), st.lists(st.sampled_from([" ", "  ", "\t", "\n"]), min_size=2, max_size=2))
def test_normalize_genre_ignores_case_and_spacing(name: str, pads: list[str]) -> None:
    want = normalize_genre(name)
    spaced = pads[0] + name.replace(" ", "  ") + pads[1]
    for variant in (name.upper(), name.lower(), name.swapcase(), spaced):
        assert normalize_genre(variant) == want, variant


@FAST
@given(st.lists(st.one_of(GENRE_TEXT, KNOWN), max_size=8))
def test_normalize_genres_dedups_and_is_stable(names: list[str]) -> None:
    out = normalize_genres(names)
    assert len(out) == len(set(out)) and "" not in out
    assert normalize_genres(out) == out
    assert normalize_genres([n.upper() for n in names]) == out


@pytest.fixture(scope="module")
def prepared(subset_csv, tmp_path_factory):
    """``prepare()`` on the 400-movie subset with every oversampling method, for a few seeds."""
    out = {}
    for seed in (0, 1):
        for method in ("none", "study", "mlros"):
            run = tmp_path_factory.mktemp(f"prep-{method}-{seed}")
            out[seed, method] = prepare(RunConfig(model="poster", data=str(subset_csv), out=str(run),
                                                  oversample=method, seed=seed), run)
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["study", "mlros"])
def test_oversampling_never_touches_val_test_nor_drops_train(prepared, seed: int, method: str) -> None:
    base, over = prepared[seed, "none"], prepared[seed, method]
    for split in ("val", "test"):
        ids = over.parts[split]["id"].tolist()
        assert len(ids) == len(set(ids)) and ids == base.parts[split]["id"].tolist()  # unique and unchanged
        assert over.parts[split].equals(base.parts[split]) and np.array_equal(over.y[split], base.y[split])
    assert over.parts["train"].equals(base.parts["train"])  # oversampling picks rows; it never copies the table
    n = len(over.parts["train"])
    rows = over.train_rows
    assert np.array_equal(np.sort(rows[:n]), np.arange(n)) and rows.min() >= 0 and rows.max() < n
    assert len(rows) > n and over.report["train_rows_after_oversampling"] == len(rows)
    train_ids = set(over.parts["train"]["id"])
    assert train_ids.isdisjoint(over.parts["val"]["id"]) and train_ids.isdisjoint(over.parts["test"]["id"])
    assert np.array_equal(base.train_rows, np.arange(n))
