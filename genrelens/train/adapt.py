"""Adapt a trained model to a catalogue's own labelling: ``genrelens adapt --from MODEL_DIR --data t.csv --out DIR``.

Warm start from a model folder (``ModelBundle.from_pretrained``): its encoders stay as they are (the fine-tuned text
encoder included), the user's movies are encoded once (feature cache as usual), then

1. the head is refitted on the user's rows, starting from its weights, with a penalty towards them
   (``l2``: a Gaussian prior centred on the starting weights, as strong as ``l2 / n_rows`` per weight, so a few
   rows move it little) or, with ``regulariser="replay"``, a share of the original training movies mixed in;
2. the lexical channel (TF-IDF + logistic regression; the whole model for ``tfidf``) is refitted the same way on
   the user's texts, over the starting vocabulary;
3. on a held-out part of the fitting rows (the calibration rows), a safeguard per label: a label the starting
   model has keeps its adapted output only where it beats the starting output there by a margin, else it goes
   back to the starting row and threshold (``keep_start``); then thresholds and calibration are fitted there.

Labels: the user's label set is the genres of their table after the label map (``old = "new"``: a starting
label or a table genre renamed, several onto one merges them), less dropped ones. A label the starting model has
keeps its head output (a merged one: its first source's); a new one gets a zero-weight output whose bias is the
label's log-odds in the user's rows; labels the table lacks are dropped.

Whether it helped: ``holdout`` of the user's rows (stratified) is kept out of everything; on it the starting
model (its decisions renamed through the label map; it never predicts a new label) and the adapted model are
compared, with a learning curve (the same adaptation on 100, 300, 1000 and all fitting rows).
"""

from __future__ import annotations

import dataclasses
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import logit
from torch import nn

from genrelens import bundle as B
from genrelens.bundle import ModelBundle, build_model
from genrelens.data.clean import clean_text, movie_text
from genrelens.data.labels import LabelSet, normalize_genre
from genrelens.data.table import load_table, rows_summary
from genrelens.encoders.registry import text_spec
from genrelens.errors import DataError, GenrelensError, ModelError
from genrelens.metrics import ece, ece_per_label, evaluate
from genrelens.models.registry import get_spec
from genrelens.models.thresholds import decide, tune_thresholds

MIN_ROWS = 50  # labelled rows a table needs
MIN_POSITIVES = 5  # positives each label needs
CURVE = (100, 300, 1000)  # learning-curve sizes (fitting rows), then all
REGULARISERS = ("l2", "replay")
MIN_ADAPT_POSITIVES = 30  # a starting label is adapted only with at least this many positives among the
#   calibration rows (fewer: its F1 there cannot show an improvement; docs/results.md)
MIN_TUNE_NEW_POSITIVES = 8  # a new label's threshold is tuned with at least this many positives among the
#   calibration rows (fewer: 0.5); a rare new label (Documentary, 3%) never fired at 0.5 with 1,000 rows
MIN_TUNE_POSITIVES = 30  # a kept label's threshold is re-tuned with at least this many positives among the
#   calibration rows; with fewer it keeps the starting model's (a threshold tuned on a handful is noise)


class AdaptInputError(GenrelensError):
    """The starting folder, the table or the label map cannot be adapted on (found before any training)."""


@dataclass
class AdaptConfig:
    """What ``adapt`` does. ``labels``: keep only these (after the map); ``drop``: labels to leave out.
    ``l2``: strength of the pull towards the starting weights (per row: divided by the fitting rows);
    ``steps``: full-batch optimiser steps (0: keep the starting weights); ``cal_share``: share of the fitting
    rows set aside for thresholds and calibration; ``replay``: original training movies per user row
    (``regulariser="replay"``); ``shared``: also refit the head's layers below its output rows (by default only
    the output rows are refitted, so a label kept at the start is exactly the start's); ``ft_layers``: also
    fine-tune the top layers of the starting model's fine-tuned text encoder on the user's rows first (0: keep
    it), for ``ft_epochs`` epochs (None: as the start trained)."""

    start: Path
    data: Path
    out: Path | None = None
    label_map: Path | dict | None = None
    labels: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    holdout: float = 0.3
    regulariser: str = "l2"
    l2: float = 1.0
    lexical_l2: float = 16.0  # the same pull for the lexical channel's weights (benchmarks/adapt.py: 0.25, 4, 16)
    replay: float = 1.0
    steps: int = 200
    lr: float = 1e-3
    lexical_lr: float = 0.05
    cal_share: float = 0.3
    keep_margin: float | None = 0.01  # per-label safeguard (``keep_start``); None: every label adapted
    seed: int = 0
    ft_layers: int = 0
    ft_epochs: int | None = None
    shared: bool = False  # also refit the head's shared layers (hidden layer, norms), not only its output rows
    curve: tuple[int, ...] | None = CURVE
    force: bool = False
    posters: Path | None = None
    encoding: str = "utf-8"
    skip_bad: bool = False
    sep: str | None = None  # the table's separator (None: detected)
    columns: dict[str, str] | None = None  # {field: the table's column} (``--column-map``)


# ------------------------------------------------------------------------------------------- inputs (checks)

@dataclass
class Plan:
    """Everything checked before training: the starting model, the user's table and label set."""

    start: ModelBundle
    table: pd.DataFrame
    y: np.ndarray  # float32 [n, n_labels] in ``labels`` order
    labels: list[str]
    mapping: dict[str, str]  # normalized old name -> new label
    sources: dict[str, list[str]]  # new label -> starting labels it comes from (empty: a new label)
    new: list[str]
    dropped: list[str]
    renamed: dict[str, str]
    rows: dict = field(default_factory=dict)  # which rows of the table are used, which dropped and why (rows_summary)


