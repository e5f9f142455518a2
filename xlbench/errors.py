"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable

#: exit status of every error a user can cause (bad input, bad data, a full or read-only disk,
#: memory), of a failed check (check-method, audit, doctor) and of Ctrl-C (docs/reliability.md)
EXIT_ERROR = 2
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130


class XLBenchError(Exception):
    """An error whose message is meant for the user, on one line, without a traceback."""

    exit_code = EXIT_ERROR


class DataError(XLBenchError):
    """A corpus, a manifest, an audio file or a split is not what it should be."""


class ConfigError(XLBenchError):
    """A malformed option, an unknown name, a value out of range."""


class MissingWeightsError(XLBenchError):
    """Model weights that must be on disk are not."""


class NetworkError(XLBenchError):
    """A download failed: no network, an unreachable host, an HTTP error, an interrupted transfer."""


class OfflineError(XLBenchError):
    """Something must be downloaded but xlbench is offline (HF_HUB_OFFLINE=1 or --offline)."""


class TrainingError(XLBenchError):
    """Training went wrong in a way the user must hear about (e.g. a NaN loss)."""


class LeakError(XLBenchError):
    """A method asked for something outside its view (a key it was not lent, a test key in ``fit``)."""


class MethodError(XLBenchError):
    """A method's own code failed (an exception in ``fit``/``predict_proba``, or its worker died)."""


def os_error_line(exc: OSError, doing: str = "", path: object = None) -> str:
    """One line for an OSError: what failed (``doing``), where (``path``, else the error's file
    name), and what to do about the common causes."""
    target = path if path is not None else exc.filename
    where = f" {target}" if target else ""
    what = f"cannot {doing}{where}" if doing else f"cannot use{where}" if where else "input/output error"
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "free some space, or set XLBENCH_HOME / --results to a folder on a larger disk",
        errno.EDQUOT: "free some space, or set XLBENCH_HOME / --results to a folder on a larger disk",
        errno.EROFS: "set XLBENCH_HOME / --results to a writable folder",
        errno.EACCES: "check its permissions, or set XLBENCH_HOME / --results to a folder you may write",
        errno.EPERM: "check its permissions, or set XLBENCH_HOME / --results to a folder you may write",
    }.get(exc.errno or 0, "")
    return f"{what}: {reason}" + (f"; {hint}" if hint else "")


def memory_error_line(exc: MemoryError) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else "MemoryError"
    return f"out of memory ({detail}); ask for less (fewer seeds or utterances, smaller batches or options)"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when a close choice exists, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    choices = sorted(choices)
    return ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, choices)}; known: {', '.join(choices) or 'none'}")
