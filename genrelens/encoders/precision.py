"""Inference precision chosen by the CPU: fp32, bf16 or int8, used only when an accuracy guard passes.

* **Detection**: the CPU's flags (``/proc/cpuinfo``, or ``$GENRELENS_CPU_FLAGS`` / a ``flags`` argument to
  simulate another CPU) and torch's CPU capability. ``amx_bf16`` makes bf16 a candidate for ``auto``
  (``avx512_bf16`` alone does not: on such an AMD EPYC, idle, bf16 scored batches 1.2x faster than ONNX
  Runtime fp32 but one movie slower, and it needs eager torch in every cold start, docs/performance.md);
  ``amx_int8`` / ``avx512_vnni`` / ``avx_vnni`` make int8 one. With none, ``auto`` is fp32.
  ``--precision bf16`` still runs anywhere.
* **Paths** (``apply_precision``): fp32 runs both encoders on ONNX Runtime (the default before this
  module). bf16 runs the text encoder eagerly under ``torch.autocast("cpu", torch.bfloat16)``; the poster
  CNN stays on ONNX Runtime fp32 (bf16 eager EfficientNet-Lite0 ran 2.3x slower than it here, see
  docs/performance.md). int8 runs the text encoder as an ONNX Runtime dynamically quantized graph (per-channel
  int8 weights of every weight MatMul but the feed-forward outputs, which stay fp32: the sensitive layers)
  and the poster CNN as a statically quantized graph (QDQ, per-channel weights, activations calibrated on
  posters of the model's training split). Quantized graphs are cached in ``<cache>/onnx/``.
* **Guard** (``check_precision``): on the model's own validation split the candidate must keep weighted F1
  within ``MAX_F1_DROP`` of fp32 and identical genres on at least ``MIN_IDENTICAL`` of the movies, and score
  ``SPEED_MOVIES`` of them faster than fp32 (best of 2 interleaved rounds, so a slower path is never chosen). It runs
  (``run_checks``) at the end of ``genrelens train``, in ``genrelens calibrate`` and in ``genrelens
  precision-check``: once per model weights (``bundle.weights_key``) + CPU flags + precision. Its results are
  saved in the model folder (``bundle.PRECISION_GUARD``, one entry per CPU kind) and in ``<cache>/precision/``.
* **Choosing** (``resolve``, at load): ``auto`` never runs the guard. It takes the first candidate whose saved
  result (model folder, else this machine's cache) passed; without any, fp32 at once, with a note naming the
  command that runs the check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelens.errors import GenrelensError, ModelError
from genrelens.paths import default_cache_dir

PRECISIONS = ("fp32", "bf16", "int8")
CHOICES = ("auto", *PRECISIONS)
ENV_FLAGS = "GENRELENS_CPU_FLAGS"  # comma- or space-separated flags: simulate another CPU
ENV_PRECISION = "GENRELENS_PRECISION"  # the CLI's default for --precision
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
INT8_FLAGS = frozenset({"amx_int8", "avx512_vnni", "avx_vnni", "avx512vnni"})
RELEVANT_FLAGS = BF16_FLAGS | INT8_FLAGS | {"avx512f", "avx2"}
MAX_F1_DROP = 0.003
MIN_IDENTICAL = 0.99
SPEED_MOVIES = 128
GUARD_VERSION = 1  # bump when a precision path or the guard's rule changes
GUARD_FORMAT = "genrelens-precision-guard"  # the model folder's file (bundle.PRECISION_GUARD)
INT8_TEXT_VERSION = 1
INT8_POSTER_VERSION = 1
CALIBRATION_POSTERS = 128


# --- the CPU ---------------------------------------------------------------------------------------
def cpu_flags(flags: Iterable[str] | str | None = None) -> frozenset[str]:
    """The CPU's feature flags: ``flags`` if given, else ``$GENRELENS_CPU_FLAGS``, else ``/proc/cpuinfo``
    (empty where unreadable, e.g. not Linux: then ``auto`` is fp32)."""
    if flags is None:
        flags = os.environ.get(ENV_FLAGS)
    if flags is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
        line = next((x for x in text.splitlines() if x.startswith("flags")), "")
        flags = line.partition(":")[2]
    if isinstance(flags, str):
        flags = flags.replace(",", " ").split()
    return frozenset(f.strip().lower() for f in flags if f.strip())


def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo (else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def torch_capability() -> str:
    """torch's view of the CPU (``AVX512``, ``AVX2``, ``DEFAULT``...)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def candidates(flags: Iterable[str] | str | None = None) -> list[str]:
    """Precisions ``auto`` tries on this CPU, fastest first (fp32, always possible, is not listed).

    bf16 needs AMX (its tiles run bf16 matmuls several times faster than fp32) and then comes first; int8 needs
    VNNI (or AMX-INT8). AVX512-BF16 without AMX is not enough: 1.2x for batches, slower for one movie and for
    a cold start (eager torch) than ONNX Runtime fp32 on an AMD EPYC (docs/performance.md)."""
    f = cpu_flags(flags)
    out = ["bf16"] if "amx_bf16" in f else []
    return out + (["int8"] if f & INT8_FLAGS else [])


