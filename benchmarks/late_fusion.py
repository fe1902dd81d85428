"""A second model beside a first (e.g. a frozen all-mpnet-base-v2 text model beside the default): late fusion
of their raw (uncalibrated) probabilities on the movies with a plot, the weight chosen on validation
(cross-fitted, as the lexical channel's), thresholds tuned on validation; prints validation and test weighted F1.
Both folders must share a split.

    python benchmarks/late_fusion.py FIRST_MODEL_DIR SECOND_MODEL_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from genrelens.data.labels import LabelSet
from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.metrics import evaluate
from genrelens.models.lexical import choose_weight, fuse
from genrelens.models.thresholds import decide, tune_thresholds
from genrelens.predict import GenreClassifier


def main() -> None:
    first, second = (GenreClassifier.load(d, cache=True, precision="fp32") for d in sys.argv[1:3])
    split = first.bundle.artifact("split")
    df, _ = load_table(first.config.data, skip_bad=True)
    root = Path(df.attrs["root"])
    proba, y, has_plot = {}, {}, {}
    for s in ("val", "test"):
        part = select(df, split[s])
        ys = LabelSet(first.labels).encode(part["genres"])
        keep = ys.sum(1) > 0
        part, y[s] = part[keep].reset_index(drop=True), ys[keep]
        movies = dict(plots=list(part["plot"]), posters=list(part["poster"]), titles=list(part["title"]))
        proba[s] = [clf.score(**movies, root=root, calibrated=False)[0] for clf in (first, second)]
        has_plot[s] = np.array([isinstance(p, str) and bool(p.strip()) for p in part["plot"]])
    w, scores = choose_weight(y["val"], proba["val"][0], proba["val"][1], has_plot["val"])
    print("weight", w, "cross-fitted validation F1 by weight", {k: round(v, 4) for k, v in scores.items()})
    for name, get in (("first alone", lambda s: proba[s][0]), ("second alone", lambda s: proba[s][1]),
                      (f"fused w={w}", lambda s: fuse(proba[s][0], proba[s][1], has_plot[s], w))):
        thr = tune_thresholds(y["val"], get("val"))
        f1 = {s: evaluate(y[s], decide(get(s), thr), first.labels)["weighted_f1"] for s in ("val", "test")}
        print(f"{name:<14} validation weighted F1 {f1['val']:.4f}  test {f1['test']:.4f}")


if __name__ == "__main__":
    main()
