"""The REST service and web page: ``create_app()`` builds a FastAPI app around one loaded model.

Endpoints: ``POST /v1/predict`` (JSON or multipart), ``POST /v1/explain`` (the same body; adds why),
``POST /v1/predict/batch``, ``GET /v1/model``,
``GET /v1/examples`` (+ ``/v1/examples/{id}/poster``), ``GET /health``, the page at ``/`` and the OpenAPI
docs at ``/docs`` and ``/redoc`` (assets served locally: they work offline).
Concurrent requests are scored together by a :class:`MicroBatcher`.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.datastructures import Secret
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from genrelens.predict import REVIEW_REASON_TEXT, GenreClassifier
from genrelens.serve.auth import add_bearer_scheme
from genrelens.serve.batching import MicroBatcher
from genrelens.serve.examples import Example, load_examples
from genrelens.serve.inputs import (
    BATCH_SCHEMA,
    MB,
    ApiError,
    CheckedMovie,
    Limits,
    MovieIn,
    batch_item_id,
    check_batch_item,
    decode_base64,
    describe_errors,
    duplicate_ids,
    prepare_movie,
    public_message,
    read_form_movie,
    read_json_batch,
    read_json_movie,
)
from genrelens.types import INPUT_IGNORED
from genrelens.version import __version__

STATIC = Path(__file__).parent / "static"
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SafeJSONResponse(JSONResponse):
    """JSON with ``<``, ``>`` and ``&`` written as ``\\u003c``-style escapes (the same strings once parsed), so no
    answer, not even an error message quoting a bad field name, ever holds markup a browser could run."""

    def render(self, content) -> bytes:
        return super().render(content).replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


PRECISION_FIELD = ("The precision path the encoders ran: fp32, bf16 or int8 (GET /v1/model says how it was chosen; "
                   "its precision_note, where part of it runs in fp32).")


class Prediction(BaseModel):
    genres: list[str] = Field(..., description="Predicted genres, most probable first (never empty).")
    scores: dict[str, float] = Field(..., description="Probability per label (calibrated when the model is).")
    confidence: float | None = Field(None, description="Probability that the predicted genre set is entirely "
                                                       "right (labels taken as independent).")
    review: bool = Field(False, description="Worth a human check: at least one of review_reasons holds.")
    review_reasons: list[str] = Field(default_factory=list, description="Why review is set, any of: "
                                      + "; ".join(f"{code} ({text})" for code, text in REVIEW_REASON_TEXT.items()))
    warnings: list[str] = Field(default_factory=list, description="Inputs that were ignored, and why.")


class PredictionOut(Prediction):
    model: str
    precision: str = Field(..., description=PRECISION_FIELD)
    thresholds: dict[str, float] = Field(..., description="The decision threshold per label.")


class ItemError(BaseModel):
    """A batch movie's error: the codes and messages of ``ErrorOut``, nested beside the movie's index and id."""

    code: str = Field(..., description="A stable error code, e.g. no_input, bad_poster, invalid_request.")
    message: str = Field(..., description="What was wrong with this movie, for people.")


class BatchItemOut(BaseModel):
    """One movie's answer: its prediction, or its error (the other movies of the call are scored anyway)."""

    index: int = Field(..., description="Position of the movie in the request.")
    id: str | int | None = Field(None, description="The id the client gave the movie (absent when none).")
    genres: list[str] | None = Field(None, description="Predicted genres, most probable first (absent on error).")
    scores: dict[str, float] | None = Field(None, description="Probability per label (absent on error).")
    confidence: float | None = Field(None, description="Probability that the predicted genre set is entirely "
                                                       "right (absent on error).")
    review: bool | None = Field(None, description="Worth a review, as for one movie (absent on error).")
    review_reasons: list[str] | None = Field(None, description="Why review is set (absent on error).")
    warnings: list[str] | None = Field(None, description="Inputs that were ignored, and why; a repeated id "
                                   "(\"duplicate id (first at index N)\"); absent on error.")
    error: ItemError | None = Field(None, description="Why this movie was not scored (absent when it was).")


