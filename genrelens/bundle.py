"""The model bundle: one object that owns a model folder, as Hugging Face's ``save_pretrained`` /
``from_pretrained`` pair does.

A model folder holds (names owned here, nowhere else):

| file | what |
|---|---|
| ``genrelens_model.json`` | the manifest: format, format version, genrelens version, model, files (written last) |
| ``config.json`` | the ``RunConfig`` that the model is rebuilt from |
| ``labels.json``, ``thresholds.json`` | label order and per-label decision thresholds (raw score scale) |
| ``calibration.json`` | per-label calibrators and the thresholds on the calibrated scale (absent: uncalibrated) |
| ``novelty.json``, ``novelty.safetensors`` | review reasons: settings, training reference set (``models/novelty.py``) |
| ``precision_guard.json`` | accuracy-guard results of bf16/int8 vs fp32, per CPU kind (``encoders/precision.py``) |
| ``model.safetensors`` | the head's weights (every model, naive included) |
| ``text_encoder/``, ``text_head.safetensors`` | the fine-tuned text encoder and its stage-1 head (text stage) |
| ``lexical.json``, ``lexical.safetensors`` | the TF-IDF + logistic regression channel (settings, vocabulary; weights) |
| ``split.json``, ``metrics.json``, ``test_proba.npy``, ``test_ids.json`` | what training measured (artifacts) |
| ``checkpoints/``, ``history.csv``, ``curves.png`` | training's own files (kept, never read for inference) |

The manifest also records ``hashes``: sha256 and size of every file that decides predictions (``KEYED``),
computed at save time, so ``weights_key`` names the weights without reading them again (a folder from before
has its key from file sizes and modification times).

``build_model`` makes the head of a ``RunConfig`` from the registry; ``ModelBundle.save_pretrained(dir)``
writes the whole folder atomically; ``ModelBundle.from_pretrained(dir)`` checks the manifest and rebuilds
the encoders and the head. Only safetensors, JSON and ``.npy`` (without pickle) are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from genrelens.config import RunConfig
from genrelens.errors import ModelError
from genrelens.io import atomic_dir, atomic_path, write_json_atomic
from genrelens.models.checkpoint import load_tensors, save_tensors
from genrelens.models.registry import ModelSpec, build_head, get_spec
from genrelens.version import __version__

FORMAT = "genrelens-model"
FORMAT_VERSION = 1  # bump when a folder of the old version can no longer be read as is

MANIFEST = "genrelens_model.json"
CONFIG = "config.json"
LABELS = "labels.json"
THRESHOLDS = "thresholds.json"
CALIBRATION = "calibration.json"
PRECISION_GUARD = "precision_guard.json"
NOVELTY = "novelty.json"
NOVELTY_WEIGHTS = "novelty.safetensors"
WEIGHTS = "model.safetensors"
TEXT_ENCODER = "text_encoder"
TEXT_HEAD = "text_head.safetensors"
LEXICAL = "lexical.json"
LEXICAL_WEIGHTS = "lexical.safetensors"
SPLIT = "split.json"
METRICS = "metrics.json"
TEST_PROBA = "test_proba.npy"
TEST_IDS = "test_ids.json"
CHECKPOINTS = "checkpoints"
HISTORY = "history.csv"  # per training stage, in ``checkpoints/<stage>/`` (``history_file``)
LEGACY_NAIVE = "naive.json"  # the naive model's frequencies before it was a head (still read)
PICKLES = ("model.pt", "model.pth", "model.bin", "model.pkl")
KEYED = (CONFIG, LABELS, THRESHOLDS, CALIBRATION, WEIGHTS, TEXT_HEAD, LEGACY_NAIVE, TEXT_ENCODER, LEXICAL,
         LEXICAL_WEIGHTS)  # the files that decide predictions (their hashes key the accuracy guard)


def build_model(cfg: RunConfig, dims: dict[str, int], n_labels: int, poster_top: nn.Module | None = None) -> nn.Module:
    """The head of ``cfg.model`` for feature sizes ``dims`` (e.g. ``{"text": 384, "poster": 1280}``)."""
    return build_head(cfg.model, dims, n_labels, cfg.hidden, cfg.dropout, cfg.modality_dropout, poster_top=poster_top)


def build_encoders(cfg: RunConfig, folder: Path | None = None, backend: str = "onnx", text_precision: str = "fp32"):
    """``(text encoder | None, poster encoder | None)`` that model ``cfg.model`` reads. A text stage's
    fine-tuned encoder comes from ``folder/text_encoder``; ``backend`` "onnx" or "torch"; ``text_precision``:
    ``build_text``'s ``precision``."""
    return build_text(cfg, folder, backend, text_precision), build_poster(cfg, backend)


