"""Corpora that xlbench itself puts in the data home (downloaded or imported), installed atomically.

A corpus is assembled in a hidden staging folder beside its final place
(``<data home>/corpora/.<name>.staging-*``), checked there, and only then renamed to
``<data home>/corpora/<name>``; any failure removes the staging folder, so the final folder is
either the previous complete corpus or the new complete one, never a mixture.

The final folder carries ``xlbench-source.json``: where the files came from (archive URLs with
size, sha256 and md5, or the Hub repository and the commit it was read at). ``data prepare``
copies it into the manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xlbench.errors import DataError
from xlbench.home import atomic_write_json, corpora_dir

SOURCE_FILE = "xlbench-source.json"


def corpus_folder(name: str) -> Path:
    """Where a downloaded or imported corpus lives."""
    return corpora_dir() / name


@contextlib.contextmanager
def staging(name: str) -> Iterator[Path]:
    """A fresh hidden folder beside the corpus's final place, removed unless it was installed."""
    parent = corpora_dir()
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=parent))
    except OSError as exc:
        raise DataError(f"cannot create a folder in {parent}: {exc.strerror or exc}") from None
    try:
        yield folder
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def install(folder: Path, name: str, source: dict[str, Any]) -> Path:
    """Write the provenance into ``folder`` and rename it to the corpus's final place.

    An existing corpus there is moved aside first and deleted only after the new one is in place.
    """
    atomic_write_json(folder / SOURCE_FILE, source)
    final = corpus_folder(name)
    old: Path | None = None
    try:
        if final.exists():
            old = final.with_name(f".{name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(folder, final)
    except OSError as exc:
        if old is not None and old.exists() and not final.exists():
            os.replace(old, final)  # put the previous corpus back
        raise DataError(f"cannot move the new {name} corpus into {final}: {exc.strerror or exc}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_source(root: Path) -> dict[str, Any] | None:
    """The provenance a download or an import left in a corpus folder, None for folders of the user's own."""
    path = Path(root) / SOURCE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc}); download or import the corpus again") from None
    return data if isinstance(data, dict) else None
