"""Shared fixtures: the real default data, small real subsets of it, and a tiny trained model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from genrelens.data.table import default_data_path

DATA = default_data_path()
# Models load in fp32 unless a test asks otherwise (tests/test_precision.py exercises "auto" itself), and
# `genrelens train`/`calibrate` skip their closing accuracy guard (minutes on a CPU with bf16/VNNI units) unless a
# test asks for it.
os.environ.setdefault("GENRELENS_PRECISION", "fp32")
os.environ.setdefault("GENRELENS_PRECISION_CHECK", "0")


def write_subset(folder: Path, n: int = 400, seed: int = 0, with_posters: bool = True) -> Path:
    """A real ``n``-row sample of the default data (all three modality kinds), posters copied beside it."""
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    both = df[(df["plot"] != "") & (df["poster"] != "")]
    plot_only = df[(df["plot"] != "") & (df["poster"] == "")]
    poster_only = df[(df["plot"] == "") & (df["poster"] != "")]
    sub = pd.concat([both.sample(n // 2, random_state=seed), plot_only.sample(n // 4, random_state=seed),
                     poster_only.sample(n - n // 2 - n // 4, random_state=seed)]).sample(frac=1, random_state=seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "posters").mkdir(exist_ok=True)
    if with_posters:
        for rel in sub["poster"][sub["poster"] != ""]:
            shutil.copy(DATA.parent / rel, folder / rel)
    sub.to_csv(folder / "movies.csv", index=False)
    return folder / "movies.csv"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"default data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def subset_csv(tmp_path_factory, real_data) -> Path:
    """400 real movies with their posters, in a folder of their own."""
    return write_subset(tmp_path_factory.mktemp("subset"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feature-cache")


def train_tiny(model: str, data: Path, out: Path, cache: Path, **kw):
    """Train ``model`` for a few steps (seconds) and return its metrics."""
    from genrelens.config import RunConfig
    from genrelens.train.run import train

    # fp32 unless asked: the suite's models are the same on every CPU (training's `auto` is bf16 on some)
    cfg = RunConfig(model=model, data=str(data), out=str(out), cache_dir=str(cache),
                    **{"epochs": 3, "ft_epochs": 1, "ft_layers": 1, "max_length": 64, "patience": 2,
                       "precision": "fp32", **kw})
    return train(cfg, progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, subset_csv, cache_dir) -> Path:
    """An ``integrated`` model trained for a few steps on the 400-movie subset (text + poster, missing allowed)."""
    out = tmp_path_factory.mktemp("model") / "integrated"
    train_tiny("integrated", subset_csv, out, cache_dir)
    return out


@pytest.fixture(scope="session")
def tiny_catalogue_dir(tmp_path_factory, subset_csv, cache_dir) -> Path:
    """A ``catalogue`` model (token windows + the late-fused TF-IDF channel) trained for a few steps."""
    out = tmp_path_factory.mktemp("catalogue") / "catalogue"
    train_tiny("catalogue", subset_csv, out, cache_dir)
    return out
