"""genrelens.serve.inputs: request checks turn bad input into the API's error codes, never into a crash."""

import base64
import io

import pytest
from PIL import Image

from genrelens.serve.inputs import (
    ApiError,
    Limits,
    batch_item_id,
    check_batch_item,
    check_plot,
    decode_base64,
    describe_errors,
    prepare_movie,
)

LIMITS = Limits(max_poster_bytes=50_000, max_plot_chars=100)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 12), "red").save(buf, format="PNG")
    return buf.getvalue()


def _code(fn, *args, **kw):
    with pytest.raises(ApiError) as e:
        fn(*args, **kw)
    return e.value.status, e.value.code


def test_plots_are_stripped_and_limited():
    assert check_plot("  a heist \n", LIMITS) == "a heist"
    assert check_plot("   ", LIMITS) is None
    assert _code(check_plot, "x" * 101, LIMITS) == (413, "plot_too_long")


def test_base64_posters_and_data_urls():
    png = _png()
    b64 = base64.b64encode(png).decode()
    assert decode_base64(b64, LIMITS) == png
    assert decode_base64(f"data:image/png;base64,{b64[:20]}\n{b64[20:]}", LIMITS) == png
    assert decode_base64(" ", LIMITS) is None
    assert _code(decode_base64, "not base64!", LIMITS) == (422, "invalid_base64")
    assert _code(decode_base64, "A" * 80_000, LIMITS) == (413, "poster_too_large")


def test_prepare_movie_for_what_the_model_reads():
    png = _png()
    m = prepare_movie("A plot.", png, LIMITS, uses_text=True, uses_poster=True, title=" Heat ", reads_titles=True,
                      movie_id=7)
    assert (m.movie.id, m.movie.title, m.movie.plot, m.movie.poster.size) == (7, "Heat", "A plot.", (8, 12))
    assert _code(prepare_movie, None, None, LIMITS, True, True) == (422, "no_input")
    assert _code(prepare_movie, "A plot.", None, LIMITS, False, True) == (422, "no_usable_input")
    odd = prepare_movie("bad \ud800 char", None, LIMITS, uses_text=True, uses_poster=False)
    assert odd.movie.plot == "bad \ufffd char" and "U+FFFD" in odd.warnings[0]


def test_an_unreadable_poster_goes_on_to_the_pipeline():
    """An unreadable poster is not a bad request (it used to be a 415): the movie goes on with the poster as its
    ``PosterError``, which ``predict_movies`` ignores with a warning, as for a table row or ``predict --poster``."""
    from genrelens.errors import PosterError

    for plot in ("A plot.", None):
        m = prepare_movie(plot, b"not an image", LIMITS, uses_text=True, uses_poster=True)
        assert isinstance(m.movie.poster, PosterError) and "not an image" in str(m.movie.poster)
    url = "https://image.tmdb.org/t/p/w185/abc.jpg"
    unread = decode_base64(url, LIMITS)
    assert isinstance(unread, PosterError)
    assert f"poster is a URL ({url!r}), which genrelens does not fetch" in str(unread)
    assert prepare_movie("A plot.", unread, LIMITS, True, True).movie.poster is unread
    assert _code(prepare_movie, None, unread, LIMITS, True, False) == (422, "no_usable_input")  # reads plots only


def test_batch_items():
    assert batch_item_id({"id": "a"}) == "a" and batch_item_id({"id": True}) is None and batch_item_id(3) is None
    assert check_batch_item({"id": 1, "plot": "p", "title": "t"}, LIMITS, "movies[0]") == ("p", None, "t")
    with pytest.raises(ApiError, match=r"movies\[1\]: rating: Extra inputs are not permitted"):
        check_batch_item({"plot": "p", "rating": 5}, LIMITS, "movies[1]")
    errors = [{"loc": ("body", "movies", i, "plot"), "msg": "bad"} for i in range(7)]
    assert describe_errors(errors).endswith("(and 2 more)") and describe_errors(errors).startswith("movies.0.plot: bad")


def test_no_input_names_the_title_where_the_model_reads_titles():
    """An empty movie is refused naming what would do: a title too, for a model that reads titles."""
    for reads_titles, says_title in [(True, True), (False, False)]:
        with pytest.raises(ApiError) as e:
            prepare_movie("   ", None, LIMITS, uses_text=True, uses_poster=True, reads_titles=reads_titles)
        assert e.value.code == "no_input" and ("or a title" in e.value.detail) is says_title, e.value.detail
