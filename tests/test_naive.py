"""genrelens.models.naive: the k most frequent training labels, as a model and as a head."""

import numpy as np
import torch

from genrelens.models.naive import NaiveHead, NaiveModel
from genrelens.models.thresholds import decide

Y_TRAIN = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 1]])


def test_fit_chooses_k_on_validation_and_predicts_the_top_labels():
    y_val = np.array([[1, 1, 0], [1, 1, 0]])
    m = NaiveModel().fit(Y_TRAIN, y_val)
    assert m.k == 2
    assert m.predict(3).tolist() == [[True, True, False]] * 3
    assert np.allclose(m.predict_proba(2), [[0.75, 0.5, 0.25]] * 2)
    assert (decide(m.predict_proba(5), m.thresholds()) == m.predict(5)).all()
    assert NaiveModel().fit(Y_TRAIN).k == 1


def test_head_logits_are_the_frequencies():
    m = NaiveModel(k=1).fit(Y_TRAIN)
    head = NaiveHead.from_model(m)
    logits = head({"rows": torch.zeros(4, 0)})
    assert logits.shape == (4, 3)
    assert torch.allclose(torch.sigmoid(logits[0]), torch.tensor([0.75, 0.5, 0.25]), atol=1e-6)
    assert int(head.k) == 1