class Explanation(BaseModel):
    genres: list[str] = Field(..., description="The explained genres (the predicted ones).")
    modalities: dict[str, dict[str, float]] = Field(..., description="Per genre: Shapley values of the plot and "
                                                    "the poster on the logit, and their shares.")
    words: dict[str, list[dict]] = Field(..., description="Per genre: the top plot words with signed attributions.")
    poster_heatmap: dict[str, str] = Field(..., description="Per genre: a base64 PNG of the poster crop the CNN "
                                           "reads, with its Grad-CAM heatmap.")
    plot_words: list[dict] = Field(default_factory=list, description="Every plot word with its character span.")
    word_attributions: dict[str, list[float]] = Field(default_factory=dict, description="Per genre: the "
                                                      "attribution of every plot word, in plot_words order.")
    model_config = {"extra": "allow"}


class ExplanationOut(PredictionOut):
    explanation: Explanation


class BatchOut(BaseModel):
    model: str
    precision: str = Field(..., description=PRECISION_FIELD)
    thresholds: dict[str, float]
    n_errors: int = Field(..., description="Movies answered with an error instead of a prediction.")
    results: list[BatchItemOut]


class ErrorOut(BaseModel):
    """A call that fails as a whole (a batch movie's error is an ``ItemError`` in its result instead)."""

    error: str = Field(..., description="A stable error code, e.g. no_input, bad_poster, poster_too_large.")
    detail: str = Field(..., description="What was wrong, for people.")


ERRORS = {c: {"model": ErrorOut} for c in (413, 415, 422, 429)}
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": MovieIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "title": {"type": "string"}, "plot": {"type": "string"}, "poster": {"type": "string", "format": "binary"}}}},
}}}


def not_scored(result: dict, where: str = "") -> ApiError:
    """The error for a movie the pipeline did not score: ``bad_poster`` when an input it reads could not be used
    (an unreadable poster was its only input), else ``no_usable_input``; the message is the pipeline's."""
    code = "bad_poster" if INPUT_IGNORED in result["review_reasons"] else "no_usable_input"
    return ApiError(422, code, where + "; ".join(result["warnings"] + [result["error"]]))


def score_movies(clf: GenreClassifier, movies: list[CheckedMovie]) -> list[dict]:
    """One model call for many checked movies (runs in the batcher's thread): ``Prediction.to_dict`` each."""
    out = []
    for m, p in zip(movies, clf.predict_movies([m.movie for m in movies])):
        p.warnings = m.warnings + p.warnings
        p.id = None  # a batch item's id is written by the endpoint, beside its index
        out.append(p.to_dict())
    return out


