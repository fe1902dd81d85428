"""Report sections on trust: calibration (reliability diagram before/after, ECE, review queue) and a few
explained test movies (modality shares, plot words, poster heatmap). Used by ``report.build_report``."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genrelens import bundle  # noqa: E402
from genrelens.experiments.blocks import Figure, ReportData, Section, TableBlock, Text, png, skipped  # noqa: E402

N_EXPLAINED = 3


def reliability_figure(calibration: dict, title: str = "") -> bytes:
    """Reliability diagram before | after calibration from a ``calibration_summary`` dict (pooled over labels):
    observed positive rate against mean predicted probability per bin; bar shading = the bin's row count."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, key in zip(axes, ("before", "after")):
        r = calibration[key]["reliability"]
        count = np.array(r["count"], dtype=float)
        mean_p = np.array([np.nan if v is None else v for v in r["mean_proba"]], dtype=float)
        freq = np.array([np.nan if v is None else v for v in r["frequency"]], dtype=float)
        n_bins = len(count)
        centers = (np.arange(n_bins) + 0.5) / n_bins
        used = count > 0
        share = count / max(count.sum(), 1)
        shade = 0.35 + 0.65 * (share[used] / share.max())
        ax.bar(centers[used], freq[used], width=1 / n_bins, color=[(0.2, 0.32, 0.7, a) for a in shade],
               edgecolor="white", label="observed rate")
        ax.plot(mean_p[used], freq[used], "o-", color="#b42318", ms=4, label="(mean probability, rate)")
        ax.plot([0, 1], [0, 1], "--", color="#666", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted probability (15 equal-width bins)")
        c = calibration[key]
        ax.set_title(f"{key}: ECE {c['ece']:.3f}, Brier {c['brier']:.3f}", fontsize=10)
        for x, n in zip(centers[used], count[used]):
            ax.text(x, 0.01, f"{int(n)}", rotation=90, fontsize=6, ha="center", va="bottom", color="#333")
    axes[0].set_ylabel("observed share of positives")
    axes[0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return png(fig)


def section_calibration(d: ReportData) -> Section:
    run = d.pick(d.main_model()) or next((p for m in d.models if m != "naive" and (p := d.pick(m))), None)
    if run is None:
        return skipped("calibration", "no trained neural model.")
    metrics = bundle.read_artifact(run, "metrics") or {}
    cal, review = metrics.get("calibration"), metrics.get("review")
    if not cal:
        return skipped("calibration", f"{run.name} was trained before calibration existed "
                                      f"(run `genrelens calibrate --model-dir {run}`).")
    blocks: list = [Text(
        f"{run.name}: per-label calibrators fitted on the validation split (method chosen per label by "
        f"out-of-fold Brier score), thresholds re-tuned on the calibrated scale. Test split below; ECE = mean "
        f"over labels of the 15-bin expected calibration error.")]
    rows = [[k, f"{cal[k]['ece']:.4f}", f"{cal[k]['brier']:.4f}", f"{cal[k]['weighted_f1']:.4f}",
             f"{cal[k]['share_extreme']:.1%}"] for k in ("before", "after")]
    blocks.append(TableBlock(["", "ECE", "Brier", "weighted F1", "probabilities < 0.01 or > 0.99"], rows))
    per = metrics["test"]["per_label"]
    nan = float("nan")
    blocks.append(TableBlock(["label", "method", "ECE (after)", "Brier (after)"],
                             [[g, m, f"{per[g].get('ece', nan):.4f}", f"{per[g].get('brier', nan):.4f}"]
                              for g, m in cal["methods"].items()], "Per label", text=True))
    blocks.append(Figure("reliability", reliability_figure(cal, f"{run.name}, test split, all labels pooled"),
                         "Reliability diagram before and after calibration (numbers: rows per bin)."))
    if review:
        rule = (f"confidence below {review['min_confidence']:.4f}, the cut-off chosen on the validation split"
                if review.get("rule") == "confidence" else f"a label within {review['band']} of its threshold")
        best = review.get("best_possible_catch")
        older = review.get("band_rule")
        blocks.append(Text(
            f"Review queue ({rule}): {review['share_flagged']:.1%} of test movies flagged; they hold "
            f"{review['share_of_wrong_caught']:.1%} of the {review['wrong_sets']} wrong label sets (flagging the "
            f"same share at random: {review['random_flagging_catches']:.1%}"
            + (f"; the best possible queue of that size: {best:.1%}" if best is not None else "") + "). Error "
            f"rate inside the queue {_pct(review['error_rate_flagged'])}, outside "
            f"{_pct(review['error_rate_not_flagged'])}"
            + (f" (the older band rule, {older['band']}: {older['share_flagged']:.1%} flagged, "
               f"{older['share_of_wrong_caught']:.1%} caught)" if older else "")
            + f". Confidence (probability that the whole set is right): mean {review['mean_confidence']:.3f} vs "
            f"exact-match rate {review['exact_match']:.3f}; AUROC for telling right from wrong sets "
            f"{_pct(review['confidence_auroc'], False)}."))
    return Section("calibration", blocks)


def _pct(x: float | None, percent: bool = True) -> str:
    if x is None:
        return "-"
    return f"{x:.1%}" if percent else f"{x:.3f}"


def explained_figure(title: str, e: dict, genre: str, heatmap_png: bytes | None, n_words: int = 10) -> bytes:
    """One explained movie: the poster heatmap | the top plot words (signed) | plot vs poster share."""
    from PIL import Image

    fig = plt.figure(figsize=(10, 3.2))
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 2, 0.9])
    ax = fig.add_subplot(grid[0])
    if heatmap_png:
        ax.imshow(Image.open(io.BytesIO(heatmap_png)))
    ax.set_axis_off()
    ax.set_title("poster (crop the CNN reads)", fontsize=8)
    ax = fig.add_subplot(grid[1])
    words = e["words"].get(genre, [])[:n_words][::-1]
    if words:
        vals = [w["attribution"] for w in words]
        ax.barh(range(len(words)), vals, color=["#2f9e6e" if v > 0 else "#b42318" for v in vals])
        ax.set_yticks(range(len(words)), [w["word"] for w in words], fontsize=8)
        ax.axvline(0, color="#333", lw=0.8)
    ax.set_title("plot words (logit drop when hidden)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax = fig.add_subplot(grid[2])
    m = e["modalities"][genre]
    ax.bar(["plot", "poster"], [m["plot"], m["poster"]], color=["#3451b2", "#e08a00"])
    ax.axhline(0, color="#333", lw=0.8)
    ax.set_title(f"Shapley (logit): plot {m['plot_share']:.0%}, poster {m['poster_share']:.0%}", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.suptitle(f"{title}: why {genre} (p = {e['probabilities'][genre]:.2f})", fontsize=10)
    fig.tight_layout()
    return png(fig)


def section_explained(d: ReportData) -> Section:
    import base64

    from genrelens.predict import GenreClassifier

    run = d.pick(d.main_model())
    ids = bundle.read_artifact(run, "test_ids") if run is not None and bundle.is_model_folder(run) else None
    if ids is None:
        return skipped("explained", "no integrated or catalogue model in this benchmark.")
    clf = GenreClassifier.load(run)
    full = [i for i in ids if d.by_id.loc[i, "plot"] and d.by_id.loc[i, "poster"]]
    chosen = list(np.random.default_rng(1).choice(full, min(N_EXPLAINED, len(full)), replace=False)) if full else []
    blocks: list = [Text("A few test movies, each explained for its most probable predicted genre: the poster's "
                         "Grad-CAM heatmap, the plot words whose deletion moves the genre's logit most, and the "
                         "exact Shapley split of the logit between plot and poster (see docs/trust.md).")]
    for k, mid in enumerate(chosen):
        row = d.by_id.loc[mid]
        e = clf.explain(row["plot"], Path(row["poster"]), title=row["title"])
        genre = e["genres"][0]
        heat = e["poster_heatmap"].get(genre)
        title = f"{row['title'] or mid} (true: {', '.join(row['genres'])})"
        blocks.append(Figure(f"explained-{k}", explained_figure(title, e, genre, base64.b64decode(heat) if heat
                                                                else None)))
    return Section("explained", blocks)
