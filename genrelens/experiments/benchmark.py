"""The study's grid on one split per seed: every model without and with oversampling, N seeds.

``run_benchmark`` trains each run into ``<out>/runs/<model>-<oversample>-s<seed>/`` (skipping runs whose
results already exist, so a re-run resumes the grid) and writes ``<out>/results.json``: every run's metrics,
mean and std over seeds per (model, oversampling), and the wall time of the grid and of each run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from genrelens import bundle
from genrelens.bundle import read_artifact
from genrelens.config import OVERSAMPLING
from genrelens.io import write_json_atomic
from genrelens.models.registry import DEFAULT_MODEL, MODELS
from genrelens.progress import is_terminal

ALL_MODELS = tuple(MODELS)  # the registry's order: text-finetuned trains before the models reusing its encoder
STUDY_MODELS = tuple(n for n, s in MODELS.items() if s.study)  # the study's grid
EXTRA_MODELS = tuple(n for n, s in MODELS.items() if not s.study)  # rows beyond it (tfidf, catalogue)
ALL_OVERSAMPLING = ("none", "study")
QUICK_MODELS = ("naive", DEFAULT_MODEL)
SUMMARY_METRICS = ("weighted_f1", "micro_f1", "macro_f1", "samples_f1")
TEXT_SOURCE = "text-finetuned"  # models with a text stage reuse this run's fine-tuned encoder when it is there
# The study's Table 2: weighted F1 (no oversampling, oversampling); ``None`` where it has no such model.
STUDY_TABLE2: dict[str, tuple[float, float] | None] = {
    "naive": (0.209, 0.209), "poster": (0.232, 0.210), "text-frozen": (0.192, 0.214),
    "text-finetuned": (0.433, 0.431), "integrated": (0.429, 0.453), "fusion": None, "tfidf": None,
    "catalogue": None,
}


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid and where it goes."""

    model: str
    oversample: str
    seed: int
    text_from: str | None = None  # run name of the text-finetuned run whose encoder it reuses

    @property
    def name(self) -> str:
        return f"{self.model}-{self.oversample}-s{self.seed}"


def plan_runs(models: list[str], oversampling: list[str], seeds: list[int]) -> list[RunSpec]:
    """The grid in training order: per seed and oversampling, text-finetuned before integrated and fusion
    (which then reuse its fine-tuned encoder)."""
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(ALL_MODELS)}")
    bad = [o for o in oversampling if o not in OVERSAMPLING]
    if bad:
        raise ValueError(f"unknown oversampling {bad}; choose from {', '.join(OVERSAMPLING)}")
    ordered = [m for m in ALL_MODELS if m in models]
    specs = []
    for seed in seeds:
        for ov in oversampling:
            for m in ordered:
                src = (f"{TEXT_SOURCE}-{ov}-s{seed}"
                       if MODELS[m].text_stage and m != TEXT_SOURCE and TEXT_SOURCE in ordered else None)
                specs.append(RunSpec(m, ov, seed, src))
    return specs


def split_path(out: Path, seed: int) -> Path:
    return out / f"split-s{seed}.json"


def write_split(df: Any, out: Path, seed: int, fractions: tuple[float, float, float]) -> bool:
    """Make the seed's split (stratified on the study's labels) at ``<out>/split-s<seed>.json``.

    Returns True when the file is new or changed (the seed's runs are then stale)."""
    from genrelens.data.labels import STUDY_LABELS
    from genrelens.data.split import make_split, save_split

    split = make_split(df, fractions=fractions, seed=seed, labels=STUDY_LABELS)
    path = split_path(out, seed)
    if path.exists() and json.loads(path.read_text()) == split:
        return False
    save_split(split, path)
    return True


def run_config(spec: RunSpec, out: Path, data: str | None, cache_dir: str | None, overrides: dict):
    """The RunConfig of one grid cell as it trains here (``overrides`` apply to every run; precision resolved)."""
    from genrelens.config import RunConfig

    extra = dict(overrides.get("extra", {}))
    if spec.text_from:
        extra["text_from"] = str(out / "runs" / spec.text_from)
    from genrelens.train.run import resolve_precision

    kw = {k: v for k, v in overrides.items() if k != "extra"}
    return resolve_precision(RunConfig(model=spec.model, oversample=spec.oversample, seed=spec.seed, data=data,
                                       out=str(out / "runs" / spec.name), split_file=str(split_path(out, spec.seed)),
                                       cache_dir=cache_dir, extra=extra, **kw))


def is_done(cfg) -> bool:
    """True when ``cfg.out`` holds the finished results of exactly this config."""
    from genrelens.config import RunConfig

    run_dir = Path(cfg.out)
    if not (run_dir / bundle.MANIFEST).exists() or read_artifact(run_dir, "metrics") is None:
        return False
    try:
        return RunConfig.load(run_dir / bundle.CONFIG) == cfg
    except (ValueError, TypeError, json.JSONDecodeError):
        return False


