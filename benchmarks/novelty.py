"""Input-quality review reasons of a model folder, measured: the share of its test movies flagged
``out_of_distribution`` (and ``short_text``, ``language``; test movies with none of its genres apart), the share
of non-movie texts (tests/data/non_movie_texts.tsv: documentation, software descriptions, licences, recipes,
products, news) flagged, the AUROC of the novelty score between the two, the share of short real plots flagged
(the test plots cut to their first sentence) and the issue's three examples.

    python benchmarks/novelty.py MODEL_DIR [--fit] [--rate 0.05] [--max-reference 5000] [--json OUT]

``--fit`` (or a folder without novelty.json) fits the novelty score first and saves it INTO MODEL_DIR: use a
copy of a model you do not want changed.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from genrelens.data.labels import LabelSet
from genrelens.data.split import select
from genrelens.data.table import load_table
from genrelens.models.novelty import REASONS, detect_languages, review_reasons, word_count
from genrelens.predict import GenreClassifier
from genrelens.trust import fit_novelty

TEXTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "non_movie_texts.tsv"
EXAMPLES = {
    "one-word plot": "love",
    "cake recipe": ("Preheat the oven to 180 degrees. Whisk 200 g of flour, 150 g of sugar, 3 eggs and 100 g of "
                    "melted butter until smooth, pour into a greased tin and bake for 30 minutes."),
    "Chinese plot": "一个年轻女子在上海寻找失散多年的父亲，却卷入了一场危险的阴谋，警察和黑帮都在追捕她。",
}


def shares(reasons: list[list[str]]) -> dict[str, float]:
    n = max(len(reasons), 1)
    out = {r: round(sum(r in x for x in reasons) / n, 4) for r in REASONS}
    out["any"] = round(sum(bool(x) for x in reasons) / n, 4)
    return out


def short_plots(clf: GenreClassifier, plots: list[str], titles: list) -> dict:
    """Share of the test plots flagged ``out_of_distribution`` (text alone, no poster) by plot length: whole, and
    cut to their first sentence (what users type), with and without titles."""
    first = [re.split(r"(?<=[.!?])\s", p.strip())[0] for p in plots]
    bins = {"5-14 words": (5, 15), "15-29 words": (15, 30), "30+ words": (30, 10**6)}
    out = {}
    for name, texts, given in (("whole, titles", plots, titles), ("first sentence, titles", first, titles),
                               ("first sentence, no titles", first, None)):
        feats, _ = clf.features(texts, [None] * len(texts), titles=given)
        flagged = clf.bundle.novelty.flags(feats)
        words = np.array([word_count(t) for t in texts])
        out[name] = {"n": len(texts), "all": round(float(flagged.mean()), 4),
                     **{b: round(float(flagged[(words >= lo) & (words < hi)].mean()), 4)
                        for b, (lo, hi) in bins.items() if ((words >= lo) & (words < hi)).any()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--fit", action="store_true", help="fit the novelty score into MODEL_DIR first")
    ap.add_argument("--rate", type=float, default=None, help="false-flag rate on validation when fitting")
    ap.add_argument("--max-reference", type=int, default=None, help="training movies kept per modality")
    ap.add_argument("--texts", default=str(TEXTS))
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    clf = GenreClassifier.load(args.model_dir, cache=True, precision="fp32")
    if args.fit or clf.bundle.novelty is None:
        t = time.perf_counter()
        fit_novelty(clf, false_flag_rate=args.rate, max_reference=args.max_reference, progress=True)
        print(f"fitted the novelty score in {time.perf_counter() - t:.0f} s")
    nov = clf.bundle.novelty
    print(f"novelty: modalities {sorted(nov.references)}, k {nov.k}, cut-off {nov.cutoff:.3f} at a validation "
          f"false-flag rate of {nov.false_flag_rate:.0%} (validation flagged {nov.report.get('val_flagged')}), "
          f"training languages {nov.languages}, short_text below {nov.min_words} words")

    df, _ = load_table(clf.config.data, skip_bad=True)
    part = select(df, clf.bundle.artifact("split")["test"]).reset_index(drop=True)
    labelled = LabelSet(clf.labels).encode(part["genres"]).sum(1) > 0  # the test split as training keeps it
    plots = [p if isinstance(p, str) else None for p in part["plot"]]
    feats, _ = clf.features(plots, list(part["poster"]), root=Path(df.attrs["root"]), titles=list(part["title"]),
                            progress=True)
    movie_score = nov.score(feats)
    t = time.perf_counter()
    detect_languages(["warm up"])  # loads the language model once (a one-off cost per process)
    load_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    movie_reasons = review_reasons(nov, plots, feats)
    reasons_ms = (time.perf_counter() - t) * 1000 / max(len(plots), 1)
    has_plot = np.array([bool(p and p.strip()) for p in plots])
    has_poster = feats["poster_mask"].numpy() if "poster_mask" in feats else np.zeros(len(plots), bool)
    groups = {"all": labelled, "plot+poster": labelled & has_plot & has_poster,
              "plot only": labelled & has_plot & ~has_poster, "poster only": labelled & ~has_plot & has_poster,
              "none of the model's genres": ~labelled}
    test = {name: {"n": int(m.sum()), **shares([movie_reasons[i] for i in np.flatnonzero(m)])}
            for name, m in groups.items() if m.any()}

    rows = [line.split("\t", 1) for line in Path(args.texts).read_text(encoding="utf-8").splitlines() if line]
    kinds, texts = [k for k, _ in rows], [t for _, t in rows]
    other_feats, _ = clf.features(texts, [None] * len(texts), progress=True)
    other_score = nov.score(other_feats)
    other_reasons = review_reasons(nov, texts, other_feats)
    by_kind = {k: {"n": kinds.count(k), **shares([r for r, kk in zip(other_reasons, kinds) if kk == k])}
               for k in dict.fromkeys(kinds)}
    finite = np.isfinite(movie_score) & labelled
    plot_movies = finite & has_plot

    def auc(movies: np.ndarray) -> float:
        y = np.r_[np.zeros(int(movies.sum())), np.ones(len(other_score))]
        return round(float(roc_auc_score(y, np.r_[movie_score[movies], other_score])), 4)

    short = short_plots(clf, [p for p, keep in zip(plots, labelled) if p and keep],
                        [t for t, p, keep in zip(part["title"], plots, labelled) if p and keep])
    ex_feats, _ = clf.features(list(EXAMPLES.values()), [None] * len(EXAMPLES))
    examples = dict(zip(EXAMPLES, review_reasons(nov, list(EXAMPLES.values()), ex_feats)))
    words = np.array([word_count(p) for p, keep in zip(plots, labelled) if p and keep])
    result = {
        "model_dir": str(args.model_dir), "cutoff": nov.cutoff, "false_flag_rate": nov.false_flag_rate,
        "languages": nov.languages, "test": test, "non_movie": {"n": len(texts), **shares(other_reasons)},
        "non_movie_by_kind": by_kind,
        "non_movie_ood_flagged": round(float((other_score > nov.cutoff).mean()), 4),
        "auroc_test_movies_vs_non_movie": auc(finite), "auroc_test_movies_with_plot_vs_non_movie": auc(plot_movies),
        "test_plots_under_min_words": round(float((words < nov.min_words).mean()), 4) if len(words) else None,
        "short_plots_ood_flagged": short,
        "examples": examples, "reasons_ms_per_movie_after_features": round(reasons_ms, 3),
        "language_model_load_ms": round(load_ms),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