def training_precision(requested: str = "auto", flags: Iterable[str] | str | None = None) -> str:
    """The precision a training run uses: ``auto`` is bf16 autocast where the CPU has bf16 units (AMX or
    AVX512-BF16: the text stage trained 2.1x faster per epoch on an AVX512-BF16 AMD EPYC, same F1 over 3 seeds,
    docs/performance.md), else fp32 (autocast emulating bf16 ran 3x slower on a CPU without them)."""
    if requested not in ("auto", "fp32", "bf16"):
        raise ValueError(f"training precision must be auto, fp32 or bf16, not {requested!r}")
    if requested != "auto":
        return requested
    return "bf16" if cpu_flags(flags) & BF16_FLAGS else "fp32"


def describe_cpu(flags: Iterable[str] | str | None = None) -> dict[str, Any]:
    """JSON-ready summary: model name, the flags that matter here, torch's capability, candidates."""
    f = cpu_flags(flags)
    return {"model": cpu_model(), "flags": sorted(f & RELEVANT_FLAGS), "torch_capability": torch_capability(),
            "candidates": candidates(f), "simulated": flags is not None or ENV_FLAGS in os.environ}


def check_choice(precision: str) -> str:
    if precision not in CHOICES:
        raise ValueError(f"precision must be one of {', '.join(CHOICES)}, not {precision!r}")
    return precision


# --- the guard's cache ------------------------------------------------------------------------------
@dataclass
class GuardResult:
    """Outcome of one accuracy check of ``precision`` against fp32 on the model's validation split."""

    precision: str
    passed: bool
    n_movies: int
    weighted_f1_fp32: float
    weighted_f1: float
    identical_share: float  # movies whose predicted genre set is the same as fp32's
    max_abs_diff: float  # largest probability difference
    seconds: float  # scoring the split in ``precision`` (a hint only: the machine may have been busy)
    rate_fp32: float = 0.0  # movies/s on SPEED_MOVIES validation movies, best of 2 interleaved rounds
    rate: float = 0.0
    reason: str = ""
    model_key: str = ""
    flags: tuple[str, ...] = ()
    checked_at: str = ""

    @property
    def f1_drop(self) -> float:
        return self.weighted_f1_fp32 - self.weighted_f1

    def summary(self) -> str:
        verdict = "passed" if self.passed else f"failed ({self.reason})"
        return (f"{self.precision} guard {verdict}: weighted F1 {self.weighted_f1:.4f} vs fp32 "
                f"{self.weighted_f1_fp32:.4f}, identical genres on {100 * self.identical_share:.2f}% of "
                f"{self.n_movies} validation movies; " + (
                    f"{self.rate:.1f} vs {self.rate_fp32:.1f} movies/s" if self.rate_fp32 > 0
                    else "speed not measured (it is timed only after the accuracy check passes)"))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags), "f1_drop": self.f1_drop}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GuardResult:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["flags"] = tuple(data.get("flags", ()))
        return cls(**data)


