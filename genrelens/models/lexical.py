"""The lexical channel: TF-IDF word 1-2 grams + one logistic regression per label (scikit-learn).

A frozen sentence embedding averages a long synopsis into a blur; TF-IDF keeps the words that name a genre
("murder", "haunted", "wedding", "spaceship") however long the text is. The channel is fitted on the
training split only and late-fused with the model's probabilities:
``p = (1 - w) * p_model + w * sigmoid(lexical logits)`` for movies with a plot (``w`` chosen on validation;
``fused_proba``, the one place it is written).

Saved without pickle: settings, fusion weight and vocabulary as JSON, idf and the per-label weights as
safetensors; ``load`` rebuilds the same features, so reloaded probabilities are identical. Prediction never
imports scikit-learn (``TfidfFeatures``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genrelens.errors import ModelError
from genrelens.io import write_json_atomic
from genrelens.models.checkpoint import load_tensors, save_tensors

C_GRID = (1.0, 4.0, 16.0)  # inverse L2 strengths tried; chosen on validation
WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)  # fusion weights tried on validation
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern


class TfidfFeatures:
    """``TfidfVectorizer.transform`` over a fitted vocabulary and idf (lowercase, unicode accents stripped, word
    1..``ngram_max``-grams, sublinear tf, idf, l2 norm). Written by hand because importing scikit-learn costs
    1.3 s of the 2.5 s cold-start budget (3.48 -> 2.14 s); a test checks it equals scikit-learn's on real plots."""

    def __init__(self, terms: Sequence[str], idf: np.ndarray, ngram_max: int):
        self.terms = list(terms)
        self.index = {t: i for i, t in enumerate(self.terms)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.ngram_max = ngram_max
        if len(self.idf) != len(self.terms):
            raise ModelError(f"{len(self.idf)} idf values for {len(self.terms)} terms")

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(term indices int64 [k], tf-idf values float64 [k])`` of one text (k: distinct known terms)."""
        doc = text.lower()
        if not doc.isascii():  # scikit-learn's strip_accents_unicode
            doc = "".join(c for c in unicodedata.normalize("NFKD", doc) if not unicodedata.combining(c))
        tokens = TOKEN.findall(doc)
        grams = tokens + [" ".join(tokens[i : i + n]) for n in range(2, self.ngram_max + 1)
                          for i in range(len(tokens) - n + 1)]
        counts = Counter(j for g in grams if (j := self.index.get(g)) is not None)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * self.idf[idx]
        norm = np.sqrt(np.dot(values, values))
        return idx, values / norm if norm > 0 else values


@dataclass
class LexicalChannel:
    """``fit(texts, y)`` then ``logits(texts) -> float64 [n, n_labels]``.

    ``weight``: the late-fusion weight of the channel's probabilities (set by ``choose_weight``)."""

    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 50_000
    C: float = 4.0
    weight: float = 0.0
    features: TfidfFeatures | None = field(default=None, repr=False)
    coef: np.ndarray | None = field(default=None, repr=False)  # [n_labels, n_terms]
    intercept: np.ndarray | None = field(default=None, repr=False)  # [n_labels]

    def _new_vectorizer(self):
        """scikit-learn's vectorizer, for fitting; prediction uses ``TfidfFeatures`` (the same features)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, self.ngram_max), min_df=self.min_df, max_features=self.max_features,
                               sublinear_tf=True, strip_accents="unicode", lowercase=True, dtype=np.float64)

    def fit(self, texts: Sequence[str], y: np.ndarray, seed: int = 0) -> LexicalChannel:
        """Fit TF-IDF and one L2 logistic regression per label on ``texts`` (non-empty plots) and ``y [n, L]``.
        A label with one class only in ``y`` gets a constant logit (its prior)."""
        from scipy.special import logit
        from sklearn.linear_model import LogisticRegression

        if not len(texts):
            raise ValueError("the lexical channel needs training plots")
        vectorizer = self._new_vectorizer()
        x = vectorizer.fit_transform(list(texts))
        self.features = TfidfFeatures(vectorizer.get_feature_names_out(), vectorizer.idf_, self.ngram_max)
        y = np.asarray(y) > 0
        self.coef = np.zeros((y.shape[1], x.shape[1]))
        self.intercept = np.zeros(y.shape[1])
        for j in range(y.shape[1]):
            pos = y[:, j].mean()
            if pos in (0.0, 1.0):
                self.intercept[j] = logit(np.clip(pos, 1e-3, 1 - 1e-3))
                continue
            lr = LogisticRegression(C=self.C, max_iter=1000, solver="liblinear", random_state=seed)
            lr.fit(x, y[:, j])
            self.coef[j], self.intercept[j] = lr.coef_[0], lr.intercept_[0]
        return self

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """``float64 [n, n_labels]``: the per-label logistic regression logits (the intercept for an empty text)."""
        if self.features is None:
            raise ModelError("the lexical channel is not fitted")
        out = np.tile(self.intercept, (len(texts), 1))
        for r, t in enumerate(texts):
            idx, values = self.features.row(t if isinstance(t, str) else "")
            out[r] += self.coef[:, idx] @ values
        return out

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import expit

        return expit(self.logits(texts)).astype(np.float32)

    def top_terms(self, label: int, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` terms of ``text`` that push label ``label`` most (tf-idf value x weight), signed."""
        idx, values = self.features.row(text)
        contrib = [(self.features.terms[i], float(v * self.coef[label, i])) for i, v in zip(idx, values)]
        return sorted(contrib, key=lambda t: -abs(t[1]))[:k]

    # --- files ---------------------------------------------------------------------------------
    def save(self, json_file: Path, tensors_file: Path) -> None:
        """Settings, weight and vocabulary (terms in column order) as JSON; idf, coef, intercept as safetensors."""
        write_json_atomic(json_file, {"kind": "tfidf-logreg", "version": 1, "ngram_max": self.ngram_max,
                                      "min_df": self.min_df, "max_features": self.max_features, "C": self.C,
                                      "weight": self.weight, "vocabulary": self.features.terms})
        save_tensors(tensors_file, {"idf": torch.from_numpy(self.features.idf),
                                    "coef": torch.from_numpy(self.coef), "intercept": torch.from_numpy(self.intercept)})

    @classmethod
    def load(cls, json_file: Path, tensors_file: Path) -> LexicalChannel:
        try:
            meta = json.loads(Path(json_file).read_text(encoding="utf-8"))
            terms = meta["vocabulary"]
            ch = cls(ngram_max=int(meta["ngram_max"]), min_df=int(meta["min_df"]),
                     max_features=int(meta["max_features"]), C=float(meta["C"]), weight=float(meta["weight"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{json_file} is not a lexical channel: {e}") from e
        t = load_tensors(Path(tensors_file))
        ch.features = TfidfFeatures(terms, t["idf"].numpy(), ch.ngram_max)
        ch.coef, ch.intercept = t["coef"].numpy(), t["intercept"].numpy()
        if ch.coef.shape[1] != len(terms):
            raise ModelError(f"{tensors_file} does not match the vocabulary of {json_file}")
        return ch


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``scipy.special.expit`` (imported when first needed: scipy costs a cold start time)."""
    from scipy.special import expit

    return expit(x)


def fused_proba(p_model: np.ndarray, lexical_logits: np.ndarray, has_plot: np.ndarray, weight: float,
                dtype: type = np.float32) -> np.ndarray:
    """The late fusion of a model's probabilities ``[n, L]`` with the lexical channel's logits ``[n, L]``:
    ``(1 - w) * p_model + w * expit(lexical_logits)`` on the rows with a plot (the rest keep ``p_model``), as
    ``dtype`` (float32, what prediction answers; explanations take float64)."""
    return fuse(p_model, sigmoid(lexical_logits), has_plot, weight, dtype)


def fuse(p_model: np.ndarray, p_lexical: np.ndarray, has_plot: np.ndarray, weight: float,
         dtype: type = np.float32) -> np.ndarray:
    """Late fusion ``(1 - w) * p_model + w * p_lexical`` on the rows with a plot; the rest keep ``p_model``."""
    fused = (1.0 - weight) * p_model + weight * p_lexical
    return np.where(np.asarray(has_plot, dtype=bool)[:, None], fused, p_model).astype(dtype)


def cross_fitted_f1(y: np.ndarray, proba: np.ndarray, folds: int = 2, seed: int = 0) -> float:
    """Weighted F1 of ``proba`` on ``y`` with per-label thresholds tuned on the *other* folds: an honest
    estimate (tuning and scoring on the same rows rewards noise; with a flat curve that picks a noisy max)."""
    from sklearn.metrics import f1_score

    from genrelens.models.thresholds import decide, tune_thresholds

    order = np.random.default_rng([seed, 5]).permutation(len(y))
    pred = np.zeros(np.shape(y), dtype=bool)
    for k in range(folds):
        held, rest = order[k::folds], np.setdiff1d(order, order[k::folds])
        pred[held] = decide(proba[held], tune_thresholds(y[rest], proba[rest]))
    return float(f1_score(np.asarray(y) > 0, pred, average="weighted", zero_division=0))


def choose_weight(y_val: np.ndarray, p_model: np.ndarray, p_lexical: np.ndarray, has_plot: np.ndarray,
                  grid: Sequence[float] = WEIGHT_GRID, seed: int = 0) -> tuple[float, dict[float, float]]:
    """The fusion weight with the best validation weighted F1, thresholds cross-fitted (``cross_fitted_f1``,
    averaged over two fold draws); returns it and ``{weight: F1}``. Ties go to the smaller weight."""
    scores = {}
    for w in grid:
        p = fuse(p_model, p_lexical, has_plot, float(w))
        scores[float(w)] = float(np.mean([cross_fitted_f1(y_val, p, seed=seed + r) for r in range(2)]))
    best = max(scores, key=lambda w: (round(scores[w], 6), -w))
    return best, scores


def fit_channel(texts_train: Sequence[str], y_train: np.ndarray, texts_val: Sequence[str], y_val: np.ndarray,
                seed: int = 0, grid: Sequence[float] = C_GRID) -> tuple[LexicalChannel, dict[float, float]]:
    """Fit a channel per C in ``grid`` on train; keep the best by validation weighted F1 (``cross_fitted_f1``)."""
    best, scores = None, {}
    for c in grid:
        ch = LexicalChannel(C=float(c)).fit(texts_train, y_train, seed=seed)
        scores[float(c)] = cross_fitted_f1(y_val, ch.proba(texts_val), seed=seed)
        if best is None or scores[float(c)] > scores[best.C]:
            best = ch
    return best, scores


class LexicalHead(nn.Module):
    """The lexical channel as a whole model (the TF-IDF + logistic regression baseline): its logits are
    ``batch["lexical"]`` for movies with a plot and the training prior (``missing_logits``) for the rest."""

    modalities = ("text",)

    def __init__(self, n_labels: int, **_):
        super().__init__()
        self.register_buffer("missing_logits", torch.zeros(n_labels))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = batch["lexical"].float()
        return torch.where(batch["text_mask"][:, None], logits, self.missing_logits.expand_as(logits))