def build_text(cfg: RunConfig, folder: Path | None = None, backend: str = "onnx", precision: str = "fp32"):
    """The text encoder that model ``cfg.model`` reads (None: it reads none), with its token windows: the
    fine-tuned one of ``folder/text_encoder`` for a model with a text stage, else (or with no ``folder``:
    training, before fine-tuning) the registry's ``cfg.text_encoder``. ``precision`` "bf16" opens its graph on
    OpenVINO at once (a load that will run bf16 builds no ONNX Runtime session first)."""
    from genrelens.encoders.registry import build_text_encoder

    spec = get_spec(cfg.model)
    if spec.text_stage and folder is not None:
        from genrelens.encoders.text import TextEncoder

        text = TextEncoder.from_dir(folder / TEXT_ENCODER, max_length=cfg.max_length)
    elif spec.text_encoder:
        text = build_text_encoder(cfg.text_encoder, max_length=cfg.max_length)
    else:
        return None
    text.set_windows(cfg.windows, cfg.window_stride, cfg.window_pooling)
    text.probe_layer = probe_layer(cfg)
    if backend == "onnx":
        if precision == "bf16":
            text.precision = "bf16"
            try:
                text.use_onnx()
                return text
            except Exception:  # OpenVINO cannot run it here: the fp32 graph (use_precision says why)
                text.precision = "fp32"
        _onnx_text(text)
    return text


MIN_PROBE_LAYER = 2  # lower hidden layers hardly set non-movie texts apart (docs/trust.md)


def probe_layer(cfg: RunConfig) -> int | None:
    """The text encoder's probe layer for model ``cfg.model``: a frozen layer of a fine-tuned encoder (its
    states are the pretrained ones whatever the fine-tuning did), the last one below the top ``cfg.ft_layers``
    and ``cfg.probe_depth`` layers; None for other models (a frozen encoder's own features are already
    pretrained) or when that layer would be under ``MIN_PROBE_LAYER``."""
    from genrelens.encoders.registry import text_spec

    layers = text_spec(cfg.text_encoder).layers
    if not get_spec(cfg.model).text_stage or layers is None:
        return None
    layer = layers - max(cfg.ft_layers, cfg.probe_depth)
    return layer if layer >= MIN_PROBE_LAYER else None


def build_poster(cfg: RunConfig, backend: str = "onnx"):
    """The poster encoder that model ``cfg.model`` reads (None: it reads none); a fine-tuned last block runs
    in torch after the frozen bottom, so with ``cfg.poster_finetune`` it is torch whatever ``backend``."""
    from genrelens.encoders.registry import build_poster_encoder

    if not get_spec(cfg.model).poster:
        return None
    return build_poster_encoder(cfg.poster_encoder, backend="torch" if cfg.poster_finetune else backend)


def _onnx_text(encoder) -> None:
    """Move ``encoder.encode`` to ONNX Runtime; stay on torch (with a warning) if the export fails."""
    try:
        encoder.use_onnx()
    except Exception as e:  # an architecture the exporter cannot handle: slower, still correct
        import warnings

        warnings.warn(f"text encoder stays on torch (ONNX export failed: {e})", RuntimeWarning, stacklevel=3)


