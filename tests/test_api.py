"""The REST service: every endpoint, every kind of bad input (4xx, never 500), micro-batching."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import time
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from genrelens.predict import REVIEW_REASON_TEXT, REVIEW_REASONS
from genrelens.serve.app import create_app
from genrelens.serve.batching import MicroBatcher

PLOT = "A hard-boiled detective hunts a serial killer through the rainy streets of a corrupt city."


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    from genrelens.predict import GenreClassifier

    return GenreClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def client(clf):
    with TestClient(create_app(classifier=clf)) as c:  # raises on any server error: a 500 fails the test
        yield c


@pytest.fixture(scope="module")
def strict(clf):
    """Small limits, to test the 413s cheaply."""
    app = create_app(classifier=clf, max_body_bytes=300_000, max_poster_bytes=60_000, max_plot_chars=500,
                     max_movies=3)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def poster_bytes(subset_csv) -> bytes:
    return sorted((subset_csv.parent / "posters").glob("*.jpg"))[0].read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def check_prediction(body: dict, clf) -> None:
    assert body["model"] == clf.name and body["precision"] == clf.precision  # which arithmetic gave the scores
    assert set(body["scores"]) == set(clf.labels) == set(body["thresholds"])
    assert all(0.0 <= p <= 1.0 for p in body["scores"].values())
    assert body["genres"] and set(body["genres"]) <= set(clf.labels)
    probs = [body["scores"][g] for g in body["genres"]]
    assert probs == sorted(probs, reverse=True)


def check_error(r: httpx.Response, status: int, code: str | None = None, match: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    if code:
        assert body["error"] == code, body
    if match:
        assert re.search(match, body["detail"]), body["detail"]


# --- endpoints ---------------------------------------------------------------------------------------------


def test_health_and_model(client, clf):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["model"] == clf.name and info["labels"] == clf.labels
    assert info["thresholds"] == pytest.approx(dict(zip(clf.labels, clf.thresholds.tolist())), abs=1e-4)
    assert {"weighted_f1", "micro_f1", "macro_f1"} <= set(info["metrics"])
    assert info["uses_text"] and info["uses_poster"]
    assert info["precision"] == clf.precision == "fp32"  # the test suite loads in fp32 (conftest)
    assert info["precision_note"] is None  # a reduced precision that runs part in fp32 would say so here
    # every review reason in plain words (what the page shows), one source for the CLI, the API and the page
    assert info["review_reasons"] == REVIEW_REASON_TEXT and set(REVIEW_REASON_TEXT) == set(REVIEW_REASONS)


def test_predict_json(client, clf, poster_bytes):
    plot_only = client.post("/v1/predict", json={"plot": PLOT}).json()
    check_prediction(plot_only, clf)
    both = client.post("/v1/predict", json={"plot": PLOT, "poster": b64(poster_bytes)}).json()
    check_prediction(both, clf)
    assert both["scores"] != plot_only["scores"] and both["warnings"] == []
    as_url = client.post("/v1/predict", json={"plot": PLOT, "poster": "data:image/jpeg;base64," + b64(poster_bytes)})
    assert as_url.json()["scores"] == both["scores"]
    poster_only = client.post("/v1/predict", json={"poster": b64(poster_bytes), "plot": None})
    check_prediction(poster_only.json(), clf)


def test_predict_multipart_matches_json(client, clf, poster_bytes):
    form = client.post("/v1/predict", data={"plot": PLOT}, files={"poster": ("p.jpg", poster_bytes, "image/jpeg")})
    check_prediction(form.json(), clf)
    as_json = client.post("/v1/predict", json={"plot": PLOT, "poster": b64(poster_bytes)}).json()
    assert form.json()["scores"] == as_json["scores"]
    poster_only = client.post("/v1/predict", files={"poster": ("p.jpg", poster_bytes, "image/jpeg")})
    check_prediction(poster_only.json(), clf)
    no_file = {"poster": ("", b"", "application/octet-stream")}
    empty_file = client.post("/v1/predict", data={"plot": PLOT}, files=no_file)
    assert empty_file.json()["scores"] == client.post("/v1/predict", json={"plot": PLOT}).json()["scores"]


def test_predict_batch(client, clf, poster_bytes):
    movies = [{"plot": PLOT}, {"poster": b64(poster_bytes)}, {"plot": PLOT, "poster": b64(poster_bytes)}]
    body = client.post("/v1/predict/batch", json={"movies": movies}).json()
    assert body["model"] == clf.name and body["precision"] == clf.precision and len(body["results"]) == 3
    single = client.post("/v1/predict", json=movies[2]).json()
    assert body["results"][2]["scores"] == pytest.approx(single["scores"], abs=2e-4)


def test_examples_and_their_posters(client):
    examples = client.get("/v1/examples").json()["examples"]
    assert 1 <= len(examples) <= 6
    ex = examples[0]
    assert ex["plot"] and ex["genres"] and ex["poster"] == f"/v1/examples/{ex['id']}/poster"
    r = client.get(ex["poster"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/")
    Image.open(io.BytesIO(r.content)).verify()
    for bad in ("nope", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
        assert client.get(f"/v1/examples/{bad}/poster").status_code == 404


def test_page_static_and_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assets = [r.text] + [client.get(f"/static/{f}").text for f in ("app.js", "style.css")]
    for text in assets:
        assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page must not load anything from elsewhere"
        assert "@import" not in text and "fonts.googleapis" not in text
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", assets[1])
    assert client.get("/docs").status_code == 200
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


# --- bad input: 4xx with a clear message, never a 500 ---------------------------------------------------


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 422, "no_input"),
    ({"plot": "   \n "}, 422, "no_input"),
    ({"plot": None, "poster": None}, 422, "no_input"),
    ({"plot": 42}, 422, "invalid_request"),
    ({"plot": ["a"]}, 422, "invalid_request"),
    ({"poster": 123}, 422, "invalid_request"),
    ({"plots": "typo"}, 422, "invalid_request"),
    ([{"plot": "x"}], 422, "invalid_request"),
    ("just a string", 422, "invalid_request"),
    ({"poster": "not base64 at all!"}, 422, "invalid_base64"),
    ({"poster": b64(b"plain text, not an image")}, 422, "bad_poster"),
])
def test_bad_json_inputs(client, body, status, code):
    r = client.post("/v1/predict", json=body)
    check_error(r, status, code)
    assert "MovieIn" not in r.text  # no internal class names (it said "... or instance of MovieIn")


def test_a_batch_movie_that_is_not_an_object_names_no_internal_class(client):
    r = client.post("/v1/predict/batch", json={"movies": ["just a string", {"plot": PLOT}]})
    assert r.status_code == 200 and r.json()["results"][0]["error"]["code"] == "invalid_request"
    assert "MovieIn" not in r.text and "valid dictionary" in r.text


def test_bad_bodies_and_content_types(client, poster_bytes):
    check_error(client.post("/v1/predict", content=b"{bad json", headers={"content-type": "application/json"}),
                422, "invalid_json")
    check_error(client.post("/v1/predict", content=b"", headers={"content-type": "application/json"}), 422, "no_input")
    check_error(client.post("/v1/predict", content=b"\xff\xfe", headers={"content-type": "application/json"}),
                422, "invalid_json")
    check_error(client.post("/v1/predict", content=PLOT, headers={"content-type": "text/plain"}),
                415, "unsupported_media_type")
    check_error(client.post("/v1/predict", data={"plot": PLOT, "year": "1999"}), 422, "invalid_request", "year")
    check_error(client.post("/v1/predict", data={"plot": ""}), 422, "no_input")
    check_error(client.get("/v1/predict"), 405)
    check_error(client.post("/v1/nothing-here", json={}), 404)


def test_a_poster_alone_that_cannot_be_read_is_not_scored(client, poster_bytes):
    """Nothing else to score from: answered as the pipeline answers it (not scored), 422 ``bad_poster`` naming why;
    415 stays for a request whose own Content-Type is wrong."""
    files = {"poster": ("notes.txt", b"hello, I am text", "text/plain")}
    check_error(client.post("/v1/predict", files=files), 422, "bad_poster",
                "^poster ignored: .*not an image.*not scored")
    truncated = {"poster": ("p.jpg", poster_bytes[: len(poster_bytes) // 3], "image/jpeg")}
    check_error(client.post("/v1/predict", files=truncated), 422, "bad_poster", "corrupt or truncated")
    bomb = png((10_000, 5_000), mode="1")  # 50 Mpixels declared, a few kB on the wire
    assert len(bomb) < 100_000
    check_error(client.post("/v1/predict", json={"poster": b64(bomb)}), 422, "bad_poster", "pixels")
    check_error(client.post("/v1/explain", json={"poster": b64(b"hello")}), 422, "bad_poster", "not an image")


def test_a_plot_with_an_unreadable_poster_is_scored_from_the_plot_as_the_cli_does(client, clf, poster_bytes):
    """REST refused a movie with a plot and an unreadable poster (415 ``bad_poster``), single and batch, while the
    CLI and tables score it from its plot with the poster ignored: every front end now answers it the same way."""
    from genrelens.data.images import open_poster
    from genrelens.errors import PosterError
    from genrelens.types import Movie

    plot_only = client.post("/v1/predict", json={"plot": PLOT}).json()
    with pytest.raises(PosterError) as unread:
        open_poster(b"hello")
    [expected] = clf.predict_movies([Movie(plot=PLOT, poster=unread.value)])  # what the CLI renders
    truncated = poster_bytes[: len(poster_bytes) // 3]
    answers = [client.post("/v1/predict", json={"plot": PLOT, "poster": "aGVsbG8="}),  # "hello" in base64
               client.post("/v1/predict", data={"plot": PLOT}, files={"poster": ("bad.jpg", b"hello", "image/jpeg")}),
               client.post("/v1/explain", json={"plot": PLOT, "poster": "aGVsbG8="}),
               client.post("/v1/predict", json={"plot": PLOT, "poster": b64(truncated)})]
    for r in answers:
        assert r.status_code == 200, r.text
        body = r.json()
        check_prediction(body, clf)
        assert body["scores"] == pytest.approx(plot_only["scores"], abs=2e-4)
        assert len(body["warnings"]) == 1 and body["warnings"][0].startswith("poster ignored: poster upload ")
        assert body["review"] and "input_ignored" in body["review_reasons"]
    assert answers[0].json()["warnings"] == expected.warnings == ["poster ignored: poster upload is not an image"]
    assert answers[0].json()["review_reasons"] == expected.review_reasons
    assert "corrupt or truncated" in answers[3].json()["warnings"][0]
    movies = [{"id": "a", "plot": PLOT, "poster": "aGVsbG8="}, {"id": "b", "poster": "aGVsbG8="}]
    body = client.post("/v1/predict/batch", json={"movies": movies}).json()
    a, b = body["results"]
    assert a["genres"] and a["warnings"] == expected.warnings and a["scores"] == pytest.approx(plot_only["scores"],
                                                                                                abs=2e-4)
    assert "genres" not in b and b["error"]["code"] == "bad_poster" and body["n_errors"] == 1
    assert b["error"]["message"].startswith("movies[1]: poster ignored: poster upload is not an image")


def test_a_poster_url_is_named_as_not_fetched(client, clf):
    """A URL where base64 is expected: the tables' clear message (the URL intact), the movie scored from its plot."""
    url = "https://image.tmdb.org/t/p/w185/abc.jpg"
    r = client.post("/v1/predict", json={"plot": PLOT, "poster": url})
    assert r.status_code == 200, r.text
    [warning] = r.json()["warnings"]
    assert warning.startswith(f"poster ignored: poster is a URL ({url!r}), which genrelens does not fetch")
    assert "base64" in warning and "input_ignored" in r.json()["review_reasons"]
    check_error(client.post("/v1/predict", json={"poster": url}), 422, "bad_poster", re.escape(url))