def read_label_map(source: Path | dict | None) -> dict[str, str]:
    """``{old: new}`` from a TOML file of ``"old" = "new"`` lines (or a dict), names normalized; ``new`` keeps its
    words as written ("Science Fiction" stays, where a table's genre of that name reads as Sci-Fi)."""
    if source is None:
        return {}
    if isinstance(source, dict):
        raw = source
    else:
        try:
            raw = tomllib.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise AdaptInputError(f"label map {source} is unreadable: {e}") from e
    out = {}
    for k, v in raw.items():
        if not isinstance(v, str) or not normalize_genre(v):
            raise AdaptInputError(f"label map: {k!r} maps onto nothing ({v!r}); write \"{k}\" = \"<label>\"")
        if not normalize_genre(k):
            raise AdaptInputError(f"label map: an empty name maps onto {v!r}")
        out[normalize_genre(k)] = normalize_genre(v, aliases=False)
    return out


def check_ft_layers(cfg: AdaptConfig, start_dir: Path, start_cfg) -> None:
    """``--ft-layers`` needs a fine-tuned text encoder, and at most the layers above its review reasons' probe
    (``bundle.probe_layer``: it reads pretrained states), or, without a probe, the layers the start fine-tuned."""
    if not cfg.ft_layers:
        return
    from genrelens.models.registry import MODELS

    if cfg.ft_layers < 0:
        raise AdaptInputError(f"--ft-layers {cfg.ft_layers}: give 0 (keep the text encoder) or more")
    if not get_spec(start_cfg.model).text_stage:
        stage = ", ".join(name for name, spec in MODELS.items() if spec.text_stage)
        raise AdaptInputError(f"--ft-layers needs a starting model with a fine-tuned text encoder ({stage}); "
                              f"{start_dir} is a {start_cfg.model} model: adapt it without --ft-layers")
    probe = B.probe_layer(start_cfg)
    most = start_cfg.ft_layers if probe is None else text_spec(start_cfg.text_encoder).layers - probe
    if cfg.ft_layers > most:
        raise AdaptInputError(f"--ft-layers {cfg.ft_layers}: at most {most} for {start_dir} (the layers below stay "
                              f"pretrained: the review reasons read them)")
    if cfg.regulariser == "replay":
        raise AdaptInputError("--ft-layers fine-tunes on your rows only: use it with --regulariser l2")


def plan(cfg: AdaptConfig) -> Plan:
    """Load and check everything (no training): raises ``AdaptInputError`` with what to do."""
    if cfg.regulariser not in REGULARISERS:
        raise AdaptInputError(f"regulariser {cfg.regulariser!r}: choose from {', '.join(REGULARISERS)}")
    if not 0.05 <= cfg.holdout <= 0.8:
        raise AdaptInputError(f"holdout {cfg.holdout} must lie in [0.05, 0.8]")
    start_dir = Path(cfg.start)
    if not start_dir.is_dir():
        raise AdaptInputError(f"--from {start_dir}: not a folder (give a trained model folder)")
    try:
        _, start_cfg, start_labels, _ = B.read_meta(start_dir)
    except ModelError as e:
        raise AdaptInputError(f"--from {start_dir} is not a model: {e}") from e
    if cfg.out is not None:
        out = Path(cfg.out)
        if out.resolve() == start_dir.resolve():
            raise AdaptInputError("--out must differ from --from (the starting model is kept as it is)")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise AdaptInputError(f"--out {out} exists and is not empty: give a new folder")
    check_ft_layers(cfg, start_dir, start_cfg)
    mapping = read_label_map(cfg.label_map)
    try:
        df, report = load_table(cfg.data, skip_bad=cfg.skip_bad, encoding=cfg.encoding, posters=cfg.posters,
                                sep=cfg.sep, columns=cfg.columns)
    except DataError as e:
        raise AdaptInputError(str(e)) from e
    table_genres = {g for gs in df["genres"] for g in gs}
    nowhere = [k for k in mapping if k not in start_labels and k not in table_genres]
    if nowhere:
        raise AdaptInputError(f"label map: {', '.join(repr(k) for k in nowhere)} maps onto nothing: neither a label "
                              f"of the starting model ({', '.join(start_labels)}) nor a genre of {cfg.data}")
    for new_name in set(mapping.values()):  # "Science Fiction" as a target also takes the genre it reads as (Sci-Fi)
        alias = normalize_genre(new_name)
        if alias != new_name and alias not in mapping and (alias in start_labels or alias in table_genres):
            mapping[alias] = new_name
    genres = [[mapping.get(g, g) for g in gs] for gs in df["genres"]]
    if sum(map(bool, genres)) < MIN_ROWS:
        raise AdaptInputError(f"{sum(map(bool, genres))} labelled row(s) in {cfg.data}; adapting needs at least "
                              f"{MIN_ROWS}")
    counts = pd.Series([g for gs in genres for g in set(gs)]).value_counts()

    def label(name: str) -> str:  # a label map's own spelling ("Science Fiction") before the alias (Sci-Fi)
        plain = normalize_genre(name, aliases=False)
        return plain if plain in counts.index else normalize_genre(name)

    wanted = [label(g) for g in cfg.labels] if cfg.labels else sorted(counts.index)
    unknown = [g for g in wanted if g not in counts.index]
    if cfg.labels and unknown:
        raise AdaptInputError(f"--labels {', '.join(unknown)}: not in the table (after the label map)")
    drop = {label(g) for g in cfg.drop}
    bad_drop = sorted(drop - set(counts.index) - set(start_labels))
    if bad_drop:
        raise AdaptInputError(f"--drop {', '.join(bad_drop)}: no such label in the table or the starting model")
    labels = [g for g in wanted if g not in drop]
    if not labels:
        raise AdaptInputError("no label left to adapt on")
    few = {g: int(counts.get(g, 0)) for g in labels if counts.get(g, 0) < MIN_POSITIVES}
    if few:
        shown = ", ".join(f"{g!r} ({n})" for g, n in few.items())
        g0 = next(iter(few))
        raise AdaptInputError(
            f"label(s) with fewer than {MIN_POSITIVES} positive rows: {shown}. Drop them (--drop \"{','.join(few)}\") "
            f"or merge each into another label with a label map line (\"{g0}\" = \"<other label>\")")
    label_set = LabelSet(labels, aliases=False)
    y = label_set.encode(genres)
    keep = y.sum(1) > 0
    if keep.sum() < MIN_ROWS:
        raise AdaptInputError(f"{int(keep.sum())} labelled row(s) in {cfg.data} (rows with one of "
                              f"{', '.join(labels)}); adapting needs at least {MIN_ROWS}")
    table = df[keep].reset_index(drop=True)
    table.attrs.update(df.attrs)
    start = ModelBundle.from_pretrained(start_dir)
    # a label's starting labels, its own first (a merge into a label the start has starts from, and keeps, that row)
    sources = {g: sorted((s for s in start.labels if mapping.get(s, s) == g), key=lambda s: s != g)
               for g in label_set.labels}
    new = [g for g, s in sources.items() if not s]
    dropped = [s for s in start.labels if mapping.get(s, s) not in label_set.index]
    renamed = {s: mapping[s] for s in start.labels
               if s in mapping and mapping[s] != s and mapping[s] in label_set.index}
    rows = rows_summary(report.n_read, report.skipped, [list(g) for g, k in zip(genres, keep) if not k],
                        int(keep.sum()), columns=report.columns)
    return Plan(start, table, y[keep], label_set.labels, mapping, sources, new, dropped, renamed, rows)


