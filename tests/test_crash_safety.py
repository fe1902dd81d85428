"""Crash safety (issue 8): atomic writers, a real ``kill -9`` during training and during a batch prediction, and
safe model loading (safetensors + JSON only; pickles refused with a clear error).

The corrupted-cache case is in tests/test_cache.py (test_corrupt_entry_is_recomputed) and the in-process
interrupted batch in tests/test_predict_cli.py; they are not repeated here.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from genrelens.cli import app as cli
from genrelens.encoders.cache import default_cache_dir
from genrelens.errors import ModelError
from genrelens.io import atomic_path, write_json_atomic
from genrelens.models.checkpoint import load_tensors, save_tensors
from genrelens.predict import GenreClassifier

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner(env={"COLUMNS": "200"})


def _genrelens(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """``genrelens ARGS`` in a real child process (its own session, so SIGKILL reaches nothing else)."""
    return subprocess.Popen([sys.executable, "-m", "genrelens.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it ends first (nothing would have been interrupted)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the run to get far enough")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    return out


@pytest.fixture
def child_env(tmp_path, cache_dir) -> dict[str, str]:
    """A child's environment whose feature cache is the session's tmp cache (posters already encoded by the tiny
    model's training, when it ran) and whose ONNX export is the usual one (reused, not rebuilt)."""
    home = tmp_path / "genrelens-cache"
    home.mkdir()
    (home / "features").symlink_to(cache_dir, target_is_directory=True)
    onnx = default_cache_dir() / "onnx"
    onnx.mkdir(parents=True, exist_ok=True)
    (home / "onnx").symlink_to(onnx, target_is_directory=True)
    return {**os.environ, "GENRELENS_CACHE": str(home), "COLUMNS": "200"}


def _last_epoch(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "head" / "last.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_kill_9_during_training_then_resume_matches(subset_csv, tmp_path, child_env) -> None:
    """SIGKILL once epoch >= 2 is checkpointed; ``--resume`` must end with exactly the uninterrupted metrics."""
    args = ["train", "--model", "poster", "--data", str(subset_csv), "--epochs", "6", "--no-progress"]
    full = _genrelens(*args, "--out", str(tmp_path / "full"), env=child_env)  # runs alongside the victim
    victim = _genrelens(*args, "--out", str(tmp_path / "killed"), env=child_env)
    _kill_when(victim, lambda: _last_epoch(tmp_path / "killed") >= 2)
    killed_at = _last_epoch(tmp_path / "killed")
    assert 2 <= killed_at < 6 and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = _genrelens(*args, "--out", str(tmp_path / "killed"), "--resume", env=child_env)
    _finish(resumed)
    _finish(full)
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert b["test"]["weighted_f1"] == a["test"]["weighted_f1"]
    assert b["test"]["per_label"] == a["test"]["per_label"] and b["val"] == a["val"]

    def strip(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert [h["epoch"] for h in b["history"]] == list(range(1, len(a["history"]) + 1))
    assert strip(b["history"]) == strip(a["history"])
    for name in ("model.safetensors", "thresholds.json", "labels.json", "split.json"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


@pytest.mark.slow
def test_kill_9_during_batch_prediction_then_resume(tiny_model_dir, subset_csv, tmp_path, child_env) -> None:
    """SIGKILL a ``predict --input`` once two chunks are saved; ``--resume`` scores only the rest, each row once."""
    src = pd.read_csv(subset_csv, dtype=str, keep_default_na=False).head(60)
    table = subset_csv.parent / "kill9-batch.csv"  # beside the posters, whose paths are relative
    src.drop(columns=["genres"]).to_csv(table, index=False)
    out = tmp_path / "pred.csv"
    args = ["predict", "--model-dir", str(tiny_model_dir), "--input", str(table), "--output", str(out),
            "--chunk-size", "4", "--no-progress"]
    parts = out.with_name(out.name + ".parts")
    victim = _genrelens(*args, env=child_env)
    _kill_when(victim, lambda: len(list(parts.glob("part-*.parquet"))) >= 2)
    saved = len(list(parts.glob("part-*.parquet")))
    assert not out.exists() and saved < 15
    log = _finish(_genrelens(*args, "--resume", env=child_env))
    assert "60 scored, 0 not scored" in log and f"({saved * 4} from earlier chunks; {60 - saved * 4} read in this run" \
        in log, log
    got = pd.read_csv(out, dtype={"id": str})
    assert got["id"].tolist() == src["id"].tolist() and not parts.exists()


# ------------------------------------------------------------------------------------------ atomic writers


def test_atomic_writes_leave_the_old_file_on_a_crash(tmp_path) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "half')
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1} and list(tmp_path.iterdir()) == [target]
    tensors = {"w": torch.arange(6.0).reshape(2, 3)}
    save_tensors(tmp_path / "m.safetensors", tensors)

    def crash(*a, **k):
        Path(a[1]).write_bytes(b"\0" * 10)  # a partial file, then the crash
        raise OSError("disk full")

    import genrelens.models.checkpoint as ckpt

    real = ckpt.save_file
    ckpt.save_file = crash
    try:
        with pytest.raises(OSError):
            save_tensors(tmp_path / "m.safetensors", {"w": torch.zeros(2, 3)})
    finally:
        ckpt.save_file = real
    assert torch.equal(load_tensors(tmp_path / "m.safetensors")["w"], tensors["w"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_every_writer_is_atomic() -> None:
    """Files under genrelens/ that write outputs do it through genrelens.io (or their own temp file + rename)."""
    writers = {  # module -> what it writes
        "genrelens/models/checkpoint.py": "weights (safetensors)",
        "genrelens/train/checkpoint.py": "training state (last.json)",
        "genrelens/encoders/cache.py": "feature cache entries",
        "genrelens/batch.py": "batch parts, manifest and output",
        "genrelens/experiments/benchmark.py": "results.json",
        "genrelens/train/loop.py": "history.csv, curves.png",
    }
    for rel in writers:
        text = (REPO / rel).read_text()
        assert "atomic" in text or "os.replace" in text, rel


# ---------------------------------------------------------------------------------------------- safe loading


def _model_copy(tiny_model_dir: Path, dest: Path) -> Path:
    shutil.copytree(tiny_model_dir, dest, ignore=shutil.ignore_patterns("checkpoints", "text_encoder"))
    if (tiny_model_dir / "text_encoder").exists():
        (dest / "text_encoder").symlink_to(tiny_model_dir / "text_encoder")
    return dest


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_checkpoint_is_refused(tiny_model_dir, tmp_path) -> None:
    d = _model_copy(tiny_model_dir, tmp_path / "m")
    (d / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(2)}, d / "model.pt")
    with pytest.raises(ModelError, match="pickle checkpoint: refused"):
        GenreClassifier.load(d)
    r = runner.invoke(cli, ["predict", "--model-dir", str(d), "--plot", "A plot."])
    assert r.exit_code == 2 and "refused" in r.output and "Traceback" not in r.output
    with pytest.raises(ModelError, match="only .safetensors"):
        load_tensors(d / "model.pt")


@pytest.mark.parametrize("content", ["pickle", "torch-save", "truncated", "empty", "text"])
def test_fake_safetensors_is_a_model_error(tiny_model_dir, tmp_path, content: str) -> None:
    d = _model_copy(tiny_model_dir, tmp_path / "m")
    path = d / "model.safetensors"
    real = path.read_bytes()
    if content == "pickle":
        path.write_bytes(pickle.dumps(Boom()))
    elif content == "torch-save":
        torch.save({"w": torch.zeros(2)}, path)
    elif content == "truncated":
        path.write_bytes(real[: len(real) // 2])
    elif content == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a checkpoint")
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_tensors(path)
    with pytest.raises(ModelError):
        GenreClassifier.load(d)
