"""genrelens.serve.app: the REST API around a model (the tiny naive model: it needs no encoder)."""

import pytest
from fastapi.testclient import TestClient

from genrelens.predict import GenreClassifier
from genrelens.serve.app import create_app


@pytest.fixture(scope="module")
def clf(tiny_naive_dir):
    return GenreClassifier.load(tiny_naive_dir)


def test_predict_single_and_batch_answer_the_same_fields(clf):
    with TestClient(create_app(classifier=clf, max_movies=3)) as client:
        one = client.post("/v1/predict", json={"plot": "A heist goes wrong."})
        assert one.status_code == 200
        body = one.json()
        assert body["genres"] and set(body["scores"]) == set(clf.labels) and "confidence" in body
        batch = client.post("/v1/predict/batch", json={"movies": [{"id": "a", "plot": "x"}, {"id": "b"}]})
        assert batch.status_code == 200
        a, b = batch.json()["results"]
        assert a["id"] == "a" and a["genres"] == body["genres"] and "confidence" in a and "review" in a
        assert b["id"] == "b" and b["error"]["code"] == "no_input"
        too_many = client.post("/v1/predict/batch", json={"movies": [{"plot": "x"}] * 4})
        assert too_many.status_code == 413
        assert client.get("/health").json()["batching"]["movies"] >= 2


def test_errors_are_json_with_a_code(clf):
    with TestClient(create_app(classifier=clf, max_plot_chars=10)) as client:
        r = client.post("/v1/predict", json={})
        assert r.status_code == 422 and r.json()["error"] == "no_input"
        assert client.post("/v1/predict", json={"plot": "x" * 11}).json()["error"] == "plot_too_long"
        assert client.post("/v1/predict", content=b"{", headers={"content-type": "application/json"}
                           ).json()["error"] == "invalid_json"
        assert client.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        info = client.get("/v1/model").json()
        assert info["labels"] == clf.labels and info["limits"]["max_plot_chars"] == 10


def test_api_key_and_rate_limit(clf):
    with TestClient(create_app(classifier=clf, api_key="s3cret", rate_limit=0.001, rate_burst=2)) as client:
        assert client.post("/v1/predict", json={"plot": "x"}).status_code == 401
        ok = client.post("/v1/predict", json={"plot": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        codes = [client.post("/v1/predict", json={"plot": "x"}, headers={"Authorization": "Bearer s3cret"}).status_code
                 for _ in range(2)]
        assert codes[-1] == 429
    with pytest.raises(ValueError, match="api_key"):
        create_app(classifier=clf, api_key=" ")
    with pytest.raises(ValueError, match="rate_limit"):
        create_app(classifier=clf, rate_limit=0)


def test_error_shapes_of_a_call_and_of_a_batch_item(clf):
    """Two documented shapes (README, "Errors have two shapes"): a call that fails answers {"error", "detail"}; a
    batch movie that was not scored carries {"error": {"code", "message"}}, with the same code and message."""
    with TestClient(create_app(classifier=clf)) as client:
        one = client.post("/v1/predict", json={"plot": 42})
        assert one.status_code == 422 and set(one.json()) == {"error", "detail"}
        assert one.json()["error"] == "invalid_request"
        item = client.post("/v1/predict/batch", json={"movies": [{"plot": 42}]}).json()["results"][0]
        assert set(item) == {"index", "error"} and set(item["error"]) == {"code", "message"}  # no id given: absent
        assert item["error"] == {"code": "invalid_request", "message": f"movies[0]: {one.json()['detail']}"}
        bad_json = client.post("/v1/predict", content=b"{", headers={"content-type": "application/json"})
        assert bad_json.status_code == 422 and bad_json.json()["error"] == "invalid_json"  # 422 kept, as FastAPI's own
