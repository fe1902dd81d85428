"""genrelens.predict: GenreClassifier's pipeline (Movie in, Prediction out) and its array API, on the tiny naive
model (it reads nothing: every movie gets the most frequent training labels)."""

import numpy as np
import pytest

from genrelens.errors import InputError, InputWarning, ModelError
from genrelens.predict import GenreClassifier, report_problems
from genrelens.types import Movie


@pytest.fixture(scope="module")
def clf(tiny_naive_dir) -> GenreClassifier:
    return GenreClassifier.load(tiny_naive_dir)


def test_predict_movies_answers_one_prediction_per_movie(clf):
    preds = clf.predict_movies([Movie(id="a", plot="A heist."), Movie(id=2, title="Heat"), Movie()])
    assert [p.id for p in preds] == ["a", 2, None] and all(p.scored for p in preds)
    p = preds[0]
    assert p.genres and set(p.scores) == set(clf.labels) and 0 <= p.confidence <= 1
    ranked = sorted(p.genres, key=lambda g: -p.scores[g])
    assert p.genres == ranked  # most probable first
    assert "title ignored: this model does not read titles" in preds[1].warnings
    assert preds[0].genres == preds[2].genres  # the naive model answers label frequencies whatever it is given


def test_array_api_agrees_with_the_pipeline(clf):
    proba = clf.predict_proba(plots=["a", None], posters=None)
    assert proba.shape == (2, len(clf.labels)) and proba.dtype == np.float32
    genres = clf.predict(plots=["a", None])
    assert genres[0] == [g for g in clf.labels if g in clf.predict_movies([Movie(plot="a")])[0].genres]
    assert (clf.decide(proba)[0] == np.isin(clf.labels, genres[0])).all()
    assert clf.confidence(proba).shape == (2,) and clf.review(proba).shape == (2,)


def test_wrong_argument_shapes_are_refused(clf):
    with pytest.raises(TypeError, match=r"plots=\['one plot'\]"):
        clf.predict(plots="one plot")
    with pytest.raises(ValueError, match="2 plots but 1 posters"):
        clf.predict(plots=["a", "b"], posters=[None])
    with pytest.raises(ValueError, match="give plots, posters or both"):
        clf.predict()
    with pytest.raises(ValueError, match="problems must be"):
        clf.predict(plots=["a"], problems="loud")


def test_report_problems_warns_or_raises():
    with pytest.warns(InputWarning, match=r"1 of 3 movie\(s\).*movies\[2\]: poster not found"):
        report_problems({2: "poster not found"}, 3)
    with pytest.raises(InputError, match=r"and 2 more"):
        report_problems({i: "x" for i in range(7)}, 7, action="raise")


def test_a_missing_model_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        GenreClassifier.load(tmp_path / "none")
