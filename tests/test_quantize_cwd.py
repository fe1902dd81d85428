"""Quantizing the encoders (ONNX Runtime's quantize_dynamic/quantize_static, via encoders/precision.py) writes
only into the cache: no ``<uuid>.data`` external-data file, augmented model or other temporary file is left in
the current working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from genrelens.encoders import precision as prec
from genrelens.predict import GenreClassifier


@pytest.mark.slow
def test_int8_quantization_leaves_nothing_in_the_working_directory(tiny_model_dir: Path, tmp_path: Path,
                                                                    monkeypatch, caplog) -> None:
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("GENRELENS_CACHE", str(cache))  # a fresh cache: the graphs are exported and quantized here
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # temporary folders too, so that leftovers would show
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    # a CPU with VNNI, whatever runs the test: posters are quantized only there (elsewhere they stay fp32)
    monkeypatch.setenv(prec.ENV_FLAGS, "avx2 fma avx512f avx512bw avx512_vnni")
    clf = GenreClassifier.load(tiny_model_dir, precision="int8")
    # ONNX Runtime's hint to pre-process first (printed to a new user in `make run`'s precision check) is dropped
    assert not [r for r in caplog.records if "pre-processing before quantization" in r.getMessage()]
    assert "int8" in clf.text_encoder.onnx_file.name and clf.poster_encoder.precision == "int8"
    assert clf.predict(["A detective hunts a killer."])
    assert sorted(p.name for p in cwd.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == []
    onnx = {p.name for p in (cache / "onnx").iterdir()}
    assert not [n for n in onnx if n.endswith(".data") or n.startswith(".") or n.endswith(".tmp")], onnx
    assert any("int8static-" in n for n in onnx)
    assert any("int8dyn" in n and n.endswith(f"-v{prec.INT8_TEXT_VERSION}.onnx") for n in onnx)  # -rr-: no VNNI
