"""The fast inference paths give the same answers as the plain ones (correctness only, nothing timed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genrelens.encoders import onnx as onnx_paths
from genrelens.encoders.onnx import OpenVINOSession, ort_session, prune_text_exports, text_onnx_path
from genrelens.encoders.text import TextEncoder
from genrelens.predict import GenreClassifier

PLOTS = ["A detective hunts a serial killer through a rain-soaked city while his marriage falls apart. " * 3,
         "Two friends open a bakery.", "", "In space, a lone engineer must repair the ship before the oxygen runs out."]


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder("minilm", max_length=64)


@pytest.fixture(scope="module")
def movies(subset_csv: Path) -> tuple[list[str], list[str]]:
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    df = df[(df["plot"] != "") & (df["poster"] != "")].head(12)
    return list(df["plot"]), [str(subset_csv.parent / p) for p in df["poster"]]


def test_onnx_text_matches_torch(minilm: TextEncoder, tmp_path: Path) -> None:
    ref = minilm.encode(PLOTS, batch_size=2)
    minilm.use_onnx(cache_dir=tmp_path)
    try:
        assert minilm.session is not None and minilm.onnx_file.is_file()
        assert not minilm.model.training  # the export leaves the live model in eval mode
        assert not list(minilm.onnx_file.parent.glob("*.tmp"))  # written atomically
        got = minilm.encode(PLOTS, batch_size=2)
        np.testing.assert_allclose(got, ref, atol=1e-4)
        np.testing.assert_allclose(minilm.encode(PLOTS[:1]), ref[:1], atol=1e-4)  # batch of one, no padding
        mtime = minilm.onnx_file.stat().st_mtime_ns
        minilm.use_onnx(cache_dir=tmp_path)  # cached: not exported again
        assert minilm.onnx_file.stat().st_mtime_ns >= mtime and len(list(tmp_path.glob("onnx/text-*.onnx"))) == 1
    finally:
        minilm.use_torch()
    np.testing.assert_array_equal(minilm.encode(PLOTS, batch_size=2), ref)


def test_export_keyed_by_weights(minilm: TextEncoder, tmp_path: Path) -> None:
    before = text_onnx_path(minilm, tmp_path)
    param = next(minilm.model.parameters())
    saved = param.detach().clone()
    try:
        with torch.no_grad():
            param.add_(1e-3)
        assert text_onnx_path(minilm, tmp_path) != before  # fine-tuned weights get their own export
    finally:
        with torch.no_grad():
            param.copy_(saved)
    assert text_onnx_path(minilm, tmp_path) == before


def test_prune_keeps_recent(tmp_path: Path) -> None:
    import os

    for i in range(5):
        f = tmp_path / f"text-x-{i}.onnx"
        f.write_bytes(b"x")
        os.utime(f, (i, i))
    (tmp_path / "efficientnet.onnx").write_bytes(b"x")
    prune_text_exports(tmp_path, n=2)
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["efficientnet.onnx", "text-x-3.onnx", "text-x-4.onnx"]


def test_classifier_fast_path_equals_plain(tiny_model_dir: Path, movies) -> None:
    plots, posters = movies
    plots = plots + [None, "Only a plot here."]
    posters = posters + [posters[0], None]
    fast = GenreClassifier.load(tiny_model_dir)  # ONNX Runtime text + posters
    plain = GenreClassifier.load(tiny_model_dir, backend="torch")
    assert fast.text_encoder.session is not None and plain.text_encoder.session is None
    pf, ef = fast.score(plots, posters)
    pp, ep = plain.score(plots, posters)
    np.testing.assert_allclose(pf, pp, atol=1e-4)
    assert ef == ep
    assert (fast.decide(pf) == fast.decide(pp)).all()
    one = np.stack([fast.score([p], [q])[0][0] for p, q in zip(plots[:3], posters[:3], strict=True)])
    np.testing.assert_allclose(one, pf[:3], atol=1e-4)  # one at a time == in a padded batch


def test_openvino_session_answers_like_onnx_runtime(minilm: TextEncoder, tmp_path: Path) -> None:
    """The bf16 path's runtime: ``run(None, feeds)`` gives ONNX Runtime's outputs (fp32 compile, same order and
    shapes; named outputs too), from another thread as well (one infer request per thread); nothing is written."""
    import threading

    minilm.use_onnx(cache_dir=tmp_path)
    path = minilm.onnx_file
    assert path.is_file()  # the file it exported (its name once came from the weights loaded by the export)
    minilm.use_torch()
    batch = minilm.tokenize(PLOTS)
    feeds = {k: batch[k].numpy().astype(np.int64) for k in ("input_ids", "attention_mask")}
    ref = ort_session(path, 1).run(None, feeds)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    ov = OpenVINOSession(path, 1, "fp32")
    got = ov.run(None, feeds)
    assert ov.inference_precision == "f32" and len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(ov.run(["embedding"], feeds)[0], ref[0], atol=1e-4)
    out: list = []
    thread = threading.Thread(target=lambda: out.append(ov.run(None, feeds)))
    thread.start()
    thread.join()
    np.testing.assert_allclose(out[0][0], got[0], atol=1e-6)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_openvino_bf16_falls_back_to_fp32_where_a_node_has_no_bf16_kernel(tmp_path: Path, monkeypatch) -> None:
    """OpenVINO's CPU plugin refuses a bf16 graph when oneDNN is capped below the CPU (ONEDNN_MAX_CPU_ISA): the
    session is compiled in fp32 instead of failing the user's command; an fp32 failure is raised. An empty batch of
    posters gives no features (not an error)."""
    from genrelens.encoders.poster import PosterEncoder

    path = PosterEncoder("effnet-lite0", cache_dir=tmp_path).onnx_path
    real = onnx_paths._compile

    def no_bf16(core, p, config):
        if config["INFERENCE_PRECISION_HINT"] == "bf16":
            raise RuntimeError("Supported primitive descriptors list is empty for node: Softmax")
        return real(core, p, config)

    monkeypatch.setattr(onnx_paths, "_compile", no_bf16)
    session = OpenVINOSession(path, 1, "bf16")
    assert session.inference_precision == "f32"
    assert session.run(None, {"pixels": np.zeros((1, 3, 224, 224), np.float32)})[0].shape == (1, 1280)
    monkeypatch.setattr(onnx_paths, "_compile", lambda *a: (_ for _ in ()).throw(RuntimeError("broken")))
    with pytest.raises(RuntimeError, match="broken"):
        OpenVINOSession(path, 1, "fp32")
    assert PosterEncoder("effnet-lite0", cache_dir=tmp_path).features(np.zeros((0, 3, 224, 224))).shape == (0, 1280)


def test_poster_graph_runs_in_small_batches_with_the_same_features(movies, tmp_path: Path, monkeypatch) -> None:
    """``PosterEncoder.features`` runs its graph ``GRAPH_BATCH`` posters at a time (faster on 2 cores: a layer's
    activations stay in cache); any number of posters gives the features of one graph run over all of them."""
    from genrelens.encoders import poster as poster_mod
    from genrelens.encoders.poster import PosterEncoder

    enc = PosterEncoder("effnet-lite0", cache_dir=tmp_path)
    _, posters = movies
    pixels = enc.preprocess([enc.load(p) for p in posters[:11]])
    whole = enc.session.run(None, {"pixels": pixels})[0]
    calls: list[int] = []
    run = enc.session.run

    def counted(names, feeds):
        calls.append(len(feeds["pixels"]))
        return run(names, feeds)

    monkeypatch.setattr(enc.session, "run", counted, raising=False)
    monkeypatch.setattr(poster_mod, "GRAPH_BATCH", 4)
    np.testing.assert_allclose(enc.features(pixels), whole, atol=1e-5)
    assert calls == [4, 4, 3]
