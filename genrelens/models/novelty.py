"""Why an answer is doubtful: review reasons that depend on the input, not on the model's scores.

- ``out_of_distribution``: the movie is unlike the training movies in the model's own feature space. Per
  modality (the text encoder's plot embedding, or for a fine-tuned encoder its probe: the mean-pooled states of
  a frozen layer, ``bundle.probe_layer``, which fine-tuning leaves pretrained; the poster CNN's features), the
  score is the mean cosine distance to the ``k`` nearest training movies (a stored, subsampled float16 reference
  set: a numpy matmul at prediction, no scikit-learn), divided by that modality's validation quantile; a movie's
  novelty is the largest over the modalities it has. The cut-off is the validation quantile of the novelty at
  ``1 - false_flag_rate``, so about that share of validation movies is flagged. A model with neither (``tfidf``,
  ``naive``) gets no such reason: the lexical channel's label logits do not set non-movie texts apart.
- ``language``: the plot is confidently in a language that few or none of the training plots were written in
  (language identification by py3langid, whose model ships inside its wheel; loaded on first use).
- ``short_text``: the plot has fewer than ``min_words`` words (a CJK character counts as a word).

``Novelty`` is fitted at the end of training (``train/run.py``) or on an existing model folder
(``genrelens.trust.fit_novelty``) and saved by the bundle as ``novelty.json`` + ``novelty.safetensors``.
``review_reasons(novelty, plots, feats)`` returns the reason codes of a batch.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelens.errors import ModelError
from genrelens.io import atomic_path, write_json_atomic

SHORT_TEXT = "short_text"
LANGUAGE = "language"
OUT_OF_DISTRIBUTION = "out_of_distribution"
REASONS = (SHORT_TEXT, LANGUAGE, OUT_OF_DISTRIBUTION)
REASON_TEXT = {  # each code in plain words, for people reading a prediction
    SHORT_TEXT: "the plot is too short to judge",
    LANGUAGE: "the plot is in a language the model was not trained on",
    OUT_OF_DISTRIBUTION: "the input is unlike the movies the model was trained on",
}

DEFAULT_RATE = 0.05  # share of validation movies flagged out_of_distribution
DEFAULT_K = 5
DEFAULT_MAX_REFERENCE = 5000  # training movies kept per modality
MIN_WORDS = 5  # a plot with fewer words is too short to judge (see docs/trust.md)
# A short text lies farther from its nearest training plots than a long one of the same kind, so the text probe's
# distance is scaled per plot length (in words): bins below 10, 10-19, 20-39 and 40 or more words, each with its
# own validation quantile, from the validation plots and their openings cut to TRUNCATE_WORDS words.
LENGTH_EDGES = (10, 20, 40)
TRUNCATE_WORDS = (8, 15, 30)
WORDS_KEY = "text_probe_words"  # per movie: the words of its plot (title apart), for the length scales
LANGUAGE_MIN_CONFIDENCE = 0.5  # py3langid probability above which a detection is trusted
LANGUAGE_MIN_SHARE = 0.005  # a language is "trained" when at least this share of training plots has it ...
LANGUAGE_MIN_COUNT = 5  # ... and at least this many
# the features scored: the text encoder's probe (pretrained states of a fine-tuned encoder) stands in for its
# fine-tuned features, which are tuned to genres and hardly set non-movie texts apart (docs/trust.md)
MODALITIES = ("text_probe", "text", "poster")
_VERSION = 1
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
_IDENTIFIER = None


def word_count(text: str | None) -> int:
    """Words of ``text``: runs of letters/digits; each CJK ideograph or kana counts as one word."""
    return len(_WORD.findall(text)) if isinstance(text, str) else 0


def detect_languages(texts: Sequence[str | None]) -> list[tuple[str, float]]:
    """``(ISO 639-1 code, probability)`` per text by py3langid (its model is loaded once, from its wheel, on first
    use); ``("", 0.0)`` for an empty text."""
    global _IDENTIFIER
    if _IDENTIFIER is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    out = []
    for t in texts:
        if isinstance(t, str) and t.strip():
            lang, p = _IDENTIFIER.classify(t)
            out.append((str(lang), float(p)))
        else:
            out.append(("", 0.0))
    return out


def trained_languages(plots: Sequence[str | None], min_share: float = LANGUAGE_MIN_SHARE,
                      min_count: int = LANGUAGE_MIN_COUNT,
                      min_confidence: float = LANGUAGE_MIN_CONFIDENCE) -> tuple[list[str], dict[str, int]]:
    """``(languages, counts)``: the languages confidently detected in at least ``min_share`` (and ``min_count``)
    of the training plots that have ``MIN_WORDS`` words or more, and the counts of every language detected."""
    plots = [p for p in plots if word_count(p) >= MIN_WORDS]
    found = Counter(lang for lang, p in detect_languages(plots) if lang and p >= min_confidence)
    need = max(min_count, min_share * len(plots))
    return sorted(lang for lang, c in found.items() if c >= need), dict(found.most_common())


def _array(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def modality_features(feats: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{modality: (features float32 [n, d], present bool [n])}`` of a head input batch (``text``/``text_mask``,
    ``poster``/``poster_mask``: see ``GenreClassifier.features``). Poster maps ``[n, C, h, w]`` are mean-pooled."""
    out = {}
    for m in MODALITIES:
        if m not in feats:
            continue
        x = _array(feats[m]).astype(np.float32)
        if x.ndim > 2:
            x = x.reshape(len(x), x.shape[1], -1).mean(-1)
        mask_key = f"{m}_mask"
        mask = _array(feats[mask_key]).astype(bool) if mask_key in feats else np.ones(len(x), dtype=bool)
        out[m] = (x, mask & np.isfinite(x).all(1))
    return out


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_distance(x: np.ndarray, reference: np.ndarray, k: int, batch: int = 1024) -> np.ndarray:
    """Mean cosine distance of each row of ``x`` to its ``k`` nearest rows of ``reference`` (L2-normalized)."""
    x = _normalize(x)
    k = max(1, min(k, len(reference)))
    out = np.empty(len(x), dtype=np.float32)
    for i in range(0, len(x), batch):
        sims = x[i: i + batch] @ reference.T
        top = np.partition(sims, len(reference) - k, axis=1)[:, len(reference) - k:]
        out[i: i + batch] = 1.0 - top.mean(1)
    return out


