"""genrelens.serve.examples: the page's example movies: real, with a readable poster, from the test split."""

import json

from genrelens.serve.examples import load_examples


def test_examples_come_from_the_test_split_with_posters(tiny_naive_dir, subset_csv):
    test_ids = set(json.loads((tiny_naive_dir / "split.json").read_text())["test"])
    ex = load_examples(tiny_naive_dir, str(subset_csv), n=4, seed=1)
    assert len(ex) == 4 and len({e.id for e in ex}) == 4
    assert all(e.id in test_ids and e.plot and e.poster_path.is_file() for e in ex)
    assert all(e.poster_path.resolve().is_relative_to(subset_csv.parent.resolve()) for e in ex)
    assert [e.id for e in load_examples(tiny_naive_dir, str(subset_csv), n=4, seed=1)] == [e.id for e in ex]
    first_genres = [e.genres[0] for e in ex]
    assert len(set(first_genres)) == len(first_genres)  # one movie per leading genre first
    public = ex[0].public("/v1/examples/x/poster")
    assert public["poster"] == "/v1/examples/x/poster" and set(public) == {"id", "title", "year", "plot", "genres",
                                                                          "poster"}


def test_no_data_means_no_examples(tmp_path):
    assert load_examples(tmp_path, str(tmp_path / "none.csv")) == []
