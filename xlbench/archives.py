"""Unpacking a downloaded zip or tar archive into a folder, safely and with one-line errors.

Only regular files are written; a member whose path is absolute or climbs out with ``..`` is
refused (the whole archive is, nothing is written outside ``dest``). The free disk space is
checked against the members' sizes before anything is written. Callers unpack into a staging
folder and remove it when this raises, so a damaged archive never leaves half a corpus.
Python's zipfile and tarfile do the reading; tar members go through tarfile's ``data`` filter.
"""

from __future__ import annotations

import errno
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from xlbench.errors import DataError

CHUNK = 1 << 20


def _safe_parts(name: str, archive: Path) -> tuple[str, ...]:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"{archive.name} holds an unsafe path {name!r}; refusing to unpack it")
    return tuple(p for p in path.parts if p not in ("", "."))


def _space(dest: Path, needed: int, archive: Path) -> None:
    try:
        free = shutil.disk_usage(dest).free
    except OSError:
        return
    if needed > free:
        raise DataError(
            f"unpacking {archive.name} needs {needed / 1e6:,.0f} MB and {dest} has {free / 1e6:,.0f} MB free; free "
            "space there or point XLBENCH_HOME elsewhere"
        )


def _damaged(archive: Path, exc: BaseException) -> DataError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    return DataError(f"{archive.name} is damaged or truncated ({first}); delete it and download it again")


def _write_error(path: Path, exc: OSError) -> DataError:
    why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
    return DataError(f"cannot write {path}: {why}")


def extract(archive: Path, dest: Path) -> int:
    """Unpack ``archive`` (zip or tar, any compression tarfile reads) into ``dest``; return the file count."""
    archive, dest = Path(archive), Path(dest)
    with open(archive, "rb") as f:
        head = f.read(4)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest)
    if head.startswith(b"PK"):
        raise _damaged(archive, ValueError("no zip directory at its end"))
    try:
        is_tar = tarfile.is_tarfile(archive)
    except (OSError, EOFError):
        is_tar = False
    if is_tar:
        return _extract_tar(archive, dest)
    kind = "a web page" if head.lstrip().startswith((b"<", b"<!")) else "not a zip or tar archive"
    raise DataError(
        f"{archive.name} is {kind}, not the corpus archive; the source may have moved (see docs/corpora.md)"
    )


def _extract_zip(archive: Path, dest: Path) -> int:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [(info, _safe_parts(info.filename, archive)) for info in zf.infolist() if not info.is_dir()]
            _space(dest, sum(info.file_size for info, _ in members), archive)
            for info, parts in members:
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                except OSError as exc:
                    raise _write_error(target, exc) from None
            return len(members)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise _damaged(archive, exc) from None


def _extract_tar(archive: Path, dest: Path) -> int:
    try:
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
            for m in members:
                _safe_parts(m.name, archive)
            _space(dest, sum(m.size for m in members), archive)
            try:
                tf.extractall(dest, members=members, filter="data")
            except OSError as exc:
                raise _write_error(dest, exc) from None
            return len(members)
    except (tarfile.TarError, zlib.error, EOFError) as exc:
        raise _damaged(archive, exc) from None
