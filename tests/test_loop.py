"""genrelens.train.loop: the training loop on a tiny fake model: learning, early stopping, best epoch, resume."""

import csv

import numpy as np
import pytest
import torch

from genrelens.train import loop
from genrelens.train.config import LoopConfig
from genrelens.train.loop import Callback, EarlyStopping, FitState, fit, weighted_f1

X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]] * 4)
Y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]] * 4)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, batch):
        return self.lin(batch["x"])


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """Records each drawing of the curves (their number of epochs) instead of drawing them."""
    drawn = []
    monkeypatch.setattr(loop, "plot_curves", lambda history, path, title="": drawn.append(len(history)))
    return drawn


def _fit(folder, cfg, predict_val=None, **kw):
    torch.manual_seed(0)
    model = Tiny()
    hist = fit(model, lambda epoch: [({"x": X}, Y)], 1,
               predict_val or (lambda m: m({"x": X}).numpy()), Y.numpy(),
               torch.nn.functional.binary_cross_entropy_with_logits, cfg, folder, progress=False, **kw)
    return model, hist


def test_fit_learns_and_writes_history(tmp_path, no_plots, monkeypatch):
    model, hist = _fit(tmp_path, LoopConfig(epochs=6, lr=0.5, warmup_ratio=0.0, patience=6))
    assert [r["epoch"] for r in hist] == list(range(1, 7))
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    # all but the no-genre movie (it gets its top label: decisions are never empty) right
    assert max(r["val_weighted_f1"] for r in hist) >= 0.9
    with open(tmp_path / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    # the history after every epoch, the curves once, when fitting ends (drawing is the slow part)
    assert (tmp_path / "best.safetensors").exists() and no_plots == [6]
    monkeypatch.undo()
    loop.plot_curves(hist, tmp_path / "curves.png", title="tiny")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not model.training


def test_early_stopping_on_a_flat_validation_score(tmp_path):
    constant = np.zeros((16, 2), dtype=np.float32)  # validation never improves after epoch 1
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, state, row, improved):
            seen.append(improved)

    _, hist = _fit(tmp_path, LoopConfig(epochs=20, lr=0.1, patience=2), predict_val=lambda m: constant,
                   callbacks=[Spy()])
    assert len(hist) == 3 and seen == [True, False, False]


def test_the_model_leaves_at_its_best_epoch_and_resume_continues(tmp_path):
    cfg = LoopConfig(epochs=4, lr=0.1, patience=10)
    scores = iter([0.9, 0.1, 0.1, 0.1])
    snapshots = []

    def predict_val(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        good = next(scores) > 0.5
        return (Y.numpy() * 8 - 4) if good else np.zeros((16, 2), dtype=np.float32)

    model, hist = _fit(tmp_path, cfg, predict_val=predict_val)
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert all(torch.equal(v, snapshots[0][k]) for k, v in model.state_dict().items())
    _, more = _fit(tmp_path, LoopConfig(epochs=6, lr=0.1, patience=10), resume=True)
    assert [r["epoch"] for r in more] == [1, 2, 3, 4, 5, 6]  # epochs 1-4 come back from the checkpoint


def test_early_stopping_rule_and_weighted_f1():
    state = FitState(Tiny(), None, None, None, LoopConfig(epochs=9, lr=1.0), n_batches=1, epoch=4, best_epoch=2)
    EarlyStopping(patience=2).on_epoch_end(state, {}, False)
    assert state.stop
    y = np.array([[1, 0], [0, 1]])
    assert weighted_f1(y, np.array([[0.9, 0.1], [0.2, 0.6]]), tuned=False) == 1.0
    assert weighted_f1(y, np.array([[0.4, 0.1], [0.2, 0.45]]), tuned=True) == 1.0
