"""A second model beside a first (e.g. a frozen all-mpnet-base-v2 text model beside the default): late fusion
of their raw (uncalibrated) probabilities on the movies with a plot, the weight chosen on validation
(cross-fitted, as the lexical channel's), thresholds tuned on validation; prints validation and test weighted F1.
Both folders must share a split.

    python benchmarks/late_fusion.py FIRST_MODEL_DIR SECOND_MODEL_DIR
"""

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

base, other = (GenreClassifier.load(d, cache=True, precision="fp32") for d in sys.argv[1:3])
split = base.bundle.artifact("split")
df, _ = load_table(base.config.data, skip_bad=True)
P, Y, H = {}, {}, {}
for s in ("val", "test"):
    part = select(df, split[s]); y = LabelSet(base.labels).encode(part["genres"]); keep = y.sum(1) > 0
    part = part[keep].reset_index(drop=True); Y[s] = y[keep]
    root = Path(df.attrs["root"])
    args = (list(part["plot"]), list(part["poster"]))
    P[s] = [base.score(*args, root=root, calibrated=False, titles=list(part["title"]))[0],
            other.score(*args, root=root, calibrated=False, titles=list(part["title"]))[0]]
    H[s] = np.array([isinstance(p, str) and bool(p.strip()) for p in part["plot"]])
w, scores = choose_weight(Y["val"], P["val"][0], P["val"][1], H["val"])
print("weight", w, {k: round(v, 4) for k, v in scores.items()})
for name, f in (("first alone", lambda s: P[s][0]), ("second alone", lambda s: P[s][1]),
                (f"fused w={w}", lambda s: fuse(P[s][0], P[s][1], H[s], w))):
    thr = tune_thresholds(Y["val"], f("val"))
    print(name, "val", round(evaluate(Y["val"], decide(f("val"), thr), base.labels)["weighted_f1"], 4),
          "test", round(evaluate(Y["test"], decide(f("test"), thr), base.labels)["weighted_f1"], 4))
