"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class XLBenchError(Exception):
    """An error whose message is meant for the user, on one line, without a traceback."""

    exit_code = 2


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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when a close choice exists, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    choices = sorted(choices)
    return ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, choices)}; known: {', '.join(choices) or 'none'}")