# ------------------------------------------------------------------------------------------------ features

@dataclass
class Features:
    """The head's inputs of some rows (``GenreClassifier.features``) and the texts the lexical channel reads;
    with ``--ft-layers``, ``windows``: per row, the frozen states below the top layers of its token windows."""

    feats: dict[str, torch.Tensor]
    texts: list[str]
    windows: list[list[torch.Tensor]] | None = None

    def take(self, rows: np.ndarray) -> Features:
        idx = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        return Features({k: v[idx] for k, v in self.feats.items()}, [self.texts[i] for i in rows],
                        None if self.windows is None else [self.windows[i] for i in rows])

    def __len__(self) -> int:
        return len(self.texts)


def features_of(b: ModelBundle, table: pd.DataFrame, cache=None, progress: bool = False,
                ft_layers: int = 0) -> Features:
    """Encode ``table``'s movies with the encoders of ``b`` as prediction does (``GenreClassifier.features``):
    the text read is ``"<title>. <plot>"`` for a model that reads titles, else the plot; ``lexical`` holds the
    starting channel's logits. ``ft_layers``: also keep each text's window states below that many top layers."""
    from genrelens.encoders.features import poster_features, text_features

    titles = [t if isinstance(t, str) else None for t in table["title"]] if b.config.title else [None] * len(table)
    texts = [clean_text(movie_text(t, p if isinstance(p, str) else None)) for t, p in zip(titles, table["plot"])]
    feats: dict[str, torch.Tensor] = {}
    if b.text_encoder is not None:
        f, m = text_features(b.text_encoder, texts, cache, progress)
        feats["text"], feats["text_mask"] = torch.as_tensor(f), torch.as_tensor(m)
    if b.lexical is not None:
        feats["lexical"] = torch.as_tensor(b.lexical.logits(texts))
        feats.setdefault("text_mask", torch.as_tensor(np.array([bool(t.strip()) for t in texts], dtype=bool)))
    if b.poster_encoder is not None:
        f, ok, _ = poster_features(b.poster_encoder, list(table["poster"]), cache, progress,
                                   root=Path(table.attrs.get("root", ".")), maps=b.config.poster_finetune)
        feats["poster"], feats["poster_mask"] = torch.as_tensor(f), torch.as_tensor(ok)
    return Features(feats, texts, window_states(b, texts, ft_layers, progress) if ft_layers else None)


# ------------------------------------------------------------------------------- fine-tuning (--ft-layers)

def _ft_config(start: ModelBundle, ft_layers: int, seed: int = 0, ft_epochs: int | None = None):
    """The starting run's config as this CPU fine-tunes ``ft_layers`` top layers."""
    from genrelens.train.run import resolve_precision

    return dataclasses.replace(resolve_precision(start.config), ft_layers=ft_layers, seed=seed,
                               ft_epochs=ft_epochs or start.config.ft_epochs)


def window_states(b: ModelBundle, texts: list[str], ft_layers: int, progress: bool) -> list[list[torch.Tensor]]:
    """Per text, the states of its token windows below the top ``ft_layers`` layers of ``b``'s (pretrained,
    frozen) bottom: computed once, they serve every fine-tuning of the learning curve."""
    from genrelens.bundle import build_text
    from genrelens.train.finetune import memo_states

    enc = build_text(b.config, b.path, backend="torch")
    has = [i for i, t in enumerate(texts) if t.strip()]
    windows, owner = enc.window_ids([texts[i] for i in has])
    states = memo_states({}, enc, _ft_config(b, ft_layers), windows["input_ids"], progress)
    out: list[list[torch.Tensor]] = [[] for _ in texts]
    for w, o in zip(states, owner):
        out[has[o]].append(w)
    return out


