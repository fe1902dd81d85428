"""Inference precision paths chosen by the CPU: fp32, bf16 or int8 (the accuracy guard that decides whether
``auto`` may use one is ``genrelens.guard``).

* **Detection**: the CPU's flags (``/proc/cpuinfo``, or ``$GENRELENS_CPU_FLAGS`` / a ``flags`` argument to
  simulate another CPU) and torch's CPU capability. ``amx_bf16`` / ``avx512_bf16`` make bf16 a candidate for
  ``auto`` (first); ``amx_int8`` / ``avx512_vnni`` / ``avx_vnni`` make int8 one. With none, ``auto`` is fp32.
  ``--precision bf16`` still runs anywhere (in fp32 arithmetic where OpenVINO finds no bf16 units: it says so).
* **Paths** (``apply_text``, ``apply_poster``): fp32 runs both encoders on ONNX Runtime. bf16 runs the exported
  text graph on OpenVINO with bf16 inference precision (``encoders.onnx.OpenVINOSession``; ONNX Runtime's CPU
  provider has no bf16 kernels, and eager torch was slower for one movie); the poster CNN stays on ONNX Runtime
  fp32 (in bf16 it moved too many genre sets). int8 runs the text encoder as an ONNX
  Runtime dynamically quantized graph (per-channel int8 weights of every weight MatMul but the feed-forward
  outputs, which stay fp32) and the poster CNN as a statically quantized graph
  (QDQ, per-channel weights, activations calibrated on posters of the model's training split). On a CPU without
  VNNI/AMX-INT8 (``exact_int8``) ONNX Runtime multiplies uint8 activations by int8 weights with ``VPMADDUBSW``,
  whose int16 pair sums saturate; there the text weights are unsigned (U8U8, ``int8_options``), which cannot
  saturate, and the posters stay fp32 (U8U8 convolutions are slower than fp32). Quantized graphs are cached in
  ``<cache>/onnx/``, one per option set.
* **Choosing** (``resolve``, at load): ``auto`` never runs the guard. It takes the first candidate whose saved
  guard result (model folder, else this machine's cache; keyed by weights, CPU kind ``kind_flags`` and precision)
  passed; without any, fp32 at once, with a note naming the command that runs the check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelens.errors import ModelError
from genrelens.paths import default_cache_dir

PRECISIONS = ("fp32", "bf16", "int8")
CHOICES = ("auto", *PRECISIONS)
ENV_FLAGS = "GENRELENS_CPU_FLAGS"  # comma- or space-separated flags: simulate another CPU
ENV_PRECISION = "GENRELENS_PRECISION"  # the CLI's default for --precision
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
INT8_FLAGS = frozenset({"amx_int8", "avx512_vnni", "avx_vnni", "avx512vnni"})
RELEVANT_FLAGS = BF16_FLAGS | INT8_FLAGS | {"avx512f", "avx2"}
GUARD_VERSION = 3  # bump when a precision path or the guard's rule changes (3: bf16 text on OpenVINO)
GUARD_FORMAT = "genrelens-precision-guard"  # the model folder's file (bundle.PRECISION_GUARD)
INT8_TEXT_VERSION = 1
INT8_POSTER_VERSION = 1
CALIBRATION_POSTERS = 128


# --- the CPU ---------------------------------------------------------------------------------------
def cpu_flags(flags: Iterable[str] | str | None = None) -> frozenset[str]:
    """The CPU's feature flags: ``flags`` if given, else ``$GENRELENS_CPU_FLAGS`` (set and not empty), else
    ``/proc/cpuinfo`` (empty where unreadable, e.g. not Linux: then ``auto`` is fp32)."""
    if flags is None:
        flags = os.environ.get(ENV_FLAGS) or None  # an empty variable is unset, as the other GENRELENS_ variables
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


def candidates(flags: Iterable[str] | str | None = None, text: bool = True) -> list[str]:
    """Precisions ``auto`` tries on this CPU, fastest first (fp32, always possible, is not listed): bf16 where the
    CPU has bf16 units (AMX or AVX512-BF16; OpenVINO), then int8 where it has VNNI (or AMX-INT8). The guard
    (``genrelens.guard``) still decides whether each keeps the predictions and is faster. bf16 changes only the
    text encoder: for a model without one (``text`` False) it is no candidate."""
    f = cpu_flags(flags)
    out = ["bf16"] if f & BF16_FLAGS and text else []
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
            "candidates": candidates(f),
            "int8_weights": "signed (VNNI)" if exact_int8(f) else "unsigned (U8U8, no VNNI)",
            "simulated": flags is not None or bool(os.environ.get(ENV_FLAGS))}


def kind_flags(flags: Iterable[str] | str | None = None) -> tuple[str, ...]:
    """The CPU kind as the guard keys it: the flags (of ``cpu_flags(flags)``) that change a precision path."""
    return tuple(sorted(cpu_flags(flags) & RELEVANT_FLAGS))


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
                    f"{self.precision} {self.rate:.1f} vs fp32 {self.rate_fp32:.1f} movies/s" if self.rate_fp32 > 0
                    else "speed not measured (it is timed only after the accuracy check passes)"))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags), "f1_drop": self.f1_drop}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GuardResult:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["flags"] = tuple(data.get("flags", ()))
        return cls(**data)


def guard_path(key: str, flags: frozenset[str], precision: str, cache_dir: Path | None = None) -> Path:
    """``<cache>/precision/<sha256(model key, relevant flags, precision, guard version)[:24]>.json``."""
    ident = f"{key}|{','.join(kind_flags(flags))}|{precision}|v{GUARD_VERSION}"
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
    want = kind_flags(flags)
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
            cache_dir: Path | None = None, model_dir: Path | None = None, text: bool = True) -> Choice:
    """The precision to run: ``requested`` itself unless it is ``auto``; for ``auto``, the first candidate of
    this CPU whose guard result passed, looked up (never run: see ``genrelens.guard``) in the model folder's saved
    results ``saved`` for weights ``key``, then in the machine's cache; else fp32, with a ``note`` naming the
    command that runs the check when a candidate has no result yet."""
    check_choice(requested)
    f = cpu_flags(flags)
    cpu = describe_cpu(f if flags is not None or os.environ.get(ENV_FLAGS) else None)
    if requested != "auto":
        return Choice(requested, requested, [], cpu)
    choice = Choice("fp32", requested, [], cpu)
    for precision in candidates(f, text):
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


# --- int8 graphs ------------------------------------------------------------------------------------
class _NoPreprocessHint(logging.Filter):
    """ONNX Runtime logs (on the root logger) a hint to pre-process a graph before quantizing it; the text
    graph is quantized as exported on purpose and the poster graph is pre-processed, so the hint is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # the bias note: a bias of a near-zero weight channel is clamped to int32
        return "pre-processing before quantization" not in message and "exceeds the range of a int32" not in message


