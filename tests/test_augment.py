"""genrelens.data.augment: long texts built from real plots, labels kept exact."""

import numpy as np

from genrelens.data.augment import append_shared_genre, same_genres_concat

PLOTS = ["a", "b", "c", "d", "", "e"]
Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 1]])


def test_same_genres_concat_joins_plots_of_identical_genre_sets():
    texts, source = same_genres_concat(PLOTS, Y, fraction=1.0, seed=0)
    # rows 0-3 have a partner with the same genres; row 4 has no plot, row 5 no partner
    assert sorted(source.tolist()) == [0, 1, 2, 3]
    for text, i in zip(texts, source):
        first, second = text.split(" ")
        j = PLOTS.index(second)
        assert first == PLOTS[i] and j != i and (Y[j] == Y[i]).all()
    assert same_genres_concat(PLOTS, Y, fraction=1.0, seed=0)[0] == texts
    assert len(same_genres_concat(PLOTS, Y, fraction=0.0)[0]) == 0


def test_append_shared_genre_donors_share_a_genre_and_never_self():
    texts, donors = append_shared_genre(PLOTS, Y, PLOTS, Y, seed=1, n_donors=2, exclude_self=True)
    assert donors.shape == (6, 2) and len(texts) == 6
    assert texts[4] == "" and (donors[4] == -1).all()  # no plot: unchanged
    for i, row in enumerate(donors):
        for d in row[row >= 0]:
            assert d != i and (Y[d] & Y[i]).any() and PLOTS[d] != ""
        if (row >= 0).any():
            assert texts[i].startswith(PLOTS[i]) and len(texts[i].split()) == 1 + len(row[row >= 0])
