"""Request checking for the service: limits, JSON/multipart parsing, base64 and poster decoding.

Everything here turns a bad request into an :class:`ApiError` (a 4xx with a clear message), before anything
reaches the model, so a bad request never fails a micro-batch and never becomes a 500. A poster that cannot be
read (not an image, corrupt, a bomb, a URL) is not a bad request: it is passed on as its ``PosterError``, and the
pipeline answers the movie as every front end does (scored from what else it has, the poster ignored with a
warning; not scored when it has nothing else).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from genrelens.data.images import is_url, open_poster, url_message
from genrelens.data.table import clean_text
from genrelens.errors import PosterError
from genrelens.types import Movie

MB = 1_000_000
URL_ADVICE = "send the image itself: base64 (or a data: URL) in JSON, or a file in a multipart form"
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_body_bytes: int = 16 * MB
    max_poster_bytes: int = 8 * MB
    max_poster_pixels: int = 40_000_000
    max_plot_chars: int = 20_000
    max_movies: int = 64


class ApiError(Exception):
    """A client error: rendered as ``{"error": code, "detail": message}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class MovieIn(BaseModel):
    """One movie to classify: a plot, a poster, or both (and its title)."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, description="Title (read by models that read titles, the default among them).")
    plot: str | None = Field(None, description="Plot summary (plain text).")
    poster: str | None = Field(None, description="Poster image (JPEG/PNG/WebP...) as base64 or a data: URL. One "
                               "that cannot be read (not an image, corrupt, a web address) is ignored with a "
                               "warning, as in a table: the movie is scored from what else it has.")


class BatchMovieIn(MovieIn):
    """One movie of a batch: a plot, a poster or both, and the client's own id for it (echoed back)."""

    id: str | int | None = Field(None, description="Your id for this movie, echoed in its result.")


BATCH_SCHEMA = {"type": "object", "required": ["movies"], "additionalProperties": False, "properties": {
    "movies": {"type": "array", "description": "The movies, answered in the same order (each on its own: a bad "
               "movie gets an error in its result, the others are scored).",
               "items": BatchMovieIn.model_json_schema()}}}


async def read_json_batch(request: Request, limits: Limits) -> list:
    """The ``movies`` list of a batch body, unchecked item by item (see :func:`check_batch_item`). The whole
    call fails (4xx) only when the body itself is malformed: not JSON, not ``{"movies": [...]}``, empty or
    over ``max_movies``."""
    raw = (await request.body()).removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        raise ApiError(422, "no_input", 'empty body: send JSON {"movies": [{"id": ..., "plot": ..., "poster": ...}]}')
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(422, "invalid_json", f"body is not valid JSON: {e}") from e
    except RecursionError as e:
        raise ApiError(422, "invalid_json", "body is not valid JSON: nested too deeply") from e
    if not isinstance(obj, dict) or "movies" not in obj:
        raise ApiError(422, "invalid_request", 'body: send an object {"movies": [...]}')
    if set(obj) - {"movies"}:
        raise ApiError(422, "invalid_request", f"body: unknown field(s) {', '.join(sorted(set(obj) - {'movies'}))}")
    movies = obj["movies"]
    if not isinstance(movies, list):
        raise ApiError(422, "invalid_request", "movies: Input should be a valid list")
    if not movies:
        raise ApiError(422, "no_input", "movies is empty")
    if len(movies) > limits.max_movies:
        raise ApiError(413, "too_many_movies", f"{len(movies)} movies (limit {limits.max_movies} per call)")
    return movies


def batch_item_id(item) -> str | int | None:
    """The client's id of a batch item, when it has a usable one (for its result, even when the item is bad)."""
    mid = item.get("id") if isinstance(item, dict) else None
    return mid if isinstance(mid, str | int) and not isinstance(mid, bool) else None


