"""Split stratification and both oversamplers, on the real default data and small fixtures."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrelens.data.labels import STUDY_LABELS, LabelSet
from genrelens.data.oversample import imbalance_ratios, ml_ros, oversample, study_oversample
from genrelens.data.split import load_split, make_split, save_split, select
from genrelens.data.table import load_table


@pytest.fixture(scope="module")
def table(real_data):
    return load_table(real_data)[0]


def test_split_is_stratified_and_disjoint(table, tmp_path):
    split = make_split(table, seed=0, labels=STUDY_LABELS)
    ids = [set(split[s]) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(map(len, ids)) == len(table)
    assert len(split["train"]) / len(table) == pytest.approx(0.7, abs=0.01)
    ls = LabelSet(STUDY_LABELS)
    freq = {s: ls.encode(select(table, split[s])["genres"]).mean(0) for s in split}
    assert np.abs(freq["train"] - freq["val"]).max() < 0.01
    assert np.abs(freq["train"] - freq["test"]).max() < 0.01
    plot_share = {s: (select(table, split[s])["plot"] != "").mean() for s in split}
    assert abs(plot_share["train"] - plot_share["test"]) < 0.01
    save_split(split, tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == split
    assert make_split(table, seed=0, labels=STUDY_LABELS) == split  # seeded
    assert make_split(table, seed=1, labels=STUDY_LABELS) != split


def test_study_oversampling_grows_like_the_study_and_balances(table):
    y = LabelSet(STUDY_LABELS).encode(table["genres"])
    y = y[y.sum(1) > 0]
    idx = study_oversample(y, seed=0)
    assert len(idx) / len(y) == pytest.approx(76 / 46, abs=0.01)
    assert np.array_equal(idx[: len(y)], np.arange(len(y)))  # every original row kept once
    before, after = y.mean(0), y[idx].mean(0)
    rare = int(np.argmin(before))
    assert after[rare] > 2 * before[rare]
    assert imbalance_ratios(y[idx]).max() < imbalance_ratios(y).max()
    assert np.array_equal(idx, study_oversample(y, seed=0))
    assert not np.array_equal(idx, study_oversample(y, seed=1))


def test_ml_ros_reduces_mean_imbalance():
    rng = np.random.default_rng(0)
    y = (rng.random((2000, 6)) < np.array([0.5, 0.4, 0.2, 0.05, 0.03, 0.02])).astype(np.float32)
    idx = ml_ros(y, growth=1.25, seed=0)
    assert len(y) < len(idx) <= round(1.25 * len(y))
    assert imbalance_ratios(y[idx]).mean() < imbalance_ratios(y).mean()
    assert np.array_equal(idx, oversample(y, "mlros", seed=0, target=1.25))


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown oversampling"):
        oversample(np.zeros((3, 2)), "smote")


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 60), st.integers(2, 5), st.integers(0, 10_000), st.sampled_from(["none", "study", "mlros"]))
def test_oversampling_never_drops_a_row(n, k, seed, method):
    y = (np.random.default_rng(seed).random((n, k)) < 0.3).astype(np.float32)
    idx = oversample(y, method, seed=seed)
    assert np.array_equal(np.sort(idx[:n]), np.arange(n))
    assert idx.min() >= 0 and idx.max() < n and len(idx) >= n
