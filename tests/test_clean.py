"""genrelens.data.clean: surrogate clean-up and the model text rule (title + plot)."""

import pytest

from genrelens.data.clean import clean_text, movie_text


def test_clean_text_replaces_lone_surrogates_only():
    assert clean_text("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    assert clean_text("Amélie 😀") == "Amélie 😀"
    clean_text("x\ud800").encode("utf-8")  # encodable once cleaned


@pytest.mark.parametrize(("title", "plot", "text"), [
    ("Alien", "A crew meets a creature.", "Alien. A crew meets a creature."),
    ("Airplane!", "A pilot panics.", "Airplane! A pilot panics."),
    ("What?", "x", "What? x"),
    ("Dr. No.", "y", "Dr. No. y"),
    ("  Heat  ", "  A heist. ", "Heat. A heist."),
    ("Heat", "", "Heat"),
    ("", "A plot.", "A plot."),
    (None, None, ""),
    ("  ", float("nan"), ""),
])
def test_movie_text_rules(title, plot, text):
    assert movie_text(title, plot) == text
