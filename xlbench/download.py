"""Downloading one file over HTTP(S): resumable, checked, atomic, with a progress bar.

``fetch_file(url, dest)`` writes ``dest.part`` while the bytes arrive and renames it to ``dest``
only once the transfer is complete and every checksum matches, so ``dest`` is never half a file.
An interrupted transfer keeps ``dest.part``; the next call asks the server for the rest
(``Range: bytes=N-``) and starts again from zero when the server does not honour ranges. A
checksum mismatch deletes the bytes (they are wrong, resuming them cannot help).

``ChecksumLog`` keeps the size and sha256 of what was downloaded from each URL the first time
(``$XLBENCH_HOME/downloads/checksums.json``), so a later download of the same URL is checked
against it even where the source publishes no checksum of its own.

Written with ``requests`` rather than huggingface_hub's downloader, which only knows the Hub's
URL layout; corpus archives live on Zenodo, university servers, Dropbox and GitHub.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from filelock import FileLock

from xlbench import hub, progress
from xlbench.errors import DataError, NetworkError, OfflineError
from xlbench.home import atomic_write_json, downloads_dir

if TYPE_CHECKING:
    import requests

Algorithm = Literal["md5", "sha256", "git-blob-sha1"]
CHUNK = 1 << 20


@dataclass(frozen=True)
class Checksum:
    """An expected digest of a file and who vouches for it (said in the error when it fails)."""

    algorithm: Algorithm
    value: str
    source: str  # e.g. "published by Zenodo", "recorded at the first download on 2026-01-02"


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    md5: str
    #: bytes that were already on disk (an earlier interrupted transfer) when this call started
    resumed_from: int


def digests(path: Path, git_blob: bool = False) -> dict[str, str]:
    """md5 and sha256 of a file in one pass; with ``git_blob`` also git's blob id (sha1 of a header + bytes)."""
    size = path.stat().st_size
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False) if git_blob else None
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            if blob is not None:
                blob.update(chunk)
    out = {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}
    if blob is not None:
        out["git-blob-sha1"] = blob.hexdigest()
    return out


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _short(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text[:160]


def _write_error(path: Path, exc: OSError, kept: int) -> DataError:
    why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
    return DataError(
        f"cannot write {path}: {why} ({kept} bytes kept for resuming); free space in {path.parent} "
        "(or point XLBENCH_HOME elsewhere) and run the same command again"
    )


def fetch_file(
    url: str,
    dest: Path,
    *,
    what: str,
    checksums: Sequence[Checksum] = (),
    size: int | None = None,
    show_progress: bool = True,
    timeout: float = 30.0,
) -> Downloaded:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it, then rename it into place."""
    if hub.offline():
        raise OfflineError(
            f"{what} must be downloaded from {_host(url)} but xlbench is offline ({hub.offline_reason()}); "
            "run the same command where there is internet"
        )
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {part.parent}: {exc.strerror or exc}") from None
    # one writer per partial file: a second process (a parallel grid worker, another shell) waits
    # here and then finds the file complete or continues where the first stopped
    with FileLock(str(part) + ".lock"):
        return _fetch_locked(url, dest, part, what, checksums, size, show_progress, timeout)


def _fetch_locked(
    url: str,
    dest: Path,
    part: Path,
    what: str,
    checksums: Sequence[Checksum],
    size: int | None,
    show_progress: bool,
    timeout: float,
) -> Downloaded:
    import requests

    if dest.is_file() and not part.exists():  # finished by the process that held the lock
        found = digests(dest, git_blob=any(c.algorithm == "git-blob-sha1" for c in checksums))
        if all(found[c.algorithm] == c.value.lower() for c in checksums) and size in (None, dest.stat().st_size):
            return Downloaded(dest, dest.stat().st_size, found["sha256"], found["md5"], dest.stat().st_size)
    have = part.stat().st_size if part.is_file() else 0
    started_with = have
    headers = {"Accept-Encoding": "identity", "User-Agent": "xlbench (https://github.com/xlbench)"}
    session = requests.Session()
    try:
        for _attempt in range(2):  # a second attempt only when the partial file had to be discarded
            if have:
                headers["Range"] = f"bytes={have}-"
            else:
                headers.pop("Range", None)
            try:
                resp = session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True)
            except requests.RequestException as exc:
                raise NetworkError(
                    f"cannot reach {_host(url)} to download {what} ({type(exc).__name__}: {_short(exc)}); check "
                    "the network or proxy and run the same command again"
                ) from None
            if resp.status_code == 416 and have:  # nothing left to send: complete, or a stale partial file
                resp.close()
                if size is None or have == size:
                    break
                _discard(part)
                have = 0
                continue
            if resp.status_code == 404:
                resp.close()
                raise NetworkError(
                    f"{url} was not found (HTTP 404): the source may have moved; see docs/corpora.md for the "
                    "official page"
                )
            if resp.status_code >= 400:
                resp.close()
                raise NetworkError(f"{url}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
            offset, total = _range_of(resp, have)
            if offset != have:  # the server ignored the range: start again from zero
                have = 0
            if size is not None and total is not None and total != size:
                resp.close()
                raise NetworkError(
                    f"{url} offers {total} bytes but {what} has {size}: not the expected file (a changed source?)"
                )
            _check_space(part.parent, (total or 0) - have, what)
            have = _stream(resp, part, have, total, what, show_progress)
            break
    finally:
        session.close()

    got = part.stat().st_size
    if size is not None and got != size:
        raise NetworkError(f"the transfer of {what} stopped at {got} of {size} bytes; run the same command to resume")
    found = digests(part, git_blob=any(c.algorithm == "git-blob-sha1" for c in checksums))
    for c in checksums:
        if found[c.algorithm] != c.value.lower():
            _discard(part)
            raise DataError(
                f"{what} from {_host(url)} fails its {c.algorithm} check ({c.source}: {c.value}, got "
                f"{found[c.algorithm]}); the download was deleted: try again, and if it persists the source changed"
            )
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise DataError(f"cannot move {part} to {dest}: {exc.strerror or exc}") from None
    return Downloaded(dest, got, found["sha256"], found["md5"], started_with)


def _range_of(resp: requests.Response, have: int) -> tuple[int, int | None]:
    """(first byte the response carries, total size of the file) from its headers."""
    length = resp.headers.get("Content-Length")
    if resp.status_code == 206:
        content_range = resp.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
        try:
            span, total = content_range.split(" ", 1)[1].split("/")
            start = int(span.split("-")[0])
            return start, (None if total == "*" else int(total))
        except (IndexError, ValueError):
            return -1, None  # unusable: restart from zero
    return 0, (int(length) if length and length.isdigit() else None)


def _check_space(folder: Path, needed: int, what: str) -> None:
    if needed <= 0:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise DataError(
            f"{what} needs {needed / 1e6:,.0f} MB and {folder} has {free / 1e6:,.0f} MB free; free space there or "
            "point XLBENCH_HOME elsewhere"
        )


def _stream(
    resp: requests.Response, part: Path, have: int, total: int | None, what: str, show_progress: bool
) -> int:
    import requests

    mode = "ab" if have else "wb"
    written = have
    # keep the bytes of a transfer cut short (urllib3 would raise and drop the last partial read);
    # the length is checked below, and the next call resumes after what was kept
    if hasattr(resp.raw, "enforce_content_length"):
        resp.raw.enforce_content_length = False
    try:
        with progress.bytes_bar(f"downloading {what}", total, have, show_progress) as advance:
            try:
                f = open(part, mode)  # noqa: SIM115 - closed below, where a full disk may also show
            except OSError as exc:
                raise _write_error(part, exc, have) from None
            try:
                for chunk in resp.iter_content(CHUNK):
                    try:
                        f.write(chunk)
                    except OSError as exc:
                        raise _write_error(part, exc, written) from None
                    written += len(chunk)
                    advance(len(chunk))
            except (requests.RequestException, OSError) as exc:  # write errors are DataErrors by now
                raise NetworkError(
                    f"the transfer of {what} was interrupted after {written} of {total or '?'} bytes "
                    f"({type(exc).__name__}); run the same command again to resume"
                ) from None
            finally:
                try:
                    f.close()
                except OSError as exc:  # buffered bytes meet a full disk here
                    raise _write_error(part, exc, written) from None
    finally:
        resp.close()
    if total is not None and written < total:
        raise NetworkError(
            f"the transfer of {what} was interrupted after {written} of {total} bytes; run the same command "
            "again to resume"
        )
    return written


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# -- sizes and checksums recorded at the first download ---------------------------------------------


class ChecksumLog:
    """url -> size and sha256 of the first good download (``$XLBENCH_HOME/downloads/checksums.json``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or downloads_dir() / "checksums.json"

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path} is not readable JSON ({_short(exc)}); delete it to start afresh") from None
        return data if isinstance(data, dict) else {}

    def expected(self, url: str) -> tuple[int | None, list[Checksum]]:
        entry = self._read().get(url)
        if not entry:
            return None, []
        source = f"recorded at the first download on {entry.get('recorded', '?')[:10]} in {self.path}"
        return int(entry["size"]), [Checksum("sha256", entry["sha256"], source)]

    def record(self, url: str, got: Downloaded) -> None:
        data = self._read()
        if url in data:
            return
        data[url] = {
            "size": got.size,
            "sha256": got.sha256,
            "md5": got.md5,
            "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write_json(self.path, data)

    def forget(self, url: str) -> bool:
        data = self._read()
        if url not in data:
            return False
        del data[url]
        atomic_write_json(self.path, data)
        return True