@dataclass
class ModelBundle:
    """A trained model: config, labels, thresholds, head and the encoders it reads.

    ``thresholds``: float32 ``[n_labels]`` in ``labels`` order. ``artifacts``: what training measured
    (``split``, ``metrics``, ``test_proba``, ``test_ids``), saved beside the model when given.
    """

    config: RunConfig
    labels: list[str]
    thresholds: np.ndarray
    model: nn.Module
    text_encoder: Any = None
    poster_encoder: Any = None
    text_head: nn.Module | None = None
    dims: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    manifest: dict = field(default_factory=dict)
    calibrator: Any = None  # genrelens.models.calibration.Calibrator; None: a model trained before calibration
    lexical: Any = None  # genrelens.models.lexical.LexicalChannel (models with ``config.lexical``)
    precision_guard: dict | None = None  # PRECISION_GUARD's content (written by `save_precision_guard`)
    novelty: Any = None  # genrelens.models.novelty.Novelty (review reasons); None: a model fitted before it
    lineage: dict | None = None  # an adapted model's origin (``genrelens adapt``), kept in the manifest

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.config.model)

    # --- writing ---------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the whole folder atomically (a crash leaves the old folder or the new one). Files of the
        folder that the bundle does not write (training's checkpoints, history, curves) are kept."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            if path.is_dir():
                _carry_over(path, tmp, skip={MANIFEST, CONFIG, LABELS, THRESHOLDS, WEIGHTS, TEXT_ENCODER,
                                             TEXT_HEAD, LEGACY_NAIVE, CALIBRATION, LEXICAL, LEXICAL_WEIGHTS,
                                             PRECISION_GUARD, NOVELTY, NOVELTY_WEIGHTS,
                                             *self.artifacts_files()})
            self.config.save(tmp / CONFIG)
            write_json_atomic(tmp / LABELS, list(self.labels))
            write_json_atomic(tmp / THRESHOLDS, dict(zip(self.labels, map(float, self.thresholds))))
            dims = dict(sorted(self.dims.items()))  # one byte layout whichever order the encoders came in
            save_tensors(tmp / WEIGHTS, self.model.state_dict(), meta={"dims": dims})
            if self.spec.text_stage and self.text_encoder is not None:
                self.text_encoder.save(tmp / TEXT_ENCODER)
            if self.text_head is not None:
                save_tensors(tmp / TEXT_HEAD, self.text_head.state_dict())
            if self.calibrator is not None:
                write_json_atomic(tmp / CALIBRATION, self.calibrator.to_json())
            if self.lexical is not None:
                self.lexical.save(tmp / LEXICAL, tmp / LEXICAL_WEIGHTS)
            for name, value in self.artifacts.items():
                write_artifact(tmp, name, value)
            if self.novelty is not None:
                self.novelty.save(tmp / NOVELTY, tmp / NOVELTY_WEIGHTS)
            if self.precision_guard is not None:  # a loaded bundle saved again: its guard results stay (keyed)
                write_json_atomic(tmp / PRECISION_GUARD, self.precision_guard)
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "genrelens_version": __version__,
                        "model": self.config.model, "labels": list(self.labels), "dims": self.dims,
                        "files": sorted(p.name for p in tmp.iterdir()), "hashes": file_hashes(tmp),
                        **({"lineage": self.lineage} if self.lineage else {})}
            write_json_atomic(tmp / MANIFEST, manifest)  # last: marks a complete folder
        self.path, self.manifest = path, manifest
        return path

    def save_calibration(self, calibrator: Any, metrics: dict | None = None) -> Path:
        """Add (or replace) the calibrator of this saved folder, and its ``metrics.json`` when given, without
        rewriting the rest; the manifest is rewritten last."""
        if self.path is None:
            raise ModelError("save the model before calibrating it")
        self.calibrator = calibrator
        write_json_atomic(self.path / CALIBRATION, calibrator.to_json())
        if metrics is not None:
            self.artifacts["metrics"] = metrics
            write_artifact(self.path, "metrics", metrics)
        if self.manifest:
            self.manifest["files"] = sorted({*self.manifest.get("files", []), CALIBRATION, METRICS})
            if "hashes" in self.manifest:  # calibration.json decides predictions: its hash changes the key
                self.manifest["hashes"] = file_hashes(self.path)
            write_json_atomic(self.path / MANIFEST, self.manifest)
        return self.path / CALIBRATION

    def save_novelty(self, novelty: Any) -> Path:
        """Add (or replace) the novelty files of this saved folder without rewriting the rest; the manifest is
        rewritten last."""
        if self.path is None:
            raise ModelError("save the model before fitting its novelty score")
        novelty.save(self.path / NOVELTY, self.path / NOVELTY_WEIGHTS)
        self.novelty = novelty
        if self.manifest:
            self.manifest["files"] = sorted({*self.manifest.get("files", []), NOVELTY, NOVELTY_WEIGHTS})
            write_json_atomic(self.path / MANIFEST, self.manifest)
        return self.path / NOVELTY

    def save_precision_guard(self, content: dict) -> Path:
        """Write the accuracy-guard results (``encoders/precision.py``) into this saved folder, without
        rewriting the rest; the manifest is rewritten last. Raises ``OSError`` when the folder is read-only."""
        if self.path is None:
            raise ModelError("save the model before checking its precisions")
        write_json_atomic(self.path / PRECISION_GUARD, content)
        self.precision_guard = content
        if self.manifest:
            self.manifest["files"] = sorted({*self.manifest.get("files", []), PRECISION_GUARD})
            write_json_atomic(self.path / MANIFEST, self.manifest)
        return self.path / PRECISION_GUARD

    def weights_key(self) -> str:
        """The identity of what decides this saved model's predictions (see ``weights_key``)."""
        if self.path is None:
            raise ModelError("the model has no folder yet: save it first")
        return weights_key(self.path, self.manifest)

    def artifacts_files(self) -> set[str]:
        return {_ARTIFACT_FILES[k] for k in self.artifacts}

    # --- reading ---------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, backend: str = "onnx",
                        text_precision: str = "fp32") -> ModelBundle:
        """Rebuild the model saved in ``path``: encoders (``backend`` "onnx" or "torch"; ``text_precision`` "bf16":
        the text graph on OpenVINO, ``build_text``), head, thresholds.

        Raises ``ModelError`` with what is wrong and what to do when the folder is not a loadable model."""
        path = Path(path)
        manifest, cfg, labels, thresholds = read_meta(path)
        spec = get_spec(cfg.model)
        text, poster = build_encoders(cfg, path, backend, text_precision)
        dims = {}
        if text is not None:
            dims["text"] = text.dim
        if poster is not None:
            dims["poster"] = poster.dim
        top = poster.trainable_top() if cfg.poster_finetune else None
        model = build_model(cfg, dims, len(labels), poster_top=top)
        if spec.fitted and not (path / WEIGHTS).exists() and (path / LEGACY_NAIVE).exists():
            state = _legacy_naive_state(path / LEGACY_NAIVE, len(labels))
        else:
            state = load_tensors(path / WEIGHTS)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:  # shapes or names that do not fit the config
            raise ModelError(f"{path / WEIGHTS} does not match {path / CONFIG}: {e}") from e
        model.eval()
        text_head = None
        if spec.text_stage and (path / TEXT_HEAD).exists():
            from genrelens.models.heads import UnimodalHead

            text_head = UnimodalHead("text", {"text": dims["text"]}, len(labels), hidden=0, norm=False)
            text_head.load_state_dict(load_tensors(path / TEXT_HEAD))
        lexical = None
        if cfg.lexical:
            from genrelens.models.lexical import LexicalChannel

            if not (path / LEXICAL).exists():
                raise ModelError(f"{path} is a model with a lexical channel but {LEXICAL} is missing: retrain it")
            lexical = LexicalChannel.load(path / LEXICAL, path / LEXICAL_WEIGHTS)
        return cls(cfg, labels, thresholds, model, text, poster, text_head, dims, path=path, manifest=manifest,
                   calibrator=read_calibration(path, labels), lexical=lexical,
                   precision_guard=read_precision_guard(path), novelty=read_novelty(path),
                   lineage=manifest.get("lineage"))

    def head_proba(self, feats: dict[str, torch.Tensor], calibrated: bool = True) -> np.ndarray:
        """Probabilities ``float32 [n, n_labels]`` from a head input batch: the head's sigmoid, the lexical channel
        late-fused on the rows whose ``text_mask`` is set (models with one), then the calibrator (``calibrated``)."""
        n = len(next(iter(feats.values()))) if feats else 0
        with torch.inference_mode():
            self.model.eval()
            logits = self.model(feats) if n else torch.zeros((0, len(self.labels)))
        proba = torch.sigmoid(logits).numpy().astype(np.float32)
        if self.lexical is not None and self.spec.text != "lexical" and n:
            from genrelens.models.lexical import fused_proba

            proba = fused_proba(proba, feats["lexical"].numpy(), feats["text_mask"].numpy(), self.lexical.weight)
        return self.calibrator.transform(proba) if calibrated and self.calibrator is not None else proba

    def split_ids(self, name: str) -> list[str]:
        """The movie ids of this model's ``name`` split ("train", "val" or "test"; see ``read_split``)."""
        if "split" in self.artifacts:
            return list(self.artifacts["split"][name])
        if self.path is None:
            raise ModelError("the model has no folder yet: it has no saved split")
        return read_split(self.path, name)

    def calibration_posters(self, n: int) -> tuple[list[str], Path]:
        """The first ``n`` posters (by id) of this model's training split and the folder they are relative to
        (int8's calibration set); ``ModelError`` when there are none."""
        from genrelens.data.split import select

        df, _ = self.config.read_table()
        df = select(df, self.split_ids("train"))
        df = df[df["poster"].notna()].sort_values("id").head(n)
        if df.empty:
            raise ModelError("int8 posters need calibration posters, and the training split has none")
        return [str(p) for p in df["poster"]], Path(df.attrs["root"])

    def labelled_split(self, df: pd.DataFrame, name: str) -> tuple[pd.DataFrame, np.ndarray, int]:
        """This model's ``name`` split of the table ``df`` as training kept it (see ``labelled_rows``)."""
        return labelled_rows(df, self.split_ids(name), self.labels)

    def artifact(self, name: str, default: Any = None) -> Any:
        """A training artifact of this folder (``split``, ``metrics``, ``test_proba``, ``test_ids``)."""
        if name in self.artifacts:
            return self.artifacts[name]
        return read_artifact(self.path, name, default) if self.path is not None else default