class BodyLimit:
    """ASGI middleware: answer 413 when a request body exceeds ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(scope, receive, send, declared.isdigit())
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(scope, receive, send, True)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, too_large: bool) -> None:
        if too_large:
            response = SafeJSONResponse({"error": "body_too_large",
                                     "detail": f"request body is over the {self.max_bytes:,}-byte limit"}, 413)
        else:
            response = SafeJSONResponse({"error": "bad_request", "detail": "invalid Content-Length header"}, 400)
        await response(scope, receive, send)


class RateLimit:
    """ASGI middleware: a token bucket per client address on the API (``/v1/...``): ``rate`` requests per second
    on average, bursts of up to ``burst``; beyond that a 429 JSON answer with ``Retry-After`` (seconds).

    The client is the connection's address (behind a proxy every client shares the proxy's: rate-limit there).
    At most ``max_clients`` buckets are kept (least recently seen dropped), so many addresses cannot grow memory.
    """

    def __init__(self, app: ASGIApp, rate: float, burst: int, max_clients: int = 10_000):
        if rate <= 0 or burst < 1:
            raise ValueError("rate_limit must be > 0 and rate_burst >= 1")
        self.app, self.rate, self.burst, self.max_clients = app, float(rate), int(burst), max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, last seen)

    def take(self, client: str, now: float) -> float:
        """Spend one token of ``client``; returns 0 when allowed, else the seconds until a token is back."""
        tokens, last = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self.buckets[client] = (tokens - 1 if not wait else tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.take(client, time.monotonic())
        if not wait:
            return await self.app(scope, receive, send)
        retry = max(1, math.ceil(wait))
        detail = (f"too many requests from {client}: the limit is {self.rate:g}/s (bursts of {self.burst}); "
                  f"retry in {retry} s")
        response = SafeJSONResponse({"error": "rate_limited", "detail": detail}, 429,
                                    headers={"Retry-After": str(retry)})
        await response(scope, receive, send)


class ApiKey:
    """ASGI middleware: every API request (``/v1/...``) needs ``Authorization: Bearer <key>``; else a 401 JSON
    answer with ``WWW-Authenticate: Bearer``. The page, its static files, ``/health`` and the docs stay open.

    The key is compared in constant time (:func:`hmac.compare_digest`), held as a :class:`Secret` (hidden in
    reprs) and never written to a log or an answer.
    """

    def __init__(self, app: ASGIApp, key: Secret | str):
        expected = str(key).encode("utf-8")
        if not expected.strip():
            raise ValueError("api_key must not be empty (None: no key)")
        self.app, self._expected = app, expected

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key='**********')"

    def allows(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries the key (scheme ``Bearer``, any case)."""
        scheme, _, token = (authorization or b"").strip().partition(b" ")
        return hmac.compare_digest(token.strip(), self._expected) and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        authorization = dict(scope["headers"]).get(b"authorization")
        if self.allows(authorization):
            return await self.app(scope, receive, send)
        if authorization is None:
            detail = "this service needs an API key: send the header 'Authorization: Bearer <key>'"
        else:
            detail = "the API key sent was refused: send the service's key as 'Authorization: Bearer <key>'"
        response = SafeJSONResponse({"error": "unauthorized", "detail": detail}, 401,
                                    headers={"WWW-Authenticate": 'Bearer realm="genrelens"'})
        await response(scope, receive, send)


