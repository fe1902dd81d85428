"""Content-addressed on-disk cache of per-item feature vectors.

Layout: `root/<sha256(prefix)[:16]>/<key[:2]>/<key>.npy` with key = sha256(prefix + NUL + item key), one
float32 vector per file, written atomically (temp file + os.replace). The prefix names the encoder, its
weights and its preprocessing (see the encoders' `cache_key_prefix()`), so a changed encoder never reads
stale features. Unreadable or wrong-shaped entries are recomputed.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrelens.io import write_bytes_atomic
from genrelens.paths import default_cache_dir  # noqa: F401  (re-exported: encoders import it from here)


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def content_key_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (the content key of a poster); raises OSError if unreadable."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0  # items computed (or attempted)
    corrupt: int = 0  # entries found unreadable or wrong-shaped, then recomputed
    failed: int = 0  # computed rows with non-finite values (not stored)

    def add(self, other: CacheStats) -> None:
        for field in ("hits", "misses", "corrupt", "failed"):
            setattr(self, field, getattr(self, field) + getattr(other, field))


class FeatureCache:
    """Per-item feature cache. `stats` accumulates over calls; `last` holds the latest call's counts."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "features"
        self.stats = CacheStats()
        self.last = CacheStats()

    def _dir(self, prefix: str) -> Path:
        return self.root / sha256_hex(prefix)[:16]

    def path_for(self, prefix: str, item_key: str) -> Path:
        key = sha256_hex(prefix + "\0" + item_key)
        return self._dir(prefix) / key[:2] / f"{key}.npy"

    @staticmethod
    def _read(path: Path) -> np.ndarray | None:
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):
            return np.empty(0, dtype=np.float32)  # corrupt: flagged by the shape check
        return arr

    def _write(self, path: Path, vector: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(vector, dtype=np.float32), allow_pickle=False)
        write_bytes_atomic(path, buf.getvalue())

    def get_or_compute(
        self,
        prefix: str,
        items: Sequence[Any],
        item_keys: Sequence[str],
        compute: Callable[[list[Any]], np.ndarray],
        progress: bool = True,
        batch_size: int = 256,
        dim: int | None = None,
    ) -> np.ndarray:
        """Return features [n, dim] for `items`, computing only the misses.

        compute(list of missing items) -> [m, dim] array; it is called on chunks of at most `batch_size`
        distinct missing items (each chunk is stored as soon as computed, so an interrupted run resumes).
        Rows containing NaN/inf are returned as they are but not stored (use NaN to mark failed items).
        `dim` is checked when given, else taken from the stored entries or the first computed chunk.
        """
        if len(items) != len(item_keys):
            raise ValueError(f"{len(items)} items but {len(item_keys)} keys")
        stats = CacheStats()
        self._dir(prefix).mkdir(parents=True, exist_ok=True)
        desc = self._dir(prefix) / "prefix.txt"
        if not desc.exists():
            write_bytes_atomic(desc, prefix.encode("utf-8"))

        paths = [self.path_for(prefix, str(k)) for k in item_keys]
        found: dict[Path, np.ndarray] = {}
        for path in dict.fromkeys(paths):
            arr = self._read(path)
            if arr is not None:
                found[path] = arr
        if dim is None and found:
            shapes = Counter(a.shape for a in found.values() if a.ndim == 1 and a.size > 0)
            dim = shapes.most_common(1)[0][0][0] if shapes else None
        valid: dict[Path, np.ndarray] = {}
        for path, arr in found.items():
            if arr.ndim == 1 and arr.shape[0] == dim and arr.dtype == np.float32 and np.isfinite(arr).all():
                valid[path] = arr
            else:
                stats.corrupt += 1

        todo: dict[Path, Any] = {}  # distinct missing keys, first item for each
        for item, path in zip(items, paths, strict=True):
            if path not in valid and path not in todo:
                todo[path] = item
        stats.hits = sum(p in valid for p in paths)
        stats.misses = len(todo)

        if todo:
            valid.update(self._compute(todo, compute, progress, batch_size, dim, stats))
        self.last = stats
        self.stats.add(stats)
        if not paths:
            return np.zeros((0, dim or 0), dtype=np.float32)
        return np.stack([valid[p] for p in paths]).astype(np.float32, copy=False)

    def _compute(
        self,
        todo: dict[Path, Any],
        compute: Callable[[list[Any]], np.ndarray],
        progress: bool,
        batch_size: int,
        dim: int | None,
        stats: CacheStats,
    ) -> dict[Path, np.ndarray]:
        from genrelens.progress import progress_bar

        out: dict[Path, np.ndarray] = {}
        keys = list(todo)
        with progress_bar(enabled=progress) as bar:
            task = bar.add_task("computing features", total=len(keys))
            for start in range(0, len(keys), batch_size):
                chunk = keys[start : start + batch_size]
                feats = np.asarray(compute([todo[p] for p in chunk]), dtype=np.float32)
                if feats.ndim != 2 or feats.shape[0] != len(chunk):
                    raise ValueError(f"compute returned shape {feats.shape} for {len(chunk)} items")
                if dim is not None and feats.shape[1] != dim:
                    raise ValueError(f"compute returned dim {feats.shape[1]}, cache holds dim {dim}")
                dim = feats.shape[1]
                for path, row in zip(chunk, feats, strict=True):
                    out[path] = row
                    if np.isfinite(row).all():
                        self._write(path, row)
                    else:
                        stats.failed += 1
                bar.advance(task, len(chunk))
        return out
