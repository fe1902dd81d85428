"""One training run, top to bottom: data -> split -> labels -> oversampling -> features -> model ->
thresholds -> metrics; the result is saved through the model bundle, so the run directory is a model folder.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from scipy.special import expit, logit

from genrelens import bundle
from genrelens.bundle import ModelBundle, build_model
from genrelens.config import RunConfig
from genrelens.data.clean import movie_text
from genrelens.data.labels import STUDY_LABELS, LabelSet, check_labels
from genrelens.data.oversample import oversample
from genrelens.data.split import SPLITS, load_split, make_split, save_split, select
from genrelens.data.table import load_table, rows_line, rows_summary
from genrelens.encoders.cache import FeatureCache
from genrelens.metrics import add_calibration, evaluate
from genrelens.models.losses import get_loss
from genrelens.models.naive import NaiveHead, NaiveModel
from genrelens.models.registry import get_spec
from genrelens.models.thresholds import decide, tune_thresholds
from genrelens.train.config import loop_config
from genrelens.train.distributed import local_zero_first
from genrelens.train.loop import fit


def resolve_labels(spec: list[str] | str, train_genres: pd.Series) -> LabelSet:
    """"study" -> the study's 10 genres; "top<K>" -> the K most frequent in train; a list -> itself."""
    if isinstance(spec, list):
        return LabelSet(spec)
    if spec == "study":
        return LabelSet(STUDY_LABELS)
    if spec.startswith("top") and spec[3:].isdigit():
        return LabelSet.top_k(train_genres, int(spec[3:]))
    return LabelSet([s for s in spec.split(",") if s.strip()])


@dataclass
class Prepared:
    """The data of a run: per split the table and multi-hot targets; train rows after oversampling."""

    labels: LabelSet
    parts: dict[str, pd.DataFrame]
    y: dict[str, np.ndarray]
    train_rows: np.ndarray
    report: dict = field(default_factory=dict)


def prepare(cfg: RunConfig, run_dir: Path) -> Prepared:
    """Load, split (or reuse ``cfg.split_file``), pick labels, drop unlabeled rows, oversample train."""
    df, load_report = load_table(cfg.data, skip_bad=cfg.skip_bad, encoding=cfg.encoding, posters=cfg.posters,
                                 sep=cfg.sep, columns=cfg.columns or None)
    fixed = cfg.labels if isinstance(cfg.labels, list) or cfg.labels == "study" else None
    strat = resolve_labels(fixed, df["genres"]).labels if fixed else None
    split = load_split(Path(cfg.split_file)) if cfg.split_file else make_split(
        df, k=10, fractions=cfg.split_fractions, seed=cfg.seed, labels=strat)
    save_split(split, run_dir / bundle.SPLIT)
    labels = resolve_labels(cfg.labels, select(df, split["train"])["genres"])
    if cfg.labels != "study" and not (isinstance(cfg.labels, str) and cfg.labels.startswith("top")):
        check_labels(labels.labels, df["genres"], source=f"labels {','.join(labels.labels)}")
    parts, y, dropped = {}, {}, {}
    for s in SPLITS:
        parts[s], y[s], dropped[s] = bundle.labelled_rows(df, split[s], labels.labels)
        parts[s]["text"] = texts_of(parts[s], cfg.title, cfg.title_dropout if s == "train" else 0.0, cfg.seed)
    rows = oversample(y["train"], cfg.oversample, seed=cfg.seed, target=cfg.oversample_target)
    in_splits = select(df, [i for s in SPLITS for i in split[s]])
    spec = get_spec(cfg.model)
    has_text = np.array([bool(t.strip()) for s in SPLITS for t in parts[s]["text"]], dtype=bool)
    has_poster = np.array([p is not None for s in SPLITS for p in parts[s]["poster"]], dtype=bool)
    reads = [has_text] * spec.uses_text + [has_poster] * spec.poster  # what the model reads (naive: nothing)
    readable = np.logical_or.reduce(reads) if reads else np.ones_like(has_text)
    unlabelled = [list(g) for g, k in zip(in_splits["genres"], labels.encode(in_splits["genres"]).any(1)) if not k]
    report = {
        "rows_read": load_report.n_read,
        "columns": load_report.columns,
        "column_notices": load_report.notices,
        "rows_skipped": [{"row": r, "id": i, "reason": why} for r, i, why in load_report.skipped],  # per problem
        "n_rows_skipped": load_report.n_skipped,  # rows, each once
        "rows_without_labels_dropped": dropped,
        "rows": {s: len(parts[s]) for s in SPLITS},
        "train_rows_after_oversampling": int(len(rows)),
        "rows_with_nothing_read": int((~readable).sum()),  # a text model's poster-only rows, a poster model's others
        # read = used + dropped (+ rows a reused split file leaves out)
        "rows_summary": rows_summary(load_report.n_read, load_report.skipped, unlabelled,
                                     sum(len(p) for p in parts.values()), n_outside_split=len(df) - len(in_splits),
                                     columns=load_report.columns),
    }
    return Prepared(labels, parts, y, rows, report)


