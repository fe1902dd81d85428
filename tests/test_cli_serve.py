"""genrelens.cli.serve: `genrelens serve` builds the app with the limits asked for and hands it to uvicorn."""

import pytest
import uvicorn
from typer.testing import CliRunner

from genrelens.cli import app


def test_serve_passes_limits_to_the_app(tiny_naive_dir, monkeypatch):
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, host, port, log_level: seen.update(app=served, host=host,
                                                                                          port=port))
    r = CliRunner().invoke(app, ["serve", "--model-dir", str(tiny_naive_dir), "--port", "0", "--host", "127.0.0.2",
                                 "--max-plot-chars", "50", "--max-movies", "3", "--rate-limit", "2"])
    assert r.exit_code == 0, r.output
    assert (seen["host"], seen["port"]) == ("127.0.0.2", 0)
    from fastapi.testclient import TestClient

    with TestClient(seen["app"]) as client:
        info = client.get("/v1/model").json()
        assert info["limits"]["max_plot_chars"] == 50 and info["limits"]["max_movies"] == 3
        assert client.post("/v1/predict", json={"plot": "x" * 51}).status_code == 413


@pytest.mark.parametrize("args", [["--port", "70000"], ["--max-batch", "0"]])
def test_bad_options_exit_2(args, monkeypatch):
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
    assert CliRunner().invoke(app, ["serve", *args]).exit_code == 2


def test_a_missing_model_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
    r = CliRunner().invoke(app, ["serve", "--model-dir", str(tmp_path / "none")])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output