def mean_std(values: list[float]) -> dict[str, float | int]:
    """``{"mean", "std", "n"}``; std over seeds with ddof=1 (0 for a single seed)."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()) if len(a) else float("nan"),
            "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def summarize(runs: list[dict]) -> list[dict]:
    """Per (model, oversampling): mean and std over seeds of the test F1s, plot+poster F1 and train time."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["oversample"]), []).append(r)
    out = []
    for (model, ov), rs in groups.items():
        row: dict[str, Any] = {"model": model, "oversample": ov, "seeds": [r["seed"] for r in rs]}
        for m in SUMMARY_METRICS:
            row[m] = mean_std([r["metrics"]["test"][m] for r in rs])
        both = [r["metrics"].get("test_by_modality", {}).get("plot+poster") for r in rs]
        both = [b["weighted_f1"] for b in both if b]
        row["plot+poster_weighted_f1"] = mean_std(both) if both else None
        row["train_seconds"] = mean_std([r["metrics"]["train_seconds"] for r in rs])
        row["wall_seconds"] = mean_std([r["wall_seconds"] for r in rs if r.get("wall_seconds") is not None])
        out.append(row)
    return out


def _previous_wall(out: Path) -> dict[str, float]:
    """Per run name, the wall time recorded by an earlier call (kept for runs that are skipped now)."""
    try:
        prev = json.loads((out / "results.json").read_text())
        return {r["name"]: r["wall_seconds"] for r in prev.get("runs", []) if r.get("wall_seconds") is not None}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@dataclass
class GridState:
    """What the live progress table shows: finished runs, the one training now, the ones to come."""

    specs: list[RunSpec]
    rows: dict[str, dict] = field(default_factory=dict)
    retrained: set[str] = field(default_factory=set)
    current: str | None = None
    started: float = 0.0

    def table(self) -> Table:
        t = Table(title="benchmark", title_justify="left")
        for c in ("run", "status", "weighted F1", "micro F1", "macro F1", "seconds"):
            t.add_column(c, justify="left" if c in ("run", "status") else "right")
        for s in self.specs:
            r = self.rows.get(s.name)
            if r is None:
                running = s.name == self.current
                t.add_row(s.name, "[cyan]training[/]" if running else "[dim]pending[/]", "", "", "",
                          f"{time.time() - self.started:.0f}" if running else "")
                continue
            m = r["metrics"]["test"]
            secs = r["wall_seconds"] if r.get("wall_seconds") is not None else r["metrics"]["train_seconds"]
            t.add_row(s.name, "done (skipped)" if r["skipped"] else "[green]trained[/]",
                      f"{m['weighted_f1']:.3f}", f"{m['micro_f1']:.3f}", f"{m['macro_f1']:.3f}", f"{secs:.0f}")
        return t