def test_size_limits_give_413(strict, poster_bytes):
    big = png((400, 400)) + b"\0" * 70_000  # over the 60 kB poster limit, under the body limit
    check_error(strict.post("/v1/predict", files={"poster": ("big.png", big, "image/png")}), 413, "poster_too_large")
    check_error(strict.post("/v1/predict", json={"poster": b64(big)}), 413, "poster_too_large")
    huge = b"\0" * 400_000
    check_error(strict.post("/v1/predict", files={"poster": ("huge.png", huge, "image/png")}), 413, "body_too_large")
    check_error(strict.post("/v1/predict", json={"plot": "x" * 400_000}), 413, "body_too_large")
    check_error(strict.post("/v1/predict", json={"plot": "word " * 200}), 413, "plot_too_long")
    check_error(strict.post("/v1/predict", data={"plot": "word " * 200}), 413, "plot_too_long")
    chunked = strict.post("/v1/predict", content=iter([b'{"plot": "', b"x" * 200_000, b"x" * 200_000, b'"}']),
                          headers={"content-type": "application/json"})
    check_error(chunked, 413, "body_too_large")
    movies = [{"plot": PLOT}] * 4
    check_error(strict.post("/v1/predict/batch", json={"movies": movies}), 413, "too_many_movies")


def test_bad_batches(client, poster_bytes):
    """Only a malformed body fails the whole call; a bad movie gets an error in its own result."""
    check_error(client.post("/v1/predict/batch", json={"movies": []}), 422, "no_input")
    check_error(client.post("/v1/predict/batch", json={"movies": "x"}), 422, "invalid_request", "movies")
    check_error(client.post("/v1/predict/batch", json={"films": []}), 422, "invalid_request")
    check_error(client.post("/v1/predict/batch", content=b"{not json"), 422, "invalid_json")
    check_error(client.post("/v1/predict/batch", json=[{"plot": PLOT}]), 422, "invalid_request")
    movies = [{"id": "a", "plot": PLOT}, {"id": "b", "poster": b64(b"nope")}, {"id": 7, "plot": 1}, {"id": "d"},
              {"plot": PLOT, "poster": b64(poster_bytes)}]
    r = client.post("/v1/predict/batch", json={"movies": movies})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x.get("id") for x in results] == ["a", "b", 7, "d", None]
    assert [x["index"] for x in results] == [0, 1, 2, 3, 4]
    assert results[0]["genres"] and results[4]["genres"] and "error" not in results[0]
    assert [x.get("error", {}).get("code") for x in results] == [None, "bad_poster", "invalid_request", "no_input",
                                                                  None]
    assert all(x["error"]["message"] for x in results[1:4]) and "genres" not in results[1]
    assert "plot" in results[2]["error"]["message"]


