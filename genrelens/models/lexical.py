"""The lexical channel: TF-IDF word 1-2 grams + one logistic regression per label (scikit-learn).

A frozen sentence embedding averages a long synopsis into a blur; TF-IDF keeps the words that name a genre
("murder", "haunted", "wedding", "spaceship") however long the text is. The channel is fitted on the
training split only and late-fused with the model's probabilities:
``p = (1 - w) * p_model + w * sigmoid(lexical logits)`` for movies with a plot (``w`` chosen on validation).

Saved without pickle: settings, fusion weight and vocabulary as JSON, idf and the per-label weights as
safetensors; ``from_files`` rebuilds a vectorizer that gives the same features, so reloaded probabilities are
identical.
"""

from __future__ import annotations

import json
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


@dataclass
class LexicalChannel:
    """``fit(texts, y)`` then ``logits(texts) -> float64 [n, n_labels]``.

    ``weight``: the late-fusion weight of the channel's probabilities (set by ``choose_weight``)."""

    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 50_000
    C: float = 4.0
    weight: float = 0.0
    vectorizer: object = field(default=None, repr=False)
    coef: np.ndarray | None = field(default=None, repr=False)  # [n_labels, n_terms]
    intercept: np.ndarray | None = field(default=None, repr=False)  # [n_labels]

    def _new_vectorizer(self, vocabulary: dict[str, int] | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, self.ngram_max), min_df=self.min_df, max_features=self.max_features,
                               sublinear_tf=True, strip_accents="unicode", lowercase=True, vocabulary=vocabulary,
                               dtype=np.float64)

    def fit(self, texts: Sequence[str], y: np.ndarray, seed: int = 0) -> LexicalChannel:
        """Fit TF-IDF and one L2 logistic regression per label on ``texts`` (non-empty plots) and ``y [n, L]``.
        A label with one class only in ``y`` gets a constant logit (its prior)."""
        from sklearn.linear_model import LogisticRegression

        if not len(texts):
            raise ValueError("the lexical channel needs training plots")
        self.vectorizer = self._new_vectorizer()
        x = self.vectorizer.fit_transform(list(texts))
        y = np.asarray(y) > 0
        self.coef = np.zeros((y.shape[1], x.shape[1]))
        self.intercept = np.zeros(y.shape[1])
        for j in range(y.shape[1]):
            pos = y[:, j].mean()
            if pos in (0.0, 1.0):
                p = np.clip(pos, 1e-3, 1 - 1e-3)
                self.intercept[j] = np.log(p / (1 - p))
                continue
            lr = LogisticRegression(C=self.C, max_iter=1000, solver="liblinear", random_state=seed)
            lr.fit(x, y[:, j])
            self.coef[j], self.intercept[j] = lr.coef_[0], lr.intercept_[0]
        return self

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """``float64 [n, n_labels]``: the per-label logistic regression logits (the intercept for an empty text)."""
        if self.vectorizer is None:
            raise ModelError("the lexical channel is not fitted")
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            return np.zeros((0, len(self.intercept)))
        x = self.vectorizer.transform(texts)
        return np.asarray(x @ self.coef.T) + self.intercept

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        return sigmoid(self.logits(texts)).astype(np.float32)

    def top_terms(self, label: int, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` terms of ``text`` that push label ``label`` most (tf-idf value x weight), signed."""
        row = self.vectorizer.transform([text]).tocoo()
        terms = self.vectorizer.get_feature_names_out()
        contrib = [(str(terms[i]), float(v * self.coef[label, i])) for i, v in zip(row.col, row.data)]
        return sorted(contrib, key=lambda t: -abs(t[1]))[:k]

    # --- files ---------------------------------------------------------------------------------
    def save(self, json_file: Path, tensors_file: Path) -> None:
        """Settings, weight and vocabulary (terms in column order) as JSON; idf, coef, intercept as safetensors."""
        vocab = self.vectorizer.vocabulary_
        terms = [""] * len(vocab)
        for term, i in vocab.items():
            terms[i] = term
        write_json_atomic(json_file, {"kind": "tfidf-logreg", "version": 1, "ngram_max": self.ngram_max,
                                      "min_df": self.min_df, "max_features": self.max_features, "C": self.C,
                                      "weight": self.weight, "vocabulary": terms})
        save_tensors(tensors_file, {"idf": torch.from_numpy(np.asarray(self.vectorizer.idf_, dtype=np.float64)),
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
        ch.vectorizer = ch._new_vectorizer({term: i for i, term in enumerate(terms)})
        ch.vectorizer.idf_ = t["idf"].numpy()
        ch.coef, ch.intercept = t["coef"].numpy(), t["intercept"].numpy()
        if ch.coef.shape[1] != len(terms) or len(ch.vectorizer.idf_) != len(terms):
            raise ModelError(f"{tensors_file} does not match the vocabulary of {json_file}")
        return ch


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def fuse(p_model: np.ndarray, p_lexical: np.ndarray, has_plot: np.ndarray, weight: float) -> np.ndarray:
    """Late fusion ``(1 - w) * p_model + w * p_lexical`` on the rows with a plot; the rest keep ``p_model``."""
    fused = (1.0 - weight) * p_model + weight * p_lexical
    return np.where(np.asarray(has_plot, dtype=bool)[:, None], fused, p_model).astype(np.float32)


def choose_weight(y_val: np.ndarray, p_model: np.ndarray, p_lexical: np.ndarray, has_plot: np.ndarray,
                  grid: Sequence[float] = WEIGHT_GRID) -> tuple[float, dict[float, float]]:
    """The fusion weight with the best validation weighted F1 (thresholds tuned per weight, as training
    does); returns it and ``{weight: F1}``. Ties go to the smaller weight."""
    from sklearn.metrics import f1_score

    from genrelens.models.thresholds import decide, tune_thresholds

    scores = {}
    for w in grid:
        p = fuse(p_model, p_lexical, has_plot, float(w))
        scores[float(w)] = float(f1_score(y_val > 0, decide(p, tune_thresholds(y_val, p)), average="weighted",
                                          zero_division=0))
    best = max(scores, key=lambda w: (round(scores[w], 6), -w))
    return best, scores


def fit_channel(texts_train: Sequence[str], y_train: np.ndarray, texts_val: Sequence[str], y_val: np.ndarray,
                seed: int = 0, grid: Sequence[float] = C_GRID) -> tuple[LexicalChannel, dict[float, float]]:
    """Fit a channel per C in ``grid`` on train; keep the best by validation weighted F1 (tuned thresholds)."""
    from sklearn.metrics import f1_score

    from genrelens.models.thresholds import decide, tune_thresholds

    best, scores = None, {}
    for c in grid:
        ch = LexicalChannel(C=float(c)).fit(texts_train, y_train, seed=seed)
        p = ch.proba(texts_val)
        scores[float(c)] = float(f1_score(y_val > 0, decide(p, tune_thresholds(y_val, p)), average="weighted",
                                          zero_division=0))
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