def duplicate_ids(items: list) -> dict[int, str]:
    """``{index: "duplicate id (first at index N)"}`` for the batch items whose id an earlier item has (items
    without an id are not compared)."""
    from genrelens.data.table import id_problems

    found = id_problems([batch_item_id(item) for item in items], first_row=0, where="at index")
    return {i: why for i, why in found.items() if why != "empty id"}


def check_batch_item(item, limits: Limits, where: str) -> tuple[str | None, bytes | PosterError | None, str | None]:
    """``(plot, poster, title)`` of one batch item (the poster: see :func:`decode_base64`); ApiError when this item
    is bad."""
    try:
        movie = BatchMovieIn.model_validate(item)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", f"{where}: " + describe_errors(e.errors(include_input=False))) from e
    return movie.plot, decode_base64(movie.poster, limits, where), movie.title


@dataclass
class CheckedMovie:
    """A checked movie, ready for ``GenreClassifier.predict_movies``: the ``Movie`` (title and plot cleaned, the
    poster decoded) and the warnings found while checking it."""

    movie: Movie
    warnings: list[str] = field(default_factory=list)


def _where(where: str) -> str:
    return f"{where}: " if where else ""


def check_plot(plot: str | None, limits: Limits, where: str = "", what: str = "plot") -> str | None:
    """The stripped plot (or title: ``what``), None when blank; 413 when longer than the limit."""
    if plot is None or not plot.strip():
        return None
    if len(plot) > limits.max_plot_chars:
        raise ApiError(413, f"{what}_too_long",
                       f"{_where(where)}{what} has {len(plot):,} characters (limit {limits.max_plot_chars:,})")
    return plot.strip()


def decode_base64(text: str | None, limits: Limits, where: str = "") -> bytes | PosterError | None:
    """Poster bytes from base64 (a ``data:image/...;base64,`` prefix is allowed); None when absent; a web address
    as the ``PosterError`` that says it is not fetched (the movie is answered without it)."""
    if text is None or not text.strip():
        return None
    if is_url(text):
        return PosterError(url_message(text.strip(), URL_ADVICE))
    text = _DATA_URL.sub("", text.strip(), count=1)
    if len(text) * 3 // 4 > limits.max_poster_bytes + 3:
        raise ApiError(413, "poster_too_large",
                       f"{_where(where)}poster is over the {limits.max_poster_bytes:,}-byte limit")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ApiError(422, "invalid_base64", f"{_where(where)}poster is not valid base64 ({e})") from e
    check_poster_size(data, limits, where)
    return data


def check_poster_size(data: bytes, limits: Limits, where: str = "") -> None:
    if len(data) > limits.max_poster_bytes:
        raise ApiError(413, "poster_too_large", f"{_where(where)}poster has {len(data):,} bytes "
                                                f"(limit {limits.max_poster_bytes:,})")


def decode_poster(data: bytes, limits: Limits, draft_size: int | None = None, where: str = ""
                  ) -> Image.Image | PosterError:
    """Fully decode an uploaded poster; one that cannot be read (an image bomb, a corrupt or non-image file) is
    returned as its ``PosterError``, for the pipeline to ignore with a warning. Over the size limit: 413."""
    check_poster_size(data, limits, where)
    try:
        return open_poster(data, max_pixels=limits.max_poster_pixels, max_bytes=limits.max_poster_bytes,
                           draft_size=draft_size)
    except PosterError as e:
        return e


