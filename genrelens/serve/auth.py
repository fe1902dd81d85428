"""Who may call the service: where its API key comes from, and the warning for an open service on a network.

The check itself is :class:`genrelens.serve.app.ApiKey` (``create_app(..., api_key=...)``).
"""

from __future__ import annotations

import ipaddress
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path

from genrelens.errors import GenrelensError

ENV_VAR = "GENRELENS_API_KEY"


class ApiKeyError(GenrelensError, ValueError):
    """The API key given (environment variable or key file) cannot be used."""


class KeyFileWarning(UserWarning):
    """The API key file can be read by every user of the machine."""


def check_key(key: str, source: str) -> str:
    """``key`` without surrounding whitespace, if it can travel in an HTTP header; else :class:`ApiKeyError`."""
    key = key.strip()
    if not key:
        raise ApiKeyError(f"{source} is empty: put the key in it, or leave it out to serve without a key")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ApiKeyError(f"{source} holds spaces or characters outside printable ASCII, which an "
                          "'Authorization: Bearer <key>' header cannot carry: use letters, digits and symbols "
                          "(e.g. the output of `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`)")
    return key


def api_key_from(env: Mapping[str, str] | None = None, file: str | os.PathLike | None = None) -> str | None:
    """The service's API key: the contents of ``file`` when given (``--api-key-file``), else ``env``'s
    ``GENRELENS_API_KEY`` (``env`` defaults to ``os.environ``), else None (no key).

    Surrounding whitespace (a trailing newline) is stripped. An empty or unreadable file, an empty variable or a
    key an HTTP header cannot carry raise :class:`ApiKeyError` (never a silent open service); a key file that
    every user can read gives a :class:`KeyFileWarning`.
    """
    if file is not None:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise ApiKeyError(f"cannot read the API key file {str(path)!r}: {reason}") from None
        if os.name == "posix" and mode & stat.S_IROTH:
            warnings.warn(f"the API key file {str(path)!r} can be read by every user of this machine: "
                          f"`chmod 600 {path}`", KeyFileWarning, stacklevel=2)
        return check_key(text, f"the API key file {str(path)!r}")
    value = (os.environ if env is None else env).get(ENV_VAR)
    if value is None:
        return None
    return check_key(value, f"${ENV_VAR}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name to listen on) is reachable from this machine only."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a network address


def open_service_warning(host: str, api_key: str | None) -> str | None:
    """The warning to print when serving on ``host`` without a key exposes the API to a network; else None."""
    if api_key is not None or is_loopback(host):
        return None
    return (f"serving on {host} without an API key: anyone who can reach this machine on the network can call "
            f"the API. Set ${ENV_VAR} or pass --api-key-file FILE to require 'Authorization: Bearer <key>', "
            "or serve on 127.0.0.1.")


def add_bearer_scheme(app) -> None:
    """Declare the API key in ``app``'s OpenAPI schema (a bearer scheme on every ``/v1/`` operation), so that the
    /docs page's "Authorize" button sends it. The check itself is the ``ApiKey`` middleware."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["apiKey"] = {"type": "http", "scheme": "bearer",
                             "description": "The service's API key ($GENRELENS_API_KEY or --api-key-file)."}
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
