"""genrelens.models.checkpoint: safetensors only, written atomically, pickle refused."""

import pytest
import torch

from genrelens.errors import ModelError
from genrelens.models.checkpoint import load_tensors, save_tensors


def test_round_trip_of_non_contiguous_tensors(tmp_path):
    t = {"w": torch.arange(6.0).reshape(2, 3).t(), "b": torch.tensor([1, 2], dtype=torch.int64)}
    save_tensors(tmp_path / "m.safetensors", t, meta={"labels": ["Drama"]})
    back = load_tensors(tmp_path / "m.safetensors")
    assert torch.equal(back["w"], t["w"]) and torch.equal(back["b"], t["b"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_refuses_pickle_missing_and_corrupt_files(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "m.pt")
    with pytest.raises(ModelError, match="only .safetensors"):
        load_tensors(tmp_path / "m.pt")
    with pytest.raises(ModelError, match="not found"):
        load_tensors(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00garbage")
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_tensors(tmp_path / "bad.safetensors")
