"""genrelens.data.oversample: oversampling only adds rows, and raises the counts of the rare labels."""

import numpy as np
import pytest

from genrelens.data.oversample import imbalance_ratios, ml_ros, oversample, study_oversample


def _y() -> np.ndarray:
    # label 0 on 80 rows, label 1 on 15, label 2 on 5
    y = np.zeros((100, 3), dtype=int)
    y[:80, 0] = 1
    y[80:95, 1] = 1
    y[95:, 2] = 1
    return y


@pytest.mark.parametrize("method", ["study", "mlros"])
def test_rare_labels_gain_and_the_originals_stay(method):
    y = _y()
    idx = oversample(y, method, seed=0, target=1.5)
    assert 100 < len(idx) <= 150 and (idx[:100] == np.arange(100)).all()
    before, after = y.sum(0), y[idx].sum(0)
    assert after[2] > before[2] and after[0] == before[0]
    assert after[2] / before[2] > after[1] / before[1]
    assert (oversample(y, method, seed=0, target=1.5) == idx).all()  # seeded


def test_study_oversample_picks_the_rarest_label_first():
    y = _y()
    extra = study_oversample(y, growth=1.05, seed=0)[100:]
    assert len(extra) == 5 and (y[extra, 2] == 1).all()  # 5 -> 10 before any other label is touched


def test_none_unknown_and_labelless():
    y = _y()
    assert (oversample(y) == np.arange(100)).all()
    with pytest.raises(ValueError, match="unknown oversampling"):
        oversample(y, "smote")
    assert len(study_oversample(np.zeros((4, 2)), growth=2.0)) == 4


def test_imbalance_ratios_and_ml_ros_growth():
    ratios = imbalance_ratios(_y())
    assert ratios[0] == pytest.approx(1.0) and ratios[2] == pytest.approx(16.0)
    # ML-ROS clones minority rows (IRLbl > MeanIR) until each reaches MeanIR, at most n * growth rows
    y = _y()
    idx = ml_ros(y, growth=1.25, seed=1)
    mean_ir = ratios.mean()
    assert 100 < len(idx) <= 125
    assert imbalance_ratios(y[idx])[2] <= mean_ir and (y[idx[100:], 0] == 0).all()
    assert len(study_oversample(y, growth=1.25, seed=1)) == 125
