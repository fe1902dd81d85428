"""The model bundle owns the model folder: manifest and format checks, old folders, atomic whole-folder
saves; the encoder interface; registry-derived names; default folders."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import train_tiny

from genrelens import GenreClassifier, bundle
from genrelens.bundle import ModelBundle, install
from genrelens.config import RunConfig
from genrelens.encoders.base import Encoder, PosterEncoderLike
from genrelens.errors import ModelError
from genrelens.models.registry import LOSSES, MODELS


def _plots_posters(csv: Path, n: int = 8):
    import pandas as pd

    df = pd.read_csv(csv, dtype=str, keep_default_na=False).head(n)
    return list(df["plot"]), [str(csv.parent / p) if p else None for p in df["poster"]]


def test_save_pretrained_round_trip_keeps_training_files(tiny_model_dir, subset_csv, tmp_path):
    src = ModelBundle.from_pretrained(tiny_model_dir)
    dest = tmp_path / "copy"
    (dest / bundle.CHECKPOINTS).mkdir(parents=True)
    (dest / bundle.CHECKPOINTS / "keep.txt").write_text("training's own file")
    (dest / bundle.WEIGHTS).write_bytes(b"stale weights of an older save")
    src.save_pretrained(dest)
    assert (dest / bundle.CHECKPOINTS / "keep.txt").read_text() == "training's own file"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    manifest = json.loads((dest / bundle.MANIFEST).read_text())
    assert manifest["format"] == bundle.FORMAT and manifest["model"] == "integrated"
    assert {bundle.WEIGHTS, bundle.TEXT_ENCODER, bundle.TEXT_HEAD}.issubset(manifest["files"])
    plots, posters = _plots_posters(subset_csv)
    np.testing.assert_array_equal(GenreClassifier.load(tiny_model_dir).predict_proba(plots, posters),
                                  GenreClassifier.load(dest).predict_proba(plots, posters))


def test_newer_format_is_refused_with_what_to_do(tiny_model_dir, tmp_path):
    dest = tmp_path / "m"
    shutil.copytree(tiny_model_dir, dest)
    manifest = json.loads((dest / bundle.MANIFEST).read_text())
    (dest / bundle.MANIFEST).write_text(json.dumps({**manifest, "format_version": bundle.FORMAT_VERSION + 1}))
    with pytest.raises(ModelError, match="upgrade genrelens"):
        ModelBundle.from_pretrained(dest)
    (dest / bundle.MANIFEST).write_text('{"format": "something-else"}')
    with pytest.raises(ModelError, match="not a genrelens model manifest"):
        ModelBundle.from_pretrained(dest)


def test_folder_from_before_manifests_still_loads(tiny_model_dir, subset_csv, tmp_path):
    """A model folder of format 1 written before the bundle (no manifest) gives the same predictions."""
    dest = tmp_path / "old"
    shutil.copytree(tiny_model_dir, dest)
    (dest / bundle.MANIFEST).unlink()
    plots, posters = _plots_posters(subset_csv)
    np.testing.assert_array_equal(GenreClassifier.load(tiny_model_dir).predict_proba(plots, posters),
                                  GenreClassifier.load(dest).predict_proba(plots, posters))


def test_old_naive_folder_with_naive_json_loads(subset_csv, naive_copy):
    out = naive_copy
    new = GenreClassifier.load(out)
    freq = new.head.freq.numpy()
    (out / bundle.WEIGHTS).unlink()  # the layout before the naive model was a head
    (out / bundle.MANIFEST).unlink()
    (out / bundle.LEGACY_NAIVE).write_text(json.dumps({"k": int(new.head.k), "frequencies": freq.tolist()}))
    old = GenreClassifier.load(out)
    plots, posters = _plots_posters(subset_csv)
    assert old.predict(plots, posters) == new.predict(plots, posters)


def test_missing_or_pickled_model_folders_say_what_is_wrong(tmp_path):
    with pytest.raises(ModelError, match="genrelens train"):
        ModelBundle.from_pretrained(tmp_path)
    RunConfig(model="poster").save(tmp_path / bundle.CONFIG)
    (tmp_path / "model.pt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelError, match="pickle"):
        ModelBundle.from_pretrained(tmp_path)


def test_install_copies_a_model_without_checkpoints(tiny_model_dir, tmp_path):
    target = bundle.install(tiny_model_dir, tmp_path / "default")
    assert (target / bundle.MANIFEST).exists() and not (target / bundle.CHECKPOINTS).exists()
    with pytest.raises(ModelError):
        bundle.install(tmp_path / "nothing-here", tmp_path / "x")


def test_text_and_poster_encoders_implement_the_interface():
    from genrelens.encoders.registry import build_poster_encoder, build_text_encoder

    text = build_text_encoder("minilm", max_length=32)
    assert isinstance(text, Encoder) and text.modality == "text"
    assert text.encode(["A ship sinks."]).shape == (1, text.dim)
    poster = build_poster_encoder("effnet-lite0", backend="torch")
    assert isinstance(poster, PosterEncoderLike) and poster.modality == "poster"


@pytest.mark.slow
def test_second_poster_backbone_is_one_registry_entry(subset_csv, cache_dir, tmp_path):
    """EfficientNet-Lite2 (260 px): registered once, it trains a poster model and reloads exactly."""
    from genrelens.encoders.registry import build_poster_encoder

    enc = build_poster_encoder("effnet-lite2")
    assert isinstance(enc, PosterEncoderLike) and enc.input_size == 260
    assert enc.cache_key_prefix() != build_poster_encoder("effnet-lite0").cache_key_prefix()
    out = tmp_path / "lite2"
    metrics = train_tiny("poster", subset_csv, out, cache_dir, poster_encoder="effnet-lite2")
    assert metrics["test"]["n_rows"] > 0
    clf = GenreClassifier.load(out)
    assert clf.poster_encoder.name == "effnet-lite2"
    _, posters = _plots_posters(subset_csv)
    again = GenreClassifier.load(out).predict_proba(None, posters)
    np.testing.assert_array_equal(clf.predict_proba(None, posters), again)


def test_names_come_from_the_registries():
    from typer.testing import CliRunner

    from genrelens.cli import app

    with pytest.raises(ValueError, match="choose from " + ", ".join(MODELS)):
        RunConfig(model="resnet")
    with pytest.raises(ValueError, match="unknown poster encoder"):
        RunConfig(poster_encoder="resnet50")
    helptext = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).output
    assert all(m in helptext for m in MODELS) and all(loss in helptext for loss in LOSSES)
    from genrelens.experiments.benchmark import STUDY_MODELS

    assert STUDY_MODELS == tuple(n for n, s in MODELS.items() if s.study)


def test_default_folders_follow_the_environment(tmp_path, monkeypatch):
    from genrelens import paths

    for var in (paths.ENV_HOME, paths.ENV_MODEL_DIR, paths.ENV_CACHE):
        monkeypatch.delenv(var, raising=False)
    src = Path(paths.__file__).resolve().parent
    assert src not in paths.default_model_dir().parents and src.parent not in paths.default_cache_dir().parents
    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path))
    assert paths.default_model_dir() == tmp_path / "models" / "default"
    assert paths.default_cache_dir() == tmp_path / "cache"
    monkeypatch.setenv(paths.ENV_MODEL_DIR, str(tmp_path / "m"))
    monkeypatch.setenv(paths.ENV_CACHE, str(tmp_path / "c"))
    assert paths.default_model_dir() == tmp_path / "m" and paths.default_cache_dir() == tmp_path / "c"


def test_weights_key_comes_from_hashes_saved_with_the_folder(tiny_model_dir, tmp_path):
    """The guard's key: stored at save time (no weights read at load), the same for a copy with new file times,
    kept by a re-save of the same model with its guard results, changed by new thresholds or weights."""
    src = ModelBundle.from_pretrained(tiny_model_dir)
    key = src.weights_key()
    assert key.startswith("sha256:") and key == bundle.weights_key(tiny_model_dir)
    hashes = json.loads((tiny_model_dir / bundle.MANIFEST).read_text())["hashes"]
    assert {bundle.CONFIG, bundle.WEIGHTS, bundle.THRESHOLDS, f"{bundle.TEXT_ENCODER}/model.safetensors"} <= set(hashes)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy, copy_function=shutil.copyfile)  # new modification times
    assert bundle.weights_key(copy) == key
    loaded = ModelBundle.from_pretrained(copy)
    loaded.save_precision_guard({"format": "genrelens-precision-guard", "results": []})
    loaded.save_pretrained(tmp_path / "resaved")
    assert bundle.weights_key(tmp_path / "resaved") == key
    assert bundle.read_precision_guard(tmp_path / "resaved") == loaded.precision_guard
    thresholds = json.loads((copy / bundle.THRESHOLDS).read_text())
    (copy / bundle.THRESHOLDS).write_text(json.dumps({k: v + 0.01 for k, v in thresholds.items()}, indent=4))
    assert bundle.weights_key(copy) not in (key, "")  # a file edited by hand (another size): keyed by its stat
    cal = ModelBundle.from_pretrained(tmp_path / "resaved")
    cal.save_calibration(cal.calibrator)  # rewrites calibration.json: same content, same key
    assert bundle.weights_key(tmp_path / "resaved") == key


def test_labelled_split_is_what_training_kept(tiny_model_dir, subset_csv, tmp_path):
    """The one labelled-split helper: a model's split of its table, rows without its labels left out, in the
    order training scored them (``test_ids``), the counts training reported."""
    from genrelens.data.table import load_table

    df, _ = load_table(subset_csv, skip_bad=True)
    _, _, labels, _ = bundle.read_meta(tiny_model_dir)
    metrics = bundle.read_artifact(tiny_model_dir, "metrics")
    for name in ("train", "val", "test"):
        part, y, dropped = bundle.labelled_rows(df, bundle.read_split(tiny_model_dir, name), labels)
        assert y.shape == (len(part), len(labels)) and (y.sum(1) > 0).all()
        assert len(part) == metrics["data"]["rows"][name]
        assert dropped == metrics["data"]["rows_without_labels_dropped"][name]
        assert part.attrs["root"] == df.attrs["root"]
    assert list(part["id"]) == bundle.read_artifact(tiny_model_dir, "test_ids")
    with pytest.raises(ModelError, match="split"):
        bundle.read_split(tmp_path, "test")


def test_run_folder_files_are_named_by_the_bundle(tiny_model_dir, tmp_path):
    assert bundle.is_model_folder(tiny_model_dir) and not bundle.is_model_folder(tmp_path)
    for stage in ("text", "head"):  # the integrated model's two training stages
        history = bundle.history_file(tiny_model_dir, stage)
        assert history.is_file() and "epoch" in history.read_text().splitlines()[0].split(",")


def test_install_replaces_atomically(tiny_model_dir, tmp_path):
    src = tiny_model_dir  # a real model folder, with training checkpoints
    assert (src / "checkpoints").is_dir()
    target = tmp_path / "runs" / "default"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    install(src, target)
    assert (target / "metrics.json").exists() and not (target / "old.txt").exists()
    assert not (target / "checkpoints").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["default"]  # no temp dirs left
