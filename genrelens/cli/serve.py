"""``genrelens serve``: the REST API and the web page (``genrelens.serve.app``) with uvicorn."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import typer

from genrelens.cli.common import console, fail, load_classifier, model_dir_option, precision_option


def serve(
    model_dir: Path | None = model_dir_option(),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on (0: any free port)."),
    max_batch: int = typer.Option(32, min=1, help="Most movies scored together in one model call."),
    max_wait_ms: float = typer.Option(0.0, min=0, help="Extra wait for more requests to batch with (requests that "
                                       "arrive while the model is busy batch anyway)."),
    max_body_mb: float = typer.Option(16.0, min=0.001, help="Largest request body, in MB (413 beyond)."),
    max_poster_mb: float = typer.Option(8.0, min=0.001, help="Largest poster, in MB (413 beyond)."),
    max_plot_chars: int = typer.Option(20_000, min=1, help="Longest plot, in characters (413 beyond)."),
    max_movies: int = typer.Option(64, min=1, help="Most movies in one /v1/predict/batch call (413 beyond)."),
    rate_limit: float = typer.Option(0.0, min=0, help="API requests per second per client address (429 "
                                     "beyond); 0 = no limit (the default)."),
    rate_burst: int = typer.Option(20, min=1, help="Requests a client may send at once before --rate-limit "
                                   "applies."),
    log_level: str = typer.Option("info", help="uvicorn log level (not trace while an API key is set: trace "
                                  "logs request headers)."),
    api_key_file: Path | None = typer.Option(None, "--api-key-file", metavar="FILE",
                                             help="Require 'Authorization: Bearer <key>' on every /v1/ call, the key "
                                             "read from FILE (chmod 600). Without it, $GENRELENS_API_KEY is used "
                                             "when set."),
    precision: str | None = precision_option(),
) -> None:
    """Serve the REST API (/v1/predict, /docs) and the web page (/) with uvicorn."""
    import uvicorn

    from genrelens.serve.app import create_app
    from genrelens.serve.auth import ApiKeyError, api_key_from, open_service_warning
    from genrelens.serve.inputs import MB

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            api_key = api_key_from(os.environ, api_key_file)
        except ApiKeyError as e:
            fail(str(e), 2)
    for w in caught:  # a key file every user can read: say so, and serve on
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    if api_key is not None and log_level.lower() == "trace":
        fail("--log-level trace logs request headers, the API key among them: use debug or above with a key", 2)
    clf = load_classifier(model_dir, precision)
    app = create_app(classifier=clf, max_batch=max_batch, max_wait_ms=max_wait_ms,
                     max_body_bytes=int(max_body_mb * MB), max_poster_bytes=int(max_poster_mb * MB),
                     max_plot_chars=max_plot_chars, max_movies=max_movies,
                     rate_limit=rate_limit or None, rate_burst=rate_burst, api_key=api_key)
    if (warning := open_service_warning(host, api_key)) is not None:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    access = "API key required on /v1/" if api_key is not None else "no API key"
    console.print(f"serving model [bold]{clf.name}[/] ({clf.precision}) from {clf.model_dir} on http://{host}:{port}/ "
                  f"({access}; API docs at /docs)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
