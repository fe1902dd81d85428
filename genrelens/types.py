"""What goes into a genre model and what comes out: ``Movie`` in, ``Prediction`` out.

Every entry point (the Python API, the CLI, batch and Ray prediction, the REST service and its page) parses its
own input into ``Movie``s, hands them to ``GenreClassifier.predict_movies`` and renders the ``Prediction``s it gets
back, through ``Prediction.to_dict`` (JSON) or ``Prediction.to_row`` (tables). A new optional input field is one
field here plus the pipeline's preprocessing; the front ends need not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# review reasons (``Prediction.review_reasons``): why a movie is worth a look
LOW_CONFIDENCE = "low_confidence"  # the model's review rule flags it (confidence below the cut-off, or a close call)
TITLE_ONLY = "title_only"  # a title and nothing else the model reads: genres guessed from a few words
INPUT_IGNORED = "input_ignored"  # an input the model reads was given but could not be used (an unreadable poster)
NO_INPUT = "no_input"  # nothing the model reads: not scored


@dataclass
class Movie:
    """One movie to classify. ``poster``: a path, bytes, a PIL image or None, or the exception a front end got
    reading it (the movie is then scored without it, with a warning and the ``input_ignored`` review reason).

    ``extra`` holds optional fields a model may read (added without touching the front ends)."""

    id: str | int | None = None
    title: str | None = None
    plot: str | None = None
    poster: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    """A model's answer for one movie.

    genres: the predicted genres, most probable first; empty when the movie was not scored (``error`` says why).
    scores: probability per label in the model's label order (calibrated when the model is); None when not scored.
    confidence: probability that ``genres`` is entirely right (None when not scored).
    review: worth a look; ``review_reasons`` says why (``low_confidence``, ``input_ignored``, ``no_input``...).
    warnings: inputs ignored and other notes, for people. ``extra``: further fields, written by ``to_dict``.
    """

    genres: list[str]
    scores: dict[str, float] | None
    confidence: float | None
    review: bool = False
    review_reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    id: str | int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """Whether the model had something to read (else ``genres`` is empty and ``error`` says why)."""
        return self.error is None

    def to_dict(self, digits: int | None = 4) -> dict[str, Any]:
        """The JSON form (scores and confidence rounded to ``digits``; None: as computed). ``id`` and ``error``
        appear only when set, ``extra`` entries at the top level."""
        r = (lambda x: x) if digits is None else (lambda x: round(x, digits))
        out: dict[str, Any] = {} if self.id is None else {"id": self.id}
        out.update(genres=list(self.genres),
                   scores=None if self.scores is None else {g: r(float(p)) for g, p in self.scores.items()},
                   confidence=None if self.confidence is None else r(float(self.confidence)),
                   review=bool(self.review), review_reasons=list(self.review_reasons), warnings=list(self.warnings))
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out

    def to_row(self, labels: list[str]) -> dict[str, Any]:
        """The table form: ``genres`` (``|``-joined), ``p_<Label>`` (NaN when not scored), ``confidence``,
        ``review``, ``review_reasons`` (``|``-joined)."""
        nan = float("nan")
        row: dict[str, Any] = {"genres": "|".join(self.genres)}
        row.update({f"p_{g}": nan if self.scores is None else self.scores[g] for g in labels})
        row.update(confidence=nan if self.confidence is None else self.confidence, review=bool(self.review),
                   review_reasons="|".join(self.review_reasons))
        return row