def finetune_text(start: ModelBundle, p: Plan, fx: Features, y: np.ndarray, cal_fx: Features, y_cal: np.ndarray,
                  cfg: AdaptConfig, progress: bool = False):
    """Fine-tune the top ``cfg.ft_layers`` layers of the starting text encoder on ``fx``'s first windows (as
    training does), the epoch kept being the best on the calibration rows; the classifier's head starts from the
    starting text head's rows (``label_rows``). Returns ``(encoder, TopLayersClassifier, the run config it
    fine-tuned with)``."""
    import tempfile

    from genrelens.bundle import build_text
    from genrelens.train.finetune import TopLayersClassifier, fit_top_layers

    run = _ft_config(start, cfg.ft_layers, cfg.seed, cfg.ft_epochs)
    enc = build_text(start.config, start.path, backend="torch")
    clf = TopLayersClassifier(enc.model, cfg.ft_layers, len(p.labels))
    if start.text_head is not None:  # a linear head: every tensor of it has one row per label
        old = start.text_head.state_dict()
        clf.head.load_state_dict(label_rows(old, set(old), start, p, prior_logits(y)))
    tr = [i for i, w in enumerate(fx.windows) if w]
    va = [i for i, w in enumerate(cal_fx.windows) if w]
    with tempfile.TemporaryDirectory() as tmp:
        fit_top_layers(clf, [fx.windows[i][0] for i in tr], y[tr], np.arange(len(tr)),
                       [cal_fx.windows[i][0] for i in va], y_cal[va], run, Path(tmp), False, progress,
                       desc=f"fine-tune the top {cfg.ft_layers} text layer(s)")
    return enc, clf, run


def retext(enc, clf, run, fx: Features) -> Features:
    """``fx`` with its text features from the fine-tuned top layers ``clf`` (``finetune.pooled_features``)."""
    from genrelens.train.finetune import pooled_features

    has = [i for i, w in enumerate(fx.windows) if w]
    owner = np.repeat(np.arange(len(has)), [len(fx.windows[i]) for i in has])
    text = fx.feats["text"].clone()
    if has:
        pooled = pooled_features(enc, clf, [w for i in has for w in fx.windows[i]], owner, len(has), run)
        text[torch.as_tensor(has)] = torch.as_tensor(pooled)
    return Features({**fx.feats, "text": text}, fx.texts, fx.windows)


def decisions(b: ModelBundle, proba: np.ndarray) -> np.ndarray:
    """``b``'s decisions on its (calibrated, when it has a calibrator) probabilities."""
    return decide(proba, b.calibrator.thresholds if b.calibrator is not None else b.thresholds)


# ------------------------------------------------------------------------------------------------- fitting

def prior_logits(y: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(y, dtype=np.float64).mean(0), 1e-3, 1 - 1e-3)
    return logit(p)


def l2sp_fit(params: dict[str, torch.Tensor], forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
             y: np.ndarray, l2: float, steps: int, lr: float, seed: int) -> dict[str, torch.Tensor]:
    """Minimise mean over rows of the summed per-label BCE + ``l2 / (2 n)`` x ||params - start||^2 (a Gaussian
    prior centred on the starting values), full batch, Adam; returns the fitted tensors (start when ``steps=0``)."""
    start = {k: v.detach().clone() for k, v in params.items()}
    if steps <= 0 or not len(y):
        return start
    torch.manual_seed(seed)
    theta = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    opt = torch.optim.Adam(theta.values(), lr=lr)
    target = torch.as_tensor(np.asarray(y, dtype=np.float32))
    scale = l2 / (2 * len(y))
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        logits = forward(theta)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(y)
        loss = loss + scale * sum(((theta[k] - start[k]) ** 2).sum() for k in theta)
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in theta.items()}


def output_keys(cfg, dims: dict[str, int], n_labels: int) -> set[str]:
    """Names of the head's tensors with one row per label (their shape changes with the number of labels)."""
    a = build_model(cfg, dims, n_labels).state_dict()
    b = build_model(cfg, dims, n_labels + 1).state_dict()
    return {k for k in a if a[k].shape != b[k].shape}


def warm_state(start: ModelBundle, p: Plan, prior: np.ndarray) -> dict[str, torch.Tensor]:
    """The starting head's state for the user's labels (``label_rows``)."""
    return label_rows(start.model.state_dict(), output_keys(start.config, start.dims, len(start.labels)), start,
                      p, prior)


def label_rows(old: dict[str, torch.Tensor], per_label: set[str], start: ModelBundle, p: Plan,
               prior: np.ndarray) -> dict[str, torch.Tensor]:
    """A head state ``old`` (its ``per_label`` tensors have one row per starting label) for the user's labels:
    rows of kept labels copied (a merged label: its first source's), new labels zero weights with their
    log-odds prior as bias (and as ``missing_logits``)."""
    src = [start.labels.index(p.sources[g][0]) if p.sources[g] else None for g in p.labels]
    out = {}
    for k, v in old.items():
        if k not in per_label:
            out[k] = v.clone()
            continue
        rows = []
        for j, s in enumerate(src):
            if s is not None and not k.endswith("missing_logits"):
                rows.append(v[s].clone())
            elif k.endswith("bias") or k.endswith("missing_logits"):
                rows.append(torch.tensor(prior[j], dtype=v.dtype))
            else:
                rows.append(torch.zeros_like(v[0]))
        out[k] = torch.stack(rows)
    return out


def new_head(start: ModelBundle, p: Plan, state: dict[str, torch.Tensor]) -> nn.Module:
    top = start.poster_encoder.trainable_top() if start.config.poster_finetune else None
    head = build_model(start.config, start.dims, len(p.labels), poster_top=top)
    head.load_state_dict(state)
    head.eval()
    return head


def fit_head(start: ModelBundle, p: Plan, fx: Features, y: np.ndarray, cfg: AdaptConfig) -> nn.Module:
    """The starting head, warm-started on the user's labels, refitted on ``fx, y`` (L2 towards the start)."""
    from torch.func import functional_call

    head = new_head(start, p, warm_state(start, p, prior_logits(y)))
    if start.spec.text == "lexical" or start.spec.fitted:  # nothing to train: the lexical head passes logits on
        return head
    rows = output_keys(start.config, start.dims, len(start.labels))
    names = {k for k, v in head.named_parameters() if v.requires_grad and (cfg.shared or k in rows)}
    params = {k: v for k, v in head.state_dict().items() if k in names}
    buffers = {k: v for k, v in head.state_dict().items() if k not in names}
    batch = {k: v for k, v in fx.feats.items() if k != "lexical"}
    head.train()
    fitted = l2sp_fit(params, lambda theta: functional_call(head, {**theta, **buffers}, (batch,)), y, cfg.l2,
                      cfg.steps, cfg.lr, cfg.seed)
    head.load_state_dict({**buffers, **fitted})
    head.eval()
    return head