def prior_logits(y: np.ndarray) -> torch.Tensor:
    """Logits of the label frequencies: what a model answers for a movie lacking its modality."""
    return torch.as_tensor(logit(np.clip(y.mean(0), 1e-3, 1 - 1e-3)), dtype=torch.float32)


def feature_batches(feats: dict[str, torch.Tensor], y: np.ndarray, rows: np.ndarray, batch_size: int,
                    seed: int):
    """``epoch -> batches`` over ``rows`` of in-memory features (repeats allowed: oversampling)."""
    yt = torch.as_tensor(y)

    def batches(epoch: int):
        order = rows[np.random.default_rng([seed, epoch]).permutation(len(rows))]
        for i in range(0, len(order), batch_size):
            b = torch.as_tensor(order[i: i + batch_size])
            yield {k: v[b] for k, v in feats.items()}, yt[b]
    return batches


def predict_logits(model: torch.nn.Module, feats: dict[str, torch.Tensor], batch_size: int = 1024) -> np.ndarray:
    model.eval()
    n = len(next(iter(feats.values())))
    with torch.inference_mode():
        return np.vstack([model({k: v[i: i + batch_size] for k, v in feats.items()}).numpy()
                          for i in range(0, n, batch_size)]) if n else np.zeros((0, 0), np.float32)


def resolve_precision(cfg: RunConfig) -> RunConfig:
    """``cfg`` as it trains on this CPU: precision ``auto`` becomes bf16 (the CPU has bf16 units) or fp32, which
    is what ``config.json`` stores."""
    if cfg.precision != "auto":
        return cfg
    from genrelens.encoders.precision import training_precision

    return dataclasses.replace(cfg, precision=training_precision(cfg.precision))


