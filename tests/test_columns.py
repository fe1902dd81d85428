"""genrelens.data.columns: headers matched to fields by name, case, alias or an explicit mapping."""

import pandas as pd
import pytest

from genrelens.data.columns import map_columns, parse_mapping, standardize_columns
from genrelens.errors import DataError


def test_parse_mapping_forms():
    assert parse_mapping("plot=overview, title=Name") == {"plot": "overview", "title": "Name"}
    assert parse_mapping(["plot=overview", "ID=key"]) == {"plot": "overview", "id": "key"}
    assert parse_mapping(None) == {}
    with pytest.raises(DataError, match="FIELD=COLUMN"):
        parse_mapping("plot")
    with pytest.raises(DataError, match="unknown field 'rating'"):
        parse_mapping({"rating": "x"})


def test_case_alias_and_explicit_mapping():
    cmap = map_columns(["Title", "overview", "genre", "movie_id", "extra"])
    assert cmap.sources == {"id": "movie_id", "title": "Title", "plot": "overview", "genres": "genre"}
    assert any("'overview' read as 'plot'" in n for n in cmap.notices)
    assert cmap.describe() == "id <- movie_id, title <- Title, plot <- overview, genres <- genre"
    assert map_columns(["Title", "tagline"], {"plot": "TAGLINE"}).sources["plot"] == "tagline"


def test_ambiguity_is_an_error_and_an_exact_name_wins_with_a_notice():
    with pytest.raises(DataError, match="'overview' and 'synopsis' could both be the 'plot'"):
        map_columns(["overview", "synopsis"])
    with pytest.raises(DataError, match="say which one to read with --column-map plot=overview "):  # the option
        map_columns(["overview", "synopsis"])
    cmap = map_columns(["plot", "overview"])
    assert cmap.sources["plot"] == "plot" and "not read: 'overview'" in cmap.notices[0]
    with pytest.raises(DataError, match="no column 'nope'"):
        map_columns(["a"], {"plot": "nope"})


def test_every_command_that_reads_a_table_by_its_columns_takes_column_map():
    """The ambiguous-column error names --column-map: each command that can show it has that option."""
    from typer.testing import CliRunner

    from genrelens.cli import app

    for command in (["data", "validate"], ["data", "stats"], ["train"], ["evaluate"], ["adapt"], ["predict"],
                    ["benchmark"], ["calibrate"]):
        r = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*command, "--help"])
        assert r.exit_code == 0 and "--column-map" in r.output, command


def test_standardize_renames_and_keeps_a_displaced_field_column():
    raw = pd.DataFrame({"plot": ["short"], "synopsis": ["long"], "Name": ["T"]})
    df, cmap = standardize_columns(raw, {"plot": "synopsis"})
    assert list(df.columns) == ["plot_original", "plot", "title"]
    assert df["plot"].tolist() == ["long"] and cmap.sources["title"] == "Name"
