"""The benchmark report: ``report.md`` (figures beside it) and one self-contained ``report.html``.

``build_report(out_dir)`` reads ``<out>/results.json`` and the run directories written by
``genrelens.experiments.benchmark``. Every section is a list of blocks (text, tables, figures, examples),
rendered once to markdown and once to HTML by the jinja2 templates in ``templates/`` (package data); a section
whose inputs are missing becomes a one-line note. Blocks and ``ReportData`` live in ``blocks.py``, the trust
sections in ``trust_report.py``.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from genrelens import bundle  # noqa: E402
from genrelens.errors import GenrelensError  # noqa: E402
from genrelens.experiments import trust_report  # noqa: E402
from genrelens.experiments.benchmark import STUDY_TABLE2  # noqa: E402
from genrelens.experiments.blocks import (  # noqa: E402
    SECTIONS,
    Examples,
    Figure,
    ReportData,
    Section,
    TableBlock,
    Text,
    png,
    skipped,
)
from genrelens.io import write_bytes_atomic, write_text_atomic  # noqa: E402

# The study's validation set label shares (its Table 1), for comparison with ours.
STUDY_VAL_SHARE = {"Drama": 0.56, "Comedy": 0.34, "Romance": 0.20, "Thriller": 0.19, "Action": 0.15,
                   "Crime": 0.13, "Horror": 0.12, "Adventure": 0.09, "Mystery": 0.08, "Sci-Fi": 0.06}
MIN_DECADE_ROWS = 10  # older decades are pooled until a bucket has this many test rows
N_EXAMPLES = 6
FIGURE_DIR = "report_files"


# ---------------------------------------------------------------------------------------------- format

def pm(s: dict | None, digits: int = 3) -> str:
    """``mean ± std`` over seeds (just the mean for one seed); "-" when missing."""
    if not s or not s.get("n"):
        return "-"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}" if s["n"] > 1 else f"{s['mean']:.{digits}f}"


def seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min" if x < 7200 else f"{x / 3600:.1f} h"


def summary_row(results: dict, model: str, ov: str) -> dict | None:
    return next((r for r in results["summary"] if r["model"] == model and r["oversample"] == ov), None)


# ---------------------------------------------------------------------------------------------- sections

def section_overview(d: ReportData) -> Section:
    r = d.results
    blocks: list[Any] = [Text(
        f"Data: {r['data']}. Models: {', '.join(d.models)}; oversampling: {', '.join(d.oversampling)}; "
        f"seeds: {', '.join(map(str, d.seeds))} (one split per seed, shared by every model). "
        f"Test metrics use per-label thresholds tuned on validation unless the run's config says otherwise."),
        Text(f"Wall time of the grid (sum of its runs): {seconds(r['grid_seconds'])}; "
             f"this call: {seconds(r['wall_seconds'])} ({r['n_trained']} run(s) trained, "
             f"{r['n_skipped']} already done).")]
    rows = [[x["name"], "reused" if x["skipped"] else "trained", f"{x['metrics']['test']['weighted_f1']:.3f}",
             seconds(x["wall_seconds"]), seconds(x["metrics"]["train_seconds"]), x.get("text_from") or ""]
            for x in r["runs"]]
    blocks.append(TableBlock(["run", "this call", "weighted F1", "wall time", "train time (in run)",
                              "text encoder from"], rows, "Cost of each run"))
    return Section("overview", blocks)


def section_table1(d: ReportData) -> Section:
    from genrelens.data.stats import table_stats

    t1 = table_stats(d.table, labels=d.results["labels"], seed=d.seeds[0], oversample_method="study")["table1"]
    parts = [("train", "train"), ("train_oversampled", "train, oversampled"), ("val", "validation")]
    header = ["label"] + [f"{name} (n={t1[k]['n']:,})" for k, name in parts] + ["study: validation"]
    rows = [[g] + [f"{t1[k]['labels'][g]['count']:,} ({t1[k]['labels'][g]['share']:.3f})" for k, _ in parts]
            + [f"{STUDY_VAL_SHARE[g]:.2f}" if g in STUDY_VAL_SHARE else "-"] for g in d.results["labels"]]
    return Section("table1", [
        Text(f"Label counts (share of the split's rows) in the seed-{d.seeds[0]} split; oversampling is the "
             f"study's method, applied to train only."),
        TableBlock(header, rows)])


def table2_blocks(results: dict) -> list[Any]:
    """Table 2 (weighted F1 vs the study) and the other averages; shared by the report and results.md."""
    ovs = results["oversampling"]
    n = len(results["seeds"])
    head = ["model"]
    for ov in ovs:
        head += [f"weighted F1 ({_ov_name(ov)})", f"study ({_ov_name(ov)})"]
    head += [f"plot+poster rows ({_ov_name(ov)})" for ov in ovs]
    rows = []
    for m in results["models"]:
        row = [m]
        for ov in ovs:
            s = summary_row(results, m, ov)
            study = STUDY_TABLE2.get(m)
            ref = f"{study[0 if ov == 'none' else 1]:.3f}" if study and ov in ("none", "study") else "-"
            row += [pm(s["weighted_f1"] if s else None), ref]
        row += [pm((summary_row(results, m, ov) or {}).get("plot+poster_weighted_f1")) for ov in ovs]
        rows.append(row)
    other = [[m, _ov_name(ov), pm(s["micro_f1"]), pm(s["macro_f1"]), pm(s["samples_f1"]),
              seconds(s["wall_seconds"]["mean"] if s["wall_seconds"]["n"] else s["train_seconds"]["mean"])]
             for m in results["models"] for ov in ovs if (s := summary_row(results, m, ov))]
    return [
        TableBlock(head, rows, f"Weighted F1 on the test split, mean ± std over {n} seed(s); the study's "
                   "published numbers beside ours; 'plot+poster rows' = our test movies with both "
                   "(the study's setting)."),
        TableBlock(["model", "oversampling", "micro F1", "macro F1", "samples F1", "time per run"], other,
                   "Other averages (mean ± std over seeds)."),
    ]


def _ov_name(ov: str) -> str:
    return {"none": "no oversampling", "study": "oversampling"}.get(ov, ov)


def section_table2(d: ReportData) -> Section:
    blocks = table2_blocks(d.results)
    drama = always_drama(d)
    if drama is not None:
        blocks.append(Text(f"The study's naive baseline always answers Drama: {drama:.3f} weighted F1 on our "
                           f"seed-{d.seeds[0]} test split (ours picks its k most frequent labels on "
                           f"validation).", note=True))
    return Section("table2", blocks)


def always_drama(d: ReportData) -> float | None:
    from sklearn.metrics import f1_score

    run = next((r for m in d.models if (r := d.pick(m))), None)
    p = d.predictions(run) if run else None
    if p is None or "Drama" not in p.labels:
        return None
    y = np.zeros_like(p.y_true)
    y[:, p.labels.index("Drama")] = True
    return float(f1_score(p.y_true, y, average="weighted", zero_division=0))


def section_shares(d: ReportData) -> Section:
    cols = [(m, ov) for m in ("text-finetuned", "integrated", "catalogue") for ov in d.oversampling
            if any(d.run_dir(m, ov, s) for s in d.seeds)]
    if not cols:
        return skipped("shares", "no text-finetuned, integrated or catalogue run.")
    per: dict[tuple[str, str], list[dict]] = {
        c: [bundle.read_artifact(p, "metrics")["test"]["per_label"]
            for s in d.seeds if (p := d.run_dir(*c, s))] for c in cols}
    labels = list(next(iter(per.values()))[0])
    header = ["label", "test frequency"] + [h for m, ov in cols for h in (f"{m} ({_ov_name(ov)}) F1", "share")]
    rows = []
    for g in labels:
        first = next(iter(per.values()))[0][g]
        row = [g, f"{first['frequency']:.3f}"]
        for c in cols:
            row += [f"{np.mean([x[g]['f1'] for x in per[c]]):.3f}",
                    f"{np.mean([x[g]['weighted_f1_share'] for x in per[c]]):.3f}"]
        rows.append(row)
    total = ["total (= weighted F1)", ""]
    for c in cols:
        total += ["", f"{np.mean([sum(x[g]['weighted_f1_share'] for g in labels) for x in per[c]]):.3f}"]
    rows.append(total)
    return Section("shares", [
        Text("Each label's F1 and its term in the weighted F1 (F1 x support / total support), mean over seeds "
             "(the study's appendix table)."), TableBlock(header, rows)])


def decade_buckets(years: pd.Series, min_rows: int = MIN_DECADE_ROWS) -> pd.Series:
    """Year -> decade label ("1990s"); the oldest decades pooled ("≤1960s") until the pool has ``min_rows``."""
    dec = (years // 10 * 10).astype("Int64")
    counts = dec.value_counts().sort_index()
    cum, cut = 0, None
    for decade, c in counts.items():
        cum += c
        cut = decade
        if cum >= min_rows:
            break
    first = counts.index.min() if len(counts) else None
    return dec.map(lambda x: pd.NA if pd.isna(x) else
                   (f"≤{cut}s" if cut is not None and x <= cut and cut != first else f"{x}s"))


def decade_f1(d: ReportData, model: str) -> dict[str, list[float]] | None:
    """Per decade bucket, the weighted F1 of each seed's run (no oversampling) of ``model``."""
    from sklearn.metrics import f1_score

    out: dict[str, list[float]] = {}
    for s in d.seeds:
        run = d.run_dir(model, d.main_oversampling(), s)
        p = d.predictions(run) if run else None
        if p is None:
            continue
        buckets = decade_buckets(d.by_id.loc[p.ids, "year"].reset_index(drop=True))
        for b in buckets.dropna().unique():
            m = (buckets == b).fillna(False).to_numpy()
            out.setdefault(b, []).append(float(f1_score(p.y_true[m], p.y_pred[m], average="weighted",
                                                        zero_division=0)))
    return out or None


