"""``GenreClassifier``: the one public way to load a trained model and score movies.

The CLI, the REST service, the benchmark and users all call it; nothing else loads models.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genrelens.data.clean import clean_text
from genrelens.data.labels import LabelSet
from genrelens.errors import ModelError
from genrelens.train.checkpoint import load_tensors
from genrelens.train.config import RunConfig
from genrelens.train.thresholds import decide

ENV_MODEL_DIR = "GENRELENS_MODEL_DIR"


def default_model_dir() -> Path:
    """``$GENRELENS_MODEL_DIR``, else ``runs/default`` in the repo (where the README's main job leaves it)."""
    if os.environ.get(ENV_MODEL_DIR):
        return Path(os.environ[ENV_MODEL_DIR]).expanduser()
    return Path(__file__).resolve().parents[1] / "runs" / "default"


class GenreClassifier:
    """A trained genre model.

    >>> clf = GenreClassifier.load("runs/default")
    >>> clf.predict(plots=["A detective hunts a killer."], posters=["poster.jpg"])
    [['Crime', 'Thriller']]
    """

    def __init__(self, model_dir: Path, config: RunConfig, labels: list[str], thresholds: np.ndarray,
                 head: torch.nn.Module | None = None, naive_freq: np.ndarray | None = None,
                 text_encoder=None, poster_encoder=None, cache=None):
        self.model_dir, self.config, self.labels = model_dir, config, labels
        self.thresholds = thresholds
        self.head, self.naive_freq = head, naive_freq
        self.text_encoder, self.poster_encoder = text_encoder, poster_encoder
        self.cache = cache
        self.name = config.model
        self.precision = "fp32"  # what the encoders run in (encoders/precision.py); see `use_precision`
        self.precision_choice = None  # the `precision.Choice` behind it (guard results for "auto")

    @property
    def uses_text(self) -> bool:
        return self.text_encoder is not None

    @property
    def uses_poster(self) -> bool:
        return self.poster_encoder is not None

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None, backend: str = "onnx",
             cache: bool = False, precision: str | None = None, report=None) -> GenreClassifier:
        """Rebuild a model from its directory (``config.json``, ``labels.json``, ``thresholds.json``,
        ``model.safetensors`` and ``text_encoder/`` when fine-tuned). Only safetensors + JSON are read.

        backend: "onnx" runs both encoders on ONNX Runtime (exported once into the cache, keyed by the
        weights; see docs/performance.md), "torch" runs them eagerly. Both give the same features to ~1e-6.

        precision: "fp32", "bf16", "int8" or "auto" (default: ``$GENRELENS_PRECISION``, else "auto"): see
        ``use_precision``. ``report(line)`` receives the accuracy guard's progress and results."""
        from genrelens.encoders.precision import ENV_PRECISION, check_choice

        precision = check_choice(precision or os.environ.get(ENV_PRECISION) or "auto")
        if backend != "onnx" and precision != "fp32":
            raise ValueError(f"precision {precision!r} needs backend='onnx'")
        d = Path(model_dir) if model_dir else default_model_dir()
        if not (d / "config.json").exists():
            raise ModelError(f"no model in {d} (config.json missing): train one with `genrelens train` "
                             f"or run the README's main job")
        for bad in ("model.pt", "model.pth", "model.bin", "model.pkl"):
            if (d / bad).exists() and not (d / "model.safetensors").exists():
                raise ModelError(f"{d / bad} is a pickle checkpoint: refused (only safetensors are loaded)")
        try:
            cfg = RunConfig.load(d / "config.json")
            labels = json.loads((d / "labels.json").read_text())
            thr_map = json.loads((d / "thresholds.json").read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"{d} is not a complete model directory: {e}") from e
        missing = [g for g in labels if g not in thr_map]
        if missing:
            raise ModelError(f"{d / 'thresholds.json'} lacks thresholds for {missing}")
        thresholds = np.array([thr_map[g] for g in labels], dtype=np.float32)
        feature_cache = None
        if cache:
            from genrelens.encoders.cache import FeatureCache

            feature_cache = FeatureCache(cfg.cache_dir) if cfg.cache_dir else FeatureCache()
        if cfg.model == "naive":
            freq = np.array(json.loads((d / "naive.json").read_text())["frequencies"], dtype=np.float32)
            return cls(d, cfg, labels, thresholds, naive_freq=freq)  # no encoder: fp32 by definition
        from genrelens.models.registry import build_head, get_spec

        spec = get_spec(cfg.model)
        text_enc = poster_enc = None
        if spec.text == "finetuned":
            from genrelens.encoders.text import TextEncoder

            text_enc = TextEncoder.from_dir(d / "text_encoder", max_length=cfg.max_length)
        elif spec.text == "frozen":
            from genrelens.encoders.registry import build_text_encoder

            text_enc = build_text_encoder(cfg.text_encoder, max_length=cfg.max_length)
        if text_enc is not None and backend == "onnx":
            _onnx_text(text_enc)
        if spec.poster:
            from genrelens.encoders.registry import build_poster_encoder

            # a fine-tuned last block runs in torch after the frozen bottom (also torch)
            poster_enc = build_poster_encoder(cfg.poster_encoder, backend="torch" if cfg.poster_finetune else backend)
        dims = {}
        if text_enc is not None:
            dims["text"] = text_enc.dim
        if poster_enc is not None:
            dims["poster"] = poster_enc.dim
        top = None
        if cfg.poster_finetune:
            from genrelens.encoders.poster import CNNTop

            top = CNNTop(poster_enc.model)
        head = build_head(cfg.model, dims, len(labels), cfg.hidden, cfg.dropout, cfg.modality_dropout, poster_top=top)
        try:
            head.load_state_dict(load_tensors(d / "model.safetensors"))
        except RuntimeError as e:  # shapes or names that do not fit the config
            raise ModelError(f"{d / 'model.safetensors'} does not match {d / 'config.json'}: {e}") from e
        head.eval()
        clf = cls(d, cfg, labels, thresholds, head=head, text_encoder=text_enc, poster_encoder=poster_enc,
                  cache=feature_cache)
        if precision != "fp32":
            clf.use_precision(precision, report=report)
        return clf

    def use_precision(self, requested: str = "auto", flags=None, report=None, guard_dir=None):
        """Run the encoders in ``requested`` ("fp32", "bf16", "int8"), or for "auto" in the fastest precision
        this CPU has units for (``flags``: simulate another CPU) whose accuracy guard passes on the model's
        validation split (checked once per model and CPU, cached in ``<guard_dir or cache>/precision/``), else
        fp32. Returns the ``Choice``."""
        from genrelens.encoders import precision as prec

        choice = prec.resolve(requested, self.model_dir, lambda p: prec.check_precision(self, p), flags=flags,
                              cache_dir=guard_dir, report=report)
        self.set_precision(choice.precision)
        self.precision_choice = choice
        return choice

    def set_precision(self, precision: str) -> None:
        """Switch the encoders to ``precision`` without any check (``use_precision`` checks)."""
        from genrelens.encoders.precision import apply_poster, apply_text, check_choice

        if check_choice(precision) == "auto":
            raise ValueError("set_precision takes fp32, bf16 or int8; use use_precision for auto")
        text = self.text_encoder
        on_torch = text is not None and text.session is None and text.precision == "fp32"  # backend="torch"
        if on_torch and precision != "fp32":
            raise ValueError("this model's text encoder runs on torch (backend='torch'): only fp32 applies")
        if text is not None and not on_torch:
            apply_text(text, precision)
        if self.poster_encoder is not None:
            apply_poster(self.poster_encoder, precision, self.model_dir, self.config.data)
        self.precision = precision

    def metrics(self) -> dict:
        """The test metrics written at training time (empty when absent)."""
        p = self.model_dir / "metrics.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def score(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
              root: Path | None = None, progress: bool = False) -> tuple[np.ndarray, dict[int, str]]:
        """Probabilities ``float32 [n_movies, n_labels]`` and ``{row: problem}`` for rows scored with less
        than they were given (an unreadable poster counts as missing) or with nothing at all."""
        n = _length(plots, posters)
        plots = [clean_text(p) if isinstance(p, str) else "" for p in plots] if plots is not None else [""] * n
        posters = list(posters) if posters is not None else [None] * n
        errors: dict[int, str] = {}
        has_plot = np.array([bool(p.strip()) for p in plots], dtype=bool)
        has_poster = np.array([p is not None for p in posters], dtype=bool)
        if self.naive_freq is not None:
            return np.tile(self.naive_freq, (n, 1)), errors
        feats: dict[str, torch.Tensor] = {}
        if self.uses_text:
            from genrelens.train.features import text_features

            f, m = text_features(self.text_encoder, plots, self.cache, progress)
            feats["text"], feats["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
        if self.uses_poster:
            from genrelens.train.features import poster_features

            f, ok, errs = poster_features(self.poster_encoder, posters, self.cache, progress, root=root,
                                          maps=self.config.poster_finetune)
            errors.update({i: f"poster ignored: {msg}" for i, msg in errs.items()})
            has_poster &= ok
            feats["poster"], feats["poster_mask"] = torch.as_tensor(f), torch.as_tensor(ok)
        usable = (has_plot & self.uses_text) | (has_poster & self.uses_poster)
        for i in np.flatnonzero(~usable):
            errors.setdefault(int(i), "no usable input for this model: answered with the label frequencies")
        with torch.inference_mode():
            logits = self.head(feats) if n else torch.zeros((0, len(self.labels)))
        return torch.sigmoid(logits).numpy().astype(np.float32), errors

    def predict_proba(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None) -> np.ndarray:
        """``float32 [n_movies, n_labels]`` in ``self.labels`` order. Posters: paths, bytes or PIL images."""
        return self.score(plots, posters)[0]

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """``bool [n, n_labels]`` with the model's thresholds; never empty (falls back to the top label)."""
        return decide(proba, self.thresholds)

    def predict(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None) -> list[list[str]]:
        """Genre lists, one per movie."""
        pred = self.decide(self.predict_proba(plots, posters))
        return LabelSet(self.labels).decode(pred)


def _onnx_text(encoder) -> None:
    """Move ``encoder.encode`` to ONNX Runtime; stay on torch (with a warning) if the export fails."""
    try:
        encoder.use_onnx()
    except Exception as e:  # an architecture the exporter cannot handle: slower, still correct
        import warnings

        warnings.warn(f"text encoder stays on torch (ONNX export failed: {e})", RuntimeWarning, stacklevel=3)


def _length(plots, posters) -> int:
    if plots is None and posters is None:
        raise ValueError("give plots, posters or both")
    if plots is not None and posters is not None and len(plots) != len(posters):
        raise ValueError(f"{len(plots)} plots but {len(posters)} posters: give one of each per movie (None allowed)")
    return len(plots) if plots is not None else len(posters)
