"""Precision chosen by the CPU (encoders/precision.py): selection with injected CPU flags, the bf16 and int8
paths against fp32 on real movies, and the accuracy guard (genrelens/guard.py): its rule, cache and fp32 fallback.

Nothing here assumes the CPU the suite runs on: CPU kinds are given as flags (``GENRELENS_CPU_FLAGS`` or a
``flags`` argument); `scripts/test_cpu_cap.sh` reruns these tests with the ISA capped to AVX2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino
import pandas as pd
import pytest
import torch

from genrelens import guard
from genrelens.encoders import precision as prec
from genrelens.encoders.onnx import OpenVINOSession
from genrelens.predict import GenreClassifier

AMD_ZEN4 = "fpu sse4_2 avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni"  # AVX-512 bf16 + VNNI, no AMX
SAPPHIRE_RAPIDS = "avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile"
OLD_XEON = "sse4_2 avx avx2 fma avx512f avx512bw"  # AVX-512 but neither bf16 nor VNNI
ICE_LAKE = "sse4_2 avx2 fma avx512f avx512bw avx512_vnni"  # VNNI, no bf16: int8 is the one candidate
HASWELL = "sse4_2 avx avx2 fma"


@pytest.mark.parametrize(("flags", "expected"), [
    (AMD_ZEN4, ["bf16", "int8"]),  # avx512_bf16 without AMX: OpenVINO's bf16 kernels (docs/performance.md)
    (SAPPHIRE_RAPIDS, ["bf16", "int8"]),
    ("avx2 avx_vnni", ["int8"]),
    ("avx512f avx512_bf16", ["bf16"]),
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
    choice = prec.resolve("auto", "key", flags=flags, cache_dir=tmp_path)
    assert choice.precision == "fp32" and choice.guards == [] and choice.unchecked == [] and not choice.note
    assert guard.run_checks("key", lambda p: pytest.fail("guard ran"), flags=flags, cache_dir=tmp_path) == []
    assert not (tmp_path / "precision").exists()


def test_a_bad_precision_in_the_environment_is_named(tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(prec.ENV_PRECISION, "bogus")
    with pytest.raises(ValueError, match=r"\$GENRELENS_PRECISION: precision must be one of .* not 'bogus'"):
        GenreClassifier.load(tiny_model_dir)
    assert GenreClassifier.load(tiny_model_dir, precision="fp32").precision == "fp32"  # an explicit choice wins


def test_explicit_precision_skips_the_guard(tmp_path: Path) -> None:
    choice = prec.resolve("int8", flags=HASWELL, cache_dir=tmp_path)
    assert choice.precision == "int8" and choice.requested == "int8" and not choice.note
    assert prec.resolve("bf16", flags=HASWELL, cache_dir=tmp_path).precision == "bf16"
    assert prec.candidates(AMD_ZEN4, text=False) == ["int8"]  # bf16 changes only the text encoder
    with pytest.raises(ValueError, match="precision must be"):
        prec.resolve("fp16", cache_dir=tmp_path)


def _result(precision: str, passed: bool, key: str, flags: str) -> prec.GuardResult:
    return prec.GuardResult(precision, passed, 500, 0.6, 0.6, 1.0 if passed else 0.9, 0.01, 3.0, 20.0, 30.0,
                            model_key=key, flags=tuple(sorted(prec.cpu_flags(flags) & prec.RELEVANT_FLAGS)))


def test_auto_takes_the_saved_result_of_this_cpu_kind_and_weights(tmp_path: Path) -> None:
    """``auto`` reads results: the model folder's first, then the machine's cache; it never runs the guard."""
    saved = prec.guard_content(None, "k1", [_result("int8", True, "k1", AMD_ZEN4)])
    choice = prec.resolve("auto", "k1", saved=saved, flags=AMD_ZEN4, cache_dir=tmp_path)
    assert choice.precision == "int8" and choice.sources == ["model folder"] and not choice.note
    assert choice.to_json()["guards"][0]["source"] == "model folder"
    # other weights (retrained), another CPU kind, another guard version: not this machine's result -> fp32 at once
    for key, flags, content in [("k2", AMD_ZEN4, saved), ("k1", SAPPHIRE_RAPIDS, saved),
                                ("k1", AMD_ZEN4, {**saved, "guard_version": prec.GUARD_VERSION + 1})]:
        other = prec.resolve("auto", key, saved=content, flags=flags, cache_dir=tmp_path, model_dir=Path("/m"))
        assert other.precision == "fp32" and other.guards == [] and other.unchecked == prec.candidates(flags)
        assert "genrelens precision-check --model-dir /m" in other.note
    # the machine's cache stands in for a folder without results (e.g. a read-only one)
    prec.write_guard(prec.guard_path("k2", prec.cpu_flags(AMD_ZEN4), "int8", tmp_path),
                     _result("int8", True, "k2", AMD_ZEN4))
    cached = prec.resolve("auto", "k2", saved=saved, flags=AMD_ZEN4, cache_dir=tmp_path)
    assert cached.precision == "int8" and cached.sources == ["cache"]
    # a failed result is a result: fp32 without a note (nothing left to check)
    failed = prec.guard_content(saved, "k1", [_result("int8", False, "k1", AMD_ZEN4)])
    assert len(failed["results"]) == 1  # replaced, not appended
    assert prec.resolve("auto", "k1", saved=failed, flags=AMD_ZEN4, cache_dir=tmp_path).precision == "fp32"
    # results of several CPU kinds live side by side; stale weights are dropped
    both = prec.guard_content(saved, "k1", [_result("bf16", True, "k1", SAPPHIRE_RAPIDS)])
    assert len(both["results"]) == 2
    assert prec.resolve("auto", "k1", saved=both, flags=SAPPHIRE_RAPIDS, cache_dir=tmp_path).precision == "bf16"
    assert prec.guard_content(both, "k3", [])["results"] == []


def test_guard_rule() -> None:
    rng = np.random.default_rng(0)
    y = rng.random((1000, 5)) < 0.3
    pred = y.copy()
    pred[:100] = ~pred[:100]  # a model with some errors
    ok, f32, fc, same, _ = guard.judge(y, pred, pred)
    assert ok and f32 == fc and same == 1.0
    changed = pred.copy()
    changed[100:111, 0] = ~changed[100:111, 0]  # 11 of 1000 movies change: 98.9% identical
    ok, *_, reason = guard.judge(y, pred, changed)
    assert not ok and "identical genres on 98.90%" in reason
    worse = pred.copy()
    worse[200:210] = ~y[200:210]  # 1% of movies, all wrong: F1 drops by more than 0.003
    ok, f32, fc, same, reason = guard.judge(y, pred, worse)
    assert same == 0.99 and f32 - fc > guard.MAX_F1_DROP and not ok and "F1 drops" in reason


def test_guard_summary_gives_speed_only_when_it_was_measured() -> None:
    # the speed round runs only after the accuracy check passed; a failed check printed "0.0 vs 0.0 movies/s"
    failed = prec.GuardResult("int8", False, 900, 0.60, 0.59, 0.88, 0.3, 4.0, reason="F1 drops by 0.0100 > 0.003")
    assert "movies/s" not in failed.summary() and "speed not measured" in failed.summary()
    timed = prec.GuardResult("int8", True, 900, 0.60, 0.60, 1.0, 0.01, 4.0, rate_fp32=80.0, rate=120.5)
    assert timed.summary().endswith("int8 120.5 vs fp32 80.0 movies/s")


@pytest.fixture(scope="module")
def movies(subset_csv: Path) -> tuple[list[str], list[str]]:
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    df = df[(df["plot"] != "") & (df["poster"] != "")].head(16)
    return list(df["plot"]), [str(subset_csv.parent / p) for p in df["poster"]]


@pytest.fixture(scope="module")
def clf(tiny_model_dir: Path) -> GenreClassifier:
    return GenreClassifier.load(tiny_model_dir, precision="fp32")


@pytest.mark.parametrize(("precision", "max_diff", "min_cos"), [("bf16", 0.05, 0.99), ("int8", 0.1, 0.95)])
@pytest.mark.slow
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
        if precision == "bf16":  # the text graph on OpenVINO in bf16 (fp32 arithmetic on a CPU without bf16 units)
            assert isinstance(clf.text_encoder.session, OpenVINOSession)
            assert clf.poster_encoder.precision == "fp32"  # the CNN in bf16 moved genre sets: ONNX Runtime fp32
            np.testing.assert_array_equal(p, p32)
            reduced = clf.text_encoder.session.inference_precision == "bf16"
            if "BF16" not in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):  # the real CPU's
                assert not reduced  # fp32 arithmetic where the CPU has no bf16 units
        else:
            assert "int8" in clf.text_encoder.onnx_file.name
            if prec.exact_int8():  # VNNI (real or simulated): the posters are quantized too
                assert clf.poster_encoder.precision == "int8" and not np.array_equal(p, p32)  # and really ran
            else:  # unsigned int8 convolutions are slower than fp32: the posters stay fp32
                assert clf.poster_encoder.precision == "fp32"
                np.testing.assert_array_equal(p, p32)
            reduced = True
        if reduced:
            assert not np.array_equal(t, t32)  # the reduced-precision text path really ran
        assert ":prec=" in clf.text_encoder.cache_key_prefix()  # never mixed with fp32 features in the cache
    finally:
        clf.set_precision("fp32")

    def cos(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    assert cos(t, t32).min() > min_cos and cos(p, p32).min() > min_cos
    assert np.abs(got - ref).max() < max_diff
    np.testing.assert_allclose(clf.score(plots, posters, calibrated=False)[0], ref, atol=1e-5)  # back to fp32


def test_an_empty_flags_variable_is_unset(monkeypatch) -> None:
    """``GENRELENS_CPU_FLAGS=`` reads the real CPU (it simulated a CPU without any flags)."""
    monkeypatch.delenv(prec.ENV_FLAGS, raising=False)
    real = prec.cpu_flags()
    monkeypatch.setenv(prec.ENV_FLAGS, "")
    assert prec.cpu_flags() == real and not prec.describe_cpu()["simulated"]


@pytest.mark.parametrize(("flags", "exact"), [(AMD_ZEN4, True), (SAPPHIRE_RAPIDS, True), ("avx2 avx_vnni", True),
                                           (OLD_XEON, False), (HASWELL, False), ("", False)])
def test_int8_options_follow_the_cpu_kind(flags: str, exact: bool) -> None:
    """Signed 8-bit weights only where VNNI/AMX-INT8 multiply uint8 x int8 exactly; unsigned (U8U8) elsewhere."""
    assert prec.exact_int8(flags) is exact
    assert (prec.int8_options(flags).get("weight_type") == "QUInt8") is not exact
    assert prec.kind_flags(flags) == tuple(sorted(prec.cpu_flags(flags) & prec.RELEVANT_FLAGS))


def _weight_types(path: Path) -> set[int]:
    """The element types of a quantized graph's 8-bit weight tensors (initializers of 2 or more dimensions)."""
    import onnx

    eight = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    return {t.data_type for t in onnx.load(str(path)).graph.initializer if t.data_type in eight and len(t.dims) >= 2}


