"""Atomic file writes (temporary file + rename), so a crash never leaves a half-written output.

The temporary file or folder is private while it is written (``tempfile`` makes it 0600/0700); before the
rename it gets the mode a plain ``open()``/``mkdir()`` would have given it under the user's umask
(0644/0755 under umask 022), so outputs can be shared like any other file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore it (briefly process-wide, hence the lock)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _public(path: str | os.PathLike, folder: bool = False) -> None:
    """Give ``path`` the mode a new file (0666) or folder (0777) gets under the umask."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        _public(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` by renames (the old
    folder is moved aside first, since a folder cannot be renamed over a non-empty one), so a crash leaves
    the old folder or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    old = tmp.with_name(f"{tmp.name}.old")
    try:
        yield tmp
        _public(tmp, folder=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
