"""genrelens.trust: validation/test scores of a model folder, and its calibration."""

import json
import shutil

import numpy as np
import pytest

from genrelens.errors import ModelError
from genrelens.predict import GenreClassifier
from genrelens.trust import calibrate_model_dir, split_scores


def test_split_scores_of_the_naive_model(tiny_naive_dir, subset_csv):
    clf = GenreClassifier.load(tiny_naive_dir)
    scores = split_scores(clf, subset_csv)
    split = json.loads((tiny_naive_dir / "split.json").read_text())
    assert set(scores) == {"val", "test"}
    for name, (y, raw, part) in scores.items():
        assert y.dtype == bool and raw.shape == y.shape == (len(part), len(clf.labels))
        assert set(part["id"]) <= set(split[name]) and y.any(1).all()  # rows without a label are left out
    assert np.allclose(scores["val"][1], scores["val"][1][0])  # label frequencies for every movie


def test_a_frequency_model_has_nothing_to_calibrate(tiny_naive_dir):
    with pytest.raises(ModelError, match="nothing to calibrate"):
        calibrate_model_dir(tiny_naive_dir)


@pytest.mark.slow
def test_calibrate_a_trained_model(tiny_model_dir, subset_csv, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    summary = calibrate_model_dir(model, subset_csv)
    assert set(summary) == {"calibration", "review", "review_cutoff", "val"}
    assert GenreClassifier.load(model).calibrated
    metrics = json.loads((model / "metrics.json").read_text())
    assert "calibration" in metrics and "ece" in metrics["test"]
