"""End to end in real headless Chromium: a uvicorn server with the tiny model, the page, a plot and a poster."""

from __future__ import annotations

import functools
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from genrelens.predict import REVIEW_REASON_TEXT

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


def serve(model_dir, **kw):
    import uvicorn

    from genrelens.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(model_dir, **kw), host="127.0.0.1", port=port, log_level="warning"))
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


def poll(page, expression: str, timeout: float = 30) -> None:
    """Wait until ``expression`` is true in the page (``page.wait_for_function`` evals, which the page's CSP
    forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


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
    assert "exactly right" in page.locator("#confidence").text_content()
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


KEY = "page-key-4f9Q2x"


@pytest.fixture(scope="module")
def keyed_server(tiny_model_dir):
    """The service with an API key."""
    yield from serve(tiny_model_dir, api_key=KEY)


def test_page_asks_for_the_api_key_once_and_keeps_it_for_the_tab(keyed_server, browser):
    page, errors = open_page(browser, keyed_server)
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")) if "/v1/" in r.url else None)
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")  # /v1/model and /v1/examples were refused: one dialog for both
    assert page.locator("#key-error").is_hidden()
    page.fill("#api-key", "not-the-key")
    page.click("#key-submit")
    page.wait_for_selector("#key-error:not([hidden])")  # refused: asked again, saying why
    assert dialog.is_visible()
    page.fill("#api-key", KEY)
    page.click("#key-submit")
    page.wait_for_selector("#model-info:has-text('integrated')")
    poll(page, "[...document.querySelectorAll('.example img')].some(i => i.naturalWidth > 0)")
    assert dialog.is_hidden()
    assert page.evaluate("sessionStorage.getItem('genrelens-api-key')") == KEY
    assert KEY not in page.content()  # the key is not written into the page

    page.fill("#plot", "A stranded astronaut must survive alone on Mars.")
    page.click("#submit")
    page.wait_for_selector("#bars li")
    assert sent[-1] == f"Bearer {KEY}" and dialog.is_hidden()

    page.reload()  # the same tab: the key is still there, nothing is asked
    page.wait_for_selector("#model-info:has-text('integrated')")
    assert dialog.is_hidden() and not errors
    page.close()

    other, _ = open_page(browser, keyed_server)  # another tab (a new context) asks again
    other.locator("#key-dialog").wait_for(state="visible")
    other.click("#key-cancel")  # cancelled: the service's own message is shown
    other.wait_for_selector("#model-info:has-text('needs an API key')")
    other.close()


def mocked_prediction(route, request=None, **changes):
    """Answer the page's /v1/predict from the real service, with ``changes`` applied to the JSON; without
    ``review_reasons`` in ``changes`` the answer has none (as an older service answered)."""
    body = route.fetch().json()
    body.pop("review_reasons", None)
    route.fulfill(json={**body, **changes})


def shown(text: str) -> str:
    """A reason as the page shows it: the service's wording (``GET /v1/model``), as a sentence."""
    return text[:1].upper() + text[1:] + "."


def test_page_shows_the_review_badge_and_its_reasons(server, browser):
    page, errors = open_page(browser, server)
    page.wait_for_selector("#model-info:has-text('out of 100')")
    assert "F1" not in page.locator("#model-info").text_content()  # the jargon is in the tooltip only
    assert "weighted F1" in page.locator("#model-info").get_attribute("title")
    page.fill("#plot", "A hard-boiled detective hunts a serial killer through the rainy streets of a corrupt city.")
    words = {**REVIEW_REASON_TEXT, "a_new_reason": "a new reason"}  # a code the service does not describe
    cases = [({"review": False, "review_reasons": []}, False, []),
             *[({"review": True, "review_reasons": [code]}, True, [code]) for code in words],
             ({"review": True, "review_reasons": list(words)}, True, list(words)),
             ({"review": True}, True, [None]),  # an older service: no review_reasons
             ({"review": False}, False, [])]
    for changes, flagged, codes in cases:
        page.unroute("**/v1/predict")
        page.route("**/v1/predict", functools.partial(mocked_prediction, **changes))
        page.evaluate("document.getElementById('review-badge').textContent = ''")
        page.click("#submit")
        poll(page, "document.getElementById('review-badge').textContent !== ''")
        badge = page.locator("#review-badge")
        assert badge.is_visible()
        assert badge.text_content() == ("Worth a human check" if flagged else "No check needed"), changes
        reasons = page.locator("#review-reasons li")
        assert reasons.count() == len(codes), changes
        for i, code in enumerate(codes):
            # every reason in the service's own words (the CLI's and the API's), none written again by the page
            text = reasons.nth(i).text_content()
            assert text == shown(words.get(code, REVIEW_REASON_TEXT["low_confidence"])), (code, text)
            assert reasons.nth(i).is_visible()
    assert "exactly right" in page.locator("#confidence").text_content()
    assert page.locator("#confidence .info").get_attribute("title")
    page.click(".explain summary")
    assert page.locator(".explain p").first.is_visible()
    assert not errors
    page.close()