def train(cfg: RunConfig, resume: bool = False, progress: bool = True, console: Console | None = None,
          memo: dict | None = None) -> dict:
    """Run ``cfg`` end to end and save the model through the bundle into ``cfg.out``; returns the metrics
    dict (also saved as the folder's ``metrics.json``). ``memo``: a dict shared by runs of one process
    (the benchmark) to reuse the text stage's frozen-bottom states."""
    console = console or Console(stderr=True, soft_wrap=True)  # a line on a pipe stays one line
    t0 = time.time()
    cfg = resolve_precision(cfg)
    run_dir = Path(cfg.out)
    new_folder = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / bundle.CONFIG)  # at once: `--resume` and the benchmark compare it
    try:
        data = prepare(cfg, run_dir)
    except Exception:  # refused on its data (a label typo, bad rows): nothing trained, no half-made folder left
        if new_folder:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    for notice in data.report["column_notices"]:
        console.print(f"note: {notice}", markup=False, highlight=False)
    console.print(rows_line(data.report["rows_summary"]), markup=False, highlight=False)
    blind = data.report["rows_with_nothing_read"]
    if blind:
        console.print(f"note: {blind:,} of these rows have nothing {cfg.model} reads (it reads "
                      f"{'no posters' if not get_spec(cfg.model).poster else 'no text'}): it trains and is tested on "
                      "them as the study's grid does, answering them from the label frequencies; `genrelens evaluate` "
                      "leaves such rows out", markup=False, highlight=False)
    console.print(f"[bold]{cfg.model}[/]: {data.report['rows']} rows (train {len(data.train_rows)} after "
                  f"oversampling '{cfg.oversample}'), labels {', '.join(data.labels.labels)}")
    if get_spec(cfg.model).text == "lexical":
        model, proba, thresholds, history, fit_info = train_tfidf(cfg, data)
    elif get_spec(cfg.model).fitted:
        model, proba, thresholds, history, fit_info = train_naive(cfg, data)
    else:
        model, proba, thresholds, history, fit_info = train_neural(cfg, data, run_dir, resume, progress, console,
                                                         memo if memo is not None else {})
    raw_test, raw_thresholds = proba["test"], thresholds
    trust = calibrate_run(cfg, data, proba, thresholds) if not get_spec(cfg.model).fitted else {}
    if trust:  # from here on the model's probabilities and thresholds are the calibrated ones
        model.calibrator = trust.pop("calibrator")
        proba, thresholds = trust.pop("proba"), model.calibrator.thresholds
    metrics = {
        "model": cfg.model, "oversample": cfg.oversample, "loss": cfg.loss, "seed": cfg.seed,
        "precision": cfg.precision,
        "train_seconds": round(time.time() - t0, 1), "data": data.report, "history": history,
        "test": evaluate(data.y["test"], decide(proba["test"], thresholds), data.labels.labels),
        "test_at_0.5": evaluate(data.y["test"], decide(proba["test"], 0.5), data.labels.labels),
        "val": evaluate(data.y["val"], decide(proba["val"], thresholds), data.labels.labels),
        "test_by_modality": by_modality(data.parts["test"], data.y["test"], proba["test"], thresholds,
                                        data.labels.labels),
        **trust,
        **fit_info,
    }
    add_calibration(metrics["test"], data.y["test"], proba["test"])
    add_calibration(metrics["val"], data.y["val"], proba["val"])
    model.thresholds = raw_thresholds  # thresholds.json and test_proba.npy stay on the raw scale;
    model.artifacts = {"metrics": metrics, "test_proba": raw_test,  # calibration.json maps both (rows as in test_ids)
                       "test_ids": list(data.parts["test"]["id"])}
    model.save_pretrained(run_dir)
    t = metrics["test"]
    console.print(f"[green]{cfg.model}[/] test weighted F1 {t['weighted_f1']:.3f}  micro {t['micro_f1']:.3f}  "
                  f"macro {t['macro_f1']:.3f}  ({metrics['train_seconds']:.0f} s) -> {run_dir}")
    return metrics


def calibrate_run(cfg: RunConfig, data: Prepared, proba: dict[str, np.ndarray], thresholds: np.ndarray) -> dict:
    """Fit the per-label calibrator on validation (saved by the bundle as ``calibration.json``); returns it,
    the calibrated ``proba`` and the metrics entries ``calibration`` (test before/after) and ``review``."""
    from genrelens.models.calibration import calibration_summary, fit_calibrator, review_report

    cal = fit_calibrator(data.y["val"], proba["val"], data.labels.labels, seed=cfg.seed, raw_thresholds=thresholds)
    calibrated = {s: cal.transform(p) for s, p in proba.items()}
    test = calibrated["test"]
    return {"calibrator": cal, "proba": calibrated,
            "calibration": calibration_summary(data.y["test"], proba["test"], cal, thresholds),
            "review": review_report(data.y["test"], test, decide(test, cal.thresholds), cal.thresholds,
                                    min_confidence=cal.min_confidence)}


def by_modality(part: pd.DataFrame, y: np.ndarray, proba: np.ndarray, thr: np.ndarray, labels: list[str]) -> dict:
    has_plot = (part["plot"].str.len() > 0).to_numpy()
    has_poster = part["poster"].notna().to_numpy()
    groups = {"plot+poster": has_plot & has_poster, "plot only": has_plot & ~has_poster,
              "poster only": ~has_plot & has_poster}
    out = {}
    for name, m in groups.items():
        if m.any():
            r = evaluate(y[m], decide(proba[m], thr), labels)
            out[name] = {k: r[k] for k in ("n_rows", "weighted_f1", "micro_f1", "macro_f1")}
    return out


