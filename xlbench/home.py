"""Where xlbench keeps what it makes: manifests, the generated corpus, caches, runs, MLflow.

``XLBENCH_HOME`` overrides the default, a per-user cache folder (platformdirs).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from xlbench.errors import DataError, os_error_line


def data_home() -> Path:
    env = os.environ.get("XLBENCH_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("xlbench"))


def subdir(*parts: str, create: bool = True) -> Path:
    path = data_home().joinpath(*parts)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot create {path}: {exc.strerror or exc} (set XLBENCH_HOME to a writable folder)"
            ) from None
    return path


def manifests_dir() -> Path:
    return subdir("manifests")


def synthetic_dir() -> Path:
    return subdir("synthetic")


def features_dir() -> Path:
    return subdir("features")


def corpora_dir() -> Path:
    """Where downloaded and imported corpora are unpacked: ``<data home>/corpora/<name>``."""
    return subdir("corpora")


def downloads_dir() -> Path:
    """Archives while they download (resumable ``.part`` files) and the checksums recorded."""
    return subdir("downloads")


def results_dir() -> Path:
    env = os.environ.get("XLBENCH_RESULTS")
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise DataError(f"XLBENCH_RESULTS={env} is not a folder; point it at a folder for run records")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(os_error_line(exc, "create the results folder (XLBENCH_RESULTS)", path)) from None
        return path
    return subdir("results")


def umask() -> int:
    """The process umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only here)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the umask (mkstemp's files are 0o600)."""
    return 0o666 & ~umask()


def open_temp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path`` (``.<name>.<pid>.<random>.tmp``), with the mode the umask
    gives a new file, so a shared cache stays readable to those the umask lets read it. The writer's
    pid is in the name: a start-up sweep removes the file once that process is gone."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    with contextlib.suppress(OSError):  # a file system without modes (FAT, some network mounts)
        os.fchmod(fd, new_file_mode())
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: never a half-written file.

    Any failure (a full or read-only disk, a permission) removes the temporary file and is a
    one-line DataError naming ``path``; the file at ``path``, if any, is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = open_temp_beside(path)
    except OSError as exc:
        raise DataError(os_error_line(exc, "write", path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise DataError(os_error_line(exc, "write", path)) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
