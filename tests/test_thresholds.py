"""genrelens.models.thresholds: tuned per-label thresholds and decisions that are never empty."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from genrelens.models.thresholds import GRID, decide, tune_thresholds


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 6)), elements=st.floats(0, 1)),
       st.floats(0.02, 0.98))
def test_decide_never_returns_an_empty_set(proba, t):
    pred = decide(proba, t)
    assert pred.any(1).all()
    assert (pred | (proba < t)).all()  # labels over threshold are kept
    assert (decide(proba, t, allow_empty=True) == (proba >= t)).all()


def test_decide_picks_the_label_closest_to_its_threshold():
    proba = np.array([[0.30, 0.35, 0.1]])
    assert decide(proba, np.array([0.4, 0.9, 0.5])).tolist() == [[True, False, False]]
    assert decide(np.zeros((0, 3)), 0.5).shape == (0, 3)


def test_tuned_thresholds_separate_a_separable_label():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    proba = np.array([[0.9, 0.3], [0.7, 0.2], [0.3, 0.1], [0.1, 0.4]])
    t = tune_thresholds(y, proba)
    assert t.dtype == np.float32 and np.isclose(GRID, t[0]).any()
    assert t[0] == np.float32(0.32)  # the lowest grid value with every positive above, every negative below
    assert t[1] == 0.5  # a label with no positive keeps 0.5
    assert (decide(proba, t, allow_empty=True)[:, 0] == (y[:, 0] > 0)).all()