def run_benchmark(
    data: str | os.PathLike | None = None,
    models: list[str] | tuple[str, ...] = STUDY_MODELS,
    oversampling: list[str] | tuple[str, ...] = ALL_OVERSAMPLING,
    seeds: int = 3,
    out: str | os.PathLike = "runs/benchmark",
    overrides: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """Train and evaluate the grid (``models`` x ``oversampling`` x seeds 0..N-1) and write ``results.json``.

    ``overrides`` are RunConfig fields applied to every run (e.g. ``{"epochs": 3}``); ``cache_dir`` None
    uses the default feature cache, shared by all runs. ``progress`` shows a live table of the grid on a terminal
    (runs train without their own bars); on a pipe or a log, each run prints its progress lines instead (one per
    stage and epoch: ``genrelens.progress``). Returns the results dict.
    """
    from genrelens.config import RunConfig
    from genrelens.data.labels import STUDY_LABELS
    from genrelens.data.table import load_table, resolve_data_path
    from genrelens.train.run import train

    console = console or Console(stderr=True)
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(overrides or {})
    data_path = str(resolve_data_path(data))
    seed_list = list(range(seeds))
    specs = plan_runs(list(models), list(oversampling), seed_list)
    cache = str(cache_dir) if cache_dir else None
    df, _ = load_table(data_path, skip_bad=overrides.get("skip_bad", False), sep=overrides.get("sep"),
                       columns=overrides.get("columns") or None)
    fractions = tuple(overrides.get("split_fractions", RunConfig().split_fractions))
    new_split = {s: write_split(df, out, s, fractions) for s in seed_list}
    prev_wall = _previous_wall(out)
    memo: dict = {}  # the text stage's frozen-bottom states, shared by the runs of one split
    state = GridState(specs)
    terminal = is_terminal()
    lines = progress and not terminal  # on a pipe or log the live table shows nothing: runs print lines
    with grid_display(state, console, progress, terminal):
        for i, spec in enumerate(specs, 1):
            state.current, state.started = spec.name, time.time()
            cfg = run_config(spec, out, data_path, cache, overrides)
            stale = new_split[spec.seed] or (spec.text_from in state.retrained)
            skipped = not stale and is_done(cfg)
            wall = prev_wall.get(spec.name)
            if not skipped:
                wall = _train_one(train, cfg, stale, console, memo, lines)
                state.retrained.add(spec.name)
            metrics = read_artifact(Path(cfg.out), "metrics")  # as saved (JSON types)
            state.rows[spec.name] = {
                "name": spec.name, "model": spec.model, "oversample": spec.oversample, "seed": spec.seed,
                "dir": str(Path("runs") / spec.name), "skipped": skipped, "text_from": spec.text_from,
                "wall_seconds": wall, "metrics": metrics}
            state.current = None
            t = metrics["test"]
            console.print(f"[{i}/{len(specs)}] {spec.name}: {'skipped (done)' if skipped else 'trained'}, "
                          f"weighted F1 {t['weighted_f1']:.3f}"
                          + (f", {wall:.0f} s" if wall is not None and not skipped else ""))
    rows = state.rows
    runs = [rows[s.name] for s in specs]
    results = {
        "data": data_path, "labels": list(STUDY_LABELS), "models": [m for m in ALL_MODELS if m in models],
        "oversampling": list(oversampling), "seeds": seed_list, "overrides": overrides,
        "splits": {str(s): split_path(out, s).name for s in seed_list},
        "wall_seconds": round(time.time() - t0, 1),  # this call (skipped runs cost ~nothing)
        "grid_seconds": round(sum(r["wall_seconds"] or r["metrics"]["train_seconds"] for r in runs), 1),
        "n_trained": sum(not r["skipped"] for r in runs), "n_skipped": sum(r["skipped"] for r in runs),
        "study_table2": {m: list(v) if v else None for m, v in STUDY_TABLE2.items()},
        "summary": summarize(runs), "runs": runs,
    }
    write_json_atomic(out / "results.json", results)
    console.print(f"benchmark: {results['n_trained']} run(s) trained, {results['n_skipped']} skipped, "
                  f"{results['wall_seconds']:.0f} s wall (grid {results['grid_seconds']:.0f} s of training) "
                  f"-> {out / 'results.json'}")
    return results


def _train_one(train, cfg, stale: bool, console: Console, memo: dict, progress: bool = False) -> float:
    """Train one run: resume an interrupted run of the same config, else start clean (``progress``: its own
    progress lines). Returns its seconds."""
    from genrelens.config import RunConfig

    run_dir = Path(cfg.out)
    same = (run_dir / bundle.CONFIG).exists() and not stale
    if same:
        try:
            same = RunConfig.load(run_dir / bundle.CONFIG) == cfg
        except (ValueError, TypeError, json.JSONDecodeError):
            same = False
    if not same:
        shutil.rmtree(run_dir / bundle.CHECKPOINTS, ignore_errors=True)
    t = time.time()
    train(cfg, resume=same, progress=progress, console=console, memo=memo)
    return round(time.time() - t, 1)


@contextmanager
def grid_display(state: GridState, console: Console, progress: bool, terminal: bool) -> Iterator[None]:
    """The grid's table: live on a terminal; on a pipe or log, printed once at the end (rich's live display
    leaves its last line without a newline there)."""
    if not progress:
        yield
    elif terminal:
        with Live(get_renderable=state.table, console=console, refresh_per_second=1):
            yield
    else:
        try:
            yield
        finally:
            console.print(state.table())


def summary_table(results: dict) -> Table:
    """A rich table of the per (model, oversampling) means over seeds."""
    t = Table(title=f"benchmark: mean ± std over {len(results['seeds'])} seed(s)", title_justify="left")
    for c in ("model", "oversampling", "weighted F1", "study", "micro F1", "macro F1", "seconds"):
        t.add_column(c, justify="left" if c in ("model", "oversampling") else "right")
    for r in results["summary"]:
        study = STUDY_TABLE2.get(r["model"])
        ref = f"{study[0 if r['oversample'] == 'none' else 1]:.3f}" if study else "-"
        t.add_row(r["model"], r["oversample"], _pm(r["weighted_f1"]), ref, _pm(r["micro_f1"]),
                  _pm(r["macro_f1"]), f"{r['wall_seconds']['mean']:.0f}" if r["wall_seconds"]["n"] else "-")
    return t


def _pm(s: dict) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if s["n"] > 1 else f"{s['mean']:.3f}"


__all__ = ["ALL_MODELS", "STUDY_MODELS", "EXTRA_MODELS", "QUICK_MODELS", "STUDY_TABLE2", "RunSpec", "plan_runs",
           "run_benchmark", "summarize", "summary_table"]