def read_meta(path: Path) -> tuple[dict, RunConfig, list[str], np.ndarray]:
    """``(manifest, config, labels, thresholds float32 [n_labels])`` of a model folder, without weights.

    A folder from before manifests (same layout) loads with an empty manifest; one written by a newer
    format is refused with the version to install."""
    if not (path / CONFIG).exists():
        raise ModelError(f"no model in {path} ({CONFIG} missing): train one with `genrelens train` "
                         f"or run the README's main job")
    for bad in PICKLES:
        if (path / bad).exists() and not (path / WEIGHTS).exists():
            raise ModelError(f"{path / bad} is a pickle checkpoint: refused (only safetensors are loaded)")
    manifest: dict = {}
    if (path / MANIFEST).exists():
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"{path / MANIFEST} is unreadable ({e}): save the model again") from e
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelError(f"{path / MANIFEST} is not a genrelens model manifest")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelError(f"{path} was saved by genrelens {manifest.get('genrelens_version', '?')} in model "
                             f"format {version}; this genrelens ({__version__}) reads format {FORMAT_VERSION} and "
                             f"older: upgrade genrelens (pip install -U genrelens) or retrain the model")
    try:
        cfg = RunConfig.load(path / CONFIG)
        labels = json.loads((path / LABELS).read_text())
        thr_map = json.loads((path / THRESHOLDS).read_text())
    except (OSError, ValueError, TypeError) as e:
        raise ModelError(f"{path} is not a complete model directory: {e}") from e
    missing = [g for g in labels if g not in thr_map]
    if missing:
        raise ModelError(f"{path / THRESHOLDS} lacks thresholds for {missing}")
    return manifest, cfg, labels, np.array([thr_map[g] for g in labels], dtype=np.float32)


