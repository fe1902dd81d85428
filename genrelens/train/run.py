"""One training run, top to bottom: data -> split -> labels -> oversampling -> features -> model ->
thresholds -> metrics; the result is saved through the model bundle, so the run directory is a model folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console

from genrelens import bundle
from genrelens.bundle import ModelBundle, build_model
from genrelens.config import RunConfig
from genrelens.data.labels import STUDY_LABELS, LabelSet
from genrelens.data.oversample import oversample
from genrelens.data.split import SPLITS, load_split, make_split, save_split, select
from genrelens.data.table import load_table
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
    df, load_report = load_table(cfg.data, skip_bad=cfg.skip_bad, encoding=cfg.encoding, posters=cfg.posters)
    fixed = cfg.labels if isinstance(cfg.labels, list) or cfg.labels == "study" else None
    strat = resolve_labels(fixed, df["genres"]).labels if fixed else None
    split = load_split(Path(cfg.split_file)) if cfg.split_file else make_split(
        df, k=10, fractions=cfg.split_fractions, seed=cfg.seed, labels=strat)
    save_split(split, run_dir / bundle.SPLIT)
    labels = resolve_labels(cfg.labels, select(df, split["train"])["genres"])
    parts, y, dropped = {}, {}, {}
    for s in SPLITS:
        part = select(df, split[s])
        ys = labels.encode(part["genres"])
        keep = ys.sum(1) > 0
        dropped[s] = int((~keep).sum())
        parts[s] = part[keep].reset_index(drop=True)
        parts[s].attrs.update(df.attrs)
        y[s] = ys[keep]
    rows = oversample(y["train"], cfg.oversample, seed=cfg.seed, target=cfg.oversample_target)
    report = {
        "rows_read": load_report.n_read,
        "rows_skipped": [{"row": r, "id": i, "reason": why} for r, i, why in load_report.skipped],
        "rows_without_labels_dropped": dropped,
        "rows": {s: len(parts[s]) for s in SPLITS},
        "train_rows_after_oversampling": int(len(rows)),
    }
    return Prepared(labels, parts, y, rows, report)


def prior_logits(y: np.ndarray) -> torch.Tensor:
    """Logits of the label frequencies: what a model answers for a movie lacking its modality."""
    p = np.clip(y.mean(0), 1e-3, 1 - 1e-3)
    return torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32)


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


def train(cfg: RunConfig, resume: bool = False, progress: bool = True, console: Console | None = None,
          memo: dict | None = None) -> dict:
    """Run ``cfg`` end to end and save the model through the bundle into ``cfg.out``; returns the metrics
    dict (also saved as the folder's ``metrics.json``). ``memo``: a dict shared by runs of one process
    (the benchmark) to reuse the text stage's frozen-bottom states."""
    console = console or Console(stderr=True)
    t0 = time.time()
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / bundle.CONFIG)  # at once: `--resume` and the benchmark compare it
    data = prepare(cfg, run_dir)
    console.print(f"[bold]{cfg.model}[/]: {data.report['rows']} rows (train {len(data.train_rows)} after "
                  f"oversampling '{cfg.oversample}'), labels {', '.join(data.labels.labels)}")
    if get_spec(cfg.model).fitted:
        model, proba, thresholds, history = train_naive(cfg, data)
    else:
        model, proba, thresholds, history = train_neural(cfg, data, run_dir, resume, progress, console,
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
    """The naive model (fitted, not trained): ``(bundle, probabilities per split, thresholds, history)``."""
    fitted = NaiveModel().fit(data.y["train"][data.train_rows], data.y["val"])
    proba = {s: fitted.predict_proba(len(data.y[s])) for s in ("val", "test")}
    head = NaiveHead.from_model(fitted)
    return _bundle(cfg, data, head), proba, fitted.thresholds(), []


def _bundle(cfg: RunConfig, data: Prepared, head: torch.nn.Module, **kw) -> ModelBundle:
    """The run's bundle; thresholds and artifacts are filled in by ``train``."""
    return ModelBundle(cfg, data.labels.labels, np.zeros(len(data.labels), np.float32), head, **kw)


def train_neural(cfg: RunConfig, data: Prepared, run_dir: Path, resume: bool, progress: bool, console: Console,
                 memo: dict):
    """Features, text stage (when the model has one), head; ``(bundle, probabilities, thresholds, history)``."""
    from genrelens.train.finetune import finetune_stage

    spec = get_spec(cfg.model)
    cache = FeatureCache(cfg.cache_dir) if cfg.cache_dir else FeatureCache()
    torch.manual_seed(cfg.seed)
    feats: dict[str, dict[str, torch.Tensor]] = {s: {} for s in SPLITS}
    dims: dict[str, int] = {}
    ft_head = poster_top = text_enc = poster_enc = None
    if spec.poster:
        with local_zero_first():  # rank 0 of each node fills the feature cache first
            from genrelens.encoders.features import poster_features
            from genrelens.encoders.registry import build_poster_encoder

            poster_enc = build_poster_encoder(cfg.poster_encoder)
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
            from genrelens.encoders.registry import build_text_encoder

            text_enc = build_text_encoder(cfg.text_encoder, max_length=cfg.max_length)
            dims["text"] = text_enc.dim
            for s in SPLITS:
                f, m = text_features(text_enc, list(data.parts[s]["plot"]), cache, progress)
                feats[s]["text"], feats[s]["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
    elif spec.text_stage:
        text_feats, text_enc, ft_head, ft_history = finetune_stage(cfg, data, run_dir, resume, progress, console, memo)
        dims["text"] = text_enc.dim
        for s in SPLITS:
            feats[s]["text"], feats[s]["text_mask"] = (torch.as_tensor(a) for a in text_feats[s])

    if spec.text_stage and spec.modality == "text":  # the text stage's own head is the model
        head, history = ft_head, ft_history
    else:
        head = build_model(cfg, dims, len(data.labels), poster_top=poster_top)
        rows = data.train_rows
        if spec.modality:  # unimodal: train where it has input
            rows = rows[feats["train"][f"{spec.modality}_mask"].numpy()[rows]]
        history = fit(
            head, feature_batches(feats["train"], data.y["train"], rows, cfg.batch_size, cfg.seed),
            -(-len(rows) // cfg.batch_size), lambda m: predict_logits(m, feats["val"]), data.y["val"],
            get_loss(cfg.loss), loop_config(cfg), run_dir / bundle.CHECKPOINTS / "head", resume, progress,
            desc=f"{cfg.model} head",
        )
    if hasattr(head, "missing_logits"):
        head.missing_logits.copy_(prior_logits(data.y["train"]))
    proba = {s: 1 / (1 + np.exp(-predict_logits(head, feats[s]))) for s in ("val", "test")}
    thresholds = (tune_thresholds(data.y["val"], proba["val"]) if cfg.thresholds == "tuned"
                  else np.full(len(data.labels), 0.5, np.float32))
    model = _bundle(cfg, data, head, text_encoder=text_enc, poster_encoder=poster_enc, dims=dims,
                    text_head=ft_head if spec.text_stage else None)
    return model, proba, thresholds, history