def judge(y_true: np.ndarray, pred_fp32: np.ndarray, pred: np.ndarray) -> tuple[bool, float, float, float, str]:
    """The guard's rule on multi-hot ``[n, n_labels]`` arrays: ``(passed, f1_fp32, f1, identical, reason)``."""
    from sklearn.metrics import f1_score

    f1_32 = float(f1_score(y_true, pred_fp32, average="weighted", zero_division=0))
    f1_c = float(f1_score(y_true, pred, average="weighted", zero_division=0))
    identical = float((np.asarray(pred_fp32) == np.asarray(pred)).all(1).mean()) if len(pred) else 0.0
    reasons = []
    if f1_32 - f1_c > MAX_F1_DROP:
        reasons.append(f"weighted F1 drops by {f1_32 - f1_c:.4f} > {MAX_F1_DROP}")
    if identical < MIN_IDENTICAL:
        reasons.append(f"identical genres on {100 * identical:.2f}% < {100 * MIN_IDENTICAL:.0f}%")
    if not len(pred):
        reasons.append("no validation movies")
    return not reasons, f1_32, f1_c, identical, "; ".join(reasons)


def guard_path(key: str, flags: frozenset[str], precision: str, cache_dir: Path | None = None) -> Path:
    """``<cache>/precision/<sha256(model key, relevant flags, precision, guard version)[:24]>.json``."""
    ident = f"{key}|{','.join(sorted(flags & RELEVANT_FLAGS))}|{precision}|v{GUARD_VERSION}"
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "precision" / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.json"


def read_guard(path: Path) -> GuardResult | None:
    try:
        return GuardResult.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # absent or damaged: checked again


def write_guard(path: Path, result: GuardResult) -> None:
    from genrelens.io import write_json_atomic

    write_json_atomic(path, result.to_json())


def _current(saved: dict | None) -> bool:
    """Whether a model folder's saved guard content is of this format and guard version."""
    return (isinstance(saved, dict) and saved.get("format") == GUARD_FORMAT
            and saved.get("guard_version") == GUARD_VERSION)


def saved_result(saved: dict | None, key: str, flags: frozenset[str], precision: str) -> GuardResult | None:
    """The result for ``precision`` on this CPU kind (``flags``) and these weights (``key``) among a model folder's
    saved guard results (``guard_content``), else None."""
    if not _current(saved):
        return None
    want = tuple(sorted(flags & RELEVANT_FLAGS))
    for entry in saved.get("results", []):
        try:
            result = GuardResult.from_json(entry)
        except (TypeError, AttributeError):
            continue
        if result.precision == precision and result.model_key == key and tuple(result.flags) == want:
            return result
    return None


def guard_content(saved: dict | None, key: str, results: Iterable[GuardResult]) -> dict[str, Any]:
    """What a model folder keeps (``bundle.PRECISION_GUARD``): ``results`` plus the saved results of other CPU
    kinds for the same weights and guard version (stale ones are dropped)."""
    new = [r for r in results if r.n_movies]
    seen = {(tuple(r.flags), r.precision) for r in new}
    kept = []
    if _current(saved):
        for entry in saved.get("results", []):
            try:
                old = GuardResult.from_json(entry)
            except (TypeError, AttributeError):
                continue
            if old.model_key == key and (tuple(old.flags), old.precision) not in seen:
                kept.append(old)
    return {"format": GUARD_FORMAT, "guard_version": GUARD_VERSION, "results": [r.to_json() for r in kept + new]}