@dataclass
class Novelty:
    """What a model folder keeps to name doubtful inputs (see the module's doc).

    ``references``: ``{modality: L2-normalized float16 [m, d]}``; ``scales``: each modality's raw-distance
    validation quantile; ``cutoff``: novelty above it is ``out_of_distribution``; ``languages``: the languages of
    the training plots; ``min_words``: ``short_text`` below it; ``report``: the fit's figures; ``length_scales``:
    the text probe's scale per plot length bin (``LENGTH_EDGES``; empty: one scale for every length)."""

    references: dict[str, np.ndarray]
    scales: dict[str, float]
    cutoff: float
    k: int = DEFAULT_K
    false_flag_rate: float = DEFAULT_RATE
    languages: list[str] = field(default_factory=list)
    min_words: int = MIN_WORDS
    language_min_confidence: float = LANGUAGE_MIN_CONFIDENCE
    report: dict = field(default_factory=dict)
    length_scales: list[float] = field(default_factory=list)  # text_probe: one scale per LENGTH_EDGES bin
    _refs32: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    # --- fitting ---------------------------------------------------------------------------------
    @classmethod
    def fit(cls, train: Mapping[str, Any], val: Mapping[str, Any], train_plots: Sequence[str | None] | None = None,
            false_flag_rate: float = DEFAULT_RATE, k: int = DEFAULT_K, max_reference: int = DEFAULT_MAX_REFERENCE,
            seed: int = 0, min_words: int = MIN_WORDS, openings: Mapping[str, Any] | None = None) -> Novelty:
        """Fit on the head input batches of the training split (``train``: the reference set, subsampled to
        ``max_reference`` movies per modality) and the validation split (``val``: the scales and the cut-off, at
        ``false_flag_rate``); ``train_plots``: the training plots, whose languages become ``languages``. With no
        modality that has training and validation movies, nothing is ever ``out_of_distribution`` (cut-off inf).
        ``openings``: the head input batch of the validation plots cut to their first words (``plot_openings``): with
        the validation plots, they set the text probe's per-length scales (``WORDS_KEY`` in both batches)."""
        if not 0 < false_flag_rate < 1:
            raise ValueError(f"false_flag_rate must be in (0, 1), not {false_flag_rate}")
        rng = np.random.default_rng([seed, 26])
        tr, va = modality_features(train), modality_features(val)
        if "text_probe" in tr and tr["text_probe"][1].any():
            tr.pop("text", None)
        refs, scales, per = {}, {}, {}
        for m, (x, mask) in tr.items():
            rows = np.flatnonzero(mask)
            if m not in va or not va[m][1].any() or len(rows) <= k:
                continue
            if len(rows) > max_reference:
                rows = np.sort(rng.choice(rows, max_reference, replace=False))
            refs[m] = _normalize(x[rows]).astype(np.float16)
            xv, mv = va[m]
            d = knn_distance(xv[mv], refs[m].astype(np.float32), k)
            scales[m] = float(max(np.quantile(d, 1 - false_flag_rate), 1e-6))
            per[m] = {"n_reference": int(len(rows)), "n_val": int(mv.sum()), "dim": int(x.shape[1])}
        novelty = cls(refs, scales, float("inf"), k, false_flag_rate, min_words=min_words)
        if "text_probe" in refs and WORDS_KEY in val:
            novelty.length_scales = novelty._length_scales([val] + ([openings] if openings is not None else []))
            per["text_probe"]["length_scales"] = [round(x, 4) for x in novelty.length_scales]
        score = novelty.score(val)
        has = np.isfinite(score)
        if has.any():
            novelty.cutoff = float(np.quantile(score[has], 1 - false_flag_rate, method="higher"))
        langs, counts = trained_languages(train_plots) if train_plots is not None else ([], {})
        novelty.languages = langs
        novelty.report = {"modalities": per, "val_movies": int(has.sum()),
                          "val_flagged": round(float((score[has] > novelty.cutoff).mean()), 4) if has.any() else 0.0,
                          "language_counts": counts}
        return novelty

    # --- scoring ---------------------------------------------------------------------------------
    def reference(self, m: str) -> np.ndarray:
        if m not in self._refs32:
            self._refs32[m] = self.references[m].astype(np.float32)
        return self._refs32[m]

    def _length_scales(self, batches: list[Mapping[str, Any]]) -> list[float]:
        """The text probe's raw-distance quantile at ``1 - false_flag_rate`` per plot length bin, over ``batches``;
        a bin with under 50 texts takes the next longer bin's (the longest: the modality's scale)."""
        dist, words = [], []
        for batch in batches:
            x, mask = modality_features(batch)["text_probe"]
            dist.append(knn_distance(x[mask], self.reference("text_probe"), self.k))
            words.append(_array(batch[WORDS_KEY])[mask])
        d, w = np.concatenate(dist), np.digitize(np.concatenate(words), LENGTH_EDGES)
        out = [self.scales["text_probe"]] * (len(LENGTH_EDGES) + 1)
        for b in range(len(LENGTH_EDGES), -1, -1):
            if (w == b).sum() >= 50:
                out[b] = float(max(np.quantile(d[w == b], 1 - self.false_flag_rate), 1e-6))
            elif b < len(LENGTH_EDGES):
                out[b] = out[b + 1]
        return out

    def _scale(self, m: str, feats: Mapping[str, Any], mask: np.ndarray) -> np.ndarray | float:
        if m != "text_probe" or not self.length_scales or WORDS_KEY not in feats:
            return self.scales[m]
        return np.asarray(self.length_scales, dtype=np.float32)[np.digitize(_array(feats[WORDS_KEY])[mask],
                                                                            LENGTH_EDGES)]

    def modality_scores(self, feats: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``{modality: float32 [n]}``: each modality's scaled kNN distance (NaN where the movie lacks it); the text
        probe's scale depends on the plot's length when the batch has ``WORDS_KEY``."""
        out = {}
        for m, (x, mask) in modality_features(feats).items():
            if m not in self.references:
                continue
            s = np.full(len(x), np.nan, dtype=np.float32)
            if mask.any():
                s[mask] = knn_distance(x[mask], self.reference(m), self.k) / self._scale(m, feats, mask)
            out[m] = s
        return out

    def score(self, feats: Mapping[str, Any]) -> np.ndarray:
        """float32 ``[n]``: the novelty of each movie of a head input batch (the largest of its modalities' scaled
        distances); NaN for a movie with none of the scored modalities."""
        scores = list(self.modality_scores(feats).values())
        if not scores:
            n = len(_array(next(iter(feats.values())))) if feats else 0
            return np.full(n, np.nan, dtype=np.float32)
        stacked = np.vstack(scores)
        out = np.full(stacked.shape[1], np.nan, dtype=np.float32)
        has = np.isfinite(stacked).any(0)
        out[has] = np.nanmax(stacked[:, has], axis=0)
        return out

    def flags(self, feats: Mapping[str, Any]) -> np.ndarray:
        """bool ``[n]``: movies whose novelty is above the cut-off (``out_of_distribution``)."""
        s = self.score(feats)
        return np.isfinite(s) & (s > self.cutoff)

    # --- files -----------------------------------------------------------------------------------
    def to_json(self) -> dict:
        cutoff = self.cutoff if np.isfinite(self.cutoff) else None  # inf (no modality) is not JSON
        return {"version": _VERSION, "k": self.k, "false_flag_rate": self.false_flag_rate, "cutoff": cutoff,
                "scales": self.scales, "length_edges": list(LENGTH_EDGES), "length_scales": self.length_scales,
                "languages": self.languages, "min_words": self.min_words,
                "language_min_confidence": self.language_min_confidence,
                "language_detector": "py3langid", "report": self.report}

    def save(self, json_file: Path, tensors_file: Path) -> None:
        """Write the settings (JSON) and the reference sets (safetensors), each atomically."""
        from safetensors.numpy import save_file

        with atomic_path(Path(tensors_file)) as tmp:
            save_file({f"reference.{m}": np.ascontiguousarray(r) for m, r in self.references.items()}, str(tmp))
        write_json_atomic(json_file, self.to_json())

    @classmethod
    def load(cls, json_file: Path, tensors_file: Path) -> Novelty:
        """Read what ``save`` wrote; ``ModelError`` when it is unreadable or incomplete."""
        from safetensors.numpy import load_file

        try:
            data = json.loads(Path(json_file).read_text())
            if data.get("version", 0) > _VERSION:
                raise ValueError(f"written by a newer genrelens (novelty version {data.get('version')})")
            tensors = load_file(str(tensors_file))
            refs = {key.split(".", 1)[1]: v for key, v in tensors.items() if key.startswith("reference.")}
            scales = {m: float(data["scales"][m]) for m in refs}
            cutoff = float("inf") if data["cutoff"] is None else float(data["cutoff"])
            if data.get("length_scales") and list(data.get("length_edges", [])) != list(LENGTH_EDGES):
                raise ValueError(f"length bins {data.get('length_edges')} are not this version's {list(LENGTH_EDGES)}")
            return cls(refs, scales, cutoff, int(data["k"]), float(data["false_flag_rate"]),
                       list(data.get("languages", [])), int(data.get("min_words", MIN_WORDS)),
                       float(data.get("language_min_confidence", LANGUAGE_MIN_CONFIDENCE)), data.get("report", {}),
                       [float(x) for x in data.get("length_scales", [])])
        except Exception as e:  # a damaged file: name it and the command that rewrites it
            raise ModelError(f"{json_file} / {tensors_file} unreadable ({e}): refit them with "
                             f"`genrelens calibrate --model-dir {Path(json_file).parent}`") from e


def plot_openings(plots: Sequence[str | None], titles: Sequence[str | None] | None = None,
                  lengths: Sequence[int] = TRUNCATE_WORDS) -> tuple[list[str], list[str | None]]:
    """``(openings, their titles)``: each plot longer than ``n`` words cut to its first ``n`` words, for each ``n``
    of ``lengths`` (what users type as a short plot; ``Novelty.fit`` calibrates the length scales on them); every
    other opening goes without its title, as users often give none."""
    titles = list(titles) if titles is not None else [None] * len(plots)
    out, out_titles = [], []
    for n in lengths:
        for i, (plot, title) in enumerate(zip(plots, titles)):
            words = plot.split() if isinstance(plot, str) else []
            if len(words) > n:
                out.append(" ".join(words[:n]))
                out_titles.append(title if i % 2 == 0 else None)
    return out, out_titles


def plot_words(plots: Sequence[str | None]) -> np.ndarray:
    """int32 ``[n]``: ``word_count`` of each plot (``WORDS_KEY`` of a head input batch)."""
    return np.array([word_count(p) for p in plots], dtype=np.int32)


# --- review reasons (per-movie lists of codes) ------------------------------------------------------
def short_text_reasons(plots: Sequence[str | None], min_words: int = MIN_WORDS) -> list[list[str]]:
    """``[["short_text"]]`` for each plot given with fewer than ``min_words`` words, else ``[]`` (no plot at all is
    not a short plot)."""
    return [[SHORT_TEXT] if 0 < word_count(p) < min_words else [] for p in plots]


def language_reasons(plots: Sequence[str | None], languages: Sequence[str], min_words: int = MIN_WORDS,
                     min_confidence: float = LANGUAGE_MIN_CONFIDENCE) -> list[list[str]]:
    """``[["language"]]`` for each plot of ``min_words`` words or more confidently detected in a language not in
    ``languages`` (the model's training languages); nothing when ``languages`` is empty (unknown)."""
    out: list[list[str]] = [[] for _ in plots]
    if not languages:
        return out
    rows = [i for i, p in enumerate(plots) if word_count(p) >= min_words]
    for i, (lang, p) in zip(rows, detect_languages([plots[i] for i in rows])):
        if lang and p >= min_confidence and lang not in languages:
            out[i].append(LANGUAGE)
    return out


def ood_reasons(novelty: Novelty, feats: Mapping[str, Any]) -> list[list[str]]:
    """``[["out_of_distribution"]]`` for each movie of a head input batch whose novelty is above the cut-off."""
    return [[OUT_OF_DISTRIBUTION] if f else [] for f in novelty.flags(feats)]


def review_reasons(novelty: Novelty | None, plots: Sequence[str | None],
                   feats: Mapping[str, Any] | None = None) -> list[list[str]]:
    """The input-quality reasons of a batch, one list per movie in ``REASONS`` order: ``short_text`` and
    ``language`` from the plots (``plots``: what the user gave as plot, before any title is joined),
    ``out_of_distribution`` from the head input batch ``feats`` (``GenreClassifier.features``). A model folder
    without ``novelty.json`` (``novelty`` None) gets ``short_text`` only."""
    plots = [p if isinstance(p, str) else None for p in plots]
    min_words = novelty.min_words if novelty is not None else MIN_WORDS
    out = short_text_reasons(plots, min_words)
    if novelty is not None:
        for row, extra in zip(out, language_reasons(plots, novelty.languages, min_words,
                                                    novelty.language_min_confidence)):
            row += extra
        if feats is not None:
            for row, extra in zip(out, ood_reasons(novelty, feats)):
                row += extra
    return out


__all__ = ["LANGUAGE", "LENGTH_EDGES", "OUT_OF_DISTRIBUTION", "REASONS", "REASON_TEXT", "SHORT_TEXT", "WORDS_KEY",
           "Novelty", "detect_languages", "knn_distance", "language_reasons", "modality_features", "ood_reasons",
           "plot_openings", "plot_words", "review_reasons", "short_text_reasons", "trained_languages", "word_count"]
