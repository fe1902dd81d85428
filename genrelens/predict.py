"""``GenreClassifier``: the one public way to score movies with a trained model.

The CLI, the REST service, batch and Ray prediction and users all call it; it reads its model folder
through ``genrelens.bundle.ModelBundle``. Inference imports nothing from ``genrelens.train``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genrelens.bundle import ModelBundle
from genrelens.data.clean import clean_text, movie_text
from genrelens.errors import InputError, InputWarning
from genrelens.models.novelty import (
    LANGUAGE,
    OUT_OF_DISTRIBUTION,
    REASON_TEXT,
    SHORT_TEXT,
    WORDS_KEY,
    detect_languages,
    plot_words,
    review_reasons,
)
from genrelens.models.thresholds import decide
from genrelens.paths import default_model_dir
from genrelens.types import INPUT_IGNORED, LOW_CONFIDENCE, TITLE_ONLY, Movie, Prediction
from genrelens.types import NO_INPUT as NO_INPUT_REASON

NO_INPUT = "no usable input for this model: answered with the label frequencies"  # score()'s problem
NOT_SCORED = "no usable input for this model: not scored"  # a Prediction's error


def _text_precision(model_dir: Path, precision: str) -> str:
    """What the text encoder will run in once ``GenreClassifier.load`` has applied ``precision`` (read from the
    folder's saved guard results, as ``use_precision`` reads them), so that a bf16 load opens its graph once."""
    if precision not in ("auto", "bf16"):
        return "fp32"
    from genrelens.bundle import read_precision_guard, weights_key
    from genrelens.encoders.precision import resolve

    try:
        key = weights_key(model_dir) if precision == "auto" else ""  # the same resolve as use_precision's
        return resolve(precision, key, saved=read_precision_guard(model_dir)).precision
    except Exception:  # not a model folder: from_pretrained says what is wrong
        return "fp32"


class GenreClassifier:
    """A trained genre model: a thin, user-facing wrapper over a ``ModelBundle``.

    >>> clf = GenreClassifier.load()  # the default model (see genrelens.paths), or a folder
    >>> clf.predict(plots=["A detective hunts a killer."], posters=["poster.jpg"])
    [['Crime', 'Thriller']]
    """

    def __init__(self, bundle: ModelBundle, cache=None):
        self.bundle = bundle
        self.cache = cache
        self.precision = "fp32"  # what the encoders run in (encoders/precision.py); see `use_precision`
        self.precision_choice = None  # the `precision.Choice` behind it (guard results for "auto")

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
    def precision_note(self) -> str | None:
        """What ``use_precision`` said of the precision it chose (e.g. int8's posters staying fp32); None: nothing."""
        return (self.precision_choice.note or None) if self.precision_choice is not None else None

    @property
    def calibration_note(self) -> str | None:
        """A one-line warning for models trained before calibration existed; None when calibrated."""
        if self.calibrated or self.bundle.spec.fitted:
            return None
        return (f"model is uncalibrated: its scores are not probabilities (run `genrelens calibrate --model-dir "
                f"{self.model_dir}`)")

    @property
    def uses_text(self) -> bool:
        return self.text_encoder is not None or self.bundle.lexical is not None

    @property
    def uses_poster(self) -> bool:
        return self.poster_encoder is not None

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None, backend: str = "onnx",
             cache: bool = False, precision: str | None = None, report=None) -> GenreClassifier:
        """Load the model folder ``model_dir`` (default: ``genrelens.paths.default_model_dir()``).

        backend: "onnx" runs both encoders on ONNX Runtime (exported once into the cache, keyed by the
        weights; see docs/performance.md), "torch" runs them eagerly. Both give the same features to ~1e-6.
        cache: read and fill the feature cache (for tables scored more than once).
        precision: "fp32", "bf16", "int8" or "auto" (default: ``$GENRELENS_PRECISION``, else "auto"): see
        ``use_precision`` ("auto" reads saved accuracy-guard results; it never runs the guard). ``report(line)``
        receives a note when "auto" falls back to fp32 for want of a guard result."""
        from genrelens.encoders.precision import ENV_PRECISION, check_choice

        if not precision and os.environ.get(ENV_PRECISION):
            try:
                precision = check_choice(os.environ[ENV_PRECISION])
            except ValueError as e:  # name where the value came from: the user passed no precision
                raise ValueError(f"${ENV_PRECISION}: {e}") from e
        precision = check_choice(precision or "auto")
        if backend != "onnx" and precision != "fp32":
            raise ValueError(f"precision {precision!r} needs backend='onnx'")
        path = Path(model_dir) if model_dir else default_model_dir()
        bundle = ModelBundle.from_pretrained(path, backend=backend, text_precision=_text_precision(path, precision))
        feature_cache = None
        if cache:
            from genrelens.encoders.cache import FeatureCache

            cfg = bundle.config
            feature_cache = FeatureCache(cfg.cache_dir) if cfg.cache_dir else FeatureCache()
        clf = cls(bundle, cache=feature_cache)
        if precision != "fp32" and (clf.text_encoder is not None or clf.poster_encoder is not None):
            clf.use_precision(precision, report=report)
        return clf

    def use_precision(self, requested: str = "auto", flags=None, report=None, guard_dir=None):
        """Run the encoders in ``requested`` ("fp32", "bf16", "int8"), or for "auto" in the fastest precision
        this CPU has units for (``flags``: simulate another CPU) whose accuracy guard passed on the model's
        validation split: a result saved in the model folder, else in ``<guard_dir or cache>/precision/``. The
        guard never runs here (``genrelens.guard.check_precisions`` runs it); without a result "auto" is fp32 at
        once, and the ``Choice``'s note (also given to ``report``) names the command that runs the check. Returns
        the ``Choice``."""
        from genrelens.encoders import precision as prec
        from genrelens.errors import ModelError

        key = self.bundle.weights_key() if requested == "auto" and self.model_dir is not None else ""
        choice = prec.resolve(requested, key, saved=self.bundle.precision_guard, flags=flags, cache_dir=guard_dir,
                              model_dir=self.model_dir, text=self.text_encoder is not None)
        try:
            self.set_precision(choice.precision)
        except ModelError as e:  # e.g. OpenVINO missing or unable to run here: auto runs fp32 and says why
            if requested != "auto":
                raise
            choice.note = f"{choice.precision} cannot run here ({e}): running fp32"
            choice.precision = "fp32"
            self.set_precision("fp32")
        session = getattr(self.text_encoder, "session", None)
        if self.precision == "bf16" and getattr(session, "inference_precision", "bf16") != "bf16":
            choice.note = "OpenVINO found no bf16 kernels for this CPU: the bf16 path runs in fp32 arithmetic"
        poster = self.poster_encoder
        if self.precision == "int8" and getattr(poster, "session", None) is not None and poster.precision != "int8":
            choice.note = prec.POSTERS_FP32
            if self.text_encoder is None:  # nothing of this model would run in int8: say it runs fp32
                self.set_precision("fp32")
                choice.precision = "fp32"
                choice.note = prec.INT8_NOTHING
        if choice.note and report:
            report(choice.note)
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
            apply_poster(self.poster_encoder, precision, self.bundle.calibration_posters)
        self.precision = precision

    def metrics(self) -> dict:
        """The test metrics written at training time (empty when absent)."""
        return self.bundle.artifact("metrics", {})

    @property
    def reads_titles(self) -> bool:
        """Whether the model reads a movie's title with its plot (``titles`` of ``predict`` etc.)."""
        return bool(self.config.title)

    def texts(self, plots: Sequence[str | None] | None, titles: Sequence[str | None] | None, n: int) -> list[str]:
        """What the text encoder reads per movie: the plot, or for a model that reads titles ``"<title>. <plot>"``
        (``movie_text``); titles are ignored by a model that does not read them. A numeric title (``1917``, as
        a spreadsheet may store it) is read as its digits; None and NaN as no title."""
        plots = list(plots) if plots is not None else [None] * n
        if titles is not None and self.reads_titles:
            plots = [movie_text(_title(t), p if isinstance(p, str) else None) for t, p in zip(titles, plots)]
        return [clean_text(p) if isinstance(p, str) else "" for p in plots]

    def warm_up(self) -> None:
        """Load now what the first prediction would load (the language identifier of the review reasons): a
        service calls it at start, so its first request is as fast as the others."""
        if self.bundle.novelty is not None and self.bundle.novelty.languages:
            detect_languages(["warm up"])

    # ---- the pipeline: Movie in, Prediction out (preprocess -> forward -> postprocess) ----

    def predict_movies(self, movies: Sequence[Movie], *, root: Path | None = None, progress: bool = False,
                       review_band: float | None = None, review_below: float | None = None) -> list[Prediction]:
        """One ``Prediction`` per movie: every entry point (Python, CLI, batch, Ray, REST, the page) calls this.

        A movie with nothing this model reads is not scored: no genres, ``error`` says why, ``review`` is set.
        root: the folder relative poster paths are resolved against; review_band, review_below: see ``review``."""
        inputs = self.preprocess(movies)
        proba, errors, usable = self.forward(inputs, root=root, progress=progress)
        return self.postprocess(inputs, proba, errors, usable, review_band=review_band, review_below=review_below)

    def preprocess(self, movies: Sequence[Movie]) -> ModelInputs:
        """Check the movies and build what the model reads: the model text from title + plot (``texts``, the one
        place it is built), the posters as given (decoded in ``forward``) and, per movie, the inputs it ignores.
        A poster that a front end could not read itself is passed as the exception (ignored, with a warning)."""
        movies = list(movies)
        titles = [_title(m.title) for m in movies]
        plots = [m.plot if isinstance(m.plot, str) else None for m in movies]
        warnings: list[list[str]] = []
        posters = [None if isinstance(m.poster, Exception) else m.poster for m in movies]
        for title, plot, m in zip(titles, plots, movies):
            # a poster its front end could not read: a problem for a model that reads posters, else just ignored
            w = [f"poster ignored: {m.poster}"] if isinstance(m.poster, Exception) and self.uses_poster else []
            if title is not None and title.strip() and not self.reads_titles:
                w.append("title ignored: this model does not read titles")
            if plot is not None and plot.strip() and not self.uses_text and self.uses_poster:
                w.append("plot ignored: this model reads posters only")
            if m.poster is not None and not self.uses_poster and self.uses_text:
                w.append("poster ignored: this model reads plots only")
            warnings.append(w)
        unread = [isinstance(m.poster, Exception) and self.uses_poster for m in movies]
        return ModelInputs(movies, self.texts(plots, titles, len(movies)), posters, warnings, unread)

    def forward(self, inputs: ModelInputs, root: Path | None = None, progress: bool = False,
                calibrated: bool = True) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
        """Encode and score ``inputs`` in batches: ``(proba [n, n_labels], {row: problem}, usable bool [n])``."""
        feats, errors, usable = self._features(inputs.texts, inputs.posters, root, progress, _plot_words(inputs))
        inputs.features = feats
        return self.head_proba(feats, calibrated), errors, usable

    def postprocess(self, inputs: ModelInputs, proba: np.ndarray, errors: dict[int, str], usable: np.ndarray,
                    review_band: float | None = None, review_below: float | None = None) -> list[Prediction]:
        """Decisions, confidence, review (with its reasons: ``REVIEW_REASONS``) and warnings per movie."""
        pred = self.decide(proba)
        quality = review_reasons(self.bundle.novelty, [m.plot for m in inputs.movies], inputs.features)
        scored = Scored(inputs, proba, pred, self.confidence(proba, pred), errors, usable, review_band, review_below,
                        quality)
        reasons = {name: np.asarray(rule(self, scored), dtype=bool) for name, rule in REVIEW_REASONS.items()}
        out = []
        for i, movie in enumerate(inputs.movies):
            problem = errors.get(i, "").removesuffix(NO_INPUT).removesuffix("; ") or None
            warnings = inputs.warnings[i] + ([problem] if problem else [])
            why = [name for name, flags in reasons.items() if flags[i]]
            if not usable[i]:
                out.append(Prediction([], None, None, True, why, warnings, id=movie.id, error=NOT_SCORED))
                continue
            order = np.argsort(-proba[i], kind="stable")
            out.append(Prediction([self.labels[j] for j in order if pred[i, j]],
                                  {g: float(p) for g, p in zip(self.labels, proba[i])},
                                  float(scored.confidence[i]), bool(why), why, warnings, id=movie.id))
        return out

    # ---- the array API on top of it ----

    def score(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
              root: Path | None = None, progress: bool = False, calibrated: bool = True,
              titles: Sequence[str | None] | None = None) -> tuple[np.ndarray, dict[int, str]]:
        """Probabilities ``float32 [n_movies, n_labels]`` and ``{row: problem}`` for rows scored with less
        than they were given (an unreadable poster counts as missing) or with nothing at all (such a row holds
        the model's answer for an empty movie; ``predict`` and ``predict_movies`` give it no genres).

        Calibrated when the model has a calibrator, unless ``calibrated=False`` (the raw sigmoid scores).
        ``titles``: one per movie (None allowed), read by models that read titles (``reads_titles``)."""
        proba, errors, _ = self.forward(self._inputs(plots, posters, titles), root, progress, calibrated)
        return proba, errors

    def features(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
                 root: Path | None = None, progress: bool = False,
                 titles: Sequence[str | None] | None = None) -> tuple[dict[str, torch.Tensor], dict[int, str]]:
        """The head's input batch (``{"rows", "text", "text_mask", "poster", "poster_mask"}``, the modalities
        the model reads; ``text_probe``/``text_probe_mask`` for an encoder with a probe layer: novelty reads
        them, the head does not) and ``{row: problem}``."""
        inputs = self._inputs(plots, posters, titles)
        feats, errors, _ = self._features(inputs.texts, inputs.posters, root, progress, _plot_words(inputs))
        return feats, errors

    def _inputs(self, plots, posters, titles) -> ModelInputs:
        """The array API's columns as checked ``ModelInputs`` (through ``preprocess``)."""
        n = _length(plots, posters, titles)
        if plots is None and posters is None and not self.reads_titles:
            raise ValueError(f"model {self.name} does not read titles: give plots, posters or both")
        columns = [list(x) if x is not None else [None] * n for x in (plots, posters, titles)]
        return self.preprocess([Movie(title=t, plot=p, poster=q) for p, q, t in zip(*columns)])

    def _features(self, plots: list[str], posters: list, root: Path | None, progress: bool, words: np.ndarray
                  ) -> tuple[dict[str, torch.Tensor], dict[int, str], np.ndarray]:
        """``(head input batch, {row: problem}, usable [n])`` from model texts and posters; ``words``: the words of
        each movie's plot, title apart (the text probe is kept for movies with a plot, not a title alone)."""
        n = len(plots)
        errors: dict[int, str] = {}
        has_text = np.array([bool(p.strip()) for p in plots], dtype=bool)
        has_poster = np.array([p is not None for p in posters], dtype=bool)
        feats: dict[str, torch.Tensor] = {"rows": torch.zeros((n, 0))}
        if self.text_encoder is not None and self.text_encoder.probe_layer is not None:
            from genrelens.encoders.features import text_features_with_probe

            f, m, probe = text_features_with_probe(self.text_encoder, plots, self.cache, progress)
            feats["text"], feats["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
            feats["text_probe"], feats["text_probe_mask"] = torch.as_tensor(probe), torch.as_tensor(m & (words > 0))
            feats[WORDS_KEY] = torch.as_tensor(words)
        elif self.text_encoder is not None:
            from genrelens.encoders.features import text_features

            f, m = text_features(self.text_encoder, plots, self.cache, progress)
            feats["text"], feats["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
        if self.bundle.lexical is not None:
            feats["lexical"] = torch.as_tensor(self.bundle.lexical.logits(plots))
            feats.setdefault("text_mask", torch.as_tensor(has_text))
        if self.uses_poster:
            from genrelens.encoders.features import poster_features

            f, ok, errs = poster_features(self.poster_encoder, posters, self.cache, progress, root=root,
                                          maps=self.config.poster_finetune)
            errors.update({i: f"poster ignored: {msg}" for i, msg in errs.items()})
            has_poster &= ok
            feats["poster"], feats["poster_mask"] = torch.as_tensor(f), torch.as_tensor(ok)
        reads_nothing = not (self.uses_text or self.uses_poster)  # the naive model
        usable = (has_text & self.uses_text) | (has_poster & self.uses_poster) | reads_nothing
        for i in np.flatnonzero(~usable):
            errors[int(i)] = f"{errors[int(i)]}; {NO_INPUT}" if int(i) in errors else NO_INPUT
        return feats, errors, usable

    def head_proba(self, feats: dict[str, torch.Tensor], calibrated: bool = True) -> np.ndarray:
        """Probabilities ``float32 [n, n_labels]`` from a head input batch (see ``features``); a model with a
        lexical channel late-fuses it here (on the rows whose ``text_mask`` is set): ``ModelBundle.head_proba``."""
        return self.bundle.head_proba(feats, calibrated)

    def predict_proba(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
                      problems: str = "warn", titles: Sequence[str | None] | None = None) -> np.ndarray:
        """``float32 [n_movies, n_labels]`` in ``self.labels`` order. Posters: paths, bytes or PIL images.

        problems: what to do when a poster is unreadable or a movie has no usable input (its row then holds the
        model's answer for an empty movie; :meth:`predict` gives it no genres): "warn" (an :class:`InputWarning`
        naming them), "raise" (:class:`InputError`) or "ignore". :meth:`score` returns them instead. ``titles``:
        one per movie (None allowed), read by a model that reads titles (``reads_titles``, the default model
        does), else ignored."""
        _check_problems(problems)
        proba, errors = self.score(plots, posters, titles=titles)
        if errors and problems != "ignore":
            report_problems(errors, len(proba), problems, stacklevel=3)  # -> the caller of predict_proba
        return proba

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """``bool [n, n_labels]`` with the model's thresholds; never empty (falls back to the top label)."""
        return decide(proba, self.thresholds)

    def confidence(self, proba: np.ndarray, pred: np.ndarray | None = None) -> np.ndarray:
        """``float [n]``: probability that the predicted label set is entirely right (see calibration.confidence)."""
        from genrelens.models.calibration import confidence

        return confidence(proba, self.decide(proba) if pred is None else pred)

    @property
    def review_rule(self) -> dict:
        """How ``review`` flags a movie by default: ``{"rule": "confidence", "min_confidence": c}`` (the cut-off
        chosen on validation and saved in ``calibration.json``), or, for a model calibrated or trained before
        that existed, ``{"rule": "band", "band": 0.05}`` (a label within the band of its threshold)."""
        from genrelens.models.calibration import DEFAULT_REVIEW_BAND

        cut = self.calibrator.min_confidence if self.calibrator is not None else None
        return {"rule": "band", "band": DEFAULT_REVIEW_BAND} if cut is None else \
            {"rule": "confidence", "min_confidence": cut}

    def review(self, proba: np.ndarray, band: float | None = None, min_confidence: float | None = None,
               pred: np.ndarray | None = None) -> np.ndarray:
        """``bool [n]``: rows to review. ``min_confidence``: flag rows whose confidence is below it; ``band``:
        flag rows where some label's probability lies within ``band`` of its threshold (the older rule);
        neither: ``review_rule`` (the model's saved confidence cut-off)."""
        from genrelens.models.calibration import confidence_flags, review_flags

        if band is None and min_confidence is None:
            rule = self.review_rule
            band, min_confidence = rule.get("band"), rule.get("min_confidence")
        if min_confidence is not None:
            return confidence_flags(proba, self.decide(proba) if pred is None else pred, min_confidence)
        return review_flags(proba, self.thresholds, band)

    def explain(self, plot: str | None = None, poster=None, title: str | None = None, **kw) -> dict:
        """Why the model predicts what it does for one movie: modality shares, word attributions and a
        poster heatmap per predicted genre (see ``genrelens.explain.explain``). A model that reads titles
        reads ``title`` as the start of its text: its words are attributed like the plot's."""
        from genrelens.explain import explain

        text = self.preprocess([Movie(title=title, plot=plot, poster=poster)]).texts[0]
        return explain(self, text or None, poster, **kw)

    def predict(self, plots: Sequence[str | None] | None = None, posters: Sequence | None = None,
                problems: str = "warn", titles: Sequence[str | None] | None = None) -> list[list[str]]:
        """Genre lists, one per movie, in ``self.labels`` order (``problems``, ``titles``: see
        :meth:`predict_proba`). A movie with no usable input gets no genres (and is named by ``problems``)."""
        _check_problems(problems)
        inputs = self._inputs(plots, posters, titles)
        proba, errors, usable = self.forward(inputs)
        if errors and problems != "ignore":
            report_problems(errors, len(proba), problems, stacklevel=3)  # -> the caller of predict
        predictions = self.postprocess(inputs, proba, errors, usable)
        return [[g for g in self.labels if g in set(p.genres)] for p in predictions]


def _plot_words(inputs: ModelInputs) -> np.ndarray:
    """int ``[n]``: the words of each movie's plot (0: none given; a title is not counted)."""
    return plot_words([m.plot for m in inputs.movies])


@dataclass
class ModelInputs:
    """Movies after ``preprocess``: what the model reads of each (``texts``: the model text, title + plot)."""

    movies: list[Movie]
    texts: list[str]
    posters: list  # as given: paths, bytes, PIL images or None (decoded by the poster encoder's features)
    warnings: list[list[str]]  # per movie: inputs given that this model does not read, or could not read
    unread: list[bool]  # per movie: an input given that could not be read (a poster its front end could not open)
    features: dict | None = None  # the head input batch, once ``forward`` has run (novelty reads it)


@dataclass
class Scored:
    """What a review reason sees: the inputs, ``proba``, decisions ``pred``, ``confidence`` and the forward
    pass's ``errors`` and ``usable`` rows, with the review rule asked for (``review_band``, ``review_below``)."""

    inputs: ModelInputs
    proba: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    errors: dict[int, str]
    usable: np.ndarray
    review_band: float | None = None
    review_below: float | None = None
    quality: list[list[str]] | None = None  # per movie: the input-quality reasons (``models.novelty.review_reasons``)


def _low_confidence(clf: GenreClassifier, s: Scored) -> np.ndarray:
    """The model's review rule (``GenreClassifier.review``) on the scored movies."""
    return clf.review(s.proba, s.review_band, s.review_below, pred=s.pred) & s.usable


def _quality(reason: str) -> Callable[[GenreClassifier, Scored], np.ndarray]:
    """A rule reading one input-quality reason (short text, another language, unlike the training movies) of
    ``models.novelty.review_reasons``, on the movies that were scored."""

    def rule(clf: GenreClassifier, s: Scored) -> np.ndarray:
        flags = [reason in q for q in s.quality] if s.quality is not None else [False] * len(s.usable)
        return np.array(flags, dtype=bool) & s.usable

    rule.__doc__ = f"``{reason}``: see ``genrelens.models.novelty``."
    return rule


def _title_only(clf: GenreClassifier, s: Scored) -> np.ndarray:
    """A title and nothing else the model reads: no plot, and no poster (or one that could not be read)."""
    title = np.array([bool((m.title or "").strip()) for m in s.inputs.movies], dtype=bool)
    poster = np.array([p is not None for p in s.inputs.posters], dtype=bool) & ~_input_ignored(clf, s) & clf.uses_poster
    return title & (_plot_words(s.inputs) == 0) & ~poster & s.usable


def _input_ignored(clf: GenreClassifier, s: Scored) -> np.ndarray:
    """An input the model reads was given but could not be used (an unreadable poster). A field this model never
    reads (a title for a model without titles) is a warning only: else every row of a table with that column would
    be flagged."""
    ignored = [u or s.errors.get(i, "").startswith("poster ignored") for i, u in enumerate(s.inputs.unread)]
    return np.array(ignored, dtype=bool)


def _no_input(clf: GenreClassifier, s: Scored) -> np.ndarray:
    """Nothing this model reads: the movie is not scored."""
    return ~s.usable


# Why a movie is flagged for review: name -> rule(classifier, Scored) -> bool [n]. ``Prediction.review`` is
# set when any rule flags the movie; add a reason by adding an entry.
REVIEW_REASONS: dict[str, Callable[[GenreClassifier, Scored], np.ndarray]] = {
    LOW_CONFIDENCE: _low_confidence,
    SHORT_TEXT: _quality(SHORT_TEXT),
    TITLE_ONLY: _title_only,
    LANGUAGE: _quality(LANGUAGE),
    OUT_OF_DISTRIBUTION: _quality(OUT_OF_DISTRIBUTION),
    INPUT_IGNORED: _input_ignored,
    NO_INPUT_REASON: _no_input,
}
# Each reason in plain words, for people reading a prediction (the page has its own, longer wording).
REVIEW_REASON_TEXT: dict[str, str] = {
    LOW_CONFIDENCE: "the model is unsure of this set of genres",
    **REASON_TEXT,
    TITLE_ONLY: "only a title was given: the genres are a guess from its few words",
    INPUT_IGNORED: "an input could not be used",
    NO_INPUT_REASON: "nothing this model reads was given",
}


def _check_problems(problems: str) -> None:
    if problems not in ("warn", "raise", "ignore"):
        raise ValueError(f"problems must be 'warn', 'raise' or 'ignore', not {problems!r}")


def report_problems(errors: dict[int, str], n: int, action: str = "warn", stacklevel: int = 2) -> None:
    """Warn (:class:`InputWarning`) or raise (:class:`InputError`) with what :meth:`GenreClassifier.score`
    found: ``movies[i]: problem`` for the first few of ``errors`` (``{row: problem}``) among ``n`` movies."""
    import warnings

    shown = "; ".join(f"movies[{i}]: {msg}" for i, msg in sorted(errors.items())[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    text = (f"{len(errors)} of {n} movie(s) were scored with less than they were given: {shown}{more}. "
            "GenreClassifier.score() returns every problem; problems='ignore' silences this")
    if action == "raise":
        raise InputError(text)
    warnings.warn(InputWarning(text), stacklevel=stacklevel)


def _not_one_movie(plots, posters) -> None:
    """TypeError for a bare plot or poster where a list of movies is expected (a str would otherwise be read as
    one movie per character)."""
    from PIL import Image

    if isinstance(plots, str | bytes):
        raise TypeError(f"plots must be a list with one plot per movie, not a {type(plots).__name__}: "
                        f"for one movie write plots=[{_short(plots)}]")
    if isinstance(posters, str | os.PathLike | bytes | bytearray | memoryview | Image.Image):
        raise TypeError(f"posters must be a list with one poster (path, bytes, PIL image or None) per movie, not a "
                        f"{type(posters).__name__}: for one movie write posters=[{_short(posters)}]")


def _title(t) -> str | None:
    if isinstance(t, str):
        return t
    if isinstance(t, int | float | np.integer | np.floating) and not isinstance(t, bool) and t == t:
        return str(int(t)) if float(t).is_integer() else str(t)
    return None


def _short(x) -> str:
    text = repr(x if isinstance(x, str | bytes) else str(x) if isinstance(x, os.PathLike) else type(x).__name__)
    return text if len(text) <= 40 else text[:37] + "..."


def _length(plots, posters, titles=None) -> int:
    _not_one_movie(plots, posters)
    if isinstance(titles, str | bytes):
        raise TypeError(f"titles must be a list with one title per movie, not a {type(titles).__name__}: "
                        f"for one movie write titles=[{_short(titles)}]")
    given = {name: len(x) for name, x in (("plots", plots), ("posters", posters), ("titles", titles)) if x is not None}
    if not given:
        raise ValueError("give plots, posters or both (and titles, for a model that reads them)")
    if len(set(given.values())) > 1:
        counts = " but ".join(f"{v} {k}" for k, v in given.items())
        raise ValueError(f"{counts}: give one of each per movie (None allowed)")
    return next(iter(given.values()))
