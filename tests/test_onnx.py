"""genrelens.encoders.onnx: the exported text graph equals the eager model; old exports are pruned."""

import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from genrelens.encoders.onnx import PooledTextModel, export_text_onnx, ort_session, prune_text_exports, text_onnx_path


@pytest.fixture(scope="module")
def tiny_encoder():
    """A 1-layer, 8-wide BERT with a toy tokenizer: what export needs from a TextEncoder, in milliseconds."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=32)).eval()

    def tokenize(texts):
        ids = [[1 + (hash(w) % 40) for w in t.split()] for t in texts]
        n = max(map(len, ids))
        return {"input_ids": torch.tensor([i + [0] * (n - len(i)) for i in ids]),
                "attention_mask": torch.tensor([[1] * len(i) + [0] * (n - len(i)) for i in ids])}

    return SimpleNamespace(name="tiny", model=model, normalize=True, tokenize=tokenize, export_key=lambda: "abc123")


def test_export_runs_in_onnx_runtime_like_the_eager_model(tiny_encoder, tmp_path):
    path = text_onnx_path(tiny_encoder, tmp_path)
    assert path.parent == tmp_path / "onnx" and "tiny-abc123-norm1" in path.name
    export_text_onnx(tiny_encoder, path)
    batch = tiny_encoder.tokenize(["one two three four five", "six"])  # other batch and sequence sizes
    session = ort_session(path, num_threads=1)
    got = session.run(None, {k: v.numpy() for k, v in batch.items()})[0]
    with torch.no_grad():
        want = PooledTextModel(tiny_encoder.model, normalize=True)(**batch).numpy()
    assert got.shape == (2, 8) and np.allclose(got, want, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert not tiny_encoder.model.training


def test_prune_keeps_the_newest_and_the_one_in_use(tmp_path):
    now = time.time()
    files = []
    for i in range(5):
        f = tmp_path / f"text-{i}.onnx"
        f.write_bytes(b"x")
        os.utime(f, (now - 100 * i, now - 100 * i))  # text-0 newest
        files.append(f)
    (tmp_path / "poster.onnx").write_bytes(b"x")
    prune_text_exports(tmp_path, keep=files[4], n=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poster.onnx", "text-0.onnx", "text-1.onnx", "text-4.onnx"]