def train_naive(cfg: RunConfig, data: Prepared):
    """The naive model (fitted, not trained): ``(bundle, probabilities per split, thresholds, history, info)``."""
    fitted = NaiveModel().fit(data.y["train"][data.train_rows], data.y["val"])
    proba = {s: fitted.predict_proba(len(data.y[s])) for s in ("val", "test")}
    head = NaiveHead.from_model(fitted)
    return _bundle(cfg, data, head), proba, fitted.thresholds(), [], {}


def texts_of(part: pd.DataFrame, title: bool, dropout: float = 0.0, seed: int = 0) -> list[str]:
    """What the text models read of each movie: its plot, or with ``title`` its title and plot (``movie_text``);
    ``dropout``: the share of movies (with a plot) read without their title, so the model also learns to
    answer for catalogues that give none."""
    titles = list(part["title"]) if title else [None] * len(part)
    if title and dropout > 0:
        has_plot = np.flatnonzero([isinstance(p, str) and bool(p.strip()) for p in part["plot"]])
        drop = np.random.default_rng([seed, 11]).choice(has_plot, int(round(dropout * len(has_plot))), replace=False)
        for i in drop:
            titles[i] = None
    return [movie_text(t, p) for t, p in zip(titles, part["plot"])]


def plots_of(part: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """``(texts, has_text bool [n])`` of a split's table (``prepare`` set its "text" column)."""
    texts = list(part["text"])
    return texts, np.array([bool(p) for p in texts], dtype=bool)


def fit_lexical(cfg: RunConfig, data: Prepared) -> tuple:
    """The TF-IDF + logistic regression channel fitted on the training plots (oversampled rows included), its
    C chosen on validation; returns ``(channel, {split: logits}, {split: has_plot}, info)``."""
    from genrelens.models.lexical import fit_channel

    texts, has = {}, {}
    for s in SPLITS:
        texts[s], has[s] = plots_of(data.parts[s])
    rows = data.train_rows[has["train"][data.train_rows]]
    val_rows = np.flatnonzero(has["val"])
    channel, c_scores = fit_channel([texts["train"][i] for i in rows], data.y["train"][rows],
                                    [texts["val"][i] for i in val_rows], data.y["val"][val_rows], seed=cfg.seed)
    logits = {s: channel.logits(texts[s]) for s in ("val", "test")}
    info = {"C": channel.C, "val_weighted_f1_by_C": c_scores, "n_terms": len(channel.features.terms)}
    return channel, logits, has, info


def train_tfidf(cfg: RunConfig, data: Prepared):
    """The lexical baseline (fitted): ``(bundle, probabilities per split, thresholds, history, info)``."""
    from genrelens.models.lexical import LexicalHead

    channel, logits, has, info = fit_lexical(cfg, data)
    channel.weight = 1.0  # the whole model
    head = LexicalHead(len(data.labels))
    head.missing_logits.copy_(prior_logits(data.y["train"]))
    proba = {s: expit(predict_logits(head, {"lexical": torch.as_tensor(logits[s]),
                                            "text_mask": torch.as_tensor(has[s])}))
             for s in ("val", "test")}
    thresholds = tune_thresholds(data.y["val"], proba["val"])
    return _bundle(cfg, data, head, lexical=channel), proba, thresholds, [], {"lexical": info}


def _bundle(cfg: RunConfig, data: Prepared, head: torch.nn.Module, **kw) -> ModelBundle:
    """The run's bundle; thresholds and artifacts are filled in by ``train``."""
    return ModelBundle(cfg, data.labels.labels, np.zeros(len(data.labels), np.float32), head, **kw)


def train_neural(cfg: RunConfig, data: Prepared, run_dir: Path, resume: bool, progress: bool, console: Console,
                 memo: dict):
    """Features, text stage (when the model has one), head, lexical fusion (when set);
    ``(bundle, probabilities, thresholds, history, info for metrics.json)``."""
    from genrelens.train.finetune import finetune_stage

    spec = get_spec(cfg.model)
    cache = FeatureCache(cfg.cache_dir) if cfg.cache_dir else FeatureCache()
    torch.manual_seed(cfg.seed)
    feats: dict[str, dict[str, torch.Tensor]] = {s: {} for s in SPLITS}
    dims: dict[str, int] = {}
    ft_head = poster_top = text_enc = poster_enc = None
    aug_texts, aug_src = [], np.zeros(0, dtype=np.int64)
    probes: dict[str, torch.Tensor] = {}  # per split: the text encoder's probe (novelty reads it, the head does not)
    if cfg.long_augment > 0 and spec.text_encoder and not (spec.text_stage and spec.modality == "text"):
        from genrelens.data.augment import same_genres_concat

        train = data.parts["train"]
        plots = [p if isinstance(p, str) else "" for p in train["plot"]]
        aug_texts, aug_src = same_genres_concat(plots, data.y["train"], cfg.long_augment, seed=cfg.seed)
        if cfg.title:  # the joined plots under the source movie's title
            aug_texts = [movie_text(train["title"].iloc[i], t) for i, t in zip(aug_src, aug_texts)]
    if spec.poster:
        with local_zero_first():  # rank 0 of each node fills the feature cache first
            from genrelens.encoders.features import poster_features

            poster_enc = bundle.build_poster(cfg)
            dims["poster"] = poster_enc.dim
            if cfg.poster_finetune:  # a trainable copy of the CNN's last block
                poster_top = poster_enc.trainable_top()
            for s in SPLITS:
                f, ok, errors = poster_features(poster_enc, list(data.parts[s]["poster"]), cache, progress,
                                                root=Path(data.parts[s].attrs.get("root", ".")),
                                                maps=cfg.poster_finetune)
                if errors:
                    console.print(f"[yellow]{len(errors)} {s} poster(s) unreadable, treated as missing[/]")
                feats[s]["poster"], feats[s]["poster_mask"] = torch.as_tensor(f), torch.as_tensor(ok)
    if spec.text == "frozen":
        with local_zero_first():  # rank 0 of each node fills the feature cache first
            from genrelens.encoders.features import text_features

            text_enc = bundle.build_text(cfg, backend="torch")  # training encodes on eager torch
            dims["text"] = text_enc.dim
            for s in SPLITS:
                f, m = text_features(text_enc, list(data.parts[s]["text"]), cache, progress)
                feats[s]["text"], feats[s]["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
            aug_text = text_features(text_enc, aug_texts, cache, progress)[0] if aug_texts else None
    elif spec.text_stage:
        text_feats, text_enc, ft_head, ft_history = finetune_stage(cfg, data, run_dir, resume, progress, console, memo,
                                                                   extra_texts=aug_texts)
        dims["text"] = text_enc.dim
        for s in SPLITS:
            feats[s]["text"], feats[s]["text_mask"], probes[s] = (torch.as_tensor(a) for a in text_feats[s])
        aug_text = text_feats["extra"][0]

    if spec.text_stage and spec.modality == "text":  # the text stage's own head is the model
        head, history = ft_head, ft_history
    else:
        if not spec.text_stage or cfg.extra.get("text_from"):  # else the text stage trained and drew first
            torch.manual_seed(cfg.seed)  # from the seed, whatever drew before (see finetune_stage)
        head = build_model(cfg, dims, len(data.labels), poster_top=poster_top)
        rows = data.train_rows
        train_feats, y_train = feats["train"], data.y["train"]
        if len(aug_src):  # augmented long plots: extra training rows with the source movie's labels and poster
            train_feats, y_train, rows = with_augmented(train_feats, y_train, rows, aug_src, aug_text)
            console.print(f"{len(aug_src)} augmented long training plots (same-genres concatenations)")
        if spec.modality:  # unimodal: train where it has input
            rows = rows[train_feats[f"{spec.modality}_mask"].numpy()[rows]]
        history = fit(
            head, feature_batches(train_feats, y_train, rows, cfg.batch_size, cfg.seed),
            -(-len(rows) // cfg.batch_size), lambda m: predict_logits(m, feats["val"]), data.y["val"],
            get_loss(cfg.loss), loop_config(cfg), run_dir / bundle.CHECKPOINTS / "head", resume, progress,
            desc=f"{cfg.model} head",
        )
    if hasattr(head, "missing_logits"):
        head.missing_logits.copy_(prior_logits(data.y["train"]))
    proba = {s: expit(predict_logits(head, feats[s])) for s in ("val", "test")}
    channel = info = None
    if cfg.lexical:  # late fusion with the lexical channel, its weight chosen on validation (or set)
        from genrelens.models.lexical import choose_weight, fused_proba

        channel, logits, has, info = fit_lexical(cfg, data)
        if cfg.lexical_weight is None:
            channel.weight, info["val_weighted_f1_by_weight"] = choose_weight(data.y["val"], proba["val"],
                                                                              expit(logits["val"]), has["val"])
        else:
            channel.weight = cfg.lexical_weight
        info["weight"] = channel.weight
        proba = {s: fused_proba(proba[s], logits[s], has[s], channel.weight) for s in ("val", "test")}
        console.print(f"lexical channel: C {channel.C}, {info['n_terms']} terms, fusion weight {channel.weight}")
    thresholds = (tune_thresholds(data.y["val"], proba["val"]) if cfg.thresholds == "tuned"
                  else np.full(len(data.labels), 0.5, np.float32))
    model = _bundle(cfg, data, head, text_encoder=text_enc, poster_encoder=poster_enc, dims=dims,
                    text_head=ft_head if spec.text_stage else None, lexical=channel)
    openings = None
    if text_enc is not None and text_enc.probe_layer is not None and probes:
        feats, openings = with_probe(cfg, data, feats, probes, text_enc)
    model.novelty = fit_novelty(cfg, data, feats, openings)
    return model, proba, thresholds, history, {"lexical": info} if info else {}


def with_probe(cfg: RunConfig, data: Prepared, feats: dict[str, dict[str, torch.Tensor]],
               probes: dict[str, torch.Tensor], text_enc) -> tuple[dict, dict]:
    """The splits' head inputs with the text probe of the fine-tuning (title-only texts left out, as
    ``GenreClassifier._features`` leaves them) and the probe batch of the validation plots' openings (the short
    plots that ``Novelty.fit`` calibrates its length scales on)."""
    from genrelens.models.novelty import WORDS_KEY, plot_openings, plot_words
    from genrelens.train.finetune import bottom_pass

    out = {}
    for s in SPLITS:
        words = plot_words(list(data.parts[s]["plot"]))
        has_words = torch.as_tensor(words > 0)
        out[s] = {**feats[s], "text_probe": probes[s], "text_probe_mask": feats[s]["text_mask"] & has_words,
                  WORDS_KEY: torch.as_tensor(words)}
    val = data.parts["val"]
    plots, titles = plot_openings(list(val["plot"]), list(val["title"]))
    texts = texts_of(pd.DataFrame({"plot": plots, "title": titles}), cfg.title)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):  # as the fine-tuning's
        ids = text_enc.tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"] if texts else []
        _, probe = bottom_pass(text_enc.model, text_enc.tokenizer, ids, cfg.ft_layers, text_enc.probe_layer,
                               progress=False)  # openings fit one window
    openings = {"text_probe": torch.as_tensor(probe, dtype=torch.float32),
                "text_probe_mask": torch.ones(len(plots), dtype=torch.bool),
                WORDS_KEY: torch.as_tensor(plot_words(plots))}
    return out, openings


def fit_novelty(cfg: RunConfig, data: Prepared, feats: dict[str, dict[str, torch.Tensor]], openings: dict | None):
    """The review reasons' novelty score and training languages, fitted on the run's training and validation
    features, the validation plots' openings and the training plots (``models/novelty.py``)."""
    from genrelens.models.novelty import Novelty

    return Novelty.fit(feats["train"], feats["val"], list(data.parts["train"]["plot"]), seed=cfg.seed,
                       openings=openings)


def with_augmented(feats: dict[str, torch.Tensor], y: np.ndarray, rows: np.ndarray, src: np.ndarray,
                   text: np.ndarray) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Training features, targets and rows extended by augmented plots: row ``k`` of ``text [m, d]`` is a
    long plot whose labels and other modalities are those of training row ``src[k]``."""
    src_t = torch.as_tensor(src)
    out = {}
    for k, v in feats.items():
        extra = v[src_t].clone()
        if k == "text":
            extra = torch.as_tensor(text)
        elif k == "text_mask":
            extra = torch.ones(len(src), dtype=v.dtype)
        out[k] = torch.cat([v, extra])
    n = len(y)
    return out, np.concatenate([y, y[src]]), np.concatenate([rows, n + np.arange(len(src))])
