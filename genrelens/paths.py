"""Default folders, from platformdirs (so they work after a plain ``pip install``), each overridable.

| what | variable | default |
|---|---|---|
| everything below | ``GENRELENS_HOME`` | the user data folder (e.g. ``~/.local/share/genrelens``) |
| the default model | ``GENRELENS_MODEL_DIR`` | ``<home>/models/default`` |
| feature cache, ONNX exports | ``GENRELENS_CACHE`` | ``<home>/cache`` if GENRELENS_HOME is set, else the user cache |
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "genrelens"
ENV_HOME, ENV_MODEL_DIR, ENV_CACHE = "GENRELENS_HOME", "GENRELENS_MODEL_DIR", "GENRELENS_CACHE"


def _env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def home_dir() -> Path:
    """``$GENRELENS_HOME``, else the platform's user data folder for genrelens."""
    from platformdirs import user_data_path

    return _env(ENV_HOME) or user_data_path(APP, appauthor=False)


def default_model_dir() -> Path:
    """Where `install` (and `benchmark --quick`) put, and `predict`/`evaluate`/`serve` find, the default model."""
    return _env(ENV_MODEL_DIR) or home_dir() / "models" / "default"


def default_cache_dir() -> Path:
    """The feature cache and ONNX exports (safe to delete: rebuilt on demand)."""
    from platformdirs import user_cache_path

    cache = _env(ENV_CACHE)
    if cache:
        return cache
    return home_dir() / "cache" if _env(ENV_HOME) else user_cache_path(APP, appauthor=False)
