"""Why the model predicts a genre: modality shares, plot-word attributions and a poster heatmap.

For one movie and each predicted genre:

- **modalities**: exact Shapley values of the plot and the poster over the genre's logit. A modality is
  "absent" when the head gets its learned missing-modality placeholder, so the four coalitions (none, plot,
  poster, both) take 4 forward passes of the head. ``plot + poster = logit(both) - logit(none)``.
- **words**: occlusion over the plot's words (captum ``FeatureAblation`` on the attention mask: a word's
  tokens, at every occurrence, are hidden, all other tokens and the poster stay): attribution = logit with the
  word - logit without it. Positive words speak for the genre. English stop words are not occluded (they get
  0), nor words after the first ``MAX_WORDS`` distinct ones; one batch of ``n_distinct_words + 1`` encodings
  (one ONNX Runtime call) serves every genre.
- **poster_heatmap**: Grad-CAM (captum ``LayerGradCam``) on the CNN's last convolution (7x7 cells for a
  224-pixel crop; the frozen CNN up to there runs once, on ONNX Runtime), rendered as a PNG over the 224x224
  center crop the CNN sees (the rest of the poster is not read by the model).

Attributions are on the raw logit scale (calibration is monotone per label: signs and rankings are the same).
"""

from __future__ import annotations

import base64
import io
import re
import string
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from scipy.special import expit

from genrelens.data.table import clean_text
from genrelens.errors import ModelError
from genrelens.models.lexical import fused_proba


class GenreClassifier(Protocol):
    """What explanations read of ``genrelens.predict.GenreClassifier`` (typed structurally: predict imports this
    module, and this layer lies below it)."""

    bundle: Any
    calibrated: bool
    calibrator: Any
    config: Any
    head: Any
    labels: list[str]
    name: str
    poster_encoder: Any
    text_encoder: Any
    thresholds: np.ndarray
    uses_poster: bool
    uses_text: bool

    def decide(self, proba: np.ndarray) -> np.ndarray: ...

    def features(self, plots=None, posters=None, root=None, progress: bool = False,
                 titles=None) -> tuple[dict[str, torch.Tensor], dict[int, str]]: ...

    def head_proba(self, feats: dict[str, torch.Tensor], calibrated: bool = True) -> np.ndarray: ...


TOP_WORDS = 10
MAX_WORDS = 40  # distinct words occluded per plot: one text-encoder sequence each, in one batch
WORD_BATCH = 64
_WORD = re.compile(r"\S+")
_PUNCT = string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"


def _lexical(clf: GenreClassifier):
    """The model's late-fused lexical channel (``genrelens.models.lexical``), or None."""
    lexical = getattr(clf.bundle, "lexical", None)
    return None if lexical is None or clf.bundle.spec.text == "lexical" else lexical


