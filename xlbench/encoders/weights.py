"""Hashes of weight files, computed once per file version and remembered in-process.

A run record and the feature-cache key name the weights by content, not by path, so that a
moved or renamed folder still matches and a silently replaced file does not.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

_lock = threading.Lock()
_memo: dict[tuple[str, int, int], str] = {}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, remembered by (real path, size, mtime)."""
    real = Path(os.path.realpath(path))
    st = real.stat()
    key = (str(real), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _memo:
            return _memo[key]
    # The Hugging Face cache stores large (LFS) files as blobs named by their sha256: no need
    # to read 360 MB again to learn what the name already says.
    if real.parent.name == "blobs" and _HEX64.fullmatch(real.name):
        digest = real.name
    else:
        h = hashlib.sha256()
        with open(real, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        digest = h.hexdigest()
    with _lock:
        _memo[key] = digest
    return digest


def files_sha256(paths: Sequence[str | os.PathLike[str]]) -> str:
    """One hash for one or several weight files (shards are hashed in the order given)."""
    if len(paths) == 1:
        return file_sha256(paths[0])
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).name.encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()