# --- choosing ---------------------------------------------------------------------------------------
@dataclass
class Choice:
    """What ``resolve`` decided: the precision in use, what was asked, the guard results behind it (and where
    each came from: ``sources``), and a ``note`` when a candidate of this CPU had no result yet."""

    precision: str
    requested: str
    guards: list[GuardResult]
    cpu: dict[str, Any]
    sources: list[str] = field(default_factory=list)  # per guard: "model folder" or "cache"
    unchecked: list[str] = field(default_factory=list)  # candidates of this CPU without a guard result
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"precision": self.precision, "requested": self.requested, "cpu": self.cpu,
                "guards": [{**g.to_json(), "source": s} for g, s in zip(self.guards, self.sources, strict=False)],
                "unchecked": self.unchecked, "note": self.note}

    def summary(self) -> str:
        lines = [f"precision {self.precision} (asked: {self.requested}; CPU {self.cpu['model']}, "
                 f"flags {' '.join(self.cpu['flags']) or 'none of ' + ' '.join(sorted(BF16_FLAGS | INT8_FLAGS))})"]
        lines += [f"  {g.summary()} [{s}]" for g, s in zip(self.guards, self.sources, strict=False)]
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)


def check_command(model_dir: Path | None) -> str:
    return f"genrelens precision-check --model-dir {model_dir}" if model_dir else "genrelens precision-check"


def resolve(requested: str, key: str = "", saved: dict | None = None, flags: Iterable[str] | str | None = None,
            cache_dir: Path | None = None, model_dir: Path | None = None) -> Choice:
    """The precision to run: ``requested`` itself unless it is ``auto``; for ``auto``, the first candidate of
    this CPU whose guard result passed, looked up (never run: see ``run_checks``) in the model folder's saved
    results ``saved`` for weights ``key``, then in the machine's cache; else fp32, with a ``note`` naming the
    command that runs the check when a candidate has no result yet."""
    check_choice(requested)
    f = cpu_flags(flags)
    cpu = describe_cpu(f if flags is not None or ENV_FLAGS in os.environ else None)
    if requested != "auto":
        return Choice(requested, requested, [], cpu)
    choice = Choice("fp32", requested, [], cpu)
    for precision in candidates(f):
        result, source = saved_result(saved, key, f, precision), "model folder"
        if result is None:
            result, source = read_guard(guard_path(key, f, precision, cache_dir)), "cache"
        if result is None:
            choice.unchecked.append(precision)
            continue
        choice.guards.append(result)
        choice.sources.append(source)
        if result.passed:
            choice.precision = precision
            break
    if choice.unchecked and choice.precision == "fp32":
        choice.note = (f"{'/'.join(choice.unchecked)} not yet checked against fp32 for this model on this CPU kind: "
                       f"running fp32; `{check_command(model_dir)}` checks it once (minutes) so that auto can use it")
    return choice


def run_checks(key: str, run_guard: Callable[[str], GuardResult], flags: Iterable[str] | str | None = None,
               cache_dir: Path | None = None, report: Callable[[str], None] | None = None,
               force: bool = False) -> list[GuardResult]:
    """Run the accuracy guard (``run_guard(precision)``) for this CPU's candidates, fastest first, until one
    passes; a result already in the machine's cache is reused unless ``force``. Results are cached in
    ``<cache>/precision/`` (a check that could not run is not: tried again next time)."""
    f = cpu_flags(flags)
    out: list[GuardResult] = []
    for precision in candidates(f):
        path = guard_path(key, f, precision, cache_dir)
        result = None if force else read_guard(path)
        if result is None:
            if report:
                report(f"checking {precision} against fp32 on the model's validation split (once per model and CPU)")
            try:
                result = run_guard(precision)
            except (GenrelensError, OSError, RuntimeError, ValueError) as e:  # e.g. the data moved away
                result = GuardResult(precision, False, 0, 0.0, 0.0, 0.0, 0.0, 0.0, reason=f"could not check: {e}")
            result.model_key, result.flags = key, tuple(sorted(f & RELEVANT_FLAGS))
            result.checked_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            if result.n_movies:
                write_guard(path, result)
        if report:
            report(result.summary())
        out.append(result)
        if result.passed:
            break
    return out


