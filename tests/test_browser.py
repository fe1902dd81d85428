"""End to end in real headless Chromium: a uvicorn server with the tiny model, the page, a plot and a poster."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path("/tmp/genrelens-browser.png")


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    """A real uvicorn server on 127.0.0.1 at a free port, in a thread; yields its base URL."""
    yield from serve(tiny_model_dir)


@pytest.fixture(scope="module")
def catalogue_server(tiny_catalogue_dir):
    """The same, for a model that reads titles."""
    yield from serve(tiny_catalogue_dir)


def serve(model_dir):
    import uvicorn

    from genrelens.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(model_dir), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_page_predicts_from_plot_and_poster(server, browser, subset_csv):
    poster = sorted((subset_csv.parent / "posters").glob("*.jpg"))[1]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    hosts, dialogs, errors = set(), [], []
    page.on("request", lambda r: hosts.add(r.url.split("/")[2] if "://" in r.url else r.url.split(":")[0]))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("#model-info:has-text('integrated')")

    page.fill("#plot", "<script>alert('x')</script> A stranded astronaut must survive alone on Mars.")
    page.set_input_files("#poster", str(poster))
    page.wait_for_selector("#preview", state="visible")
    page.click("#submit")
    page.wait_for_selector("#bars li")
    bars = page.locator("#bars li")
    assert bars.count() == 10 and page.locator("#bars .tick").count() == 10
    chips = page.locator("#genres .chip").all_text_contents()
    assert chips and page.locator("#bars li.on").count() == len(chips)
    assert set(page.locator("#bars li.on .name").all_text_contents()) == set(chips)
    widths = page.eval_on_selector_all("#bars .fill", "els => els.map(e => parseFloat(e.style.width))")
    assert widths == sorted(widths, reverse=True) and widths[0] > 0

    page.wait_for_selector(".example img")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # An example movie: one click fills the plot, loads its poster and predicts.
    page.evaluate("document.getElementById('bars').replaceChildren()")
    first = page.locator(".example").first
    first.click()
    page.wait_for_selector("#bars li")
    page.wait_for_selector("#preview", state="visible")
    assert page.input_value("#plot")

    # Text that looks like HTML is shown as text: a non-image file's name appears verbatim in the error.
    page.set_input_files("#poster", {"name": "<b id=evil>x</b>.txt", "mimeType": "text/plain", "buffer": b"hi"})
    page.wait_for_selector("#error", state="visible")
    assert "<b id=evil>x</b>.txt" in page.locator("#error").text_content()
    assert page.locator("#evil").count() == 0 and not dialogs and not errors
    assert hosts == {server.split("/")[2]}, f"the page reached other hosts: {hosts}"
    page.close()


def test_page_reports_server_errors(server, browser):
    page = browser.new_page()
    page.goto(server + "/")
    page.fill("#plot", "x" * 20_001)  # over the plot limit: the server's 413 message is shown
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "characters" in page.locator("#error").text_content()
    page.close()


@pytest.mark.parametrize(("path", "selector"), [("/docs", ".swagger-ui .opblock-summary-path"),
                                                ("/redoc", "[data-section-id] h2")])
def test_api_docs_render_offline(server, browser, path, selector):
    """Swagger UI and ReDoc render with every request that leaves the service refused (no network)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    refused: list[str] = []

    def only_local(route):
        if route.request.url.startswith(server):
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    page.route("**/*", only_local)
    page.goto(server + path)
    page.wait_for_selector(selector, timeout=30_000)
    assert "/v1/predict" in page.content()
    # ReDoc's bundle always asks for its vendor's logo and hides it when that fails: decoration, not the docs
    assert [u for u in refused if u != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == [], refused


def open_page(browser, url: str):
    """A tall page at ``url``'s root and the list its JavaScript errors are collected in."""
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    return page, errors


def test_page_why_view(server, browser, subset_csv):
    """The "Why?" view: modality shares, plot words highlighted by attribution, the poster heatmap."""
    import pandas as pd

    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    row = df[(df["plot"].str.split().str.len() >= 20) & (df["poster"] != "")].iloc[0]
    page, errors = open_page(browser, server)
    page.fill("#plot", row["plot"])
    page.set_input_files("#poster", str(subset_csv.parent / row["poster"]))
    page.click("#submit")
    page.wait_for_selector("#bars li")
    assert "confidence" in page.locator("#confidence").text_content()
    chips = page.locator("#genres .chip").all_text_contents()
    page.click("#why")
    page.wait_for_selector("#why-body:not([hidden])", timeout=60_000)
    assert page.locator("#why-genres button").all_text_contents() == chips
    assert page.locator("#why-genres button[aria-selected=true]").text_content() == chips[0]
    shares = page.eval_on_selector_all("#why-shares .fill", "els => els.map(e => parseFloat(e.style.width))")
    assert len(shares) == 2 and sum(shares) == pytest.approx(100, abs=0.2)
    words = page.locator("#why-plot .word")
    assert words.count() == len(row["plot"].split())
    assert page.locator("#why-plot .word.pos").count() > 0
    assert page.locator("#why-plot").text_content() == row["plot"]
    page.wait_for_function("document.getElementById('why-heatmap').naturalWidth === 224")
    assert page.locator("#why-heatmap").is_visible()
    if len(chips) > 1:  # another genre's tab redraws the words
        page.locator("#why-genres button").nth(1).click()
        assert page.locator("#why-genres button[aria-selected=true]").text_content() == chips[1]
    page.screenshot(path="/tmp/genrelens-why.png", full_page=True)
    assert not errors
    page.close()


def test_page_sends_the_title_to_a_model_that_reads_it(catalogue_server, browser, subset_csv):
    """The Title field reaches the model; the "Why?" view highlights words of the text it read (title + plot)."""
    import pandas as pd

    from genrelens.data.clean import movie_text

    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    row = df[(df["plot"].str.split().str.len() >= 20) & (df["title"] != "")].iloc[0]
    page, errors = open_page(browser, catalogue_server)
    page.fill("#title", row["title"])
    page.click("#submit")  # a title alone is an input for this model
    page.wait_for_selector("#bars li")
    title_only = page.locator("#bars").text_content()
    page.fill("#plot", row["plot"])
    page.click("#why")
    page.wait_for_selector("#why-body:not([hidden])", timeout=60_000)
    assert page.locator("#why-plot").text_content() == movie_text(row["title"], row["plot"])
    page.click("#submit")
    from playwright.sync_api import expect

    expect(page.locator("#bars")).not_to_have_text(title_only, timeout=30_000)  # the plot changed the scores
    assert errors == []
