"""Locks between xlbench processes that share a data home or a results folder (docs/concurrency.md).

A lock is a file locked with ``filelock`` (``flock`` on POSIX): the kernel releases it when its
holder exits, also when the holder is killed, so a lock is never left stale. What is locked:

- extracting one encoder's features of one corpus (``features/<key>/.extract-<corpus>.lock``);
- training one run id (``<results>/.locks/<run id>.lock``);
- auditing one method fingerprint (``audits/.<fingerprint>.lock``);
- writing to MLflow (beside the SQLite file, or ``<data home>/mlflow.lock``).

A folder where no lock file can be created (a read-only data home) is not locked: whoever
reads there needs no lock, and whoever must write fails on the write itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout


class ProcessLock:
    """An exclusive lock across processes on one file; ``what`` says what it guards, for notes."""

    def __init__(self, path: Path, what: str, on_wait: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.what = what
        self.on_wait = on_wait
        self._lock: FileLock | None = None
        self._held = False

    def _file_lock(self) -> FileLock | None:
        if self._lock is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return None
            self._lock = FileLock(str(self.path))
        return self._lock

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it (or this object does already); False when another process does."""
        if self._held:
            return True
        lock = self._file_lock()
        if lock is None:
            return True
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        except OSError:  # no lock file can be made here (read-only): nothing to guard
            self._lock = None
            return True
        self._held = True
        return True

    def acquire(self) -> None:
        """Take the lock, waiting (with a note) while another process holds it."""
        if self.try_acquire():
            return
        if self.on_wait is not None:
            self.on_wait(f"waiting for another xlbench process {self.what} (lock {self.path})")
        lock = self._file_lock()
        if lock is not None:
            lock.acquire()
            self._held = True

    def release(self) -> None:
        if self._held and self._lock is not None:
            self._lock.release(force=True)
        self._held = False

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
