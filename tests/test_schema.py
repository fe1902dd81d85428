"""The service's contract under arbitrary input: schemathesis fuzzing of the OpenAPI schema (no 5xx, JSON errors),
and the request limits: size limits and the per-client rate limit, in ``create_app`` and ``genrelens serve``."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from genrelens.cli import app as cli
from genrelens.predict import GenreClassifier
from genrelens.serve.app import RateLimit, create_app

OPERATIONS = [("POST", "/v1/predict"), ("POST", "/v1/explain"), ("POST", "/v1/predict/batch"), ("GET", "/v1/model"),
              ("GET", "/v1/examples"), ("GET", "/v1/examples/{movie_id}/poster"), ("GET", "/health")]
# others take no input worth more than a few; an explanation costs seconds, and shares /v1/predict's body checks
MAX_EXAMPLES = {"/v1/predict": 30, "/v1/predict/batch": 30, "/v1/explain": 8}


@pytest.fixture(scope="module")
def clf(tiny_model_dir) -> GenreClassifier:
    return GenreClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def api_schema(clf):
    app = create_app(classifier=clf, max_body_bytes=2_000_000, max_poster_bytes=1_000_000, max_plot_chars=5_000)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_schema_lists_every_operation(api_schema) -> None:
    found = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_schema_fuzz_never_5xx(api_schema, method: str, path: str) -> None:
    """Schema-driven examples (valid and invalid, incl. multipart) never get a 5xx; errors are JSON with a code."""
    operation = api_schema[path][method]
    seen: dict[int, int] = {}

    @settings(max_examples=MAX_EXAMPLES.get(path, 5), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call()
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.body if hasattr(case, "body") else None, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body["error"], str) and isinstance(body["detail"], str), body
        assert b"<script" not in response.content

    check()
    assert seen, "no example ran"


# ------------------------------------------------------------------------------------------------ rate limit


def test_token_bucket_refills_and_separates_clients() -> None:
    limit = RateLimit(app=None, rate=2.0, burst=3, max_clients=2)
    assert [limit.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a", 0.0) == pytest.approx(0.5)  # empty: one token back in 0.5 s at 2/s
    assert limit.take("b", 0.0) == 0.0  # another client has its own bucket
    assert limit.take("a", 0.5) == 0.0  # refilled one token
    assert limit.take("a", 0.5) > 0
    assert limit.take("a", 100.0) == 0.0 and limit.buckets["a"][0] == pytest.approx(2.0)  # capped at burst
    limit.take("c", 100.0)
    assert list(limit.buckets) == ["a", "c"]  # least recently seen dropped beyond max_clients
    with pytest.raises(ValueError):
        RateLimit(app=None, rate=0, burst=1)


def test_rate_limit_answers_429_json(clf) -> None:
    with TestClient(create_app(classifier=clf, rate_limit=0.01, rate_burst=2)) as client:
        assert client.get("/v1/model").status_code == 200
        assert client.post("/v1/predict", json={"plot": "A heist."}).status_code == 200
        r = client.post("/v1/predict", json={"plot": "A heist."})
        assert r.status_code == 429 and r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert "0.01/s" in r.json()["detail"]
        assert client.get("/health").status_code == 200 and client.get("/").status_code == 200  # not limited
    with TestClient(create_app(classifier=clf)) as client:  # off by default
        assert all(client.get("/v1/model").status_code == 200 for _ in range(50))
        assert client.get("/v1/model").json()["limits"]["rate_limit"] is None
    with pytest.raises(ValueError, match="rate_limit"):
        create_app(classifier=clf, rate_limit=-1)


def test_serve_options_set_limits(clf, tiny_model_dir, monkeypatch) -> None:
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr(GenreClassifier, "load", classmethod(lambda cls, *a, **k: clf))
    r = CliRunner().invoke(cli, ["serve", "--model-dir", str(tiny_model_dir), "--port", "8123", "--rate-limit", "5",
                                 "--rate-burst", "7", "--max-plot-chars", "100", "--max-body-mb", "0.5",
                                 "--max-poster-mb", "0.2", "--max-movies", "3"])
    assert r.exit_code == 0, r.output
    assert seen["port"] == 8123
    with TestClient(seen["app"]) as client:
        limits = client.get("/v1/model").json()["limits"]
        assert limits == {"max_plot_chars": 100, "max_poster_bytes": 200_000, "max_body_bytes": 500_000,
                          "max_movies": 3, "rate_limit": 5.0, "rate_burst": 7}
        assert client.post("/v1/predict", json={"plot": "x" * 101}).json()["error"] == "plot_too_long"
