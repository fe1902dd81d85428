"""genrelens.train.checkpoint: the resumable training state round-trips (model, optimizer, meta)."""

import torch

from genrelens.train.checkpoint import load_training_state, optimizer_tensors, save_training_state


def _step(model, opt):
    opt.zero_grad()
    model(torch.ones(4, 3)).sum().backward()
    opt.step()


def test_round_trip_restores_model_optimizer_and_meta(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    _step(model, opt)
    save_training_state(tmp_path, model, opt, {"epoch": 1, "history": [0.5]})

    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    meta = load_training_state(tmp_path, model2, opt2)
    assert meta == {"epoch": 1, "history": [0.5]}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    # the same next step from both: the optimizer's moments came back too
    _step(model, opt)
    _step(model2, opt2)
    assert torch.allclose(model.weight, model2.weight)


def test_optimizer_state_splits_into_tensors_and_json(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    opt.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    tensors, meta = optimizer_tensors(opt)
    assert {"0.exp_avg", "0.exp_avg_sq", "1.exp_avg"} <= set(tensors)
    assert meta["param_groups"][0]["lr"] == opt.param_groups[0]["lr"]


def test_no_state_is_none(tmp_path):
    model = torch.nn.Linear(2, 1)
    assert load_training_state(tmp_path, model, torch.optim.SGD(model.parameters(), lr=1)) is None