def create_app(model_dir: str | os.PathLike | None = None, classifier: GenreClassifier | None = None, *,
               max_batch: int = 32, max_wait_ms: float = 0.0, max_body_bytes: int = 16 * MB,
               max_poster_bytes: int = 8 * MB, max_plot_chars: int = 20_000, max_movies: int = 64,
               n_examples: int = 6, rate_limit: float | None = None, rate_burst: int = 20,
               api_key: str | None = None) -> FastAPI:
    """The service around ``classifier`` (else the model in ``model_dir``, loaded once, now).

    max_batch: most movies scored in one model call; max_wait_ms: extra wait for more requests
    (0: a lone request is scored at once; requests arriving while the model is busy form the next batch);
    max_body_bytes / max_poster_bytes / max_plot_chars / max_movies: per-request limits (413 beyond);
    rate_limit: API requests per second per client address, bursts of ``rate_burst`` (429 beyond);
    None (the default) = no rate limit; api_key: when set, every ``/v1/`` call needs
    ``Authorization: Bearer <api_key>`` (401 otherwise; see :class:`ApiKey`).
    """
    if rate_limit is not None and (rate_limit <= 0 or rate_burst < 1):
        raise ValueError("rate_limit must be > 0 (or None for no limit) and rate_burst >= 1")
    if api_key is not None and not api_key.strip():
        raise ValueError("api_key must not be empty (None: no key)")
    clf = classifier if classifier is not None else GenreClassifier.load(model_dir)
    limits = Limits(max_body_bytes=max_body_bytes, max_poster_bytes=min(max_poster_bytes, max_body_bytes),
                    max_plot_chars=max_plot_chars, max_movies=max_movies)
    batcher: MicroBatcher[CheckedMovie, dict] = MicroBatcher(partial(score_movies, clf), max_batch, max_wait_ms)
    thresholds = {g: round(float(t), 4) for g, t in zip(clf.labels, clf.thresholds)}
    draft = getattr(clf.poster_encoder, "resize_size", None)
    prepare = partial(prepare_movie, limits=limits, uses_text=clf.uses_text, uses_poster=clf.uses_poster,
                      draft_size=draft, reads_titles=clf.reads_titles)
    examples: list[Example] | None = None
    examples_lock = asyncio.Lock()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await asyncio.to_thread(clf.warm_up)
        yield
        await batcher.close()

    # FastAPIOffline: /docs (Swagger UI) and /redoc load their scripts and styles from the fastapi-offline
    # package, served here under /static-offline-docs, never from a CDN: they work with no network.
    app = FastAPIOffline(title="genrelens", version=__version__, lifespan=lifespan,
                         default_response_class=SafeJSONResponse, favicon_url="/static/favicon.svg",
                         description="Tell a movie's genres from its plot summary and/or its poster.")
    app.state.classifier, app.state.batcher, app.state.limits = clf, batcher, limits
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if api_key is not None:  # after the rate limit, before the body is read
        app.add_middleware(ApiKey, key=Secret(api_key))
        add_bearer_scheme(app)  # /docs' "Authorize" sends the key
    if rate_limit is not None:  # added last = runs first: a refused request is not even read
        app.add_middleware(RateLimit, rate=rate_limit, burst=rate_burst)
    _add_error_handlers(app)

    explain_lock = asyncio.Lock()  # one explanation at a time: each is ~1 s of both cores

    async def read_movie(request: Request) -> CheckedMovie:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            plot, poster, title = await read_form_movie(request, limits)
        elif ctype in ("", "application/json", "text/json") or ctype.endswith("+json"):
            body = await read_json_movie(request)
            plot, poster, title = body.plot, decode_base64(body.poster, limits), body.title
        else:
            raise ApiError(415, "unsupported_media_type",
                           f"send application/json or multipart/form-data, not {ctype!r}")
        return await asyncio.to_thread(prepare, plot, poster, title=title)

    @app.post("/v1/predict", response_model=PredictionOut, responses=ERRORS, openapi_extra=PREDICT_BODY,
              summary="Classify one movie (JSON with a base64 poster, or a multipart form)")
    async def predict(request: Request) -> dict:
        movie = await read_movie(request)
        [result] = await batcher.submit([movie])
        if "error" in result:  # nothing the model could read (e.g. an unreadable poster alone)
            raise not_scored(result)
        return {**result, "model": clf.name, "precision": clf.precision, "thresholds": thresholds}

    @app.post("/v1/explain", response_model=ExplanationOut, responses=ERRORS, openapi_extra=PREDICT_BODY,
              summary="Classify one movie and say why: modality shares, plot words, poster heatmaps")
    async def explain(request: Request) -> dict:
        movie = await read_movie(request)
        [result] = await batcher.submit([movie])
        if "error" in result:  # nothing the model could read (e.g. an unreadable poster alone)
            raise not_scored(result)
        if clf.bundle.spec.fitted:
            why = ("(TF-IDF + logistic regression) has no explanation yet: explanations cover the neural models"
                   if clf.bundle.spec.text == "lexical" else "answers label frequencies for every movie")
            raise ApiError(422, "not_explainable", f"the {clf.name} model {why}")
        async with explain_lock:
            m = movie.movie
            poster = m.poster if clf.uses_poster and not isinstance(m.poster, Exception) else None
            explanation = await asyncio.to_thread(clf.explain, m.plot, poster, title=m.title)
        return {**result, "model": clf.name, "precision": clf.precision, "thresholds": thresholds,
                "explanation": explanation}

    @app.post("/v1/predict/batch", response_model=BatchOut, response_model_exclude_none=True, responses=ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": BATCH_SCHEMA}}}},
              summary="Classify several movies (JSON), each answered on its own: a prediction or an error")
    async def predict_batch(request: Request) -> dict:
        movies = await read_json_batch(request, limits)

        def check_all() -> list[CheckedMovie | ApiError]:
            out: list[CheckedMovie | ApiError] = []
            for i, item in enumerate(movies):
                where = f"movies[{i}]"
                try:
                    plot, poster, title = check_batch_item(item, limits, where)
                    out.append(prepare(plot, poster, title=title, where=where))
                except ApiError as e:
                    out.append(e)
            return out

        checked = await asyncio.to_thread(check_all)
        good = [m for m in checked if isinstance(m, CheckedMovie)]
        scored = iter(await batcher.submit(good) if good else [])
        dupes = duplicate_ids(movies)  # the later item of a repeated id says so (its answer is still given)
        results = []
        for i, (item, m) in enumerate(zip(movies, checked)):
            head = {"index": i, "id": batch_item_id(item)}
            if isinstance(m, CheckedMovie) and "error" in (result := next(scored)):
                m = not_scored(result, f"movies[{i}]: ")
            if isinstance(m, CheckedMovie) and i in dupes:
                result = {**result, "warnings": [*result["warnings"], dupes[i]]}
            results.append({**head, **result} if isinstance(m, CheckedMovie)
                           else {**head, "error": {"code": m.code, "message": m.detail}})
        return {"model": clf.name, "precision": clf.precision, "thresholds": thresholds,
                "n_errors": sum("error" in r for r in results),
                "results": results}

    @app.get("/v1/model", summary="The loaded model: labels, thresholds, test metrics, review reasons, limits")
    async def model_info() -> dict:
        test = clf.metrics().get("test") or {}
        metrics = {k: test[k] for k in ("weighted_f1", "micro_f1", "macro_f1", "samples_f1", "n_rows") if k in test}
        return {"model": clf.name, "labels": clf.labels, "thresholds": thresholds, "uses_text": clf.uses_text,
                "calibrated": clf.calibrated, "note": clf.calibration_note,
                "uses_poster": clf.uses_poster, "metrics": metrics or None, "version": __version__,
                "precision": clf.precision, "lineage": clf.bundle.lineage,
                "precision_note": clf.precision_note,
                "precision_choice": clf.precision_choice.to_json() if clf.precision_choice else None,
                "review_reasons": REVIEW_REASON_TEXT,
                "limits": {"max_plot_chars": limits.max_plot_chars, "max_poster_bytes": limits.max_poster_bytes,
                           "max_body_bytes": limits.max_body_bytes, "max_movies": limits.max_movies,
                           "rate_limit": rate_limit, "rate_burst": rate_burst if rate_limit is not None else None}}

    async def get_examples() -> list[Example]:
        nonlocal examples
        async with examples_lock:
            if examples is None:
                examples = await asyncio.to_thread(load_examples, clf.model_dir, clf.config.data, n_examples,
                                                   read=clf.config.table_options())
        return examples

    @app.get("/v1/examples", summary="A few movies from the model's test data to try")
    async def list_examples() -> dict:
        return {"examples": [e.public(f"/v1/examples/{e.id}/poster" if e.poster_path else None)
                             for e in await get_examples()]}

    @app.get("/v1/examples/{movie_id}/poster", summary="The poster of one example movie",
             responses={404: {"model": ErrorOut}})
    async def example_poster(movie_id: str) -> FileResponse:
        found = next((e for e in await get_examples() if e.id == movie_id and e.poster_path), None)
        if found is None:
            raise ApiError(404, "not_found", f"no example movie {movie_id!r} with a poster")
        return FileResponse(found.poster_path, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/health", summary="Liveness, the model's name and batching counters")
    async def health() -> dict:
        return {"status": "ok", "model": clf.name, "batching": batcher.stats.as_dict()}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                            "X-Content-Type-Options": "nosniff",
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, e: ApiError) -> JSONResponse:
        return SafeJSONResponse({"error": e.code, "detail": e.detail}, e.status)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(x.get("loc", ())), "msg": public_message(x.get("msg", "")), "type": x.get("type", "")}
                  for x in e.errors()]
        return SafeJSONResponse({"error": "invalid_request", "detail": describe_errors(errors), "errors": errors}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return SafeJSONResponse({"error": f"http_{e.status_code}", "detail": str(e.detail)}, e.status_code,
                            headers=getattr(e, "headers", None))