@contextmanager
def _quiet_quantizer():
    root, hint = logging.getLogger(), _NoPreprocessHint()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)


def exact_int8(flags: Iterable[str] | str | None = None) -> bool:
    """Whether this CPU computes ONNX Runtime's u8 x s8 products exactly: VNNI (``VPDPBUSD``) or AMX-INT8. Without
    them (AVX2, AVX-512F/BW) the kernels use ``VPMADDUBSW``, whose int16 pair sums saturate for 8-bit weights."""
    return bool(cpu_flags(flags) & INT8_FLAGS)


def int8_options(flags: Iterable[str] | str | None = None) -> dict[str, Any]:
    """Quantizer options for this CPU kind: signed 8-bit per-channel weights where ``exact_int8``; elsewhere
    unsigned 8-bit weights (U8U8: ONNX Runtime widens both operands to 16 bits, no int16 saturation). 7-bit
    signed weights (``reduce_range``) cannot saturate either, but lost far more poster accuracy
    (benchmarks/int8_variants.py, docs/performance.md)."""
    return {"per_channel": True} if exact_int8(flags) else {"per_channel": True, "weight_type": "QUInt8"}


def _variant(options: dict[str, Any]) -> str:
    """File-name tag of the quantizer options (the default 8-bit per-channel graph has none)."""
    tags = [("rr", options.get("reduce_range", False)), ("pt", not options.get("per_channel", True)),
            ("u8", str(options.get("weight_type", "")).endswith("QUInt8"))]
    return "".join(f"-{t}" for t, on in tags if on)


def _quant_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType

    weight = options.get("weight_type", QuantType.QInt8)
    return {"per_channel": options.get("per_channel", True), "reduce_range": options.get("reduce_range", False),
            "weight_type": getattr(QuantType, weight) if isinstance(weight, str) else weight}


