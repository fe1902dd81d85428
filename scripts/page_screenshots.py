"""Screenshots of the web page in headless Chromium: a sure answer, a flagged answer per review reason, a phone.

    python scripts/page_screenshots.py [--model-dir DIR] [--out docs/screenshots]

Serves the model (the default model folder unless --model-dir) on a free local port, types movies into the page
and saves each result card as a small palette PNG. The answers are the model's own; when the service's answer
lacks the reason a card is meant to show, the reason is added to that answer in the browser (said in the output).
The ``input_ignored`` card sends a poster that is not an image: the service scores the movie from its plot and
gives the reason itself. Example posters are left
out of the pictures. Needs playwright and Debian's chromium
(``scripts/setup.sh --browser``).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

PLOT_SURE = ("A group of teenagers at a summer camp are stalked and killed one by one by a masked killer in the "
             "woods.")
# reason -> (title, plot, poster bytes or None) that calls for it
FLAGGED = {
    "low_confidence": ("", "A detective falls in love with the woman he is investigating for her husband's murder.",
                       None),
    "short_text": ("", "love", None),
    "title_only": ("Avatar", "", None),
    "language": ("", "Un vieil homme solitaire se lie d'amitié avec un jeune garçon dans un petit village.", None),
    "out_of_distribution": ("", "Cream the butter and sugar, add three eggs one at a time, fold in the flour and "
                                "bake for forty minutes at 180 degrees until golden.", None),
    # a poster that is not an image: ignored with a warning, the movie scored from its plot (as a table row)
    "input_ignored": ("The Lake House",
                      "A family spends one last summer together at the old lake house before it is sold.",
                      b"not an image, whatever its name says"),
}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def serve(model_dir: str | None):
    import uvicorn

    from genrelens.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(model_dir), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the service did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def save_small(png: bytes, path: Path) -> int:
    """``png`` as a 256-colour palette PNG (a few times smaller, the same to the eye); returns its size."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, format="PNG", optimize=True)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=None, help="model folder (default: the default model)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    server, thread, url = serve(args.model_dir)
    added: list[str] = []

    def no_posters(route, request=None) -> None:
        body = route.fetch().json()
        route.fulfill(json={"examples": [{k: v for k, v in e.items() if k != "poster"} for e in body["examples"]]})

    answered: dict[str, list[str]] = {}

    def with_reason(code: str):
        def handle(route, request=None) -> None:
            body = route.fetch().json()
            answered[code] = list(body.get("review_reasons", []))
            if code not in answered[code]:  # the service did not give it: show where the reason goes
                added.append(code)
                warnings = body.get("warnings", []) + (["poster ignored: poster file not found"]
                                                       if code == "input_ignored" else [])
                body = {**body, "review": True, "review_reasons": answered[code] + [code], "warnings": warnings}
            route.fulfill(json=body)
        return handle

    def predict(page, title: str, plot: str, poster: bytes | None = None) -> None:
        page.fill("#title", title)
        page.fill("#plot", plot)
        if poster is not None:
            page.set_input_files("#poster", [{"name": "poster.jpg", "mimeType": "image/jpeg", "buffer": poster}])
        elif page.locator("#clear-poster").is_visible():
            page.click("#clear-poster")
        page.evaluate("document.getElementById('review-badge').textContent = ''")
        page.click("#submit")
        deadline = time.monotonic() + 60
        while not page.evaluate("document.getElementById('review-badge').textContent !== ''"):
            if time.monotonic() > deadline:
                raise SystemExit(f"no answer from the page: {page.locator('#error').text_content()}")
            time.sleep(0.05)

    sizes = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.route("**/v1/examples", no_posters)
            page.goto(url + "/")
            page.wait_for_selector("#model-info:not(:has-text('loading'))")
            predict(page, "", PLOT_SURE)
            review = page.locator("#review-badge").text_content()
            sizes["sure.png"] = save_small(page.locator(".result-card").screenshot(), args.out / "sure.png")
            print(f"sure.png: badge {review!r}")
            for code, (title, plot, poster) in FLAGGED.items():
                page.unroute("**/v1/predict")
                page.route("**/v1/predict", with_reason(code))
                predict(page, title, plot, poster)
                shown = page.locator("#review-badge").text_content()
                print(f"flagged-{code}.png: badge {shown!r}, the service's reasons {answered.get(code)}")
                name = f"flagged-{code}.png"
                sizes[name] = save_small(page.locator(".result-card").screenshot(), args.out / name)
            page.close()

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            phone.route("**/v1/examples", no_posters)
            phone.route("**/v1/predict", with_reason("short_text"))
            phone.goto(url + "/")
            predict(phone, "", "love")
            phone.locator(".result-card").scroll_into_view_if_needed()
            sizes["mobile.png"] = save_small(phone.screenshot(), args.out / "mobile.png")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    print(json.dumps({"kb": {k: round(v / 1024, 1) for k, v in sizes.items()},
                      "reasons added in the browser": sorted(set(added))}, indent=1))


if __name__ == "__main__":
    main()
