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

from xlbench.errors import DataError


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
        path.mkdir(parents=True, exist_ok=True)
        return path
    return subdir("results")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: never a half-written file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the writer's pid in the name: a start-up sweep removes it once that process is gone
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
