"""Precision chosen by the CPU (encoders/precision.py): selection with injected CPU flags, the bf16 and int8
paths against fp32 on real movies, and the accuracy guard's rule, cache and fp32 fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genrelens.encoders import precision as prec
from genrelens.predict import GenreClassifier

AMD_ZEN4 = "fpu sse4_2 avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni"  # this machine's kind: no AMX
SAPPHIRE_RAPIDS = "avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile"
OLD_XEON = "sse4_2 avx avx2 fma avx512f avx512bw"  # AVX-512 but neither bf16 nor VNNI
HASWELL = "sse4_2 avx avx2 fma"


@pytest.mark.parametrize(("flags", "expected"), [
    (AMD_ZEN4, ["int8"]),  # avx512_bf16 without AMX: bf16 measured slower than fp32 ONNX here
    (SAPPHIRE_RAPIDS, ["bf16", "int8"]),
    ("avx2 avx_vnni", ["int8"]),
    ("avx512f avx512_bf16", []),
    (OLD_XEON, []),
    (HASWELL, []),
    ("", []),
])
def test_candidates_follow_the_cpu_flags(flags: str, expected: list[str]) -> None:
    assert prec.candidates(flags) == expected


def test_flags_come_from_the_environment_or_proc(monkeypatch) -> None:
    monkeypatch.setenv(prec.ENV_FLAGS, "AVX2, avx512_vnni")
    assert prec.cpu_flags() == {"avx2", "avx512_vnni"}
    assert prec.candidates() == ["int8"]
    monkeypatch.delenv(prec.ENV_FLAGS)
    if Path("/proc/cpuinfo").is_file():
        assert "sse2" in prec.cpu_flags() or "fpu" in prec.cpu_flags()  # the real CPU's flags


@pytest.mark.parametrize("flags", [OLD_XEON, HASWELL, ""])
def test_auto_is_fp32_without_bf16_or_vnni_units(flags: str, tmp_path: Path) -> None:
    calls = []
    choice = prec.resolve("auto", tmp_path, lambda p: calls.append(p), flags=flags, cache_dir=tmp_path)
    assert choice.precision == "fp32" and choice.guards == [] and calls == []
    assert not (tmp_path / "precision").exists()


def test_explicit_precision_skips_the_guard(tmp_path: Path) -> None:
    choice = prec.resolve("int8", tmp_path, lambda p: pytest.fail("guard ran"), flags=HASWELL, cache_dir=tmp_path)
    assert choice.precision == "int8" and choice.requested == "int8"
    with pytest.raises(ValueError, match="precision must be"):
        prec.resolve("fp16", tmp_path, lambda p: None, cache_dir=tmp_path)


def test_guard_rule() -> None:
    rng = np.random.default_rng(0)
    y = rng.random((1000, 5)) < 0.3
    pred = y.copy()
    pred[:100] = ~pred[:100]  # a model with some errors
    ok, f32, fc, same, _ = prec.judge(y, pred, pred)
    assert ok and f32 == fc and same == 1.0
    changed = pred.copy()
    changed[100:111, 0] = ~changed[100:111, 0]  # 11 of 1000 movies change: 98.9% identical
    ok, *_, reason = prec.judge(y, pred, changed)
    assert not ok and "identical genres on 98.90%" in reason
    worse = pred.copy()
    worse[200:210] = ~y[200:210]  # 1% of movies, all wrong: F1 drops by more than 0.003
    ok, f32, fc, same, reason = prec.judge(y, pred, worse)
    assert same == 0.99 and f32 - fc > prec.MAX_F1_DROP and not ok and "F1 drops" in reason


@pytest.fixture(scope="module")
def movies(subset_csv: Path) -> tuple[list[str], list[str]]:
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    df = df[(df["plot"] != "") & (df["poster"] != "")].head(16)
    return list(df["plot"]), [str(subset_csv.parent / p) for p in df["poster"]]


@pytest.fixture(scope="module")
def clf(tiny_model_dir: Path) -> GenreClassifier:
    return GenreClassifier.load(tiny_model_dir, precision="fp32")


@pytest.mark.parametrize(("precision", "max_diff", "min_cos"), [("bf16", 0.05, 0.99), ("int8", 0.1, 0.95)])
def test_reduced_precision_agrees_with_fp32(clf: GenreClassifier, movies, precision: str, max_diff: float,
                                            min_cos: float) -> None:
    plots, posters = movies  # raw scores: the encoders' agreement, not magnified by a calibration map
    ref = clf.score(plots, posters, calibrated=False)[0]
    t32 = clf.text_encoder.encode(plots)
    p32 = clf.poster_encoder.encode(posters)
    clf.set_precision(precision)
    try:
        assert clf.precision == precision
        got = clf.score(plots, posters, calibrated=False)[0]
        t, p = clf.text_encoder.encode(plots), clf.poster_encoder.encode(posters)
        if precision == "bf16":
            assert clf.text_encoder.session is None  # eager torch under autocast
        else:
            assert "int8" in clf.text_encoder.onnx_file.name and clf.poster_encoder.precision == "int8"
            assert not np.array_equal(p, p32)  # the quantized CNN really ran
        assert not np.array_equal(t, t32)  # the reduced-precision text path really ran
        assert ":prec=" in clf.text_encoder.cache_key_prefix()  # never mixed with fp32 features in the cache
    finally:
        clf.set_precision("fp32")

    def cos(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    assert cos(t, t32).min() > min_cos and cos(p, p32).min() > min_cos
    assert np.abs(got - ref).max() < max_diff
    np.testing.assert_allclose(clf.score(plots, posters, calibrated=False)[0], ref, atol=1e-5)  # back to fp32


def test_guard_runs_once_is_cached_and_a_failing_guard_falls_back(clf: GenreClassifier, tmp_path: Path,
                                                                  monkeypatch) -> None:
    lines: list[str] = []
    choice = clf.use_precision("auto", flags=AMD_ZEN4, guard_dir=tmp_path, report=lines.append)
    files = sorted((tmp_path / "precision").glob("*.json"))
    assert [g.precision for g in choice.guards][:1] == ["int8"] and len(files) == len(choice.guards)
    first = choice.guards[0]
    saved = json.loads(files[0].read_text()) if len(files) == 1 else None
    assert first.n_movies > 20 and 0 <= first.identical_share <= 1 and any("guard" in x for x in lines)
    if saved is not None:
        assert saved["precision"] == "int8" and saved["model_key"] == prec.model_key(clf.model_dir)
    assert choice.precision == next((g.precision for g in choice.guards if g.passed), "fp32")
    assert clf.precision == choice.precision
    clf.set_precision("fp32")

    # second time: read from the cache, the guard does not run
    monkeypatch.setattr(prec, "check_precision", lambda *a: pytest.fail("guard ran again"))
    again = clf.use_precision("auto", flags=AMD_ZEN4, guard_dir=tmp_path)
    assert [g.to_json() for g in again.guards] == [g.to_json() for g in choice.guards]
    assert again.precision == choice.precision
    clf.set_precision("fp32")

    # a guard that fails (here: an impossible agreement threshold, on another CPU kind) means fp32
    monkeypatch.undo()
    monkeypatch.setattr(prec, "MIN_IDENTICAL", 1.01)
    failed = clf.use_precision("auto", flags="avx512f avx512_vnni", guard_dir=tmp_path)
    assert failed.precision == "fp32" and clf.precision == "fp32"
    assert [g.precision for g in failed.guards] == ["int8"] and not failed.guards[0].passed
    assert "identical genres" in failed.guards[0].reason
    assert len(list((tmp_path / "precision").glob("*.json"))) == len(files) + 1

    # accurate but not faster than fp32 on this machine: fp32 as well
    monkeypatch.undo()
    monkeypatch.setattr(prec, "judge", lambda y, a, b: (True, 0.5, 0.5, 1.0, ""))
    monkeypatch.setattr(prec, "speeds", lambda *a: (20.0, 15.0))
    slow = clf.use_precision("auto", flags="avx2 avx_vnni", guard_dir=tmp_path)
    assert slow.precision == "fp32" and "not faster than fp32" in slow.guards[0].reason


def test_cli_precision_option(tiny_model_dir: Path, subset_csv: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from genrelens.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    base = ["predict", "--model-dir", str(tiny_model_dir), "--plot", "A detective hunts a killer.", "--json"]
    r = runner.invoke(app, [*base, "--precision", "int8"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == "int8" and json.loads(r.stdout)["genres"]
    monkeypatch.setenv(prec.ENV_FLAGS, HASWELL)  # a CPU without bf16/VNNI: auto is fp32, no guard runs
    r = runner.invoke(app, [*base, "--precision", "auto"])
    assert r.exit_code == 0 and json.loads(r.stdout)["precision"] == "fp32" and "guard" not in r.stderr
    r = runner.invoke(app, [*base, "--precision", "fp16"])
    assert r.exit_code == 2 and "precision must be" in r.output
    r = runner.invoke(app, ["evaluate", "--model-dir", str(tiny_model_dir), "--data", str(subset_csv), "--split",
                            "val", "--json", "--precision", "bf16"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == "bf16"


def test_bf16_training_is_recorded_and_learns(subset_csv: Path, cache_dir: Path, tmp_path: Path) -> None:
    """``precision="bf16"`` trains the text stage and the head under autocast: weights stay fp32, the run's
    config and metrics say bf16, and the model loads and scores like any other."""
    from conftest import train_tiny

    from genrelens.config import RunConfig

    metrics = train_tiny("text-finetuned", subset_csv, tmp_path / "m", cache_dir, precision="bf16")
    assert metrics["precision"] == "bf16" and RunConfig.load(tmp_path / "m" / "config.json").precision == "bf16"
    assert metrics["val"]["weighted_f1"] > 0.2  # it learned something
    clf = GenreClassifier.load(tmp_path / "m", precision="fp32")
    assert all(p.dtype == torch.float32 for p in clf.text_encoder.model.parameters())
    assert clf.predict_proba(["A detective hunts a killer."]).dtype == np.float32
    with pytest.raises(ValueError, match="training precision"):
        RunConfig(precision="int8")
