"""Resumable training state (model, optimizer, loop meta) as safetensors + JSON, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genrelens.io import write_json_atomic
from genrelens.models.checkpoint import load_tensors, save_tensors


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state into tensors (for safetensors) and JSON-able rest."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, meta: dict) -> None:
    """The resumable state after a completed epoch: model, optimizer, and ``meta`` (epoch, history, ...)."""
    opt_t, opt_meta = optimizer_tensors(opt)
    save_tensors(folder / "last_model.safetensors", model.state_dict())
    save_tensors(folder / "last_optim.safetensors", opt_t)
    write_json_atomic(folder / "last.json", {**meta, "optimizer": opt_meta})  # written last: marks completion


def load_training_state(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict | None:
    """Restore model and optimizer from ``folder``; returns the meta dict, or None when there is none."""
    meta_path = folder / "last.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    model.load_state_dict(load_tensors(folder / "last_model.safetensors"))
    restore_optimizer(opt, load_tensors(folder / "last_optim.safetensors"), meta.pop("optimizer"))
    return meta
