"""Metrics against small hand-computed cases."""

import numpy as np
import pytest

from genrelens.metrics import cooccurrence, evaluate, n_combinations, pair_confusion

LABELS = ["Drama", "Comedy", "Horror"]
Y_TRUE = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
Y_PRED = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]])


def test_weighted_f1_by_hand():
    # Drama: tp=2 fp=1 fn=0 -> F1 = 4/5; Comedy: tp=1 fn=1 -> 2/3; Horror: 0. Supports 2, 2, 1.
    m = evaluate(Y_TRUE, Y_PRED, LABELS)
    assert m["weighted_f1"] == pytest.approx((2 * 0.8 + 2 * 2 / 3 + 0) / 5)
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 3)
    # micro: tp=3, fp=1, fn=2 -> 6/9
    assert m["micro_f1"] == pytest.approx(6 / 9)
    # samples: row F1s 1, 2/3, 2/3, 0
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3 + 0) / 4)
    assert m["per_label"]["Drama"]["precision"] == pytest.approx(2 / 3)
    assert m["per_label"]["Comedy"]["recall"] == pytest.approx(0.5)
    assert m["per_label"]["Horror"]["support"] == 1
    shares = [r["weighted_f1_share"] for r in m["per_label"].values()]
    assert sum(shares) == pytest.approx(m["weighted_f1"])
    assert m["n_rows"] == 4 and m["labels"] == LABELS


def test_combinations_and_cooccurrence():
    assert n_combinations(Y_PRED) == 3  # {D}, {D,C}, {}
    assert n_combinations(Y_TRUE) == 4
    c = cooccurrence(Y_TRUE)
    assert c.tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 1]]


def test_pair_confusion_comedy_drama():
    # states: 0 neither, 1 first only (Comedy), 2 second only (Drama), 3 both
    m = pair_confusion(Y_TRUE, Y_PRED, a=1, b=0)
    assert m.sum() == 4
    assert m[2, 2] == 1  # drama only, predicted drama only
    assert m[3, 2] == 1  # both, predicted drama only
    assert m[1, 3] == 1  # comedy only, predicted both
    assert m[0, 0] == 1  # horror row: neither


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        evaluate(Y_TRUE, Y_PRED[:, :2], LABELS)