@pytest.mark.parametrize(("flags", "signed"), [(HASWELL, False), (AMD_ZEN4, True)])
@pytest.mark.slow
def test_int8_graphs_cannot_saturate_without_vnni(clf: GenreClassifier, movies, flags: str, signed: bool,
                                                  monkeypatch) -> None:
    """Without VNNI, ONNX Runtime multiplies uint8 activations by int8 weights with VPMADDUBSW, whose int16 pair
    sums saturate (2 x 255 x 127 > 32767): the int8 text graph built for such a CPU holds unsigned weights (U8U8,
    widened to 16 bits, exact), and the posters stay fp32 (ONNX Runtime's unsigned int8 convolutions run several
    times slower than fp32); a CPU with VNNI gets signed weights in both graphs. The scores are compared with fp32
    where the graphs suit the CPU that runs them (injected flags choose the graphs, not ONNX Runtime's kernels)."""
    import onnx

    plots, posters = movies
    real_vnni = bool(prec.cpu_flags() & prec.INT8_FLAGS)  # ONNX Runtime picks its kernels from cpuid, not flags
    monkeypatch.setenv(prec.ENV_FLAGS, flags)
    notes: list[str] = []
    choice = clf.use_precision("int8", report=notes.append)
    try:
        assert choice.precision == clf.precision == "int8"
        assert notes == ([] if signed else [prec.POSTERS_FP32]) and choice.note == "".join(notes)
        want = {onnx.TensorProto.INT8 if signed else onnx.TensorProto.UINT8}
        assert ("-u8-" in clf.text_encoder.onnx_file.name) is not signed
        assert _weight_types(clf.text_encoder.onnx_file) == want
        assert clf.poster_encoder.precision == ("int8" if signed else "fp32")
        if signed:
            graphs = list((clf.poster_encoder.cache_dir / "onnx").glob("*int8static-*.onnx"))
            assert graphs and all(_weight_types(p) == want for p in graphs if "-u8-" not in p.name)
        got = clf.score(plots, posters, calibrated=False)[0]
    finally:
        clf.set_precision("fp32")
    if signed and not real_vnni:  # signed graphs on a CPU without VNNI saturate: what the unsigned ones avoid
        return
    assert np.abs(got - clf.score(plots, posters, calibrated=False)[0]).max() < 0.1