# --- int8 graphs ------------------------------------------------------------------------------------
class _NoPreprocessHint(logging.Filter):
    """ONNX Runtime logs (on the root logger) a hint to pre-process a graph before quantizing it; the text
    graph is quantized as exported on purpose and the poster graph is pre-processed, so the hint is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet_quantizer():
    root, hint = logging.getLogger(), _NoPreprocessHint()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)


def quantize_text_int8(fp32_path: Path) -> Path:
    """Dynamically quantized copy of a text export (int8 per-channel weights; feed-forward output MatMuls,
    the most sensitive, kept fp32), cached beside it."""
    out = fp32_path.with_name(f"{fp32_path.stem}-int8dyn-v{INT8_TEXT_VERSION}.onnx")
    if out.is_file():
        return out
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from genrelens.io import atomic_path

    names = [n.name for n in onnx.load(str(fp32_path), load_external_data=False).graph.node if n.op_type == "MatMul"]
    keep_fp32 = [n for n in names if "/output/dense/" in n and "/attention/" not in n]
    with atomic_path(out) as tmp, _quiet_quantizer():
        quantize_dynamic(str(fp32_path), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_fp32)
    return out


def quantize_poster_int8(fp32_path: Path, calibration: Callable[[], np.ndarray], calibration_id: str) -> Path:
    """Statically quantized copy of the poster export, cached beside it: QDQ, per-channel int8 weights,
    uint8 activations with ranges calibrated on ``calibration()`` (float32 [n, 3, s, s] preprocessed
    training posters; called only when the cache lacks the graph)."""
    out = fp32_path.with_name(f"{fp32_path.stem}-int8static-{calibration_id[:12]}-v{INT8_POSTER_VERSION}.onnx")
    if out.is_file():
        return out
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from genrelens.io import atomic_path

    pixels = calibration()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"pixels": pixels[i : i + 16]} for i in range(0, len(pixels), 16)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".quant.") as work, atomic_path(out) as tmp, \
            _quiet_quantizer():
        pre = Path(work) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def training_posters(model_dir: Path, data: str | None, n: int = CALIBRATION_POSTERS) -> tuple[list[str], Path]:
    """The first ``n`` posters (by id) of the model's training split: the int8 calibration set."""
    from genrelens.data.split import load_split, select
    from genrelens.data.table import load_table

    split = Path(model_dir) / "split.json"
    if not split.is_file():
        raise ModelError(f"int8 posters need calibration posters from the training split, and {split} is missing")
    df, _ = load_table(data, skip_bad=True)
    df = select(df, load_split(split)["train"])
    df = df[df["poster"].notna()].sort_values("id").head(n)
    if df.empty:
        raise ModelError("int8 posters need calibration posters, and the training split has none")
    return [str(p) for p in df["poster"]], Path(df.attrs["root"])


# --- applying a precision to the encoders -----------------------------------------------------------
def apply_text(encoder, precision: str, cache_dir: Path | None = None) -> None:
    """Run ``encoder`` (a ``TextEncoder``) in ``precision``: fp32 ONNX, bf16 eager autocast, or int8 ONNX. An
    encoder already on its fp32 ONNX session keeps it (no second session, no second hash of its weights)."""
    if precision == "fp32" and getattr(encoder, "precision", "fp32") == "fp32" and encoder.session is not None:
        return
    encoder.precision = precision
    if precision == "bf16":
        encoder.use_torch()
        return
    encoder.use_onnx(cache_dir)
    if precision == "int8":
        from genrelens.encoders.onnx import ort_session

        path = quantize_text_int8(encoder.onnx_file)
        encoder.session, encoder.onnx_file = ort_session(path, encoder.session_threads), path


