"""Review queue on the test split of a calibrated model folder: how many movies each review band flags, how
many of the wrong label sets it catches (against random flagging of the same share and the best possible),
the error rate inside and outside the queue, and how well ``confidence`` matches the share of right sets.

    python benchmarks/review_queue.py MODEL_DIR [--bands 0.02,0.05,0.1]

MODEL_DIR must hold calibration.json (``genrelens calibrate --model-dir MODEL_DIR`` on a copy otherwise).
"""

from __future__ import annotations

import argparse

import numpy as np

from genrelens.models.calibration import confidence, review_report
from genrelens.models.thresholds import decide
from genrelens.predict import GenreClassifier
from genrelens.trust import split_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--bands", default="0.02,0.05,0.1,0.15")
    args = ap.parse_args()
    clf = GenreClassifier.load(args.model_dir, cache=True)
    if not clf.calibrated:
        raise SystemExit(f"{args.model_dir} is uncalibrated: run `genrelens calibrate --model-dir` on a copy first")
    y, raw, _ = split_scores(clf, None, splits=("test",))["test"]
    p = clf.calibrator.transform(raw)
    pred = decide(p, clf.thresholds)
    wrong = (y != pred).any(1)
    conf = confidence(p, pred)
    print(f"{clf.name} at {clf.model_dir}: {len(y)} test movies, {wrong.mean():.1%} of label sets wrong somewhere")
    for band in (float(b) for b in args.bands.split(",")):
        r = review_report(y, p, pred, clf.thresholds, band=band)
        s = r["share_flagged"]
        outside = r["error_rate_not_flagged"]
        print(f"band {band}: flagged {s:.1%}, wrong sets caught {r['share_of_wrong_caught']:.1%} (random "
              f"{s:.1%}, best possible {min(1.0, s / max(wrong.mean(), 1e-9)):.1%}); error rate flagged "
              f"{r['error_rate_flagged']:.1%}, not flagged {'-' if outside is None else f'{outside:.1%}'}")
    order = np.argsort(conf, kind="stable")
    groups = np.array_split(order, 5)
    print("confidence quintiles, mean confidence -> share of right sets: " + ", ".join(
        f"{conf[g].mean():.3f} -> {1 - wrong[g].mean():.3f}" for g in groups))
    r = review_report(y, p, pred, clf.thresholds)
    print(f"mean confidence {r['mean_confidence']:.3f}, exact-match rate {r['exact_match']:.3f}, "
          f"confidence AUROC (right vs wrong sets) {r['confidence_auroc']:.3f}")


if __name__ == "__main__":
    main()
