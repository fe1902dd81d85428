"""Tensors as safetensors only (no pickle), written atomically: the weights of every model folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from genrelens.errors import ModelError
from genrelens.io import atomic_path


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict | None = None) -> None:
    """Write ``tensors`` to a safetensors file (contiguous CPU copies) in one atomic rename."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in (meta or {}).items()})


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything else (a pickle ``.pt``/``.pth``/``.bin``) is refused."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelError(f"refusing to load {path}: only .safetensors checkpoints are loaded (pickle is unsafe)")
    if not path.exists():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a corrupt header
        raise ModelError(f"{path} is not a valid safetensors file: {e}") from e
