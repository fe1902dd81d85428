"""The benchmark grid: planning, results.json, shared splits, encoder reuse, skip/resume, model install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrelens.experiments.benchmark import plan_runs, run_benchmark

OVERRIDES = {"epochs": 3, "ft_epochs": 1, "ft_layers": 1, "max_length": 64, "patience": 2}
TINY_MODELS = ["naive", "poster", "text-finetuned", "integrated"]
TINY_OVERSAMPLING = ["none", "study"]


def tiny_grid(tmp_path_factory, subset_csv: Path, cache_dir: Path) -> tuple[Path, dict]:
    """One tiny grid per test run (4 models x 2 oversamplings x 1 seed), shared with test_report:
    ``(its folder, what run_benchmark returned)``."""
    from conftest import built_once

    def build(folder: Path) -> None:
        results = run_benchmark(subset_csv, TINY_MODELS, TINY_OVERSAMPLING, seeds=1, out=folder / "grid",
                                overrides=OVERRIDES, cache_dir=cache_dir, progress=False)
        (folder / "returned.json").write_text(json.dumps(results))

    folder = built_once(tmp_path_factory, "grid", build)
    return folder / "grid", json.loads((folder / "returned.json").read_text())


@pytest.fixture(scope="session")
def grid(tmp_path_factory, subset_csv, cache_dir) -> tuple[Path, dict]:
    return tiny_grid(tmp_path_factory, subset_csv, cache_dir)


def test_plan_orders_text_finetuned_first_and_reuses_it():
    specs = plan_runs(["fusion", "integrated", "text-finetuned", "naive"], ["none", "study"], [0, 1])
    names = [s.name for s in specs]
    assert len(specs) == 16
    for seed in (0, 1):
        for ov in ("none", "study"):
            src = f"text-finetuned-{ov}-s{seed}"
            assert names.index(src) < names.index(f"integrated-{ov}-s{seed}") < names.index(f"fusion-{ov}-s{seed}")
            assert next(s for s in specs if s.name == f"fusion-{ov}-s{seed}").text_from == src
    alone = plan_runs(["integrated"], ["none"], [0])
    assert alone[0].text_from is None  # no text-finetuned run: integrated fine-tunes itself
    with pytest.raises(ValueError, match="unknown model"):
        plan_runs(["bert"], ["none"], [0])


@pytest.mark.slow
def test_grid_results(grid):
    out, results = grid
    saved = json.loads((out / "results.json").read_text())
    assert saved["wall_seconds"] == results["wall_seconds"]
    for key in ("data", "labels", "models", "oversampling", "seeds", "wall_seconds", "grid_seconds", "summary",
                "runs", "study_table2", "n_trained"):
        assert key in saved, key
    names = {r["name"] for r in saved["runs"]}
    assert names == {f"{m}-{o}-s0" for m in TINY_MODELS for o in TINY_OVERSAMPLING}
    assert saved["n_trained"] == 8
    split = json.loads((out / "split-s0.json").read_text())
    for r in saved["runs"]:
        run = out / r["dir"]
        assert (run / "metrics.json").exists() and (run / "test_proba.npy").exists()
        assert json.loads((run / "split.json").read_text()) == split  # one split for every model
        assert r["wall_seconds"] > 0 or r["model"] == "naive"
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["epochs"] == 3 and cfg["oversample"] == r["oversample"]
        if r["model"] == "integrated":
            assert cfg["extra"]["text_from"] == str(out / "runs" / f"text-finetuned-{r['oversample']}-s0")
    assert len(saved["summary"]) == 8
    row = next(s for s in saved["summary"] if s["model"] == "integrated" and s["oversample"] == "study")
    for m in ("weighted_f1", "micro_f1", "macro_f1", "samples_f1", "train_seconds"):
        assert set(row[m]) == {"mean", "std", "n"} and row[m]["n"] == 1
    assert 0 < row["weighted_f1"]["mean"] <= 1


@pytest.mark.slow
def test_second_call_trains_nothing(grid, subset_csv, cache_dir, monkeypatch):
    out, first = grid

    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("genrelens.train.run.train", boom)
    again = run_benchmark(subset_csv, TINY_MODELS, TINY_OVERSAMPLING, seeds=1, out=out, overrides=OVERRIDES,
                          cache_dir=cache_dir, progress=False)
    assert again["n_trained"] == 0 and again["n_skipped"] == 8
    before = {r["name"]: r for r in first["runs"]}
    for r in again["runs"]:  # figures and the first call's wall times are kept
        assert r["metrics"]["test"] == before[r["name"]]["metrics"]["test"]
        assert r["wall_seconds"] == before[r["name"]]["wall_seconds"]


@pytest.mark.slow
def test_changed_config_is_not_skipped(grid, subset_csv, cache_dir, monkeypatch):
    out, _ = grid
    calls = []
    monkeypatch.setattr("genrelens.train.run.train", lambda cfg, **k: calls.append(cfg) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_benchmark(subset_csv, ["naive"], ["none"], seeds=1, out=out, overrides={**OVERRIDES, "epochs": 4},
                      cache_dir=cache_dir, progress=False)
    assert [c.model for c in calls] == ["naive"] and calls[0].epochs == 4


def test_benchmark_trains_with_progress_lines_when_piped(subset_csv, tmp_path, monkeypatch):
    """`make run` (a benchmark whose output goes to a log) printed nothing for the 14 minutes of its training:
    when progress goes to a pipe, each run trains with its progress lines (one per stage and epoch); on a
    terminal the grid's live table shows instead and runs train without bars of their own."""
    from genrelens.experiments import benchmark

    seen = []

    def fake_train(cfg, **kw):
        seen.append(kw["progress"])
        raise KeyboardInterrupt  # stop after the first run: only the flag it got matters

    monkeypatch.setattr("genrelens.train.run.train", fake_train)
    for terminal, want in ((False, True), (True, False)):
        monkeypatch.setattr(benchmark, "is_terminal", lambda console=None, t=terminal: t)
        with pytest.raises(KeyboardInterrupt):
            run_benchmark(subset_csv, ["naive"], ["none"], seeds=1, out=tmp_path / str(terminal), progress=True)
        assert seen[-1] is want
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(subset_csv, ["naive"], ["none"], seeds=1, out=tmp_path / "quiet", progress=False)
    assert seen[-1] is False


def test_the_grid_table_on_a_pipe_ends_its_line():
    """On a pipe or log the grid's table is printed once, ending with a newline (rich's live display left its last
    border and the summary line after it on one line: ``...┘benchmark: 2 run(s) trained``)."""
    import io

    from rich.console import Console

    from genrelens.experiments.benchmark import GridState, grid_display

    console = Console(file=io.StringIO(), width=100)  # not a terminal
    state = GridState(plan_runs(["naive"], ["none"], [0]))
    with grid_display(state, console, progress=True, terminal=False):
        pass
    console.print("benchmark: done")
    out = console.file.getvalue()
    assert out.endswith("\nbenchmark: done\n") and out.count("benchmark: done") == 1 and "naive" in out
