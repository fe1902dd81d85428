"""Faithfulness of the explanations on 100 test movies of a model (plot of >= 15 words and a poster): mean
drop of the top genre's probability when its 5 most supporting words / the top 20% of the poster are
removed, against 5 random words / a random 20% (see docs/trust.md).

    python benchmarks/faithfulness.py [MODEL_DIR]
"""

from __future__ import annotations

import json
import sys
import time

from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.explain import faithfulness
from genrelens.predict import GenreClassifier


def main() -> None:
    clf = GenreClassifier.load(sys.argv[1] if len(sys.argv) > 1 else None)
    df, _ = load_table(clf.config.data, skip_bad=True)
    df = select(df, clf.bundle.artifact("split")["test"])
    n_words = df["plot"].str.split().str.len()
    df = df[(n_words >= 15) & df["poster"].notna()].sample(100, random_state=0)
    t = time.perf_counter()
    r = faithfulness(clf, clf.texts(list(df["plot"]), list(df["title"]), len(df)), list(df["poster"]))
    r.pop("per_movie")
    print(json.dumps(r, indent=1))
    print(f"seconds {time.perf_counter() - t:.1f}")


if __name__ == "__main__":
    main()