def tfidf_matrix(channel, texts: list[str]):
    """Scipy CSR ``[n, k]`` TF-IDF rows of ``texts`` over the ``k`` terms they use, and those terms' columns in
    the channel's vocabulary (``int64 [k]``)."""
    from scipy.sparse import csr_matrix

    rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for r, t in enumerate(texts):
        idx, v = channel.features.row(t if isinstance(t, str) else "")
        rows.append(np.full(len(idx), r))
        cols.append(idx)
        vals.append(v)
    used, local = np.unique(np.concatenate(cols), return_inverse=True)
    return csr_matrix((np.concatenate(vals), (np.concatenate(rows), local)), shape=(len(texts), len(used))), used


def l2sp_logistic(x, y: np.ndarray, coef0: np.ndarray, intercept0: np.ndarray, l2: float | np.ndarray,
                  steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-label logistic regression on sparse ``x [n, k]`` with the objective of ``l2sp_fit`` (mean summed BCE +
    ``l2 / (2 n)`` x squared distance to ``coef0, intercept0``; ``l2`` one value or one per label), solved by
    L-BFGS (at most ``steps`` iterations)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n, (n_labels, k) = x.shape[0], coef0.shape
    y = np.asarray(y, dtype=np.float64)
    theta0 = np.concatenate([coef0.ravel(), intercept0])
    per_label = np.broadcast_to(np.asarray(l2, dtype=np.float64), (n_labels,))
    strength = np.concatenate([np.repeat(per_label, k), per_label]) / n

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-n_labels].reshape(n_labels, k), theta[-n_labels:]
        z = x @ w.T + b
        loss = (np.logaddexp(0, z) - y * z).sum() / n
        r = expit(z) - y
        d = theta - theta0
        grad = np.concatenate([(x.T @ r).T.ravel() / n, r.sum(0) / n]) + strength * d
        return loss + 0.5 * float((strength * d) @ d), grad

    theta = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": steps}).x
    return theta[:-n_labels].reshape(n_labels, k), theta[-n_labels:]


def fit_lexical(start: ModelBundle, p: Plan, fx: Features, y: np.ndarray, cfg: AdaptConfig):
    """The starting lexical channel for the user's labels (rows as ``warm_state``; new labels: zero weights,
    prior intercept), refitted on the rows with a text (L2 towards the start, over the starting vocabulary; the
    weights of terms none of these texts use have nothing pulling them away from the start and stay)."""
    from genrelens.models.lexical import LexicalChannel

    old = start.lexical
    has = np.array([bool(t.strip()) for t in fx.texts], dtype=bool)
    prior = prior_logits(y[has]) if has.any() else prior_logits(y)
    coef = np.zeros((len(p.labels), old.coef.shape[1]))
    intercept = prior.copy()
    for j, g in enumerate(p.labels):
        if p.sources[g]:
            s = start.labels.index(p.sources[g][0])
            coef[j], intercept[j] = old.coef[s], old.intercept[s]
    ch = LexicalChannel(ngram_max=old.ngram_max, min_df=old.min_df, max_features=old.max_features, C=old.C,
                        weight=old.weight, features=old.features, coef=coef, intercept=intercept)
    if not has.any() or cfg.steps <= 0:
        return ch
    x, used = tfidf_matrix(ch, [t for t, h in zip(fx.texts, has) if h])
    # a new label has no starting weights to stay near: it gets the channel's own regularisation (1 / C)
    l2 = np.array([cfg.lexical_l2 if p.sources[g] else 1.0 / old.C for g in p.labels])
    fitted, ch.intercept = l2sp_logistic(x, y[has], coef[:, used], intercept, l2, cfg.steps)
    ch.coef = coef.copy()
    ch.coef[:, used] = fitted
    return ch


def adapted_bundle(start: ModelBundle, p: Plan, fx: Features, y: np.ndarray, cal_fx: Features, y_cal: np.ndarray,
                   cfg: AdaptConfig, text: tuple | None = None) -> ModelBundle:
    """Fit head and lexical channel on ``fx, y``; the per-label safeguard (``keep_start``), thresholds and
    calibration on ``cal_fx, y_cal``. ``text``: a fine-tuned ``(text encoder, its text head)`` (``--ft-layers``),
    else the starting encoder's. The novelty reference (review reasons) is the start's: it reads the poster
    features and the text encoder's probe, which adapting leaves as they are."""
    from genrelens.models.calibration import fit_calibrator

    head = fit_head(start, p, fx, y, cfg)
    lexical = fit_lexical(start, p, fx, y, cfg) if start.lexical is not None else None
    new_cfg = _config(start, p, cfg)
    same_labels = p.labels == start.labels
    encoder, text_head = text or (start.text_encoder, start.text_head if same_labels else None)
    b = ModelBundle(new_cfg, list(p.labels), np.full(len(p.labels), 0.5, np.float32), head,
                    text_encoder=encoder, poster_encoder=start.poster_encoder, text_head=text_head,
                    dims=dict(start.dims), lexical=lexical, novelty=start.novelty)
    raw = b.head_proba(with_lexical(cal_fx, lexical), calibrated=False)
    b.thresholds = thresholds(start, p, y_cal, raw)
    if cfg.steps > 0 and cfg.keep_margin is not None:
        raw = keep_start(b, start, p, fx, y, cal_fx, y_cal, raw, cfg)
    b.calibrator = fit_calibrator(y_cal, raw, b.labels, seed=cfg.seed, raw_thresholds=b.thresholds)
    if exact_start(cfg) and start.calibrator is not None:
        start_calibration(b, start, p)
    return b


