"""Child processes that die with their parent, and leftovers of killed processes cleaned up.

A process killed with SIGKILL runs no ``finally`` and no ``atexit``: its pool workers would
keep running (and writing records) as orphans, and a file it was writing stays behind as a
temporary. ``die_with_parent`` is called first thing in every worker xlbench starts (grid pool
workers, audio-reading workers, the method's worker); ``sweep_temp_files`` removes the
temporaries of writers that are gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

#: a temporary older than this is removed whoever wrote it (no write of ours takes an hour)
STALE_TEMP_SECONDS = 3600.0

# atomic writes name their temporary ``.<final name>.<writer pid>.<8 random chars>.tmp``
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[A-Za-z0-9_]{8}\.tmp$")


def die_with_parent(parent: int | None = None) -> None:
    """Make this process end when ``parent`` (default: its parent now) ends, however it ends.

    Linux: the kernel sends SIGKILL at the parent's death (PR_SET_PDEATHSIG), and a parent that
    died before the call is caught by comparing the parent id. Elsewhere a daemon thread polls
    the parent id twice a second.
    """
    parent = os.getppid() if parent is None else parent
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            import ctypes

            pr_set_pdeathsig = 1
            if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL) == 0:
                if os.getppid() != parent:  # the parent died before the prctl
                    os._exit(1)
                return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="xlbench-parent-watch", daemon=True).start()


def temp_writer(path: Path) -> int | None:
    """The process id an atomic write's temporary names, or None for any other file."""
    m = _TEMP.match(path.name)
    return int(m["pid"]) if m else None


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie does not)."""
    import psutil

    if pid == os.getpid():
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone (NoSuchProcess) or not ours to inspect (then it exists)
        return psutil.pid_exists(pid)


def sweep_temp_files(folders: Iterable[Path], now: float | None = None) -> list[Path]:
    """Remove the temporaries (``.*.tmp``) in ``folders`` that no live writer will finish.

    A temporary is removed when this user owns it and either the process its name gives is not
    running on this machine or it is older than STALE_TEMP_SECONDS; a live writer's temporary
    (another xlbench writing into the same folder now) is left alone. Returns what was removed;
    a folder that is missing or read-only is skipped.
    """
    now = time.time() if now is None else now
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed = []
    for folder in folders:
        try:
            candidates = list(Path(folder).glob(".*.tmp"))
        except OSError:
            continue
        for path in candidates:
            try:
                st = path.lstat()
            except OSError:
                continue
            if uid is not None and st.st_uid != uid:
                continue
            pid = temp_writer(path)
            old = now - st.st_mtime > STALE_TEMP_SECONDS
            if old or (pid is not None and not process_alive(pid)):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed
