"""ONNX export of the text encoder (the poster CNN exports itself, see ``encoders/poster.py``), and the runtimes
that run the exported graphs.

The transformer plus mean pooling (and L2 normalization when the encoder uses it) becomes one graph with
dynamic batch and sequence axes, so the runtime can run length-sorted, dynamically padded batches. Files
live in ``<cache>/onnx/`` named by the weights hash (a fine-tuned encoder gets its own file), are written
atomically, and only the most recently used ``KEEP_TEXT_EXPORTS`` are kept.

Runtimes: ONNX Runtime runs the fp32 and int8 graphs (``ort_session``); OpenVINO runs the text graph of the bf16
path (``OpenVINOSession``: the same fp32 graph compiled with bf16 inference precision: its CPU plugin has bf16
kernels for AVX512-BF16 and AMX, which ONNX Runtime's CPU provider lacks). Both answer
``session.run(None, feeds) -> [outputs]``.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from genrelens.encoders.pooling import mean_pool
from genrelens.io import atomic_path

if TYPE_CHECKING:
    from genrelens.encoders.base import TextEncoderLike as TextEncoder  # an interface: text.py imports this module

ONNX_OPSET = 17
KEEP_TEXT_EXPORTS = 8
EXPORT_VERSION = 1  # bump when the exported graph changes


class PooledTextModel(nn.Module):
    """``(input_ids, attention_mask) -> [n, dim]`` sentence embeddings, as ``TextEncoder.embed``; with a
    ``probe_layer``, also that hidden layer's mean-pooled states (``TextEncoder.embed_with_probe``)."""

    def __init__(self, model: nn.Module, normalize: bool, probe_layer: int | None = None) -> None:
        super().__init__()
        self.model, self.normalize, self.probe_layer = model, normalize, probe_layer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        res = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         output_hidden_states=self.probe_layer is not None)
        out = mean_pool(res.last_hidden_state, attention_mask)
        out = nn.functional.normalize(out, dim=-1) if self.normalize else out
        if self.probe_layer is None:
            return out
        return out, mean_pool(res.hidden_states[self.probe_layer], attention_mask)


def text_onnx_path(encoder: TextEncoder, cache_dir: Path) -> Path:
    """Where the export of ``encoder``'s current weights lives."""
    layer = getattr(encoder, "probe_layer", None)  # an encoder without one exports the embedding only
    probe = "" if layer is None else f"-probe{layer}"
    stem = (f"text-{encoder.name}-{encoder.export_key()}-norm{int(encoder.normalize)}{probe}"
            f"-op{ONNX_OPSET}-v{EXPORT_VERSION}")
    return Path(cache_dir) / "onnx" / f"{stem}.onnx"


def export_text_onnx(encoder: TextEncoder, path: Path) -> Path:
    """Export ``encoder`` (a copy in eager attention, so the live model keeps its mode) to ``path``."""
    model = copy.deepcopy(encoder.model).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # plain matmul/softmax ops: exports on every opset
    layer = getattr(encoder, "probe_layer", None)
    wrapper = PooledTextModel(model, encoder.normalize, layer).eval()
    outputs = ["embedding"] if layer is None else ["embedding", "probe"]
    sample = encoder.tokenize(["a short plot", "a slightly longer plot about a heist"])
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (sample["input_ids"], sample["attention_mask"]), str(tmp),
                input_names=["input_ids", "attention_mask"], output_names=outputs,
                dynamic_axes={"input_ids": {0: "n", 1: "t"}, "attention_mask": {0: "n", 1: "t"},
                              **{name: {0: "n"} for name in outputs}},
                opset_version=ONNX_OPSET, dynamo=False,
            )
    finally:
        encoder.model.eval()
    prune_text_exports(path.parent, keep=path)
    return path


def prune_text_exports(folder: Path, keep: Path | None = None, n: int = KEEP_TEXT_EXPORTS) -> None:
    """Remove all but the ``n`` most recently used text exports (each fine-tuned model adds one)."""
    files = sorted(folder.glob("text-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[n:]:
        if old != keep:
            old.unlink(missing_ok=True)


def text_session(encoder: TextEncoder, path: Path, num_threads: int, precision: str = "fp32"):
    """A session for ``encoder`` in ``precision`` (``open_session``) on its export ``path`` (``text_onnx_path``),
    exported first when the cache lacks it."""
    if precision == "bf16":
        require_openvino()
    if not path.is_file():
        export_text_onnx(encoder, path)
    else:
        try:
            os.utime(path)  # marks it used, for pruning
        except OSError:  # a read-only cache: nothing to prune there
            pass
    try:
        return open_session(path, num_threads, precision)
    except Exception:  # a damaged file: export again once (OpenVINO's failures are its own: the caller's to handle)
        if precision == "bf16":
            raise
        export_text_onnx(encoder, path)
        return open_session(path, num_threads, precision)


def open_session(path: Path, num_threads: int, precision: str = "fp32"):
    """The runtime for an exported fp32 graph in ``precision``: OpenVINO in bf16 for ``bf16``, else ONNX Runtime."""
    return OpenVINOSession(path, num_threads, "bf16") if precision == "bf16" else ort_session(path, num_threads)


def ort_session(path: Path, num_threads: int):
    """CPU session with ``num_threads`` intra-op threads that sleep instead of spinning when idle (on 2
    shared cores spinning threads steal the CPU from the other encoder and from other processes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


_OV_CORE = None
_OV_LOCK = threading.Lock()


def require_openvino() -> None:
    """Raise ``ModelError`` saying how to install OpenVINO when it is missing (the bf16 path needs it)."""
    from genrelens.errors import ModelError

    try:
        import openvino  # noqa: F401
    except ImportError as e:
        raise ModelError("the bf16 path runs on OpenVINO, which is not installed: pip install openvino "
                         "(or run in fp32: --precision fp32)") from e


def _compile(core, path: Path, config: dict):
    """``path`` compiled for the CPU by OpenVINO with ``config``."""
    return core.compile_model(str(path), "CPU", config)


class OpenVINOSession:
    """An ONNX graph compiled by OpenVINO's CPU plugin, behind ONNX Runtime's ``run(None, feeds)``.

    ``precision`` ``"bf16"`` sets OpenVINO's inference precision hint: matrix products and convolutions run in bf16
    where the CPU has bf16 units (AVX512-BF16, AMX), the rest in fp32; on a CPU without them OpenVINO runs fp32, and
    where a node has no bf16 kernel the graph is compiled in fp32 (``inference_precision`` says which ran).
    Each thread gets its own infer request (one request is not safe to share between threads)."""

    def __init__(self, path: Path, num_threads: int, precision: str = "bf16") -> None:
        global _OV_CORE
        import openvino as ov

        with _OV_LOCK:
            if _OV_CORE is None:
                _OV_CORE = ov.Core()
            core = _OV_CORE
        config = {"INFERENCE_NUM_THREADS": int(num_threads), "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        try:
            self.compiled = _compile(core, Path(path), config)
        except RuntimeError:  # no bf16 kernel for some node (e.g. oneDNN capped by ONEDNN_MAX_CPU_ISA): fp32
            if precision != "bf16":
                raise
            self.compiled = _compile(core, Path(path), {**config, "INFERENCE_PRECISION_HINT": "f32"})
        self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._local = threading.local()

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer(feeds)  # outputs are copies (share_outputs=False)
        outputs = self.compiled.outputs if output_names is None else [self.compiled.output(n) for n in output_names]
        return [result[o] for o in outputs]
