"""Plain value names in ``--help``: typer writes every option's Python type (``<bool>`` on flags, ``<str>``,
``<int range>``...); genrelens shows none on flags and click's upper-case names on values (TEXT, PATH, INTEGER,
FLOAT; a choice lists its values). Applied once, when ``genrelens.cli`` is imported."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "int range": "INTEGER", "float range": "FLOAT"}


def value_name(param: TyperOption | TyperArgument, ctx: Any) -> str | None:
    """What ``--help`` shows after ``param``'s name: its metavar if given; nothing for a flag; else a plain name."""
    if param.metavar is not None:
        return param.metavar
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    label = param.display_type(ctx).strip("<>")  # typer's own label, e.g. "<str>", "<none|study>"
    if label == "bool":
        return None
    if not param.type_descriptor.is_choice:
        label = NAMES.get(label, label.upper())
    return label + ("..." if param.nargs != 1 else "")


def use_plain_value_names() -> None:
    """Make typer's help (rich and plain) use :func:`value_name`."""
    TyperOption.display_type_rich = value_name  # type: ignore[method-assign,assignment]
    TyperArgument.display_type_rich = value_name  # type: ignore[method-assign,assignment]