def exact_start(cfg: AdaptConfig) -> bool:
    """Whether a label kept at the start scores exactly as the start: only its output rows were refitted. With
    ``shared`` or ``ft_layers`` it keeps its starting output row over features that changed: its scores, and so
    its calibration, are new."""
    return not cfg.shared and not cfg.ft_layers


def start_calibration(b: ModelBundle, start: ModelBundle, p: Plan) -> None:
    """A label kept at the start (``keep_start``) scores exactly as its starting output, so it takes the starting
    calibration map and threshold too (fitted on the starting model's whole validation split, not on a few
    calibration rows): its decisions are the start's."""
    for g in (b.lineage or {}).get("kept_starting_output", []):
        j, s = p.labels.index(g), start.labels.index(p.sources[g][0])
        b.calibrator.maps[j] = start.calibrator.maps[s]
        b.calibrator.thresholds[j] = start.calibrator.thresholds[s]
        b.calibrator.info["labels"][g] = {"method": start.calibrator.maps[s].method, "from": "the starting model"}


def cross_fitted_f1(y: np.ndarray, score: np.ndarray, seed: int) -> float:
    """F1 of one label whose threshold is tuned for F1 on the same rows, measured without that optimism: the rows
    are split in two (stratified), each half decided with the threshold tuned on the other."""
    y = np.asarray(y) > 0
    folds = np.random.default_rng([seed, 11]).permutation(len(y)) % 2
    order = np.argsort(~y, kind="stable")  # positives spread evenly over both halves
    folds[order] = np.arange(len(y)) % 2
    pred = np.zeros(len(y), bool)
    for k in (0, 1):
        t = tune_thresholds(y[folds != k, None], score[folds != k, None])[0]
        pred[folds == k] = score[folds == k] >= t
    return _f1(y, pred)


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = int((pred & y).sum())
    return 2 * tp / max(2 * tp + int((pred & ~y).sum()) + int((~pred & y).sum()), 1)


def keep_start(b: ModelBundle, start: ModelBundle, p: Plan, fx: Features, y: np.ndarray, cal_fx: Features,
               y_cal: np.ndarray, raw: np.ndarray, cfg: AdaptConfig) -> np.ndarray:
    """The per-label safeguard, decided on the calibration rows (which no weight was fitted on): a label the
    starting model has keeps its adapted output row (head and lexical channel) and threshold only where that
    beats the starting row at the starting threshold by more than ``cfg.keep_margin`` F1 there; elsewhere it goes
    back to the starting row and threshold; so does a label with fewer than ``MIN_ADAPT_POSITIVES`` positives
    there (too few to tell). The adapted F1 is cross-fitted (its threshold was tuned on these rows). New labels
    stay adapted. Edits ``b`` in place (``b.lineage`` notes the labels kept at the start) and
    returns the raw calibration scores of the result."""
    kept = [j for j, g in enumerate(p.labels) if p.sources[g]]
    if not kept:
        return raw
    per_label = output_keys(start.config, start.dims, len(start.labels))
    first = warm_state(start, p, prior_logits(y))
    fitted = b.model.state_dict()
    back = {k: (first[k] if k in per_label else v) for k, v in fitted.items()}
    lex0 = fit_lexical(start, p, fx, y, dataclasses.replace(cfg, steps=0)) if b.lexical is not None else None
    b0 = dataclasses.replace(b, model=new_head(start, p, back), lexical=_mix_lexical(b.lexical, lex0, kept))
    raw0 = b0.head_proba(with_lexical(cal_fx, b0.lexical), calibrated=False)
    pos = np.asarray(y_cal).sum(0)
    go_back = []
    for j in kept:
        t0 = start.thresholds[start.labels.index(p.sources[p.labels[j]][0])]
        f_start = _f1(y_cal[:, j] > 0, raw0[:, j] >= t0)
        # with fewer than MIN_ADAPT_POSITIVES positives among the calibration rows, an F1 difference is noise
        # (100 labelled rows: 30 calibration rows): the label keeps its starting output
        if pos[j] < MIN_ADAPT_POSITIVES or (cross_fitted_f1(y_cal[:, j], raw[:, j], cfg.seed)
                                            <= f_start + cfg.keep_margin):
            go_back.append(j)
            b.thresholds[j] = t0
    if go_back:
        state = {k: v.clone() for k, v in fitted.items()}
        for k in per_label:
            state[k][go_back] = back[k][go_back]
        b.model = new_head(start, p, state)
        if b.lexical is not None:
            b.lexical = _mix_lexical(b.lexical, lex0, go_back)
        raw = raw.copy()
        raw[:, go_back] = raw0[:, go_back]
    back_names = [p.labels[j] for j in go_back]
    # a renamed or merged label keeps its first source's output (``kept_as``: its sources, the kept one first)
    b.lineage = {"kept_starting_output": back_names,
                 "kept_as": {g: p.sources[g] for g in back_names if p.sources[g] != [g]}}
    return raw


def _mix_lexical(adapted, starting, rows: list[int]):
    """The lexical channel ``adapted`` with the rows ``rows`` of ``starting`` (None when there is no channel)."""
    if adapted is None:
        return None
    coef, intercept = adapted.coef.copy(), np.array(adapted.intercept, dtype=np.float64, copy=True)
    coef[rows], intercept[rows] = starting.coef[rows], starting.intercept[rows]
    return dataclasses.replace(adapted, coef=coef, intercept=intercept)


