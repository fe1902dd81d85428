"""Text clean-up shared by the table reader and the inference paths (no pandas: cheap to import)."""

from __future__ import annotations

import re

_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (a JSON ``"\\ud800"`` escape, undecodable bytes in a command line)
    replaced by U+FFFD: they cannot be encoded as UTF-8, and the tokenizer fails on them."""
    return _SURROGATES.sub("\ufffd", text)
