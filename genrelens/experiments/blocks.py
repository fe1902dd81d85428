"""The report's building blocks and inputs: sections made of blocks (text, tables, figures, examples), and
``ReportData`` (``results.json``, the run folders read through the bundle, the movie table). The section
modules (``report.py``, ``trust_report.py``) build on it; ``report.py`` renders the sections with the templates
in ``templates/``."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from genrelens import bundle

SECTIONS = {
    "overview": "Overview and cost",
    "table1": "Table 1: label frequencies",
    "table2": "Table 2: weighted F1 per model",
    "shares": "Share of the weighted F1 per label",
    "decades": "F1 by release decade",
    "curves": "Training curves of the main model (catalogue, else integrated)",
    "combinations": "Label combinations and co-occurrence",
    "examples": "Example predictions",
    "calibration": "Calibration and the review queue",
    "explained": "Explained predictions",
}

# ---------------------------------------------------------------------------------------------- blocks

@dataclass
class Text:
    kind: ClassVar[str] = "text"  # what the templates switch on
    text: str
    note: bool = False  # rendered in italics: a remark or a "skipped" line


@dataclass
class TableBlock:
    kind: ClassVar[str] = "table"  # what the templates switch on
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    text: bool = False  # cells are text (left-aligned), not numbers


@dataclass
class Figure:
    kind: ClassVar[str] = "figure"  # what the templates switch on
    name: str  # file stem for the markdown copy
    png: bytes
    caption: str = ""


@dataclass
class Examples:
    kind: ClassVar[str] = "examples"  # what the templates switch on
    items: list[dict]  # title, year, poster (bytes|None), plot, true, predicted {model: [genres]}


@dataclass
class Section:
    key: str
    blocks: list[Any] = field(default_factory=list)

    @property
    def title(self) -> str:
        return SECTIONS[self.key]


def skipped(key: str, why: str) -> Section:
    return Section(key, [Text(f"Skipped: {why}", note=True)])


# ---------------------------------------------------------------------------------------------- inputs

@dataclass
class Predictions:
    """A run's test predictions aligned with the table: ids, labels, multi-hot truth and decisions."""

    ids: list[str]
    labels: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray


class ReportData:
    """results.json, the run directories and the movie table, loaded on demand."""

    def __init__(self, out_dir: Path):
        self.out = out_dir
        self.results = json.loads((out_dir / "results.json").read_text())
        self.models: list[str] = self.results["models"]
        self.oversampling: list[str] = self.results["oversampling"]
        self.seeds: list[int] = self.results["seeds"]
        self.runs = {(r["model"], r["oversample"], r["seed"]): r for r in self.results["runs"]}
        self._pred: dict[Path, Predictions] = {}

    @cached_property
    def table(self) -> pd.DataFrame:
        from genrelens.data.table import load_table

        df, _ = load_table(self.results["data"], skip_bad=True)
        return df

    @cached_property
    def by_id(self) -> pd.DataFrame:
        return self.table.set_index("id")

    def run_dir(self, model: str, ov: str, seed: int) -> Path | None:
        r = self.runs.get((model, ov, seed))
        d = self.out / r["dir"] if r else None
        return d if d is not None and (d / bundle.METRICS).exists() else None

    def main_oversampling(self) -> str:
        return "none" if "none" in self.oversampling else self.oversampling[0]

    def main_model(self) -> str:
        """The model the single-model sections show: the default model (catalogue) when the benchmark ran it,
        else integrated (the study's best)."""
        from genrelens.models.registry import DEFAULT_MODEL

        return next((m for m in (DEFAULT_MODEL, "integrated") if self.pick(m)), "integrated")

    def pick(self, model: str) -> Path | None:
        """The model's run shown in single-run sections: no oversampling (if run), the first seed."""
        return self.run_dir(model, self.main_oversampling(), self.seeds[0])

    def predictions(self, run_dir: Path) -> Predictions | None:
        """Test predictions of a run from its model folder's test probabilities and thresholds (calibrated
        when the folder has a calibrator); None if absent."""
        from genrelens.data.labels import LabelSet
        from genrelens.errors import ModelError
        from genrelens.models.thresholds import decide

        if run_dir in self._pred:
            return self._pred[run_dir]
        try:
            _, _, labels, thr = bundle.read_meta(run_dir)
        except ModelError:
            return None
        ids, proba = bundle.read_artifact(run_dir, "test_ids"), bundle.read_artifact(run_dir, "test_proba")
        if ids is None or proba is None:
            return None
        cal = bundle.read_calibration(run_dir, labels)
        if cal is not None:  # the model decides on calibrated probabilities with their own thresholds
            proba, thr = cal.transform(proba), cal.thresholds
        y_true = LabelSet(labels).encode(self.by_id.loc[ids, "genres"]) > 0
        pred = Predictions(ids, labels, y_true, decide(proba, thr))
        self._pred[run_dir] = pred
        return pred


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()