def _decade_key(b: str) -> int:
    return int(b.strip("≤s"))


def section_decades(d: ReportData) -> Section:
    curves = {m: c for m in d.models if (c := decade_f1(d, m))}
    if not curves:
        return skipped("decades", "no run has test predictions.")
    first = d.predictions(next(p for m in curves if (p := d.pick(m))))
    n_rows = decade_buckets(d.by_id.loc[first.ids, "year"].reset_index(drop=True)).value_counts()
    buckets = sorted({b for c in curves.values() for b in c}, key=_decade_key)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax2 = ax.twinx()
    ax2.bar(range(len(buckets)), [n_rows.get(b, 0) for b in buckets], color="#dddddd", zorder=0)
    ax2.set_ylabel(f"test movies (seed {d.seeds[0]})", color="#888888")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    for m, c in curves.items():
        xs = [i for i, b in enumerate(buckets) if b in c]
        ax.plot(xs, [np.mean(c[buckets[i]]) for i in xs], "o-", label=m)
    ax.set_xticks(range(len(buckets)), buckets)
    ax.set_ylabel("weighted F1")
    ax.set_xlabel("release decade")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax.set_title(f"Weighted F1 by release decade ({_ov_name(d.main_oversampling())}, mean over seeds)")
    rows = [[b, str(int(n_rows.get(b, 0)))] + [f"{np.mean(c[b]):.3f}" if b in c else "-" for c in curves.values()]
            for b in buckets]
    return Section("decades", [
        Figure("decades", png(fig)),
        TableBlock(["decade", "test movies"] + list(curves), rows,
                   f"Older decades are pooled until a bucket holds {MIN_DECADE_ROWS} test movies.")])


