"""``GenreClassifier``: the one public way to score movies with a trained model.

The CLI, the REST service, batch and Ray prediction and users all call it; it reads its model folder
through ``genrelens.bundle.ModelBundle``. Inference imports nothing from ``genrelens.train``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genrelens.bundle import ModelBundle
from genrelens.data.labels import LabelSet
from genrelens.data.table import clean_text
from genrelens.models.thresholds import decide
from genrelens.paths import default_model_dir


class GenreClassifier:
    """A trained genre model: a thin, user-facing wrapper over a ``ModelBundle``.

    >>> clf = GenreClassifier.load()  # the default model (see genrelens.paths), or a folder
    >>> clf.predict(plots=["A detective hunts a killer."], posters=["poster.jpg"])
    [['Crime', 'Thriller']]
    """

    def __init__(self, bundle: ModelBundle, cache=None):
        self.bundle = bundle
        self.cache = cache

    # the bundle's parts, under the names the CLI, the service and users know
    model_dir = property(lambda self: self.bundle.path)
    config = property(lambda self: self.bundle.config)
    labels = property(lambda self: self.bundle.labels)
    raw_thresholds = property(lambda self: self.bundle.thresholds)  # on the raw score scale (thresholds.json)
    calibrator = property(lambda self: self.bundle.calibrator)  # None: a model trained before calibration
    head = property(lambda self: self.bundle.model)
    text_encoder = property(lambda self: self.bundle.text_encoder)
    poster_encoder = property(lambda self: self.bundle.poster_encoder)
    name = property(lambda self: self.bundle.config.model)

    @property
    def thresholds(self) -> np.ndarray:
        """float32 ``[n_labels]``: the decision thresholds on the scale ``predict_proba`` returns."""
        return self.calibrator.thresholds if self.calibrator is not None else self.bundle.thresholds

    @property
    def calibrated(self) -> bool:
        """Whether ``predict_proba`` returns calibrated probabilities (the folder has ``calibration.json``)."""
        return self.calibrator is not None

    @property
    def calibration_note(self) -> str | None:
        """A one-line warning for models trained before calibration existed; None when calibrated."""
        if self.calibrated or self.bundle.spec.fitted:
            return None
        return (f"model is uncalibrated: its scores are not probabilities (run `genrelens calibrate --model-dir "
                f"{self.model_dir}`)")

    @property
    def uses_text(self) -> bool:
        return self.text_encoder is not None

    @property
    def uses_poster(self) -> bool:
        return self.poster_encoder is not None

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None, backend: str = "onnx",
             cache: bool = False) -> GenreClassifier:
        """Load the model folder ``model_dir`` (default: ``genrelens.paths.default_model_dir()``).

        backend: "onnx" runs both encoders on ONNX Runtime (exported once into the cache, keyed by the
        weights; see docs/performance.md), "torch" runs them eagerly. Both give the same features to ~1e-6.
        cache: read and fill the feature cache (for tables scored more than once)."""
        bundle = ModelBundle.from_pretrained(Path(model_dir) if model_dir else default_model_dir(), backend=backend)
        feature_cache = None
        if cache:
            from genrelens.encoders.cache import FeatureCache

            cfg = bundle.config
            feature_cache = FeatureCache(cfg.cache_dir) if cfg.cache_dir else FeatureCache()
        return cls(bundle, cache=feature_cache)

    def metrics(self) -> dict:
        """The test metrics written at training time (empty when absent)."""
        return self.bundle.artifact("metrics", {})

    def score(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
              root: Path | None = None, progress: bool = False,
              calibrated: bool = True) -> tuple[np.ndarray, dict[int, str]]:
        """Probabilities ``float32 [n_movies, n_labels]`` and ``{row: problem}`` for rows scored with less
        than they were given (an unreadable poster counts as missing) or with nothing at all.

        Calibrated when the model has a calibrator, unless ``calibrated=False`` (the raw sigmoid scores)."""
        feats, errors = self.features(plots, posters, root, progress)
        return self.head_proba(feats, calibrated), errors

    def features(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
                 root: Path | None = None, progress: bool = False) -> tuple[dict[str, torch.Tensor], dict[int, str]]:
        """The head's input batch (``{"rows", "text", "text_mask", "poster", "poster_mask"}``, the modalities
        the model reads) and ``{row: problem}``."""
        n = _length(plots, posters)
        plots = [clean_text(p) if isinstance(p, str) else "" for p in plots] if plots is not None else [""] * n
        posters = list(posters) if posters is not None else [None] * n
        errors: dict[int, str] = {}
        has_plot = np.array([bool(p.strip()) for p in plots], dtype=bool)
        has_poster = np.array([p is not None for p in posters], dtype=bool)
        feats: dict[str, torch.Tensor] = {"rows": torch.zeros((n, 0))}
        if self.uses_text:
            from genrelens.encoders.features import text_features

            f, m = text_features(self.text_encoder, plots, self.cache, progress)
            feats["text"], feats["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
        if self.uses_poster:
            from genrelens.encoders.features import poster_features

            f, ok, errs = poster_features(self.poster_encoder, posters, self.cache, progress, root=root,
                                          maps=self.config.poster_finetune)
            errors.update({i: f"poster ignored: {msg}" for i, msg in errs.items()})
            has_poster &= ok
            feats["poster"], feats["poster_mask"] = torch.as_tensor(f), torch.as_tensor(ok)
        usable = (has_plot & self.uses_text) | (has_poster & self.uses_poster) | self.bundle.spec.fitted
        for i in np.flatnonzero(~usable):
            errors.setdefault(int(i), "no usable input for this model: answered with the label frequencies")
        return feats, errors

    def head_proba(self, feats: dict[str, torch.Tensor], calibrated: bool = True) -> np.ndarray:
        """Probabilities ``float32 [n, n_labels]`` from a head input batch (see ``features``)."""
        n = len(next(iter(feats.values()))) if feats else 0
        with torch.inference_mode():
            logits = self.head(feats) if n else torch.zeros((0, len(self.labels)))
        proba = torch.sigmoid(logits).numpy().astype(np.float32)
        return self.calibrator.transform(proba) if calibrated and self.calibrator is not None else proba

    def predict_proba(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None) -> np.ndarray:
        """``float32 [n_movies, n_labels]`` in ``self.labels`` order. Posters: paths, bytes or PIL images."""
        return self.score(plots, posters)[0]

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """``bool [n, n_labels]`` with the model's thresholds; never empty (falls back to the top label)."""
        return decide(proba, self.thresholds)

    def confidence(self, proba: np.ndarray, pred: np.ndarray | None = None) -> np.ndarray:
        """``float [n]``: probability that the predicted label set is entirely right (see calibration.confidence)."""
        from genrelens.models.calibration import confidence

        return confidence(proba, self.decide(proba) if pred is None else pred)

    def review(self, proba: np.ndarray, band: float | None = None) -> np.ndarray:
        """``bool [n]``: rows to review (a label's probability within ``band`` of its threshold)."""
        from genrelens.models.calibration import DEFAULT_REVIEW_BAND, review_flags

        return review_flags(proba, self.thresholds, DEFAULT_REVIEW_BAND if band is None else band)

    def explain(self, plot: str | None = None, poster=None, **kw) -> dict:
        """Why the model predicts what it does for one movie: modality shares, word attributions and a
        poster heatmap per predicted genre (see ``genrelens.explain.explain``)."""
        from genrelens.explain import explain

        return explain(self, plot, poster, **kw)

    def predict(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None) -> list[list[str]]:
        """Genre lists, one per movie."""
        pred = self.decide(self.predict_proba(plots, posters))
        return LabelSet(self.labels).decode(pred)


def _length(plots, posters) -> int:
    if plots is None and posters is None:
        raise ValueError("give plots, posters or both")
    if plots is not None and posters is not None and len(plots) != len(posters):
        raise ValueError(f"{len(plots)} plots but {len(posters)} posters: give one of each per movie (None allowed)")
    return len(plots) if plots is not None else len(posters)
