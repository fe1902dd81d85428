"""genrelens.train.run: what a run prepares (labels, split, texts, oversampling) and its small helpers."""

import numpy as np
import pandas as pd
import pytest
import torch

from genrelens.config import RunConfig
from genrelens.data.labels import STUDY_LABELS
from genrelens.train.run import (
    by_modality,
    feature_batches,
    predict_logits,
    prepare,
    prior_logits,
    resolve_labels,
    resolve_precision,
    texts_of,
    with_augmented,
)


def test_resolve_labels():
    genres = pd.Series([["Drama"], ["Drama", "Western"], ["Western"], ["Western"]])
    assert resolve_labels("study", genres).labels == STUDY_LABELS
    assert resolve_labels("top1", genres).labels == ["Western"]
    assert resolve_labels(["Drama"], genres).labels == resolve_labels("Drama, ", genres).labels == ["Drama"]


def test_prepare_splits_labels_and_oversamples(subset_csv, tmp_path):
    cfg = RunConfig(model="naive", data=str(subset_csv), out=str(tmp_path), labels="top5", oversample="study",
                    oversample_target=1.5, title=False)
    data = prepare(cfg, tmp_path)
    assert (tmp_path / "split.json").exists() and len(data.labels) == 5
    ids = [set(data.parts[s]["id"]) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])
    for s in ("train", "val", "test"):
        assert data.y[s].shape == (len(data.parts[s]), 5) and data.y[s].any(1).all()  # unlabelled rows dropped
    assert len(data.train_rows) == round(1.5 * len(data.parts["train"]))
    assert data.report["rows_read"] == 400 and data.report["train_rows_after_oversampling"] == len(data.train_rows)
    assert list(data.parts["train"]["text"]) == list(data.parts["train"]["plot"])  # title off: the plot


def test_texts_of_with_titles_and_title_dropout():
    part = pd.DataFrame({"title": ["A", "B", "C", "D"], "plot": ["p1", "p2", "", "p4"]})
    assert texts_of(part, title=False) == ["p1", "p2", "", "p4"]
    assert texts_of(part, title=True) == ["A. p1", "B. p2", "C", "D. p4"]
    dropped = texts_of(part, title=True, dropout=1.0)
    assert dropped == ["p1", "p2", "C", "p4"]  # a movie without a plot keeps its title
    assert texts_of(part, True, 0.5, seed=3) == texts_of(part, True, 0.5, seed=3)


def test_prior_logits_and_batches():
    y = np.array([[1, 0], [1, 0], [1, 1], [0, 0]], dtype=np.float32)
    assert torch.allclose(torch.sigmoid(prior_logits(y)), torch.tensor([0.75, 0.25]))
    feats = {"x": torch.arange(4.0)[:, None]}
    batches = list(feature_batches(feats, y, np.array([0, 1, 2, 3, 3]), batch_size=2, seed=0)(1))
    assert [len(t) for _, t in batches] == [2, 2, 1]
    assert sorted(int(b["x"][i]) for b, _ in batches for i in range(len(b["x"]))) == [0, 1, 2, 3, 3]
    lin = torch.nn.Linear(1, 2)
    model = torch.nn.Module()
    model.forward = lambda b: lin(b["x"])
    out = predict_logits(model, feats, batch_size=3)
    assert out.shape == (4, 2) and np.allclose(out, lin(feats["x"]).detach().numpy())


def test_with_augmented_appends_rows_with_their_source_labels():
    feats = {"text": torch.zeros(3, 2), "text_mask": torch.tensor([True, False, True]), "poster": torch.ones(3, 1)}
    y = np.array([[1, 0], [0, 1], [1, 1]])
    out, y2, rows = with_augmented(feats, y, np.array([0, 1, 2]), np.array([2]), np.full((1, 2), 7.0))
    assert out["text"][3].tolist() == [7.0, 7.0] and bool(out["text_mask"][3]) and out["poster"].shape == (4, 1)
    assert y2[3].tolist() == [1, 1] and rows.tolist() == [0, 1, 2, 3]


def test_by_modality_and_resolve_precision():
    part = pd.DataFrame({"plot": ["a", "", "b"], "poster": [None, "p.jpg", "q.jpg"]})
    y = np.array([[1, 0], [0, 1], [1, 1]])
    out = by_modality(part, y, y.astype(float), np.array([0.5, 0.5]), ["A", "B"])
    assert set(out) == {"plot only", "poster only", "plot+poster"} and out["plot only"]["weighted_f1"] == 1.0
    assert resolve_precision(RunConfig(precision="fp32")).precision == "fp32"
    assert resolve_precision(RunConfig(precision="auto")).precision in ("fp32", "bf16")
    with pytest.raises(ValueError):
        RunConfig(precision="int8")


@pytest.mark.slow
def test_a_seed_trains_the_same_model_whether_the_onnx_graphs_were_exported_before_or_not(small_subset_csv, tmp_path,
                                                                                         monkeypatch):
    """Exporting an encoder's ONNX graph builds its torch model, which draws from torch's random generator: the
    first run on a fresh cache trained another model than the same run on a warm one (same seed, same data).
    Each run now draws its initial weights and dropout from the seed whatever was built before."""
    from conftest import train_tiny

    monkeypatch.setenv("GENRELENS_CACHE", str(tmp_path / "cache"))  # empty: the first run exports the graphs
    for run in ("fresh", "warm"):
        train_tiny("integrated", small_subset_csv, tmp_path / run, tmp_path / f"features-{run}")
    assert any((tmp_path / "cache" / "onnx").glob("*.onnx"))
    np.testing.assert_array_equal(np.load(tmp_path / "fresh" / "test_proba.npy"),
                                  np.load(tmp_path / "warm" / "test_proba.npy"))