def test_batch_flags_duplicate_ids_on_the_later_item(client, poster_bytes):
    """Issue 26 item 8: REST batch did not flag a repeated id; the later item now says where the first was."""
    movies = [{"id": "a", "plot": PLOT}, {"id": "b", "plot": PLOT}, {"plot": PLOT}, {"plot": PLOT},
              {"id": "a", "plot": PLOT, "poster": b64(poster_bytes)}, {"id": "b", "poster": b64(b"nope")},
              {"id": 7, "plot": PLOT}, {"id": "7", "plot": PLOT}]
    results = client.post("/v1/predict/batch", json={"movies": movies}).json()["results"]
    assert [x.get("warnings") for x in results[:4]] == [[], [], [], []]  # a first id, or none: no warning
    assert results[4]["genres"] and results[4]["warnings"] == ["duplicate id (first at index 0)"]
    assert results[5]["error"]["code"] == "bad_poster"  # a refused item keeps its error
    assert results[6]["warnings"] == [] and results[7]["warnings"] == ["duplicate id (first at index 6)"]
    assert results[7]["scores"] == results[6]["scores"]


# --- micro-batching ---------------------------------------------------------------------------------------


def test_micro_batcher_groups_keeps_order_and_propagates_errors():
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.02)
        if -1 in items:
            raise RuntimeError("model failed")
        return [2 * x for x in items]

    async def run() -> None:
        b: MicroBatcher[int, int] = MicroBatcher(double, max_batch=8, max_wait_ms=30)
        results = await asyncio.gather(*(b.submit([i]) for i in range(10)), b.submit([10, 11]))
        assert results == [[2 * i] for i in range(10)] + [[20, 22]]
        assert max(len(c) for c in calls) == 8 and sum(map(len, calls)) == 12 and len(calls) <= 3
        with pytest.raises(RuntimeError, match="model failed"):
            await b.submit([-1])
        assert await b.submit([5]) == [10]  # the worker survives a failed batch
        assert b.stats.movies == 13
        await b.close()

    asyncio.run(run())