def read_history(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() and path.stat().st_size else None


def section_curves(d: ReportData) -> Section:
    run = d.pick(d.main_model())
    if run is None:
        return skipped("curves", "no integrated or catalogue run.")
    text_dir = run
    _, cfg, _, _ = bundle.read_meta(run)
    if not bundle.history_file(run, "text").exists() and cfg.extra.get("text_from"):
        text_dir = Path(cfg.extra["text_from"])
    stages = [("stage 1, text fine-tuning", read_history(bundle.history_file(text_dir, "text"))),
              ("stage 2, dense head", read_history(bundle.history_file(run, "head")))]
    stages = [(n, h) for n, h in stages if h is not None]
    if not stages:
        return skipped("curves", f"{run.name} has no training history.")
    fig, axes = plt.subplots(len(stages), 2, figsize=(10, 3.4 * len(stages)), squeeze=False)
    for (name, h), (a, b) in zip(stages, axes, strict=True):
        a.plot(h["epoch"], h["train_loss"], "o-", label="train")
        a.plot(h["epoch"], h["val_loss"], "o-", label="validation")
        a.set(title=f"{name}: loss", xlabel="epoch", ylabel="loss")
        b.plot(h["epoch"], h["train_weighted_f1"], "o-", label="train (threshold 0.5)")
        b.plot(h["epoch"], h["val_weighted_f1"], "o-", label="validation")
        b.set(title=f"{name}: weighted F1", xlabel="epoch", ylabel="weighted F1")
        for ax in (a, b):
            ax.legend(fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, limits kept to the data
            if len(h) == 1:
                ax.set_xlim(h["epoch"].iloc[0] - 1, h["epoch"].iloc[0] + 1)
    fig.tight_layout()
    return Section("curves", [Text(f"Per epoch: stage 1 fine-tunes the text encoder ({text_dir.name}), stage 2 "
                                   f"trains the dense head of {run.name} over the fine-tuned text and the "
                                   "poster features."),
                              Figure("curves", png(fig))])


def section_combinations(d: ReportData) -> Section:
    blocks: list[Any] = []
    rows = []
    for m in d.models:
        for ov in d.oversampling:
            ms = [bundle.read_artifact(p, "metrics")["test"] for s in d.seeds
                  if (p := d.run_dir(m, ov, s))]
            if ms:
                rows.append([m, _ov_name(ov), f"{np.mean([x['predicted_combinations'] for x in ms]):.1f}",
                             f"{np.mean([x['true_combinations'] for x in ms]):.1f}"])
    blocks.append(TableBlock(["model", "oversampling", "distinct predicted combinations", "true combinations"],
                             rows, "Distinct label sets on the test split, mean over seeds."))
    blocks += top_combination_blocks(d)
    blocks += cooccurrence_blocks(d)
    return Section("combinations", blocks)


def top_combination_blocks(d: ReportData, n: int = 8) -> list[Any]:
    from genrelens.metrics import top_combinations

    picked = {m: p for m in d.models if (p := d.pick(m))}
    preds = {m: d.predictions(p) for m, p in picked.items()}
    preds = {m: p for m, p in preds.items() if p is not None}
    if not preds:
        return [Text("Top combinations skipped: no test predictions.", note=True)]
    first = next(iter(preds.values()))
    cols = {"true": top_combinations(first.y_true, first.labels, n)}
    cols |= {m: top_combinations(p.y_pred, p.labels, n) for m, p in preds.items()}
    rows = [[str(i + 1)] + [f"{c[i][0].replace('|', ' + ')} ({c[i][1]})" if i < len(c) else "" for c in cols.values()]
            for i in range(n)]
    return [TableBlock(["#"] + list(cols), rows, f"Most frequent label sets (seed {d.seeds[0]}, "
                                                 f"{_ov_name(d.main_oversampling())}).", text=True)]


def cooccurrence_blocks(d: ReportData) -> list[Any]:
    from genrelens.metrics import PAIR_STATES, cooccurrence, pair_confusion

    run = d.pick(d.main_model())
    p = d.predictions(run) if run else None
    if p is None:
        return [Text("Co-occurrence and Comedy/Drama confusion skipped: no integrated or catalogue run.", note=True)]
    true_c, pred_c = cooccurrence(p.y_true), cooccurrence(p.y_pred)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    vmax = max(true_c.max(), pred_c.max(), 1)
    for ax, mat, title in zip(axes, (true_c, pred_c), ("true labels", f"predicted ({run.name})"), strict=True):
        im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=vmax)
        ax.set_xticks(range(len(p.labels)), p.labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(p.labels)), p.labels, fontsize=8)
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6.5,
                    color="white" if v > 0.6 * vmax else "black")
        ax.set_title(f"co-occurrence: {title}")
    fig.colorbar(im, ax=axes, shrink=0.8, label="test movies with both labels")
    blocks: list[Any] = [Figure("cooccurrence", png(fig), "Test movies carrying both labels (diagonal: the label).")]
    if {"Comedy", "Drama"} <= set(p.labels):
        a, b = p.labels.index("Comedy"), p.labels.index("Drama")
        names = [s.replace("first", "Comedy").replace("second", "Drama") for s in PAIR_STATES]
        conf = pair_confusion(p.y_true, p.y_pred, a, b)
        blocks.append(TableBlock(["true \\ predicted"] + names,
                                 [[names[i]] + [str(v) for v in conf[i]] for i in range(4)],
                                 f"Comedy vs Drama: test movies by true and predicted state ({run.name})."))
    return blocks


