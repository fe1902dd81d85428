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
    cmap = map_columns(["plot", "overview"])
    assert cmap.sources["plot"] == "plot" and "not read: 'overview'" in cmap.notices[0]
    with pytest.raises(DataError, match="no column 'nope'"):
        map_columns(["a"], {"plot": "nope"})


def test_standardize_renames_and_keeps_a_displaced_field_column():
    raw = pd.DataFrame({"plot": ["short"], "synopsis": ["long"], "Name": ["T"]})
    df, cmap = standardize_columns(raw, {"plot": "synopsis"})
    assert list(df.columns) == ["plot_original", "plot", "title"]
    assert df["plot"].tolist() == ["long"] and cmap.sources["title"] == "Name"
