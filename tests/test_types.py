"""genrelens.types: Movie and Prediction, and the JSON / table forms every writer uses."""

from __future__ import annotations

import math

from genrelens.types import Movie, Prediction


def test_prediction_to_dict_rounds_and_writes_only_what_is_set():
    p = Prediction(["Drama", "Crime"], {"Crime": 0.512345678, "Drama": 0.9}, 0.4444449, True, ["low_confidence"],
                   ["title ignored: this model does not read titles"])
    d = p.to_dict()
    assert d == {"genres": ["Drama", "Crime"], "scores": {"Crime": 0.5123, "Drama": 0.9}, "confidence": 0.4444,
                 "review": True, "review_reasons": ["low_confidence"],
                 "warnings": ["title ignored: this model does not read titles"]}
    assert "id" not in d and "error" not in d  # absent unless set
    assert p.to_dict(digits=None)["scores"]["Crime"] == 0.512345678
    d["genres"].append("x")
    assert p.genres == ["Drama", "Crime"]  # a copy: writers cannot change the prediction


def test_prediction_with_id_error_and_extra_fields():
    p = Prediction([], None, None, True, ["no_input"], [], id="tt1", error="no usable input", extra={"lang": "en"})
    assert not p.scored
    assert p.to_dict() == {"id": "tt1", "genres": [], "scores": None, "confidence": None, "review": True,
                           "review_reasons": ["no_input"], "warnings": [], "error": "no usable input", "lang": "en"}


def test_prediction_to_row_is_the_table_form():
    labels = ["Comedy", "Drama"]
    row = Prediction(["Drama"], {"Comedy": 0.25, "Drama": 0.75}, 0.6, False).to_row(labels)
    assert row == {"genres": "Drama", "p_Comedy": 0.25, "p_Drama": 0.75, "confidence": 0.6, "review": False,
                   "review_reasons": ""}
    unscored = Prediction([], None, None, True, ["no_input", "input_ignored"]).to_row(labels)
    assert unscored["genres"] == "" and math.isnan(unscored["p_Drama"]) and math.isnan(unscored["confidence"])
    assert unscored["review"] and unscored["review_reasons"] == "no_input|input_ignored"


def test_movie_defaults_leave_room_for_more_fields():
    m = Movie(title="Heat")
    assert (m.id, m.plot, m.poster, m.extra) == (None, None, None, {})
    assert Movie().extra is not m.extra
