"""The API key: /v1/* needs 'Authorization: Bearer <key>' when the service has one; the page, /health and the docs
stay open; the key is compared in constant time and never appears in an answer or a log line."""

from __future__ import annotations

import hmac
import logging
import os
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from genrelens.serve.app import create_app
from genrelens.serve.auth import ApiKeyError, KeyFileWarning, api_key_from, is_loopback, open_service_warning

KEY = "k3y-Zq8vLr2mWx9T-unique"
PLOT = "A hard-boiled detective hunts a serial killer through the rainy streets of a corrupt city."


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    from genrelens.predict import GenreClassifier

    return GenreClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def keyed(clf):
    with TestClient(create_app(classifier=clf, api_key=KEY)) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def check_401(r: httpx.Response, match: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized" and match in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v1/model", None), ("GET", "/v1/examples", None), ("POST", "/v1/predict", {"plot": PLOT}),
    ("POST", "/v1/predict/batch", {"movies": [{"plot": PLOT}]}), ("POST", "/v1/explain", {"plot": PLOT}),
])
def test_every_api_call_needs_the_key(keyed, method, path, body):
    check_401(keyed.request(method, path, json=body), "needs an API key")
    for wrong in (bearer("k3y-Zq8vLr2mWx9T-uniquX"), bearer(KEY[:-1]), bearer(KEY + "x"), bearer(""),
                  {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        check_401(keyed.request(method, path, json=body, headers=wrong), "refused")


def test_the_key_opens_the_api(keyed, clf):
    r = keyed.get("/v1/model", headers=bearer(KEY))
    assert r.status_code == 200 and r.json()["model"] == clf.name
    r = keyed.post("/v1/predict", json={"plot": PLOT}, headers={"authorization": f"bearer  {KEY}"})
    assert r.status_code == 200 and r.json()["genres"]
    r = keyed.post("/v1/predict", data={"plot": PLOT}, headers=bearer(KEY))  # the page's multipart form
    assert r.status_code == 200 and r.json()["genres"]
    r = keyed.post("/v1/predict/batch", json={"movies": [{"plot": PLOT}, {"plot": ""}]}, headers=bearer(KEY))
    assert r.status_code == 200 and r.json()["n_errors"] == 1


@pytest.mark.parametrize("path", ["/health", "/", "/static/app.js", "/static/style.css", "/docs", "/redoc",
                                  "/openapi.json"])
def test_page_health_and_docs_stay_open(keyed, path):
    assert keyed.get(path).status_code == 200


def test_refused_before_the_body_is_read(keyed):
    """A caller without the key cannot make the service read (or size-check) a body."""
    r = keyed.post("/v1/predict", content=b"x" * (17 * 2**20), headers={"content-type": "application/json"})
    check_401(r, "needs an API key")


def test_no_key_no_check(clf):
    with TestClient(create_app(classifier=clf)) as c:
        assert c.get("/v1/model").status_code == 200
    with pytest.raises(ValueError, match="empty"):
        create_app(classifier=clf, api_key="  ")


def test_the_comparison_is_constant_time(keyed, monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert keyed.get("/v1/model", headers=bearer("nope")).status_code == 401
    assert keyed.get("/v1/model", headers=bearer(KEY)).status_code == 200
    assert calls == [(b"nope", KEY.encode()), (KEY.encode(), KEY.encode())]


def serve(app, log_level: str):
    """A real uvicorn server (its own logging left to the root logger, so caplog sees it) on a free port."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level,
                                           log_config=None, access_log=True))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def test_the_key_is_never_logged_nor_echoed(clf, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    app = create_app(classifier=clf, api_key=KEY)
    server, thread, url = serve(app, "debug")
    answers = []
    try:
        with httpx.Client(base_url=url) as c:
            for headers in ({}, bearer(KEY), bearer(KEY + "-wrong"), {"Authorization": KEY}):
                answers.append(c.get("/v1/model", headers=headers))
                answers.append(c.post("/v1/predict", json={"plot": PLOT}, headers=headers))
                answers.append(c.post("/v1/predict", json={"plot": 5}, headers=headers))  # an error answer too
            answers.append(c.get("/openapi.json"))
            answers.append(c.get("/health"))
    finally:
        server.should_exit = True
        thread.join(10)
    assert {r.status_code for r in answers} == {200, 401, 422}
    assert any("/v1/model" in r.getMessage() for r in caplog.records), "the access log was not captured"
    out, err = capfd.readouterr()
    texts = [r.getMessage() for r in caplog.records] + [out, err, repr(app.user_middleware)]
    texts += [r.text + str(r.headers) for r in answers]
    assert not [t for t in texts if KEY in t]


def test_api_key_from_the_environment():
    assert api_key_from({}) is None
    assert api_key_from({"GENRELENS_API_KEY": f"  {KEY}\n"}) == KEY
    for bad in ("", " \n", "two words", "clé"):
        with pytest.raises(ApiKeyError, match="GENRELENS_API_KEY"):
            api_key_from({"GENRELENS_API_KEY": bad})


def test_api_key_from_a_file(tmp_path):
    path = tmp_path / "key.txt"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    assert api_key_from({"GENRELENS_API_KEY": "other"}, path) == KEY  # the file, named explicitly, wins
    with pytest.raises(ApiKeyError, match="cannot read the API key file"):
        api_key_from({}, tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    empty.chmod(0o600)
    with pytest.raises(ApiKeyError, match="empty"):
        api_key_from({}, empty)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_key_file_everyone_can_read_is_named(tmp_path):
    path = tmp_path / "key.txt"
    path.write_text(KEY)
    path.chmod(0o644)
    with pytest.warns(KeyFileWarning, match="chmod 600"):
        assert api_key_from({}, path) == KEY


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.1.1", True), ("localhost", True),
                                                ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                                ("::", False), ("192.168.1.20", False), ("example.org", False)])
def test_serving_on_a_network_without_a_key_warns(host, loopback):
    assert is_loopback(host) is loopback
    message = open_service_warning(host, None)
    assert (message is None) is loopback
    if message:
        assert host in message and "GENRELENS_API_KEY" in message and "--api-key-file" in message
    assert open_service_warning(host, KEY) is None


# --- `genrelens serve`: the key from the environment or --api-key-file, end to end -------------------------------

def _serve_cli(*args: str, env: dict[str, str]):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "genrelens.cli", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_cli_requires_the_key_from_the_environment(tiny_naive_dir):
    port = _free_port()
    env = {**os.environ, "GENRELENS_API_KEY": KEY, "PYTHONPATH": os.getcwd()}
    proc = _serve_cli("--model-dir", str(tiny_naive_dir), "--port", str(port), env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:  # /health stays open
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        check_401(httpx.get(f"{url}/v1/model"), "needs an API key")
        check_401(httpx.get(f"{url}/v1/model", headers=bearer("wrong")), "refused")
        r = httpx.get(f"{url}/v1/model", headers=bearer(KEY))
        assert r.status_code == 200 and r.json()["model"] == "naive"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert "API key required" in err and KEY not in err
    assert "without an API key" not in err  # loopback: no warning


@pytest.fixture()
def serve_cli(tiny_naive_dir, monkeypatch):
    """``genrelens serve`` in-process with uvicorn.run replaced: returns (result, the app uvicorn would serve)."""
    import uvicorn
    from typer.testing import CliRunner

    from genrelens.cli import app

    served: list = []
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: served.append(asgi))
    monkeypatch.delenv("GENRELENS_API_KEY", raising=False)

    def run(*args: str):
        res = CliRunner().invoke(app, ["serve", "--model-dir", str(tiny_naive_dir), *args])
        return res, (served[-1] if served else None)
    return run


def test_serve_cli_warns_on_a_network_address_without_a_key(serve_cli):
    res, asgi = serve_cli("--host", "0.0.0.0")
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "warning: serving on 0.0.0.0 without an API key" in out and "no API key" in out
    with TestClient(asgi) as c:
        assert c.get("/v1/model").status_code == 200


def test_serve_cli_key_file(serve_cli, tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    res, asgi = serve_cli("--host", "0.0.0.0", "--api-key-file", str(path))
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "chmod 600" in out and "API key required" in out and "without an API key" not in out and KEY not in out
    with TestClient(asgi) as c:
        assert c.get("/v1/model").status_code == 401
        assert c.get("/v1/model", headers=bearer(KEY)).status_code == 200
    path.chmod(0o600)
    assert "chmod 600" not in serve_cli("--api-key-file", str(path))[0].output


def test_serve_cli_refuses_a_bad_key_and_trace_logs(serve_cli, tmp_path, monkeypatch):
    (tmp_path / "empty").write_text("\n")
    res, asgi = serve_cli("--api-key-file", str(tmp_path / "empty"))
    assert res.exit_code == 2 and "empty" in res.output and asgi is None
    monkeypatch.setenv("GENRELENS_API_KEY", KEY)
    res, asgi = serve_cli("--log-level", "trace")
    assert res.exit_code == 2 and "trace" in res.output and asgi is None


def test_openapi_declares_the_key_so_docs_can_send_it(keyed, clf):
    schema = keyed.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["apiKey"][
            "description"]}
    assert all(op.get("security") == [{"apiKey": []}] for path, ops in schema["paths"].items()
               if path.startswith("/v1/") for op in ops.values())
    assert "security" not in schema["paths"]["/health"]["get"]
    with TestClient(create_app(classifier=clf)) as open_app:
        assert "securitySchemes" not in open_app.get("/openapi.json").json().get("components", {})