def _logits(clf: GenreClassifier, feats: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of the model's raw (uncalibrated) probabilities: the head's logits, or, for a model with a
    lexical channel, the logit of ``(1 - w) sigmoid(head) + w sigmoid(lexical)`` on rows with a plot (as
    ``GenreClassifier.head_proba`` fuses them; float64, clipped to +-16)."""
    with torch.inference_mode():
        z = clf.head(feats)
        lexical = _lexical(clf)
        if lexical is None or "lexical" not in feats:
            return z
        fused = fused_proba(torch.sigmoid(z.double()).numpy(), feats["lexical"].double().numpy(),
                            feats["text_mask"].bool().numpy(), float(lexical.weight), dtype=np.float64)
        return torch.logit(torch.from_numpy(fused).clamp(1e-7, 1 - 1e-7))


def modality_shapley(clf: GenreClassifier, feats: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Exact Shapley values of the two modalities for one movie's features (batch of 1) over every label's
    logit: ``{"plot": [L], "poster": [L], "none": [L], "both": [L], "plot_only": [L], "poster_only": [L]}``
    (the last four: logits of the coalitions). A model reading one modality gives it everything."""
    mods = getattr(clf.head, "modalities", ())
    if not (clf.uses_text and clf.uses_poster and set(mods) == {"text", "poster"}):
        full = _logits(clf, feats)[0].numpy()
        only = "text" if clf.uses_text else "poster"
        absent = {k: (torch.zeros_like(v) if k == f"{only}_mask" else v) for k, v in feats.items()}
        none = _logits(clf, absent)[0].numpy()
        zero = np.zeros_like(full)
        return {"plot": full - none if only == "text" else zero, "poster": full - none if only == "poster" else zero,
                "none": none, "both": full, "plot_only": full if only == "text" else none,
                "poster_only": full if only == "poster" else none}
    t_mask, p_mask = feats["text_mask"].bool(), feats["poster_mask"].bool()
    coalition_t = torch.tensor([False, True, False, True]) & t_mask
    coalition_p = torch.tensor([False, False, True, True]) & p_mask
    batch = {k: v.expand(4, *v.shape[1:]) for k, v in feats.items() if not k.endswith("_mask")}
    batch.update(text_mask=coalition_t, poster_mask=coalition_p)
    v = _logits(clf, batch).numpy()  # [4, L]: none, plot, poster, both
    phi_t = 0.5 * ((v[1] - v[0]) + (v[3] - v[2]))
    phi_p = 0.5 * ((v[2] - v[0]) + (v[3] - v[1]))
    return {"plot": phi_t, "poster": phi_p, "none": v[0], "both": v[3], "plot_only": v[1], "poster_only": v[2]}


def plot_words(text: str) -> list[tuple[str, int, int]]:
    """The plot's whitespace-separated words, outer punctuation trimmed ("Alien." is "Alien"), as ``(word, start,
    end)`` character spans; a run of punctuation alone is not a word."""
    out = []
    for m in _WORD.finditer(text):
        word = m.group()
        core = word.strip(_PUNCT)
        if core:
            start = m.start() + len(word) - len(word.lstrip(_PUNCT))
            out.append((core, start, start + len(core)))
    return out


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def word_types(words: list[tuple[str, int, int]], max_words: int = MAX_WORDS) -> np.ndarray:
    """``int [n_words]``: which occlusion group each word belongs to (1..k), 0 for words not occluded.

    Every occurrence of a word (lower-cased, outer punctuation stripped) forms one group, hidden together;
    English stop words (scikit-learn's list) and words without a letter or digit are not occluded, and only
    the first ``max_words`` groups in reading order are (the text encoder reads the plot's start anyway)."""
    stop = _stop_words()
    index: dict[str, int] = {}
    out = np.zeros(len(words), dtype=np.int64)
    for i, (w, _, _) in enumerate(words):
        key = w.strip(_PUNCT).lower()
        if not key or key in stop or not any(ch.isalnum() for ch in key):
            continue
        if key not in index:
            if len(index) >= max_words:
                continue
            index[key] = len(index) + 1
        out[i] = index[key]
    return out


def word_attributions(clf: GenreClassifier, plot: str, feats: dict[str, torch.Tensor],
                      max_words: int = MAX_WORDS) -> tuple[list, np.ndarray]:
    """``(words [(word, start, end)], attributions float [n_words, L])``: logit drop when the word's tokens
    (those of every occurrence of the word) are hidden from the text encoder (captum FeatureAblation over the
    attention mask, all variants in one or a few batched passes); stop words, words past the token limit and
    words after the first ``max_words`` distinct ones get 0 (see ``word_types``).

    A plot read as several token windows (``TextEncoder.set_windows``): only the windows holding the word
    are encoded again, the others keep their embeddings; the windows are pooled as the encoder pools them.
    A model with a lexical channel: the word is also deleted from the text its TF-IDF channel reads, and the
    logits are those of the fused probabilities (``_logits``)."""
    from captum.attr import FeatureAblation

    words = plot_words(plot)
    n_labels = len(clf.labels)
    enc = clf.text_encoder
    if not words or enc is None:
        return words, np.zeros((len(words), n_labels))
    n_win = int(getattr(enc, "windows", 1))
    if n_win > 1:
        tok = enc.tokenizer([plot[:n_win * enc.max_length * 16]], truncation=True, max_length=enc.max_length,
                            stride=enc.stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    else:
        tok = enc.tokenizer([plot], truncation=True, max_length=enc.max_length, return_offsets_mapping=True)
    seqs, offsets = tok["input_ids"][:n_win], tok["offset_mapping"][:n_win]  # as TextEncoder.window_ids
    starts = np.array([s for _, s, _ in words])
    ends = np.array([e for _, _, e in words])
    types = word_types(words, max_words)
    group = np.zeros(sum(len(x) for x in seqs), dtype=np.int64)  # 0: special tokens, words kept (never hidden)
    bounds = np.cumsum([0] + [len(x) for x in seqs])
    for w, offs in enumerate(offsets):
        for i, (s, e) in enumerate(offs):
            k = int(np.searchsorted(starts, s, side="right")) - 1
            if e > s and k >= 0 and s < ends[k]:  # a token of the word (its punctuation is not hidden with it)
                group[bounds[w] + i] = types[k]
    out = np.zeros((len(words), n_labels))
    present = sorted(set(group[group > 0].tolist()))
    if not present:
        return words, out
    width = max(len(x) for x in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    for w, x in enumerate(seqs):
        ids[w, :len(x)] = torch.tensor(x)
    lengths = torch.tensor([len(x) for x in seqs])
    full_mask = (torch.arange(width)[None] < lengths[:, None]).long()
    base = _encode_ids(enc, ids, full_mask)  # [n_win, dim]: every window as it is
    lexical = _lexical(clf) if "lexical" in feats else None
    first_token = {g: int(np.flatnonzero(group == g)[0]) for g in present}
    others = {k: v for k, v in feats.items() if not k.startswith("text") and k != "lexical"}

    def forward(mask: torch.Tensor) -> torch.Tensor:
        k = len(mask)
        emb = base[None].repeat(k, 1, 1)  # [k, n_win, dim]
        need, rows = [], []
        for r in range(k):
            for w in range(len(seqs)):
                seg = mask[r, bounds[w]:bounds[w + 1]]
                if not bool(seg.all()):
                    padded = torch.zeros(width, dtype=torch.long)
                    padded[:len(seg)] = seg
                    need.append((r, w))
                    rows.append(padded)
        if need:
            new = _encode_ids(enc, ids[[w for _, w in need]], torch.stack(rows))
            for i, (r, w) in enumerate(need):
                emb[r, w] = new[i]
        text = _pool_windows(enc, emb)
        batch = {"text": text, "text_mask": torch.ones(k, dtype=torch.bool)}
        batch.update({key: v.expand(k, *v.shape[1:]) for key, v in others.items()})
        if lexical is not None:
            hidden = [{g for g, t in first_token.items() if mask[r, t] == 0} for r in range(k)]
            texts = [" ".join(x for (x, _, _), t in zip(words, types) if t not in h) for h in hidden]
            lex = feats["lexical"].expand(k, -1).clone()
            changed = [r for r in range(k) if hidden[r]]
            if changed:
                lex[changed] = torch.as_tensor(lexical.logits([texts[r] for r in changed]), dtype=lex.dtype)
            batch["lexical"] = lex
        return _logits(clf, batch)

    mask = torch.ones((1, len(group)), dtype=torch.long)
    ablation = FeatureAblation(forward)
    attr = ablation.attribute(mask, baselines=0, feature_mask=torch.as_tensor(group)[None],
                              perturbations_per_eval=WORD_BATCH)  # [L, 1, T]: per output, per token
    per_token = attr[:, 0, :].numpy().T if attr.dim() == 3 else attr.numpy().reshape(n_labels, -1).T
    for g in present:
        out[types == g] = per_token[first_token[g]]
    return words, out


def _encode_ids(enc, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sentence embeddings ``[k, dim]`` of token ids ``[k, T]`` under attention masks ``[k, T]``."""
    if enc.session is not None:
        feed = {"input_ids": ids.numpy().astype(np.int64), "attention_mask": mask.numpy().astype(np.int64)}
        return torch.from_numpy(enc.session.run(None, feed)[0])
    with torch.inference_mode():
        return enc.embed({"input_ids": ids, "attention_mask": mask}).float()


class _MapsToLogits(torch.nn.Module):
    """The model from the CNN's last feature maps to logits, with the other modality held fixed.

    ``forward(maps)``: for a frozen CNN, ``maps`` are the last convolution's batch-normalised outputs
    ``[k, 1280, 7, 7]`` (then ReLU6, mean pooling, the head); for a fine-tuned last block, that block's input
    ``[k, C, 7, 7]`` (then the head's trainable top). ``layer`` is where Grad-CAM reads."""

    def __init__(self, clf: GenreClassifier, feats: dict[str, torch.Tensor]):
        super().__init__()
        self.clf, self.feats = clf, feats
        self.finetuned = bool(clf.config.poster_finetune)
        self.layer = clf.head.top.bn if self.finetuned else torch.nn.Identity()

    def maps(self, pixels: np.ndarray) -> torch.Tensor:
        """The CNN's frozen part on preprocessed pixels ``[k, 3, s, s]`` (no gradient needed through it): an
        ONNX Runtime session when the poster encoder runs on ONNX (exported once into the feature cache's
        ``onnx/`` folder), else eager torch."""
        x = np.ascontiguousarray(pixels, dtype=np.float32)
        enc = self.clf.poster_encoder
        if getattr(enc, "session", None) is not None:
            session = _maps_session(enc, self.finetuned)
            return torch.from_numpy(session.run(None, {"pixels": x})[0])
        with torch.no_grad():
            return _FrozenMaps(enc.model, self.finetuned).eval()(torch.from_numpy(x))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        k = len(maps)
        if self.finetuned:
            poster = self.clf.head.top(maps)
        else:
            poster = torch.nn.functional.relu6(self.layer(maps)).mean((2, 3))
        batch = {key: v.expand(k, *v.shape[1:]) for key, v in self.feats.items() if key != "poster"}
        batch.update(poster=poster, poster_mask=torch.ones(k, dtype=torch.bool))
        return self.clf.head(batch)


class _FrozenMaps(torch.nn.Module):
    """Pixels ``[k, 3, s, s]`` -> what Grad-CAM reads: the last convolution's batch-normalised outputs
    ``[k, 1280, h, w]`` (frozen CNN), or the last block's input ``[k, C, h, w]`` (fine-tuned last block)."""

    def __init__(self, cnn: torch.nn.Module, finetuned: bool):
        super().__init__()
        self.cnn, self.finetuned = cnn, finetuned

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from genrelens.encoders.poster import CNNBottom

        if self.finetuned:
            return CNNBottom(self.cnn)(x)
        cnn = self.cnn
        x = cnn._swish(cnn._bn0(cnn._conv_stem(x)))
        for block in cnn._blocks:
            x = block(x)
        return cnn._bn1(cnn._conv_head(x))


def _maps_session(enc, finetuned: bool):
    """An ONNX Runtime session of ``_FrozenMaps`` for the poster encoder ``enc`` (kept on it), exported once
    beside the encoder's own export (same weights key)."""
    attr = "_explain_maps_bottom" if finetuned else "_explain_maps"
    session = getattr(enc, attr, None)
    if session is None:
        import warnings

        from genrelens.encoders.onnx import ONNX_OPSET, ort_session
        from genrelens.io import atomic_path

        path = enc.onnx_path.with_name(f"{enc.onnx_path.stem}-{'bottom' if finetuned else 'maps'}.onnx")
        if not path.is_file():
            dummy = torch.zeros(1, 3, enc.input_size, enc.input_size)
            with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(_FrozenMaps(enc.model, finetuned).eval(), (dummy,), str(tmp),
                                  input_names=["pixels"], output_names=["maps"],
                                  dynamic_axes={"pixels": {0: "n"}, "maps": {0: "n"}}, opset_version=ONNX_OPSET,
                                  dynamo=False)
        session = ort_session(path, enc.num_threads)
        setattr(enc, attr, session)
    return session


def poster_cams(clf: GenreClassifier, pixels: np.ndarray, feats: dict[str, torch.Tensor],
                targets: list[int]) -> np.ndarray:
    """Grad-CAM maps ``float [len(targets), h, w]`` (ReLU'd, not normalised) on the CNN's last convolution
    (captum ``LayerGradCam``). The CNN runs once; each genre costs one pass through the head."""
    from captum.attr import LayerGradCam

    model = _MapsToLogits(clf, feats).eval()
    maps = model.maps(pixels)
    cam = LayerGradCam(model, model.layer)
    out = [cam.attribute(maps, target=t, relu_attributions=True).detach()[0, 0].numpy() for t in targets]
    return np.stack(out) if out else np.zeros((0, *maps.shape[-2:]))


def upsample(cam: np.ndarray, size: int) -> np.ndarray:
    """A ``[h, w]`` map bilinearly resized to ``[size, size]``."""
    t = torch.as_tensor(cam, dtype=torch.float32)[None, None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()


def heatmap_png(pixels: np.ndarray, cam: np.ndarray) -> bytes:
    """PNG of the CNN's view (``pixels [3, s, s]`` preprocessed) with ``cam [h, w]`` laid over it."""
    from matplotlib import colormaps
    from PIL import Image

    size = pixels.shape[-1]
    rgb = np.clip(pixels.transpose(1, 2, 0) * 128 + 127, 0, 255)
    heat = upsample(cam, size)
    heat = heat / heat.max() if heat.max() > 0 else heat
    color = colormaps["inferno"](heat)[..., :3] * 255
    alpha = 0.25 + 0.5 * heat[..., None]
    blend = (rgb * 0.45 + 0.55 * (rgb * (1 - alpha) + color * alpha)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(blend).save(buf, format="PNG", compress_level=3)  # optimize=True cost 70 ms per heatmap
    return buf.getvalue()


def explain(clf: GenreClassifier, plot: str | None = None, poster=None, genres: list[str] | None = None,
            top_k: int = TOP_WORDS, out_dir: str | Path | None = None, heatmaps: bool = True) -> dict:
    """Explain one movie's prediction. ``poster``: a path, bytes or a PIL image; ``genres``: the genres to
    explain (default: the predicted ones). Returns a JSON-ready dict::

        {"genres": [...], "probabilities": {g: p}, "thresholds": {g: t},
         "modalities": {g: {"plot", "poster", "plot_share", "poster_share", "base_logit", "logit",
                            "probability_plot_only", "probability_poster_only"}},
         "words": {g: [{"word", "start", "end", "attribution"}, ...]},   # top_k distinct words by |attribution|
         "text": the text read (the plot; "<title>. <plot>" for a model that reads titles),
         "plot_words": [{"word", "start", "end"}] (offsets into "text"), "word_attributions": {g: [float per word]},
         "poster_heatmap": {g: base64 PNG, or a file path when out_dir is given}, "method": {...}}
    """
    if clf.bundle.spec.fitted:
        if clf.bundle.spec.text == "lexical":
            raise ModelError(f"the {clf.name} model (TF-IDF + logistic regression) has no explanation yet: "
                             f"explanations cover the neural models")
        raise ModelError(f"the {clf.name} model answers label frequencies for every movie: nothing to explain")
    plot = clean_text(plot) if isinstance(plot, str) else ""
    image = None
    if poster is not None and clf.uses_poster:
        image = clf.poster_encoder.load(poster)  # raises PosterError (a GenrelensError) on a bad poster
    if not plot.strip() and image is None:
        raise ModelError("give a plot or a poster to explain")
    feats, _ = clf.features([plot], [image])
    raw = clf.head_proba(feats, calibrated=False)
    proba = clf.calibrator.transform(raw) if clf.calibrator is not None else raw
    pred = clf.decide(proba)[0]
    if genres is None:
        targets = [int(j) for j in np.argsort(-proba[0], kind="stable") if pred[j]]
    else:
        unknown = [g for g in genres if g not in clf.labels]
        if unknown:
            raise ModelError(f"unknown genre(s) {unknown}; the model's labels: {clf.labels}")
        targets = [clf.labels.index(g) for g in genres]
    names = [clf.labels[j] for j in targets]

    shap = modality_shapley(clf, feats)

    def calibrated(logit: np.ndarray) -> np.ndarray:
        p = expit(logit.astype(np.float64))[None]
        return (clf.calibrator.transform(p) if clf.calibrator is not None else p)[0]

    p_plot, p_poster = calibrated(shap["plot_only"]), calibrated(shap["poster_only"])
    modalities = {}
    for j, g in zip(targets, names):
        t, p = float(shap["plot"][j]), float(shap["poster"][j])
        total = abs(t) + abs(p)
        modalities[g] = {"plot": round(t, 4), "poster": round(p, 4),
                         "plot_share": round(abs(t) / total, 4) if total else 0.0,
                         "poster_share": round(abs(p) / total, 4) if total else 0.0,
                         "base_logit": round(float(shap["none"][j]), 4), "logit": round(float(shap["both"][j]), 4),
                         "probability_plot_only": round(float(p_plot[j]), 4),
                         "probability_poster_only": round(float(p_poster[j]), 4)}

    has_plot = bool(plot.strip()) and clf.uses_text
    words, attr = word_attributions(clf, plot, feats) if has_plot else ([], np.zeros((0, len(clf.labels))))
    word_lists, per_word = {}, {}
    types = word_types(words) if words else np.zeros(0, dtype=np.int64)
    first = np.unique(types, return_index=True)[1]  # a word's first occurrence stands for all of them
    for j, g in zip(targets, names):
        order = [i for i in first[np.argsort(-np.abs(attr[first, j]), kind="stable")] if attr[i, j] != 0][:top_k]
        word_lists[g] = [{"word": words[i][0], "start": words[i][1], "end": words[i][2],
                          "attribution": round(float(attr[i, j]), 4)} for i in order]
        per_word[g] = [round(float(a), 4) for a in attr[:, j]]

    heat: dict[str, str] = {}
    cells: dict[str, list] = {}
    if image is not None and heatmaps:
        from genrelens.data.images import preprocess

        pixels = preprocess([image], clf.poster_encoder.input_size)
        cams = poster_cams(clf, pixels, feats, targets)
        out = Path(out_dir) if out_dir is not None else None
        for k, g in enumerate(names):
            data = heatmap_png(pixels[0], cams[k])
            cells[g] = [[round(float(x), 5) for x in row] for row in cams[k]]
            if out is not None:
                from genrelens.io import write_bytes_atomic

                path = out / f"heatmap-{_slug(g)}.png"
                write_bytes_atomic(path, data)
                heat[g] = str(path)
            else:
                heat[g] = base64.b64encode(data).decode("ascii")

    return {"genres": names,
            "probabilities": {g: round(float(proba[0, j]), 4) for j, g in zip(targets, names)},
            "thresholds": {g: round(float(clf.thresholds[j]), 4) for j, g in zip(targets, names)},
            "modalities": modalities, "words": word_lists,
            "text": plot, "plot_words": [{"word": w, "start": s, "end": e} for w, s, e in words],
            "word_attributions": per_word, "poster_heatmap": heat, "poster_cells": cells,
            "method": {"modalities": "exact Shapley values over {plot, poster} on the logit (missing = the "
                                     "head's placeholder)",
                       "words": "occlusion: logit with the word - logit with its tokens (every occurrence) "
                                "hidden; stop words not occluded",
                       "poster": "Grad-CAM on the CNN's last convolution, over the 224x224 center crop it reads",
                       "calibrated": clf.calibrated}}


def _pool_windows(enc, emb: torch.Tensor) -> torch.Tensor:
    """``[k, n_windows, dim]`` (k variants of one text's windows) -> ``[k, dim]``, pooled by the encoder's own
    ``pool_windows``, so explanations read a text exactly as prediction does."""
    k, n_win, dim = emb.shape
    owner = np.repeat(np.arange(k), n_win)
    return torch.from_numpy(enc.pool_windows(emb.reshape(k * n_win, dim).float().numpy(), owner, k))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "genre"


def render_text(explanation: dict, n_words: int = 6) -> str:
    """A few plain lines per explained genre (for the CLI)."""
    lines = []
    for g in explanation["genres"]:
        m = explanation["modalities"][g]
        words = explanation["words"].get(g, [])
        pos = [f"{w['word']} (+{w['attribution']:.2f})" for w in words if w["attribution"] > 0][:n_words]
        neg = [f"{w['word']} ({w['attribution']:.2f})" for w in words if w["attribution"] < 0][:3]
        line = (f"why {g} (p={explanation['probabilities'][g]:.2f}): plot {m['plot_share']:.0%} "
                f"({m['plot']:+.2f}), poster {m['poster_share']:.0%} ({m['poster']:+.2f}) of the logit change")
        lines.append(line)
        if pos:
            lines.append(f"  words for it: {', '.join(pos)}")
        if neg:
            lines.append(f"  words against it: {', '.join(neg)}")
        if g in explanation["poster_heatmap"] and not explanation["poster_heatmap"][g].startswith("iVBOR"):
            lines.append(f"  poster heatmap: {explanation['poster_heatmap'][g]}")
    return "\n".join(lines)


def faithfulness(clf: GenreClassifier, plots: list[str], posters: list, k_words: int = 5, share: float = 0.2,
                 seed: int = 0) -> dict:
    """Deletion test over movies with a plot and a poster: for each movie's most probable genre, how much its
    probability falls when the ``k_words`` most supporting words are deleted from the plot vs ``k_words``
    random words, and when the top-attributed ``share`` of the poster's Grad-CAM cells (the crop the CNN
    reads) is greyed out vs a random ``share`` of the cells. Returns mean drops, per-movie drops and the
    one-sided paired Wilcoxon p-values (attributed > random)."""
    from scipy.stats import wilcoxon

    from genrelens.data.images import preprocess

    rng = np.random.default_rng(seed)
    rows: dict[str, list[float]] = {k: [] for k in ("words_top", "words_random", "poster_top", "poster_random")}
    for plot, poster in zip(plots, posters):
        plot = clean_text(plot)
        image = clf.poster_encoder.load(poster)
        feats, _ = clf.features([plot], [image])
        proba = clf.head_proba(feats)[0]
        g = int(np.argmax(proba))
        words, attr = word_attributions(clf, plot, feats)
        keep_top = set(np.argsort(-attr[:, g], kind="stable")[:k_words].tolist())
        keep_rand = set(rng.choice(len(words), size=min(k_words, len(words)), replace=False).tolist())
        texts = [" ".join(w for i, (w, _, _) in enumerate(words) if i not in drop) for drop in (keep_top, keep_rand)]
        pixels = preprocess([image], clf.poster_encoder.input_size)
        cam = poster_cams(clf, pixels, feats, [g])[0]
        h, w = cam.shape
        n_cells = max(1, round(share * h * w))
        top_cells = np.argsort(-cam.ravel(), kind="stable")[:n_cells]
        rand_cells = rng.choice(h * w, size=n_cells, replace=False)
        masked = np.repeat(pixels, 2, axis=0)
        side = pixels.shape[-1]
        for m, cells in enumerate((top_cells, rand_cells)):
            for c in cells:
                r, q = divmod(int(c), w)
                masked[m, :, r * side // h:(r + 1) * side // h, q * side // w:(q + 1) * side // w] = 0.0
        text_f, _ = clf.features(texts, [image, image])
        poster_f = torch.from_numpy(clf.poster_encoder.features(masked))
        both = {k: v.expand(2, *v.shape[1:]) for k, v in feats.items()}
        p_words = clf.head_proba({**both, "text": text_f["text"], "text_mask": text_f["text_mask"]})[:, g]
        p_poster = clf.head_proba({**both, "poster": poster_f})[:, g]
        rows["words_top"].append(float(proba[g] - p_words[0]))
        rows["words_random"].append(float(proba[g] - p_words[1]))
        rows["poster_top"].append(float(proba[g] - p_poster[0]))
        rows["poster_random"].append(float(proba[g] - p_poster[1]))
    out: dict = {"n_movies": len(rows["words_top"]), "k_words": k_words, "poster_share": share}
    for k, v in rows.items():
        out[f"mean_drop_{k}"] = float(np.mean(v)) if v else 0.0
    for part in ("words", "poster"):
        a, b = np.array(rows[f"{part}_top"]), np.array(rows[f"{part}_random"])
        out[f"p_value_{part}"] = float(wilcoxon(a, b, alternative="greater").pvalue) if len(a) > 1 and (a != b).any() \
            else 1.0
    out["per_movie"] = rows
    return out
