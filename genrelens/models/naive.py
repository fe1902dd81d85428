"""The study's naive baseline: always predict the k most common training labels (k chosen on validation)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn


class NaiveModel:
    """``fit(y_train, y_val)`` then ``predict_proba(n)``; the decision is the top-k labels for every movie."""

    def __init__(self, k: int | None = None):
        self.k = k
        self.freq: np.ndarray | None = None

    def fit(self, y_train: np.ndarray, y_val: np.ndarray | None = None) -> NaiveModel:
        self.freq = np.asarray(y_train, dtype=np.float64).mean(0)
        if self.k is None:
            if y_val is None or len(y_val) == 0:
                self.k = 1
            else:
                scores = [f1_score(y_val > 0, self._decide(k, len(y_val)), average="weighted", zero_division=0)
                          for k in range(1, len(self.freq) + 1)]
                self.k = int(np.argmax(scores)) + 1
        return self

    def _decide(self, k: int, n: int) -> np.ndarray:
        row = np.zeros(len(self.freq), dtype=bool)
        row[np.argsort(-self.freq, kind="stable")[:k]] = True
        return np.tile(row, (n, 1))

    def predict_proba(self, n: int) -> np.ndarray:
        """``[n, n_labels]``: the training label frequencies for every movie."""
        return np.tile(self.freq.astype(np.float32), (n, 1))

    def predict(self, n: int) -> np.ndarray:
        """``bool[n, n_labels]``: the k most frequent labels for every movie."""
        return self._decide(self.k, n)

    def thresholds(self) -> np.ndarray:
        """Per-label thresholds on ``predict_proba`` that reproduce ``predict``."""
        top = np.sort(self.freq)[::-1][self.k - 1]
        return np.where(self.freq >= top, 0.0, 1.0).astype(np.float32)


class NaiveHead(nn.Module):
    """The naive model as a head, so it saves and loads like every other model: its logits are those of the
    training label frequencies, for every movie. ``batch["rows"]`` ``[b, 0]`` carries the batch size."""

    modalities: tuple[str, ...] = ()

    def __init__(self, n_labels: int, **_):
        super().__init__()
        self.register_buffer("freq", torch.zeros(n_labels))
        self.register_buffer("k", torch.zeros((), dtype=torch.long))

    @classmethod
    def from_model(cls, model: NaiveModel) -> NaiveHead:
        head = cls(len(model.freq))
        head.freq.copy_(torch.as_tensor(model.freq, dtype=torch.float32))
        head.k.fill_(int(model.k))
        return head

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        p = self.freq.clamp(1e-7, 1 - 1e-7)
        return torch.log(p / (1 - p)).expand(len(batch["rows"]), -1)
