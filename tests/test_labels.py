"""genrelens.data.labels: genre names normalized, split from any cell convention, encoded and checked."""

import numpy as np
import pytest

from genrelens.data.labels import LabelSet, check_label_spec, check_labels, label_counts, normalize_genre, split_genres
from genrelens.errors import DataError


@pytest.mark.parametrize(("raw", "name"), [("  science   FICTION ", "Sci-Fi"), ("drama", "Drama"),
                                           ("film-noir", "Film-Noir"), ("tv_movie", "TV Movie"), ("  ", "")])
def test_normalize_genre(raw, name):
    assert normalize_genre(raw) == name


@pytest.mark.parametrize("cell", ["Action|Sci-Fi", "action, science fiction", "Action; Sci-Fi|action",
                                  "Action/Sci-Fi", '["Action", "Sci-Fi"]', '[{"id": 1, "name": "Action"}, '
                                  '{"name": "Science Fiction"}]', ["Action", None, "sci-fi"], "['Action', 'Sci-Fi']"])
def test_split_genres_conventions(cell):
    assert split_genres(cell) == ["Action", "Sci-Fi"]


def test_split_genres_empty():
    assert split_genres(None) == split_genres(float("nan")) == split_genres("") == []


def test_label_set_encode_decode_top_k():
    lists = [["Drama"], ["Drama", "Comedy"], ["comedy", "Horror"], ["Drama"]]
    ls = LabelSet.top_k(lists, k=2)
    assert ls.labels == ["Drama", "Comedy"] and len(ls) == 2
    y = ls.encode(lists)
    assert y.dtype == np.float32 and y.tolist() == [[1, 0], [1, 1], [0, 1], [1, 0]]
    assert ls.decode(y) == [["Drama"], ["Drama", "Comedy"], ["Comedy"], ["Drama"]]
    assert label_counts(lists)["Drama"] == 3
    with pytest.raises(ValueError, match="at least one label"):
        LabelSet([" "])


def test_label_checks_name_the_problem():
    assert check_label_spec(["drama", "Comedy"]) == ["Drama", "Comedy"]
    with pytest.raises(ValueError, match="repeats"):
        check_label_spec(["Sci-Fi", "science fiction"])
    with pytest.raises(ValueError, match="empty label name"):
        check_label_spec(["Drama", ""])
    with pytest.raises(DataError, match="did you mean 'Comedy'"):
        check_labels(["Comedi"], [["Comedy"], ["Drama"]])
    check_labels(["comedy"], [["Comedy"]])