def quantize_text_int8(fp32_path: Path, out: Path | None = None, **options: Any) -> Path:
    """Dynamically quantized copy of a text export (int8 per-channel weights; feed-forward output MatMuls,
    the most sensitive, kept fp32), cached beside it. ``options``: ``int8_options`` (default: 8-bit weights)."""
    out = out or fp32_path.with_name(f"{fp32_path.stem}-int8dyn{_variant(options)}-v{INT8_TEXT_VERSION}.onnx")
    if out.is_file():
        return out
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    from genrelens.io import atomic_path

    names = [n.name for n in onnx.load(str(fp32_path), load_external_data=False).graph.node if n.op_type == "MatMul"]
    keep_fp32 = [n for n in names if "/output/dense/" in n and "/attention/" not in n]
    with atomic_path(out) as tmp, _quiet_quantizer():
        quantize_dynamic(str(fp32_path), str(tmp), op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_fp32,
                         **_quant_kwargs(options))
    return out


def quantize_poster_int8(fp32_path: Path, calibration: Callable[[], np.ndarray], calibration_id: str,
                         out: Path | None = None, **options: Any) -> Path:
    """Statically quantized copy of the poster export, cached beside it: QDQ, per-channel 8-bit weights (signed,
    or unsigned: ``int8_options``), uint8 activations with ranges calibrated on ``calibration()``
    (float32 [n, 3, s, s] preprocessed training posters; called only when the cache lacks the graph)."""
    out = out or fp32_path.with_name(f"{fp32_path.stem}-int8static-{calibration_id[:12]}{_variant(options)}"
                                     f"-v{INT8_POSTER_VERSION}.onnx")
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
        quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, **_quant_kwargs(options))
    return out


# --- applying a precision to the encoders -----------------------------------------------------------
def apply_text(encoder, precision: str, cache_dir: Path | None = None) -> None:
    """Run ``encoder`` (a ``TextEncoder``) in ``precision``: fp32 ONNX Runtime, bf16 OpenVINO, or int8 ONNX
    Runtime. An encoder already on its session for ``precision`` keeps it (no second session, no second hash of its
    weights)."""
    if getattr(encoder, "precision", "fp32") == precision and encoder.session is not None:
        return
    encoder.precision = precision
    try:
        encoder.use_onnx(cache_dir)  # bf16: OpenVINO on the fp32 export (``onnx.open_session``)
    except (ModelError, RuntimeError, OSError) as e:
        if precision != "bf16":
            raise
        encoder.precision = "fp32"  # back on the fp32 graph, then say why
        encoder.use_onnx(cache_dir)
        if isinstance(e, ModelError):
            raise
        raise ModelError(f"OpenVINO cannot run the text graph here: {e}") from e
    if precision == "int8":
        from genrelens.encoders.onnx import ort_session

        path = quantize_text_int8(encoder.onnx_file, **int8_options())
        encoder.session, encoder.onnx_file = ort_session(path, encoder.session_threads), path


POSTERS_FP32 = ("no VNNI on this CPU: int8 runs the text encoder only, the posters stay fp32 (ONNX Runtime's "
                "unsigned int8 convolutions run several times slower than fp32)")
INT8_NOTHING = ("no VNNI on this CPU: int8 would quantize nothing of this model (posters stay fp32 without VNNI, "
                "and it reads no text): running fp32")


def apply_poster(encoder, precision: str, calibration_posters=None) -> None:
    """Run ``encoder`` (a ``PosterEncoder`` on ONNX) in ``precision``: int8 swaps in the calibrated static
    graph where ``exact_int8`` (elsewhere only unsigned weights avoid saturation, and ONNX Runtime's U8U8
    convolutions were 5-8x slower than fp32 in docs/performance.md: the posters stay fp32, ``POSTERS_FP32``);
    fp32 and bf16 run the fp32 graph, both on ONNX Runtime (in bf16 its features moved the genre sets of about
    2% of the default model's test movies, docs/performance.md).
    ``calibration_posters(n)`` gives int8's calibration set ``(poster paths, root)`` (the model's training
    posters: ``ModelBundle.calibration_posters``)."""
    from genrelens.encoders.onnx import ort_session

    if encoder.session is None:  # torch backend (a fine-tuned last block): stays fp32 eager
        encoder.precision = "fp32"
        return
    target = "int8" if precision == "int8" and exact_int8() else "fp32"  # see ``POSTERS_FP32``
    if getattr(encoder, "precision", "fp32") == target:
        return
    path = encoder.onnx_path
    if target == "int8":
        if calibration_posters is None:
            raise ModelError("int8 posters need the model folder (its training split calibrates them)")
        paths, root = calibration_posters(CALIBRATION_POSTERS)

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
        path = quantize_poster_int8(path, calibration, ident, **int8_options())
    encoder.session = ort_session(path, encoder.num_threads)
    encoder.precision = target