def thresholds(start: ModelBundle, p: Plan, y_cal: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Raw-scale thresholds: tuned for F1 on the calibration rows for a label with at least ``MIN_TUNE_POSITIVES``
    positives there (a new label: ``MIN_TUNE_NEW_POSITIVES``); with fewer, a label the starting model has (a
    merged one: its first source) keeps its own threshold and a new one gets 0.5 (its head output was fitted by
    log-loss: a probability)."""
    out = tune_thresholds(y_cal, raw)
    pos = np.asarray(y_cal).sum(0)
    for j, g in enumerate(p.labels):
        if pos[j] < (MIN_TUNE_POSITIVES if p.sources[g] else MIN_TUNE_NEW_POSITIVES):
            out[j] = start.thresholds[start.labels.index(p.sources[g][0])] if p.sources[g] else 0.5
    return out


def with_lexical(fx: Features, lexical) -> dict[str, torch.Tensor]:
    """``fx``'s head inputs with the lexical logits of ``lexical`` (the adapted channel)."""
    if lexical is None:
        return fx.feats
    return {**fx.feats, "lexical": torch.as_tensor(lexical.logits(fx.texts))}


def _config(start: ModelBundle, p: Plan, cfg: AdaptConfig):
    return dataclasses.replace(start.config, labels=list(p.labels), data=str(Path(cfg.data).resolve()),
                               split_file=None, out=str(cfg.out) if cfg.out else start.config.out,
                               posters=str(Path(cfg.posters).resolve()) if cfg.posters else None,
                               encoding=cfg.encoding, sep=cfg.sep, columns=dict(cfg.columns or {}))


# ------------------------------------------------------------------------------------------------ measuring

def start_scores(start: ModelBundle, p: Plan, fx: Features) -> tuple[np.ndarray, np.ndarray]:
    """The starting model on the user's labels: ``(probabilities, decisions)`` ``[n, n_labels]``; a label merged
    from several takes their largest probability and is predicted when one of them is; a new label gets 0."""
    proba = start.head_proba(fx.feats)
    pred = decisions(start, proba)
    out_p = np.zeros((len(fx), len(p.labels)), np.float32)
    out_d = np.zeros((len(fx), len(p.labels)), bool)
    for j, g in enumerate(p.labels):
        idx = [start.labels.index(s) for s in p.sources[g]]
        if idx:
            out_p[:, j] = proba[:, idx].max(1)
            out_d[:, j] = pred[:, idx].any(1)
    return out_p, out_d


def model_scores(b: ModelBundle, fx: Features) -> tuple[np.ndarray, np.ndarray]:
    proba = b.head_proba(with_lexical(fx, b.lexical))
    return proba, decisions(b, proba)


def summary(y: np.ndarray, proba: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    """Weighted / micro / macro F1, ECE and per-label F1 (and support) on one set of rows."""
    r = evaluate(y, pred, labels)
    per_ece = ece_per_label(y > 0, proba)
    return {"n_rows": r["n_rows"], "weighted_f1": r["weighted_f1"], "micro_f1": r["micro_f1"],
            "macro_f1": r["macro_f1"], "ece": ece(y > 0, proba),
            "per_label": {g: {"f1": r["per_label"][g]["f1"], "precision": r["per_label"][g]["precision"],
                              "recall": r["per_label"][g]["recall"], "support": r["per_label"][g]["support"],
                              "ece": float(per_ece[j])} for j, g in enumerate(labels)}}


def stratified_split(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, held)`` row indices, ``held`` about ``share`` of the rows, stratified over the labels."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    split = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
    rest, held = next(split.split(np.zeros(len(y)), (np.asarray(y) > 0).astype(int)))
    return np.sort(rest), np.sort(held)


def replay_rows(start: ModelBundle, p: Plan, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` movies of the starting model's training split (its table, its split.json), labelled in the user's
    label set through the label map. Raises ``AdaptInputError`` when the original table is not at hand."""
    from genrelens.data.table import resolve_data_path

    split, table = start.artifact("split"), resolve_data_path(start.config.data)
    if not split or not table.exists():
        raise AdaptInputError(f"replay needs the starting model's training table ({table}) and its split.json; use "
                              f"--regulariser l2")
    df, _ = start.config.read_table()
    train = df[df["id"].isin(set(split["train"]))]
    y = LabelSet(p.labels, aliases=False).encode([[p.mapping.get(g, g) for g in gs] for gs in train["genres"]])
    keep = np.flatnonzero(y.sum(1) > 0)
    pick = np.random.default_rng([seed, 7]).choice(keep, min(n, len(keep)), replace=False)
    part = train.iloc[pick].reset_index(drop=True)
    part.attrs.update(df.attrs)
    return part, y[pick]


@dataclass
class Fitted:
    model: ModelBundle
    seconds: float
    encode: Callable[[Features], Features] = lambda fx: fx  # the starting features -> the model's (--ft-layers)
    fine_tune_seconds: float = 0.0


def fit_on(start: ModelBundle, p: Plan, fx: Features, y: np.ndarray, cfg: AdaptConfig,
           replay: tuple[Features, np.ndarray] | None = None, progress: bool = False) -> Fitted:
    """One adaptation on the user's rows ``fx, y``: ``cal_share`` of them for thresholds and calibration, the
    rest (plus replayed movies) for the text encoder's top layers (``--ft-layers``), the head and lexical
    channel."""
    t0 = time.time()
    fit_rows, cal_rows = stratified_split(y, cfg.cal_share, cfg.seed)
    fit_fx, y_fit = fx.take(fit_rows), y[fit_rows]
    if replay is not None and cfg.regulariser == "replay":
        k = min(len(replay[1]), int(round(cfg.replay * len(fit_rows))))
        r_fx = replay[0].take(np.arange(k))
        fit_fx = Features({key: torch.cat([fit_fx.feats[key], r_fx.feats[key]]) for key in fit_fx.feats},
                          fit_fx.texts + r_fx.texts)
        y_fit = np.concatenate([y_fit, replay[1][:k]])
    cal_fx, text, encode, t_ft = fx.take(cal_rows), None, None, 0.0
    if cfg.ft_layers:
        enc, clf, run = finetune_text(start, p, fit_fx, y_fit, cal_fx, y[cal_rows], cfg, progress)
        text, encode, t_ft = (enc, clf.head), (lambda f: retext(enc, clf, run, f)), time.time() - t0
        fit_fx, cal_fx = encode(fit_fx), encode(cal_fx)
    b = adapted_bundle(start, p, fit_fx, y_fit, cal_fx, y[cal_rows], cfg, text)
    return Fitted(b, time.time() - t0, **({"encode": encode, "fine_tune_seconds": t_ft} if encode else {}))


def subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows of ``y`` (stratified), sorted."""
    if n >= len(y):
        return np.arange(len(y))
    return stratified_split(y, n / len(y), seed)[1]


@dataclass
class AdaptResult:
    model: ModelBundle
    report: dict
    helped: bool


def adapt(cfg: AdaptConfig, p: Plan | None = None, progress: bool = False,
          say: Callable[[str], None] = lambda s: None) -> AdaptResult:
    """Check, encode, hold out, adapt, compare (+ learning curve). Nothing is written: ``save`` writes."""
    t0 = time.time()
    p = p or plan(cfg)
    start = p.start
    cache = _cache(start)
    say(f"encoding {len(p.table)} movies with {start.path}'s encoders (feature cache as usual)")
    fx = features_of(start, p.table, cache, progress, ft_layers=cfg.ft_layers)
    t_feat = time.time() - t0
    rest, held = stratified_split(p.y, cfg.holdout, cfg.seed)
    replay = None
    if cfg.regulariser == "replay":
        part, y_rep = replay_rows(start, p, int(np.ceil(cfg.replay * len(rest))), cfg.seed)
        replay = (features_of(start, part, cache, progress), y_rep)
    fx_rest, y_rest, fx_held, y_held = fx.take(rest), p.y[rest], fx.take(held), p.y[held]
    say(f"adapting on {len(rest)} rows ({len(held)} held out to measure: {len(held) / len(p.y):.0%}, stratified "
        f"over the labels, for --holdout {cfg.holdout:g})"
        + (f", fine-tuning the top {cfg.ft_layers} text layer(s) first" if cfg.ft_layers else ""))
    fitted = fit_on(start, p, fx_rest, y_rest, cfg, replay, progress)
    before = summary(y_held, *start_scores(start, p, fx_held), p.labels)
    fx_held_adapted = fitted.encode(fx_held)
    after = summary(y_held, *model_scores(fitted.model, fx_held_adapted), p.labels)
    curve = []
    for n in [*(n for n in (cfg.curve or ()) if n < len(rest)), len(rest)]:
        if n == len(rest):
            point = after
        else:
            sub = subsample(y_rest, n, cfg.seed)
            if (y_rest[sub].sum(0) < 2).any():  # a label too rare to split: not a meaningful point
                curve.append({"rows": n, "skipped": "a label has fewer than 2 positives in this sample"})
                continue
            small = fit_on(start, p, fx_rest.take(sub), y_rest[sub], cfg, replay)
            point = summary(y_held, *model_scores(small.model, small.encode(fx_held)), p.labels)
        curve.append({"rows": n, **{k: point[k] for k in ("weighted_f1", "micro_f1", "macro_f1", "ece")}})
    helped = after["weighted_f1"] > before["weighted_f1"]
    lineage = {"started_from": str(Path(start.path).resolve()), "start_model": start.config.model,
               "start_weights_key": start.weights_key(), "adapted_on": str(Path(cfg.data).resolve()),
               "rows": int(len(p.y)), "fit_rows": int(len(rest)), "holdout_rows": int(len(held)),
               "label_map": p.mapping, "new_labels": p.new, "dropped_labels": p.dropped,
               "renamed_labels": p.renamed, "regulariser": cfg.regulariser,
               "kept_starting_output": (fitted.model.lineage or {}).get("kept_starting_output", []),
               "kept_as": (fitted.model.lineage or {}).get("kept_as", {}),
               "kept_exactly": exact_start(cfg),
               "settings": {"l2": cfg.l2, "lexical_l2": cfg.lexical_l2, "steps": cfg.steps, "lr": cfg.lr,
                            "lexical_lr": cfg.lexical_lr, "ft_layers": cfg.ft_layers,
                            "keep_margin": cfg.keep_margin, "replay": cfg.replay if cfg.regulariser == "replay"
                            else None, "cal_share": cfg.cal_share, "holdout": cfg.holdout, "seed": cfg.seed}}
    report = {"labels": p.labels, "rows": p.rows, "holdout": {"starting": before, "adapted": after},
              "learning_curve": curve,
              "helped": helped, "seconds": {"features": round(t_feat, 1), "adapt": round(fitted.seconds, 1),
                                            "fine_tune": round(fitted.fine_tune_seconds, 1),
                                            "total": round(time.time() - t0, 1)}, "lineage": lineage}
    b = fitted.model
    b.lineage = lineage
    proba_held, _ = model_scores(b, fx_held_adapted)
    b.artifacts = {"metrics": {"model": b.config.model, "adapted": True, "lineage": lineage,
                               "test": {**evaluate(y_held, decide(proba_held, b.calibrator.thresholds), p.labels),
                                        "ece": after["ece"]},
                               "adapt": {k: v for k, v in report.items() if k != "lineage"}},
                   "split": {"train": list(p.table["id"].iloc[rest]), "val": [],
                             "test": list(p.table["id"].iloc[held])},
                   "test_proba": b.head_proba(with_lexical(fx_held_adapted, b.lexical), calibrated=False),
                   "test_ids": list(p.table["id"].iloc[held])}
    return AdaptResult(b, report, helped)


def save(result: AdaptResult, out: Path) -> Path:
    """Write the adapted model folder (atomically: nothing appears at ``out`` unless it is complete)."""
    return result.model.save_pretrained(out)


def _cache(start: ModelBundle):
    from genrelens.encoders.cache import FeatureCache

    return FeatureCache(start.config.cache_dir) if start.config.cache_dir else FeatureCache()
