"""Text clean-up shared by the table reader and the inference paths (no pandas: cheap to import)."""

from __future__ import annotations

import re

_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (a JSON ``"\\ud800"`` escape, undecodable bytes in a command line)
    replaced by U+FFFD: they cannot be encoded as UTF-8, and the tokenizer fails on them."""
    return _SURROGATES.sub("\ufffd", text)


def movie_text(title: str | None, plot: str | None) -> str:
    """What a model that reads titles reads: ``"<title>. <plot>"`` (no extra full stop after a title that
    ends in . ! or ?), the title alone without a plot, the plot alone without a title; "" for neither."""
    title = title.strip() if isinstance(title, str) else ""
    plot = plot.strip() if isinstance(plot, str) else ""
    if not title or not plot:
        return title or plot
    return f"{title} {plot}" if title[-1] in ".!?" else f"{title}. {plot}"