def test_concurrent_requests_are_batched_and_a_bad_one_fails_alone(clf, poster_bytes):
    app = create_app(classifier=clf, max_batch=16, max_wait_ms=100)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            good = [c.post("/v1/predict", json={"plot": f"{PLOT} Take {i}.", "poster": b64(poster_bytes)})
                    for i in range(6)]
            bad = [c.post("/v1/predict", json={"poster": b64(b"corrupt")}), c.post("/v1/predict", json={})]
            return await asyncio.gather(*good, *bad)

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 6 + [422, 422]
    stats = app.state.batcher.stats
    assert stats.movies == 7 and stats.largest > 1, stats  # the unreadable poster is answered by the pipeline too
    with TestClient(app) as c:
        alone = c.post("/v1/predict", json={"plot": f"{PLOT} Take 3.", "poster": b64(poster_bytes)}).json()
    assert responses[3].json()["scores"] == pytest.approx(alone["scores"], abs=2e-4)


def test_text_only_model_warns_about_ignored_posters(tmp_path: Path, clf, poster_bytes):
    """A model that reads plots only: a poster is ignored with a warning, a poster alone is a 422."""
    import dataclasses

    from genrelens.predict import GenreClassifier

    text_only = GenreClassifier(dataclasses.replace(clf.bundle, poster_encoder=None, model=_TextOnlyHead(clf)))
    with TestClient(create_app(classifier=text_only)) as c:
        r = c.post("/v1/predict", json={"plot": PLOT, "poster": b64(poster_bytes)})
        assert r.status_code == 200 and any("poster ignored" in w for w in r.json()["warnings"])
        check_error(c.post("/v1/predict", json={"poster": b64(poster_bytes)}), 422, "no_usable_input", "plot")


class _TextOnlyHead(torch.nn.Module):
    """The integrated head fed an absent poster: stands in for a text-only model."""

    def __init__(self, clf):
        super().__init__()
        self.head, self.dim = clf.head, clf.poster_encoder.dim

    def forward(self, feats: dict):
        n = feats["text"].shape[0]
        return self.head({**feats, "poster": torch.zeros(n, self.dim), "poster_mask": torch.zeros(n, dtype=torch.bool)})


def test_service_start_loads_the_language_identifier(clf, monkeypatch):
    """The review reasons' language model loads when the service starts, not on the first request."""
    from genrelens.models import novelty

    monkeypatch.setattr(novelty, "_IDENTIFIER", None)
    assert clf.bundle.novelty is not None and clf.bundle.novelty.languages
    app = create_app(classifier=clf)
    assert novelty._IDENTIFIER is None  # building the app loads nothing yet
    with TestClient(app):
        assert novelty._IDENTIFIER is not None