def section_examples(d: ReportData) -> Section:
    picked = {m: p for m in d.models if (p := d.pick(m))}
    preds = {m: pr for m, p in picked.items() if (pr := d.predictions(p)) is not None}
    if not preds:
        return skipped("examples", "no test predictions.")
    common = set.intersection(*(set(p.ids) for p in preds.values()))
    ids = [i for i in next(iter(preds.values())).ids if i in common]
    full = [i for i in ids if d.by_id.loc[i, "plot"] and d.by_id.loc[i, "poster"]]
    rng = np.random.default_rng(0)
    chosen = list(rng.choice(full, min(N_EXAMPLES, len(full)), replace=False)) if full else []
    rest = [i for i in ids if i not in chosen]
    chosen += rest[: N_EXAMPLES - len(chosen)]
    items = []
    for mid in chosen:
        row = d.by_id.loc[mid]
        pred = {m: [p.labels[j] for j in np.flatnonzero(p.y_pred[p.ids.index(mid)])] for m, p in preds.items()}
        items.append({"title": row["title"] or mid, "year": "" if pd.isna(row["year"]) else int(row["year"]),
                      "poster": thumbnail(row["poster"]), "plot": excerpt(row["plot"]),
                      "true": list(row["genres"]), "predicted": pred})
    return Section("examples", [Text(f"Test movies of the seed-{d.seeds[0]} split "
                                     f"({_ov_name(d.main_oversampling())}); green = a true genre."),
                                Examples(items)])