def test_int8_without_vnni_on_a_model_without_text_runs_fp32_and_says_so(tiny_model_dir: Path, monkeypatch) -> None:
    """Without VNNI the posters stay fp32 under int8; a model that reads no text would then run nothing in int8:
    it runs (and reports) fp32, with the reason."""
    monkeypatch.setenv(prec.ENV_FLAGS, HASWELL)
    clf = GenreClassifier.load(tiny_model_dir, precision="fp32")
    clf.bundle.text_encoder = None  # as a poster-only model
    notes: list[str] = []
    choice = clf.use_precision("int8", report=notes.append)
    assert choice.precision == clf.precision == clf.poster_encoder.precision == "fp32"
    assert notes == [choice.note] == [prec.INT8_NOTHING]


@pytest.fixture()
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model that a test may write guard results into."""
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.slow
def test_guard_runs_at_check_is_saved_in_the_folder_and_used_at_load(model_copy: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    from genrelens import bundle

    clf = GenreClassifier.load(model_copy, precision="fp32")
    lines: list[str] = []
    choice = guard.check_precisions(clf, flags=ICE_LAKE, guard_dir=tmp_path / "a", report=lines.append)
    first = choice.guards[0]
    assert first.precision == "int8" and first.n_movies > 20 and 0 <= first.identical_share <= 1
    assert any("checking int8" in x for x in lines) and choice.sources == ["model folder"]
    assert choice.precision == ("int8" if first.passed else "fp32") == clf.precision
    saved = json.loads((model_copy / bundle.PRECISION_GUARD).read_text())
    assert saved["results"][0]["model_key"] == clf.bundle.weights_key()
    assert bundle.PRECISION_GUARD in json.loads((model_copy / bundle.MANIFEST).read_text())["files"]

    # a fresh load, a machine with an empty cache: the folder's result is used, the guard does not run
    monkeypatch.setattr(guard, "check_precision", lambda *a: pytest.fail("guard ran at load"))
    monkeypatch.setenv(prec.ENV_FLAGS, ICE_LAKE)
    monkeypatch.setenv("GENRELENS_CACHE", str(tmp_path / "empty"))
    again = GenreClassifier.load(model_copy, precision="auto")
    assert again.precision == choice.precision and again.precision_choice.sources == ["model folder"]
    assert [g.to_json() for g in again.precision_choice.guards] == [first.to_json()]
    assert not (tmp_path / "empty" / "precision").exists()

    # another CPU kind (no result for it): fp32 at once, a note naming the command, no guard
    monkeypatch.setenv(prec.ENV_FLAGS, "avx2 avx_vnni")
    notes: list[str] = []
    other = GenreClassifier.load(model_copy, precision="auto", report=notes.append)
    assert other.precision == "fp32" and other.precision_choice.guards == []
    assert notes and f"genrelens precision-check --model-dir {model_copy}" in notes[0]

    # the CLI command reuses this machine's cached result (no guard run) and prints the choice
    from typer.testing import CliRunner

    from genrelens.cli import app

    monkeypatch.setenv(prec.ENV_FLAGS, ICE_LAKE)
    monkeypatch.setenv("GENRELENS_CACHE", str(tmp_path / "a"))
    r = CliRunner().invoke(app, ["precision-check", "--model-dir", str(model_copy), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == choice.precision
    monkeypatch.setenv(prec.ENV_FLAGS, HASWELL)
    r = CliRunner().invoke(app, ["precision-check", "--model-dir", str(model_copy)])
    assert r.exit_code == 0 and "no bf16/int8 units" in r.output


@pytest.mark.slow
def test_bf16_is_checked_first_where_the_cpu_has_bf16_units(model_copy: Path, tmp_path: Path) -> None:
    """With AVX512-BF16 (no AMX) bf16 is the first candidate: the real guard scores the validation split on
    OpenVINO in bf16; where the real CPU has bf16 units it keeps nearly every genre set of the tiny model."""
    clf = GenreClassifier.load(model_copy, precision="fp32")
    choice = guard.check_precisions(clf, flags="avx512f avx512_bf16", guard_dir=tmp_path, save=False)
    (first,) = choice.guards
    assert first.precision == "bf16" and first.n_movies > 20
    assert choice.precision == ("bf16" if first.passed else "fp32") == clf.precision
    if first.passed:
        assert isinstance(clf.text_encoder.session, OpenVINOSession) and first.rate > first.rate_fp32
    if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert first.identical_share >= 0.95 and first.max_abs_diff < 0.1, first.summary()


def test_a_bf16_load_opens_the_text_graph_once(model_copy: Path, tmp_path: Path, monkeypatch) -> None:
    """``auto`` with a passed bf16 result for this CPU kind opens the text graph on OpenVINO straight away: no ONNX
    Runtime session for text is built first and thrown away (a cold start's time); posters stay on ONNX Runtime."""
    from genrelens import bundle
    from genrelens.encoders import onnx as onnx_mod

    monkeypatch.setenv(prec.ENV_FLAGS, AMD_ZEN4)
    monkeypatch.setenv("GENRELENS_CACHE", str(tmp_path / "cache"))
    key = bundle.weights_key(model_copy)
    (model_copy / bundle.PRECISION_GUARD).write_text(
        json.dumps(prec.guard_content(None, key, [_result("bf16", True, key, AMD_ZEN4)])))
    opened: list[str] = []
    real = onnx_mod.ort_session

    def counted(path, num_threads):
        opened.append(Path(path).name)
        return real(path, num_threads)

    monkeypatch.setattr(onnx_mod, "ort_session", counted)
    clf = GenreClassifier.load(model_copy, precision="auto")
    assert clf.precision == "bf16" and clf.precision_choice.sources == ["model folder"]
    assert isinstance(clf.text_encoder.session, OpenVINOSession)
    assert not [name for name in opened if name.startswith("text-")], opened
    assert clf.predict(["A detective hunts a killer."])
    monkeypatch.setenv(prec.ENV_FLAGS, HASWELL)  # no bf16 units: auto is fp32, text on ONNX Runtime as before
    assert not isinstance(GenreClassifier.load(model_copy, precision="auto").text_encoder.session, OpenVINOSession)


def test_bf16_says_what_it_runs_and_auto_falls_back_to_fp32_in_words(model_copy: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    """Where OpenVINO finds no bf16 kernel, ``--precision bf16`` runs fp32 arithmetic and says so; without
    OpenVINO, ``--precision bf16`` fails in words and ``auto`` (bf16's guard passed) runs fp32 with the reason;
    a read-only cache (the export cannot be marked as used) is no error."""
    import sys

    from genrelens import bundle
    from genrelens.encoders import onnx as onnx_mod
    from genrelens.errors import ModelError

    real = onnx_mod._compile

    def no_bf16(core, path, config):
        if config["INFERENCE_PRECISION_HINT"] == "bf16":
            raise RuntimeError("Supported primitive descriptors list is empty for node: Softmax")
        return real(core, path, config)

    notes: list[str] = []
    with monkeypatch.context() as m:
        m.setattr(onnx_mod, "_compile", no_bf16)
        m.setattr(onnx_mod.os, "utime", lambda *a, **k: (_ for _ in ()).throw(OSError(30, "Read-only file system")))
        clf = GenreClassifier.load(model_copy, precision="bf16", report=notes.append)
    assert clf.precision == "bf16" and clf.text_encoder.session.inference_precision == "f32"
    assert notes and "fp32 arithmetic" in notes[0] and clf.predict(["A detective hunts a killer."])

    monkeypatch.setenv(prec.ENV_FLAGS, AMD_ZEN4)
    monkeypatch.setenv("GENRELENS_CACHE", str(tmp_path / "cache"))
    key = bundle.weights_key(model_copy)
    (model_copy / bundle.PRECISION_GUARD).write_text(
        json.dumps(prec.guard_content(None, key, [_result("bf16", True, key, AMD_ZEN4)])))
    monkeypatch.setitem(sys.modules, "openvino", None)  # not installed
    with pytest.raises(ModelError, match="pip install openvino"):
        GenreClassifier.load(model_copy, precision="bf16")
    notes.clear()
    clf = GenreClassifier.load(model_copy, precision="auto", report=notes.append)
    assert clf.precision == "fp32" and clf.precision_choice.precision == "fp32"
    assert notes and "bf16 cannot run here" in notes[0] and "pip install openvino" in notes[0]
    assert clf.predict(["A detective hunts a killer."])


def test_failing_or_slower_guard_means_fp32(clf: GenreClassifier, tmp_path: Path, monkeypatch) -> None:
    # a guard that fails (here: an impossible agreement threshold) means fp32
    monkeypatch.setattr(guard, "MIN_IDENTICAL", 1.01)
    failed = guard.check_precisions(clf, flags="avx512f avx512_vnni", guard_dir=tmp_path, save=False)
    assert failed.precision == "fp32" and clf.precision == "fp32" and failed.sources == ["cache"]
    assert [g.precision for g in failed.guards] == ["int8"] and not failed.guards[0].passed
    assert "identical genres" in failed.guards[0].reason and not failed.note
    assert len(list((tmp_path / "precision").glob("*.json"))) == 1

    # accurate but not faster than fp32 on this machine: fp32 as well
    monkeypatch.undo()
    monkeypatch.setattr(guard, "judge", lambda y, a, b: (True, 0.5, 0.5, 1.0, ""))
    monkeypatch.setattr(guard, "speeds", lambda *a: (20.0, 15.0))
    slow = guard.check_precisions(clf, flags="avx2 avx_vnni", guard_dir=tmp_path, save=False)
    assert slow.precision == "fp32" and "not faster than fp32" in slow.guards[0].reason


def test_old_folder_without_hashes_or_guard_loads_and_auto_is_fp32(model_copy: Path, monkeypatch) -> None:
    """A folder saved before the manifest kept hashes (and before guards were saved): loads, gets a key from
    file sizes and times, and ``auto`` answers fp32 without running the guard."""
    from genrelens import bundle

    manifest = json.loads((model_copy / bundle.MANIFEST).read_text())
    del manifest["hashes"]
    (model_copy / bundle.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setattr(guard, "check_precision", lambda *a: pytest.fail("guard ran at load"))
    monkeypatch.setenv(prec.ENV_FLAGS, ICE_LAKE)
    clf = GenreClassifier.load(model_copy, precision="auto")
    assert clf.precision == "fp32" and clf.precision_choice.unchecked == ["int8"]
    key = clf.bundle.weights_key()
    assert key.startswith("stat:") and key == bundle.weights_key(model_copy)
    assert clf.predict(["A detective hunts a killer."])


def test_cli_precision_option(tiny_model_dir: Path, subset_csv: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from genrelens.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    base = ["predict", "--model-dir", str(tiny_model_dir), "--plot", "A detective hunts a killer.", "--json"]
    r = runner.invoke(app, [*base, "--precision", "int8"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == "int8" and json.loads(r.stdout)["genres"]
    assert json.loads(r.stdout)["precision_note"] == (None if prec.exact_int8() else prec.POSTERS_FP32)
    monkeypatch.setenv(prec.ENV_FLAGS, HASWELL)  # a CPU without bf16/VNNI: auto is fp32, no guard runs
    r = runner.invoke(app, [*base, "--precision", "auto"])
    assert r.exit_code == 0 and json.loads(r.stdout)["precision"] == "fp32" and "guard" not in r.stderr
    r = runner.invoke(app, [*base, "--precision", "int8"])  # the JSON says what stderr says: posters in fp32
    assert r.exit_code == 0 and json.loads(r.stdout)["precision_note"] == prec.POSTERS_FP32
    r = runner.invoke(app, [*base, "--precision", "fp16"])
    assert r.exit_code == 2 and "precision must be" in r.output
    r = runner.invoke(app, ["evaluate", "--model-dir", str(tiny_model_dir), "--data", str(subset_csv), "--split",
                            "val", "--json", "--precision", "bf16"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == "bf16"


@pytest.mark.slow
def test_bf16_training_is_recorded_and_learns(small_subset_csv: Path, cache_dir: Path, tmp_path: Path) -> None:
    """``precision="bf16"`` trains the text stage and the head under autocast: weights stay fp32, the run's
    config and metrics say bf16, and the model loads and scores like any other."""
    from conftest import train_tiny

    from genrelens.config import RunConfig

    # 32 tokens: bf16 is emulated (slow) on CPUs without bf16 units, and what is checked does not need more
    metrics = train_tiny("text-finetuned", small_subset_csv, tmp_path / "m", cache_dir, precision="bf16",
                         max_length=32)
    assert metrics["precision"] == "bf16" and RunConfig.load(tmp_path / "m" / "config.json").precision == "bf16"
    assert metrics["val"]["weighted_f1"] > 0.2  # it learned something
    clf = GenreClassifier.load(tmp_path / "m", precision="fp32")
    assert all(p.dtype == torch.float32 for p in clf.text_encoder.model.parameters())
    assert clf.predict_proba(["A detective hunts a killer."]).dtype == np.float32
    with pytest.raises(ValueError, match="training precision"):
        RunConfig(precision="int8")


@pytest.mark.parametrize(("flags", "expected"), [(AMD_ZEN4, "bf16"), (SAPPHIRE_RAPIDS, "bf16"), (HASWELL, "fp32"),
                                                 ("avx2 avx512f avx512_vnni", "fp32")])
def test_training_precision_auto_follows_the_bf16_units(flags: str, expected: str, monkeypatch) -> None:
    """Training's ``auto`` is bf16 autocast where the CPU has bf16 units; the config stays pure (``auto``) and
    training resolves it when it starts (``resolve_precision``), so a saved config says what ran; an explicit
    choice is kept."""
    from genrelens.config import RunConfig
    from genrelens.train.run import resolve_precision

    assert prec.training_precision("auto", flags) == expected
    monkeypatch.setenv(prec.ENV_FLAGS, flags)
    assert RunConfig().precision == "auto" and resolve_precision(RunConfig()).precision == expected
    assert resolve_precision(RunConfig(precision="fp32")).precision == "fp32"
    assert resolve_precision(RunConfig(precision="bf16")).precision == "bf16"


def test_a_saved_config_without_precision_reads_fp32(tmp_path: Path, monkeypatch) -> None:
    """A run saved before training precision existed trained in fp32: loading its config on a CPU with bf16
    units must not relabel it bf16 (the benchmark would retrain it, ``--resume`` would refuse it)."""
    from genrelens.config import RunConfig

    monkeypatch.setenv(prec.ENV_FLAGS, AMD_ZEN4)
    path = tmp_path / "config.json"
    RunConfig(precision="fp32").save(path)
    data = json.loads(path.read_text())
    data.pop("precision")
    path.write_text(json.dumps(data))
    assert RunConfig.load(path).precision == "fp32"
    from genrelens.train.run import resolve_precision

    resolve_precision(RunConfig()).save(path)  # a new run on this CPU: auto is resolved when it starts, and saved
    assert json.loads(path.read_text())["precision"] == "bf16" and RunConfig.load(path).precision == "bf16"


def test_auto_falling_back_to_fp32_keeps_the_loaded_session(model_copy: Path, monkeypatch) -> None:
    """fp32 after ``auto`` reuses the ONNX session built at load: no second session (cold start)."""
    monkeypatch.setenv(prec.ENV_FLAGS, HASWELL)
    clf = GenreClassifier.load(model_copy, precision="fp32")
    session = clf.text_encoder.session
    clf.use_precision("auto", flags=AMD_ZEN4)  # no guard result: fp32
    assert clf.precision == "fp32" and clf.text_encoder.session is session
    clf.set_precision("int8")
    clf.set_precision("fp32")
    assert clf.text_encoder.session is not session and "int8" not in clf.text_encoder.onnx_file.name


@pytest.mark.slow
def test_train_runs_the_guard_at_its_end_and_saves_it(subset_csv: Path, cache_dir: Path, tmp_path: Path,
                                                       monkeypatch) -> None:
    """``genrelens train --precision-check`` checks this CPU's candidates once training is saved; the result lands
    in the model folder (here a stand-in guard: the real one is exercised above)."""
    from typer.testing import CliRunner

    from genrelens import bundle
    from genrelens.cli import app

    ran: list[str] = []

    def fake_guard(clf, precision):
        ran.append(precision)
        return prec.GuardResult(precision, False, 42, 0.5, 0.4, 0.9, 0.2, 1.0, reason="stand-in")

    monkeypatch.setattr(guard, "check_precision", fake_guard)
    monkeypatch.setenv(prec.ENV_FLAGS, ICE_LAKE)
    monkeypatch.setenv("GENRELENS_CACHE", str(cache_dir))
    out = tmp_path / "poster"
    r = CliRunner().invoke(app, ["train", "--model", "poster", "--data", str(subset_csv), "--out", str(out),
                                 "--epochs", "2", "--no-progress", "--precision-check"])
    assert r.exit_code == 0, r.output
    assert ran == ["int8"] and "stand-in" in r.output
    saved = json.loads((out / bundle.PRECISION_GUARD).read_text())
    assert [(e["precision"], e["n_movies"]) for e in saved["results"]] == [("int8", 42)]
    assert saved["results"][0]["model_key"] == bundle.weights_key(out)
    monkeypatch.setattr(guard, "check_precision", lambda *a: pytest.fail("guard ran at load"))
    assert GenreClassifier.load(out, precision="auto").precision_choice.sources == ["model folder"]


def test_resume_keeps_the_saved_precision_unless_asked(subset_csv: Path, tmp_path: Path, monkeypatch) -> None:
    """A run started in fp32 (e.g. before training's ``auto`` existed) resumes on a CPU with bf16 units without
    ``--precision``: it keeps fp32 instead of being refused as "another config"; asking for bf16 is refused."""
    from typer.testing import CliRunner

    from genrelens.cli import app

    monkeypatch.setenv(prec.ENV_FLAGS, AMD_ZEN4)
    args = ["train", "--model", "naive", "--data", str(subset_csv), "--out", str(tmp_path / "run"),
            "--no-precision-check"]
    first = CliRunner().invoke(app, [*args, "--precision", "fp32"])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "fp32"
    refused = CliRunner().invoke(app, [*args, "--resume", "--precision", "bf16"])
    assert refused.exit_code != 0 and "another config" in refused.output