def read_calibration(path: Path, labels: list[str] | None = None):
    """The ``Calibrator`` saved in the model folder ``path``; None when it has none (trained before
    calibration). Raises ``ModelError`` when the file is unreadable or made for other labels."""
    from genrelens.models.calibration import Calibrator

    file = Path(path) / CALIBRATION
    if not file.exists():
        return None
    try:
        cal = Calibrator.from_json(json.loads(file.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{file} is unreadable ({e}): run `genrelens calibrate --model-dir {path}` again") from e
    if labels is not None and cal.labels != list(labels):
        raise ModelError(f"{file} is for labels {cal.labels}, the model has {list(labels)}")
    return cal


def read_novelty(path: Path):
    """The ``Novelty`` saved in the model folder ``path``; None when it has none (fitted before it)."""
    from genrelens.models.novelty import Novelty

    if not (Path(path) / NOVELTY).exists():
        return None
    return Novelty.load(Path(path) / NOVELTY, Path(path) / NOVELTY_WEIGHTS)


def read_precision_guard(path: Path) -> dict | None:
    """The accuracy-guard results saved in the model folder ``path``; None when absent or unreadable (a damaged
    file only means the guard is looked up elsewhere)."""
    try:
        data = json.loads((Path(path) / PRECISION_GUARD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def keyed_files(folder: Path) -> list[str]:
    """Paths (relative, ``/``-separated, sorted) of the files of ``folder`` that decide its predictions."""
    out = []
    for name in KEYED:
        p = Path(folder) / name
        if p.is_file():
            out.append(name)
        elif p.is_dir():
            out += [f.relative_to(folder).as_posix() for f in p.rglob("*") if f.is_file()]
    return sorted(out)


def file_hashes(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` of ``keyed_files(folder)`` (written into the manifest at save)."""
    out = {}
    for rel in keyed_files(folder):
        digest = hashlib.sha256()
        with open(Path(folder) / rel, "rb") as f:
            while block := f.read(1 << 22):
                digest.update(block)
        out[rel] = {"sha256": digest.hexdigest(), "size": (Path(folder) / rel).stat().st_size}
    return out


def weights_key(folder: str | os.PathLike, manifest: dict | None = None) -> str:
    """A key for the accuracy guard that changes when the model's predictions may change, without reading the
    weights: the sha256 of the manifest's stored ``hashes`` when every listed file is still there with its size
    and no other keyed file appeared, else (a folder from before, or files replaced by hand) one of the keyed
    files' names, sizes and modification times."""
    folder = Path(folder)
    if manifest is None:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
    hashes = manifest.get("hashes") if isinstance(manifest, dict) else None
    files = keyed_files(folder)
    if isinstance(hashes, dict) and sorted(hashes) == files and all(
            isinstance(h, dict) and (folder / rel).stat().st_size == h.get("size") for rel, h in hashes.items()):
        ident = json.dumps({rel: h.get("sha256") for rel, h in sorted(hashes.items())})
        return "sha256:" + hashlib.sha256(ident.encode()).hexdigest()
    stats = [(rel, (folder / rel).stat().st_size, (folder / rel).stat().st_mtime_ns) for rel in files]
    return "stat:" + hashlib.sha256(json.dumps(stats).encode()).hexdigest()


_ARTIFACT_FILES = {"split": SPLIT, "metrics": METRICS, "test_proba": TEST_PROBA, "test_ids": TEST_IDS}


def read_artifact(path: Path, name: str, default: Any = None) -> Any:
    """Artifact ``name`` of the model folder ``path`` (JSON, or a float array for ``test_proba``), or
    ``default`` when absent or unreadable."""
    file = Path(path) / _ARTIFACT_FILES[name]
    try:
        if file.suffix == ".npy":
            return np.load(file, allow_pickle=False)
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return default


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a saved model (its config and head weights), without reading it."""
    path = Path(path)
    return (path / CONFIG).is_file() and ((path / WEIGHTS).is_file() or (path / LEGACY_NAIVE).is_file())


def history_file(path: str | os.PathLike, stage: str) -> Path:
    """The per-epoch history that training wrote for ``stage`` ("text": fine-tuning, "head") in the folder
    ``path`` (training's own file: it may be absent)."""
    return Path(path) / CHECKPOINTS / stage / HISTORY


def read_split(path: str | os.PathLike, name: str) -> list[str]:
    """The movie ids of split ``name`` ("train", "val" or "test") of the model folder ``path``; ``ModelError``
    saying what is missing when the folder has no readable split."""
    split = read_artifact(Path(path), "split")
    if not isinstance(split, dict) or name not in split:
        raise ModelError(f"{Path(path) / SPLIT} is missing or lacks the {name!r} split: the model's own split is "
                         "needed (retrain it, or score a table without naming a split)")
    return list(split[name])


def labelled_rows(df: pd.DataFrame, ids: list[str] | None, labels: list[str]) -> tuple[pd.DataFrame, np.ndarray, int]:
    """The rows of the table ``df`` whose id is in ``ids`` (None: every row) that carry at least one of ``labels``,
    as training keeps them: ``(rows (index reset, df's attrs kept), y float32 multi-hot [n, L], rows dropped for
    having none of the labels)``."""
    from genrelens.data.labels import LabelSet
    from genrelens.data.split import select

    part = select(df, ids) if ids is not None else df
    y = LabelSet(labels, aliases=False).encode(part["genres"])  # the model's names, each its own column
    keep = y.sum(1) > 0
    out = part[keep].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out, y[keep], int((~keep).sum())


def write_artifact(folder: Path, name: str, value: Any) -> None:
    """Write artifact ``name`` into ``folder`` atomically."""
    file = Path(folder) / _ARTIFACT_FILES[name]
    if file.suffix == ".npy":
        with atomic_path(file) as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(value), allow_pickle=False)
    else:
        write_json_atomic(file, value)


def install(src: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy the model folder ``src`` to ``target`` atomically, without training's checkpoints."""
    src, target = Path(src), Path(target)
    read_meta(src)  # a model folder, or a clear error
    with atomic_dir(target) as tmp:
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(CHECKPOINTS), dirs_exist_ok=True)
    return target


def _carry_over(old: Path, new: Path, skip: set[str]) -> None:
    """Hard-link (else copy) the entries of ``old`` not in ``skip`` into ``new``."""
    for entry in old.iterdir():
        if entry.name in skip or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, new / entry.name)


def _link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _legacy_naive_state(file: Path, n_labels: int) -> dict[str, torch.Tensor]:
    try:
        data = json.loads(file.read_text())
        freq = torch.tensor(data["frequencies"], dtype=torch.float32)
        return {"freq": freq.reshape(n_labels), "k": torch.tensor(int(data["k"]))}
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ModelError(f"{file} is not a naive model's frequencies: {e}") from e


__all__ = ["FORMAT_VERSION", "ModelBundle", "build_encoders", "build_model", "build_poster", "build_text",
           "history_file", "install", "is_model_folder", "labelled_rows", "read_artifact", "read_calibration",
           "read_meta", "read_novelty", "read_precision_guard", "read_split", "weights_key"]