def thumbnail(path: str | None, size: tuple[int, int] = (92, 138)) -> bytes | None:
    """A small JPEG of the poster, or None when there is none or it cannot be read."""
    if not path:
        return None
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail(size)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
            return buf.getvalue()
    except OSError:
        return None


def excerpt(text: str, n: int = 260) -> str:
    if not text:
        return "(no plot)"
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " …"


SECTION_BUILDERS: dict[str, Callable[[ReportData], Section]] = {
    "overview": section_overview, "table1": section_table1, "table2": section_table2,
    "shares": section_shares, "decades": section_decades, "curves": section_curves,
    "combinations": section_combinations, "examples": section_examples,
    "calibration": trust_report.section_calibration, "explained": trust_report.section_explained,
}


def build_sections(d: ReportData) -> list[Section]:
    """Every section; one whose inputs are broken becomes a note instead of stopping the report."""
    out = []
    for key, build in SECTION_BUILDERS.items():
        try:
            out.append(build(d))
        except (OSError, KeyError, ValueError, IndexError, TypeError, GenrelensError) as e:
            out.append(skipped(key, f"its inputs could not be read ({type(e).__name__}: {e})."))
    return out


# ---------------------------------------------------------------------------------------------- rendering

@functools.cache
def templates():
    """The jinja2 environment over ``genrelens/experiments/templates/`` (package data)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("genrelens.experiments", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["data_uri"] = data_uri
    env.filters["md_cell"] = md_cell
    return env


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def md_cell(c: Any) -> str:
    return str(c).replace("|", "\\|").replace("\n", " ")


def md_table(t: TableBlock) -> str:
    return str(templates().get_template("blocks.md.j2").module.md_table(t))


def results_table_markdown(results: dict) -> str:
    """Table 2 and the other averages as markdown, ready to paste into docs/results.md."""
    return "\n\n".join(md_table(b) for b in table2_blocks(results)) + "\n"


def render_markdown(sections: list[Section], out_dir: Path, title: str) -> str:
    """The report as markdown; figures and poster thumbnails are written to ``<out>/report_files/``."""
    files = out_dir / FIGURE_DIR
    files.mkdir(parents=True, exist_ok=True)

    def figure_file(b: Figure) -> str:
        write_bytes_atomic(files / f"{b.name}.png", b.png)
        return f"{FIGURE_DIR}/{b.name}.png"

    def poster_file(i: int, poster: bytes | None) -> str:
        if not poster:
            return ""
        write_bytes_atomic(files / f"poster-{i}.jpg", poster)
        return f"![poster]({FIGURE_DIR}/poster-{i}.jpg)"

    text = templates().get_template("report.md.j2").render(sections=sections, title=title, figure_file=figure_file,
                                                           poster_file=poster_file)
    return text.rstrip("\n") + "\n"


def render_html(sections: list[Section], title: str) -> str:
    """The report as one HTML page: CSS inline, images as data URIs, no external links."""
    return templates().get_template("report.html.j2").render(sections=sections, title=title)


# ---------------------------------------------------------------------------------------------- entry

def build_report(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.md`` (+ ``report_files/``) and a self-contained ``report.html`` into ``out_dir`` from
    its ``results.json`` and run directories. Returns (md_path, html_path)."""
    out = Path(out_dir)
    d = ReportData(out)
    sections = build_sections(d)
    n = len(d.seeds)
    title = f"genrelens benchmark: {len(d.results['runs'])} runs, {n} seed{'s' if n != 1 else ''}"
    md_path, html_path = out / "report.md", out / "report.html"
    write_text_atomic(md_path, render_markdown(sections, out, title))
    write_text_atomic(html_path, render_html(sections, title))
    return md_path, html_path


__all__ = ["SECTIONS", "build_report", "build_sections", "decade_buckets", "render_html", "render_markdown",
           "results_table_markdown"]