def apply_poster(encoder, precision: str, model_dir: Path | None = None, data: str | None = None) -> None:
    """Run ``encoder`` (a ``PosterEncoder`` on ONNX) in ``precision``: int8 swaps in the calibrated static
    graph; fp32 and bf16 use the fp32 graph (bf16 eager is slower than ONNX fp32 for this CNN here)."""
    from genrelens.encoders.onnx import ort_session

    if encoder.session is None:  # torch backend (a fine-tuned last block): stays fp32 eager
        encoder.precision = "fp32"
        return
    target = "int8" if precision == "int8" else "fp32"
    if getattr(encoder, "precision", "fp32") == target:
        return
    path = encoder.onnx_path
    if target == "int8":
        if model_dir is None:
            raise ModelError("int8 posters need the model folder (its training split calibrates them)")
        paths, root = training_posters(model_dir, data)

        def calibration() -> np.ndarray:
            from genrelens.data.images import preprocess
            from genrelens.errors import PosterError

            images = []
            for p in paths:
                try:
                    images.append(encoder.load(p, root))
                except PosterError:  # a bad poster is just left out of the calibration set
                    continue
            return preprocess(images, encoder.input_size)

        ident = hashlib.sha256("\n".join([encoder.weights_sha256, *paths]).encode()).hexdigest()
        path = quantize_poster_int8(path, calibration, ident)
    encoder.session = ort_session(path, encoder.num_threads)
    encoder.precision = target


# --- the guard itself -------------------------------------------------------------------------------
def validation_movies(model_dir: Path, data: str | None, labels: list[str]):
    """``(plots, posters, root, y [n, n_labels], titles)`` of the model's validation split (rows with a label)."""
    from genrelens.data.labels import LabelSet
    from genrelens.data.split import load_split, select
    from genrelens.data.table import load_table

    split = Path(model_dir) / "split.json"
    if not split.is_file():
        raise ModelError(f"the accuracy guard needs the model's validation split, and {split} is missing")
    df, _ = load_table(data, skip_bad=True)
    df = select(df, load_split(split)["val"])
    y = LabelSet(labels).encode(df["genres"])
    keep = y.sum(1) > 0
    df = df[keep].reset_index(drop=True)
    return list(df["plot"]), list(df["poster"]), Path(df.attrs["root"]), y[keep], list(df["title"])


def check_precision(clf, precision: str) -> GuardResult:
    """Score the validation split with ``clf`` (a ``GenreClassifier``) in fp32 (through the feature cache,
    which usually holds these movies from training) and in ``precision`` (no cache), then ``judge``.
    Leaves ``clf`` in fp32."""
    from genrelens.encoders.cache import FeatureCache

    plots, posters, root, y, titles = validation_movies(clf.model_dir, clf.config.data, clf.labels)
    plots = clf.texts(plots, titles, len(plots))  # what the model reads (with the title, for a model that reads it)
    saved = clf.cache
    try:
        clf.set_precision("fp32")
        clf.cache = FeatureCache(clf.config.cache_dir) if clf.config.cache_dir else FeatureCache()
        p32 = clf.score(plots, posters, root=root)[0]
        clf.cache = None
        clf.set_precision(precision)
        t = time.perf_counter()
        pc = clf.score(plots, posters, root=root)[0]
        seconds = time.perf_counter() - t
    finally:
        clf.cache = saved
        clf.set_precision("fp32")
    passed, f1_32, f1_c, identical, reason = judge(y, clf.decide(p32), clf.decide(pc))
    diff = float(np.abs(p32 - pc).max()) if len(pc) else 0.0
    rate_32, rate = speeds(clf, precision, plots[:SPEED_MOVIES], posters[:SPEED_MOVIES], root) if passed else (0, 0)
    if passed and rate <= rate_32:
        passed, reason = False, f"not faster than fp32 here ({rate:.1f} vs {rate_32:.1f} movies/s)"
    return GuardResult(precision, passed, len(y), f1_32, f1_c, identical, diff, seconds, rate_32, rate, reason)


def speeds(clf, precision: str, plots: list, posters: list, root: Path) -> tuple[float, float]:
    """movies/s of fp32 and ``precision`` on the same movies (no cache), best of 2 interleaved rounds."""
    best = {"fp32": 0.0, precision: 0.0}
    saved = clf.cache
    clf.cache = None
    try:
        for _ in range(2):
            for p in best:
                clf.set_precision(p)
                t = time.perf_counter()
                clf.score(plots, posters, root=root)
                best[p] = max(best[p], len(plots) / max(time.perf_counter() - t, 1e-9))
    finally:
        clf.cache = saved
        clf.set_precision("fp32")
    return best["fp32"], best[precision]
