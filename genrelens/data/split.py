"""Seeded train/validation/test split by iterative stratification (Sechidis et al., 2011).

Stratified on the run's labels (or the table's K most frequent genres) plus two modality flags
(has plot, has poster), so every split keeps the label proportions and the mix of plot-only / poster-only / both rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from genrelens.data.labels import LabelSet

SPLITS = ("train", "val", "test")


MIN_SPLIT_ROWS = 10


def make_split(
    df: pd.DataFrame, k: int = 10, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0,
    labels: list[str] | None = None,
) -> dict[str, list[str]]:
    """Split ``df`` (the table contract) into id lists ``{"train", "val", "test"}``, stratified on ``labels``
    (default: the table's ``k`` most frequent genres) and the modality flags."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    if len(df) < MIN_SPLIT_ROWS:
        raise ValueError(f"need at least {MIN_SPLIT_ROWS} rows to split, got {len(df)}")
    strat = np.hstack([
        (LabelSet(labels) if labels else LabelSet.top_k(df["genres"], k)).encode(df["genres"]),
        (df["plot"].str.len() > 0).to_numpy()[:, None],
        df["poster"].notna().to_numpy()[:, None],
    ]).astype(int)
    ids = df["id"].to_numpy()
    rest_frac = fractions[1] + fractions[2]
    first = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=rest_frac, random_state=seed)
    train_idx, rest_idx = next(first.split(ids, strat))
    second = MultilabelStratifiedShuffleSplit(
        n_splits=1, test_size=fractions[2] / rest_frac, random_state=seed + 1
    )
    val_rel, test_rel = next(second.split(rest_idx, strat[rest_idx]))
    return {
        "train": sorted(ids[train_idx].tolist()),
        "val": sorted(ids[rest_idx[val_rel]].tolist()),
        "test": sorted(ids[rest_idx[test_rel]].tolist()),
    }


def save_split(split: dict[str, list[str]], path: Path) -> None:
    from genrelens.io import write_json_atomic

    write_json_atomic(path, {s: split[s] for s in SPLITS})


def load_split(path: Path) -> dict[str, list[str]]:
    data = json.loads(Path(path).read_text())
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise ValueError(f"{path}: split file lacks {missing}")
    return data


def select(df: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """Rows of ``df`` whose id is in ``ids`` (table order kept)."""
    out = df[df["id"].isin(set(ids))].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out