def prepare_movie(plot: str | None, poster: bytes | PosterError | None, limits: Limits, uses_text: bool,
                  uses_poster: bool, draft_size: int | None = None, where: str = "", title: str | None = None,
                  reads_titles: bool = False, movie_id: str | int | None = None) -> CheckedMovie:
    """Check one movie for a model (blocking: decodes the poster). Raises ApiError, among others when the model
    has nothing to read (``no_input``, ``no_usable_input``): such a movie is answered with no genres. A poster that
    cannot be read goes on as its ``PosterError``: ``GenreClassifier.predict_movies`` answers the movie."""
    plot = check_plot(plot, limits, where)
    title = check_plot(title, limits, where, what="title")
    if plot is None and not poster and (title is None or not reads_titles):
        raise ApiError(422, "no_input", f"{_where(where)}give a plot, a poster or both"
                       + (" (this model does not read titles)" if title is not None
                          else " (or a title)" if reads_titles else ""))
    image = poster if isinstance(poster, PosterError) else decode_poster(poster, limits, draft_size, where) \
        if poster else None
    warnings = []
    for what, text in (("plot", plot), ("title", title)):
        if text is not None and clean_text(text) != text:
            warnings.append(f"{what}: invalid characters (lone UTF-16 surrogates) were replaced by U+FFFD")
    plot, title = (clean_text(x) if x is not None else None for x in (plot, title))
    text = plot is not None or (title is not None and reads_titles)
    usable = (text and uses_text) or (image is not None and uses_poster) or not (uses_text or uses_poster)
    if not usable:
        ignored = ("title ignored: this model does not read titles" if title is not None and not reads_titles
                   else "plot ignored: this model reads posters only" if plot is not None and not uses_text
                   else "poster ignored: this model reads plots only")
        need = "a poster" if uses_poster else "a plot"
        raise ApiError(422, "no_usable_input", f"{_where(where)}this model needs {need}: {ignored}")
    return CheckedMovie(Movie(id=movie_id, title=title, plot=plot, poster=image), warnings)


async def read_json_movie(request: Request) -> MovieIn:
    """Parse and validate a JSON body as :class:`MovieIn` (422 on bad JSON or wrong types)."""
    raw = await request.body()
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM (some Windows tools add one) is not an error
    if not raw.strip():
        raise ApiError(422, "no_input", "empty body: send JSON {\"plot\": ..., \"poster\": <base64>} "
                                        "or a multipart form")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(422, "invalid_json", f"body is not valid JSON: {e}") from e
    except RecursionError as e:  # e.g. 50,000 nested brackets: Python's parser gives up
        raise ApiError(422, "invalid_json", "body is not valid JSON: nested too deeply") from e
    try:
        return MovieIn.model_validate(obj)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_errors(e.errors(include_input=False))) from e


async def read_form_movie(request: Request, limits: Limits
                          ) -> tuple[str | None, bytes | PosterError | None, str | None]:
    """``(plot, poster, title)`` from a multipart (or urlencoded) form with fields ``plot``, ``poster`` (a file, or
    base64 text: see :func:`decode_base64`) and ``title``."""
    form = await request.form(max_files=2, max_fields=10, max_part_size=limits.max_body_bytes)
    try:
        unknown = sorted(set(form.keys()) - {"title", "plot", "poster"})
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown form field(s): {', '.join(unknown)} "
                                                   "(use 'title', 'plot' and 'poster')")
        title = form.get("title")
        title = title if isinstance(title, str) else None
        plot = form.get("plot")
        if isinstance(plot, UploadFile):
            plot = (await plot.read(limits.max_plot_chars * 4 + 1)).decode("utf-8", errors="replace")
        poster = form.get("poster")
        if isinstance(poster, UploadFile):
            data = await poster.read(limits.max_poster_bytes + 1)
            poster = data or None  # a browser sends an empty part when no file was picked
            if poster:
                check_poster_size(poster, limits)
        elif isinstance(poster, str):
            poster = decode_base64(poster, limits)
        return plot, poster, title
    finally:
        await form.close()


def public_message(msg: str) -> str:
    """A pydantic message without the request models' class names (``... or instance of MovieIn``)."""
    return re.sub(r" or instance of \w+", "", msg)


def describe_errors(errors: list[dict]) -> str:
    """Pydantic errors as one readable line: ``movies.0.plot: Input should be a valid string``."""
    parts = []
    for e in errors[:5]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        parts.append(f"{'.'.join(loc) or 'body'}: {public_message(e.get('msg', 'invalid'))}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more
