"""Review queue on the test split of a calibrated model folder: the review flag (confidence below the cut-off
chosen on validation and saved in calibration.json), other confidence cut-offs and the older band rule; for
each, the share of movies flagged, the share of wrong label sets caught, what random flagging of the same
share catches (that share), the best possible queue of that size (share / share of wrong sets), the error
rate inside (precision) and outside the queue, and how well ``confidence`` matches the share of right sets.

    python benchmarks/review_queue.py MODEL_DIR [--shares 0.1,0.2,0.5] [--bands 0.02,0.05,0.1]

MODEL_DIR must hold calibration.json (``genrelens calibrate --model-dir MODEL_DIR`` on a copy otherwise; that
also saves the review cut-off of a model calibrated before it existed).
"""

from __future__ import annotations

import argparse

import numpy as np

from genrelens.models.calibration import confidence, review_report
from genrelens.models.thresholds import decide
from genrelens.predict import GenreClassifier
from genrelens.trust import split_scores


def line(name: str, r: dict) -> str:
    s, caught, best = r["share_flagged"], r["share_of_wrong_caught"], r["best_possible_catch"]
    outside = r["error_rate_not_flagged"]
    closed = (caught - s) / (best - s) if best > s else float("nan")
    return (f"{name}: flagged {s:.1%}, wrong sets caught {caught:.1%} (random {s:.1%}, best possible {best:.1%}; "
            f"{closed:.0%} of the gap closed); error rate flagged {r['error_rate_flagged']:.1%}, not flagged "
            f"{'-' if outside is None else f'{outside:.1%}'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--shares", default="0.1,0.2,0.5", help="also: cut-offs flagging these shares of test movies")
    ap.add_argument("--bands", default="0.02,0.05,0.1", help="the older band rule at these bands")
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
    cut = clf.calibrator.min_confidence
    if cut is None:
        print("no saved review cut-off (calibrated before it existed): run `genrelens calibrate` on a copy")
    else:
        info = clf.calibrator.review
        print(f"saved cut-off {cut:.4f} (validation: flagged {info['share_flagged']:.1%}, caught "
              f"{info['share_of_wrong_caught']:.1%}, at most {info['max_share']:.0%} allowed)")
        print(line(f"review flag, confidence < {cut:.4f}", review_report(y, p, pred, clf.thresholds,
                                                                         min_confidence=cut)))
    for share in (float(s) for s in args.shares.split(",")):
        c = float(np.quantile(conf, share))
        print(line(f"confidence < {c:.4f} (test quantile {share})", review_report(y, p, pred, clf.thresholds,
                                                                                  min_confidence=c)))
    for band in (float(b) for b in args.bands.split(",")):
        print(line(f"band rule {band}", review_report(y, p, pred, clf.thresholds, band=band)))
    order = np.argsort(conf, kind="stable")
    groups = np.array_split(order, 5)
    print("confidence quintiles, mean confidence -> share of right sets: " + ", ".join(
        f"{conf[g].mean():.3f} -> {1 - wrong[g].mean():.3f}" for g in groups))
    r = review_report(y, p, pred, clf.thresholds)
    print(f"mean confidence {r['mean_confidence']:.3f}, exact-match rate {r['exact_match']:.3f}, "
          f"confidence AUROC (right vs wrong sets) {r['confidence_auroc']:.3f}")


if __name__ == "__main__":
    main()
