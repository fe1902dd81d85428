"""Match a table's headers to the fields genrelens reads (``id``, ``title``, ``plot``, ``poster``, ``genres``, ...).

Headers match case-insensitively (``Title`` -> ``title``); common other names are accepted as aliases
(``overview`` -> ``plot``) with a one-line notice; an explicit mapping (``{"plot": "my_col"}``) wins over both.
Two columns that could both feed one field are an error naming them (never a silent pick), except that a
column named exactly as the field wins, with a notice naming the columns not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from genrelens.errors import DataError

FIELDS = ("id", "title", "year", "language", "plot", "genres", "poster")
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("movie_id", "movieid", "imdb_id", "tmdb_id"),
    "title": ("name", "movie_title", "original_title"),
    "plot": ("overview", "description", "synopsis", "summary", "plot_summary", "storyline"),
    "poster": ("poster_path", "poster_file", "image", "image_path", "poster_url", "image_url"),
    "genres": ("genre", "labels", "categories"),
    "year": ("release_year",),
    "language": ("original_language", "lang"),
}


def _key(name: object) -> str:
    return " ".join(str(name).replace("_", " ").replace("-", " ").split()).lower()


@dataclass
class ColumnMap:
    """Which source column feeds each field, and what the user should be told about it."""

    sources: dict[str, str] = field(default_factory=dict)  # field -> source column
    notices: list[str] = field(default_factory=list)

    @property
    def rename(self) -> dict[str, str]:
        """``{source column: field}`` for the columns not already named as their field."""
        return {src: f for f, src in self.sources.items() if src != f}

    def describe(self) -> str:
        """``plot <- overview, title <- Title, ...`` (fields in contract order)."""
        return ", ".join(f"{f} <- {self.sources[f]}" if self.sources[f] != f else f
                         for f in FIELDS if f in self.sources)


def parse_mapping(items: Iterable[str] | Mapping[str, str] | str | None) -> dict[str, str]:
    """``["plot=overview", "title=Name"]`` or ``"plot=overview,title=Name"`` (as a CLI option gives it) or a
    dict -> ``{field: source column}``. Raises DataError for an unknown field or a malformed item."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        parts = items.split(",") if isinstance(items, str) else [p for it in items for p in str(it).split(",")]
        pairs = []
        for p in (p.strip() for p in parts):
            if not p:
                continue
            if "=" not in p:
                raise DataError(f"column mapping {p!r}: write FIELD=COLUMN, e.g. plot=overview")
            f, src = p.split("=", 1)
            pairs.append((f.strip(), src.strip()))
    out = {}
    for f, src in pairs:
        f = str(f).strip().lower()
        if f not in FIELDS:
            raise DataError(f"column mapping {f}={src}: unknown field {f!r}; fields: {', '.join(FIELDS)}")
        out[f] = str(src)
    return out


def one_column_hint(names: list[str]) -> str:
    """When the header was read as one column holding a separator, name it."""
    if len(names) == 1:
        for sep, shown in ((";", "';'"), ("\t", "a tab"), ("|", "'|'"), (",", "','")):
            if sep in names[0]:
                return (f"; the header was read as one column {names[0][:60]!r}: the file looks separated by "
                        f"{shown} (pass sep={sep!r}, --sep)")
    return ""


def map_columns(names: Iterable[object], columns: Mapping[str, str] | Iterable[str] | str | None = None
                ) -> ColumnMap:
    """Decide which header feeds each field (see the module docstring). Raises DataError when a mapped column is
    not in the table or when two columns could feed one field."""
    names = [str(n) for n in names]
    explicit = parse_mapping(columns)
    result = ColumnMap()
    taken: set[str] = set()
    for f, src in explicit.items():
        if src not in names:
            match = [n for n in names if n.lower() == src.lower()]
            if len(match) != 1:
                raise DataError(f"column mapping {f}={src}: no column {src!r} in the table "
                                f"(its columns: {', '.join(names)})" + one_column_hint(names))
            src = match[0]
        result.sources[f] = src
        taken.add(src)
    for f in FIELDS:
        if f in result.sources:
            continue
        free = [n for n in names if n not in taken]
        exact = [n for n in free if n == f]
        same = [n for n in free if _key(n) == f and n != f]
        alias = [n for n in free if _key(n) in {_key(a) for a in ALIASES.get(f, ())}]
        if exact:
            pick = exact[0]
            unread = same + alias
            if unread:
                result.notices.append(f"{f}: read from column {pick!r}; not read: {', '.join(map(repr, unread))} "
                                      f"(map one explicitly to use it instead)")
        elif len(same) > 1 or (not same and len(alias) > 1):
            both = same if len(same) > 1 else alias
            raise DataError(f"columns {' and '.join(map(repr, both))} could both be the {f!r} column: say which "
                            f"one to read with --column-map {f}={both[0]} (Python: columns={{{f!r}: {both[0]!r}}}), "
                            "or rename the other")
        elif same:
            pick = same[0]
            if alias:
                result.notices.append(f"{f}: read from column {pick!r}; not read: {', '.join(map(repr, alias))}")
        elif alias:
            pick = alias[0]
            result.notices.append(f"column {pick!r} read as {f!r}")
        else:
            continue
        result.sources[f] = pick
        taken.add(pick)
    return result


def standardize_columns(raw, columns: Mapping[str, str] | Iterable[str] | str | None = None):
    """``(raw with its columns renamed to fields, ColumnMap)``; columns that feed no field keep their names.
    A column already named as a field that another column now feeds is renamed ``<name>_original``."""
    cmap = map_columns(raw.columns, columns)
    rename = dict(cmap.rename)
    for f, src in cmap.sources.items():  # a column named "plot" that is not read as the plot must not clash
        if src != f and f in raw.columns and f not in cmap.sources.values():
            rename[f] = f"{f}_original"
    return (raw.rename(columns=rename) if rename else raw), cmap
