"""The Hugging Face Hub as xlbench uses it: settings read per call, downloads pinned to a commit.

- ``offline()`` is true when ``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE`` or ``XLBENCH_OFFLINE``
  (set by ``xlbench --offline``) says so. Offline, nothing here opens a connection: look-ups use
  only the local cache, and a download becomes a one-line error that says what to do.
- ``local_only()`` forbids downloads for a block of code (``--encoder auto`` uses it: the main
  command never downloads).
- ``cached_snapshot`` finds a model in the standard Hugging Face cache without any network call;
  ``fetch_snapshot`` resolves the revision to a commit hash, downloads only the files asked for
  (with huggingface_hub's progress bars) and returns the snapshot folder, named by that commit.

Why settings are read here, per call: huggingface_hub copies ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``
and ``HF_HUB_CACHE`` into module constants once, when it is first imported
(``huggingface_hub/constants.py``), and its HTTP layer refuses every request while that copy says
offline (``constants.is_offline_mode()``). A process that changes the environment after that
import (a notebook, a test, ``xlbench --offline`` after a plugin imported the library) would
otherwise get the stale answer. So xlbench reads the environment when it acts, passes the
endpoint and the cache folder explicitly to every call, decides on its own whether to go online,
and aligns the library's offline switch with that decision for the duration of a download.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from xlbench import progress
from xlbench.errors import ConfigError, MissingWeightsError, NetworkError, OfflineError

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "ON", "YES", "TRUE"}
_COMMIT = re.compile(r"[0-9a-f]{40}")
_local_only: ContextVar[bool] = ContextVar("xlbench_hub_local_only", default=False)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in _TRUE


def offline() -> bool:
    """Whether xlbench must not touch the network (read from the environment on every call)."""
    return any(_env_true(v) for v in ("XLBENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def offline_reason() -> str:
    """What made xlbench offline, as the user would have written it."""
    if _env_true("XLBENCH_OFFLINE"):
        return "--offline"
    return " and ".join(f"{v}=1" for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if _env_true(v)) or "online"


def set_offline() -> None:
    """What ``--offline`` does: every later look-up in this process (and its children) stays local."""
    os.environ["XLBENCH_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Within this block nothing is downloaded (missing files are errors, as offline)."""
    token = _local_only.set(True)
    try:
        yield
    finally:
        _local_only.reset(token)


def downloads_allowed() -> bool:
    return not offline() and not _local_only.get()


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """The Hugging Face hub cache, by huggingface_hub's own rules, read now (not at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


@dataclass(frozen=True)
class Snapshot:
    """A repository at one commit in the local cache."""

    repo_id: str
    repo_type: str  # "model" or "dataset"
    commit: str  # 40-hex commit hash: the pinned revision
    folder: Path


def cached_snapshot(repo_id: str, revision: str | None = None, *, marker: str = "config.json") -> Snapshot | None:
    """A cached model snapshot holding ``marker``, found without any network call; None if absent.

    ``revision`` may be a branch, a tag or a commit; None means ``main``.
    """
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, marker, cache_dir=cache_dir(), revision=revision or "main")
    except (OSError, ValueError):  # a malformed id or an unreadable cache: treat as absent
        return None
    if not isinstance(found, str):
        return None
    folder = Path(found).parent
    if not _COMMIT.fullmatch(folder.name):
        return None
    return Snapshot(repo_id, "model", folder.name, folder)


@contextlib.contextmanager
def _library_online() -> Iterator[None]:
    """Align huggingface_hub's import-time offline switch with xlbench's decision to download."""
    import huggingface_hub.utils as hub_utils
    from huggingface_hub import constants

    # older huggingface_hub releases decide offline when an HTTP session is created, newer ones
    # per request: drop cached sessions on the way in and out so both see the switch as set
    drop_sessions = getattr(hub_utils, "close_session", None) or getattr(hub_utils, "reset_sessions", None)
    before = constants.HF_HUB_OFFLINE
    if before and drop_sessions:
        drop_sessions()
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
        if before and drop_sessions:
            drop_sessions()


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    show = enabled and progress.globally_enabled() and progress.console.is_terminal
    if show and was_disabled and not _env_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        enable_progress_bars()
    elif not show:
        disable_progress_bars()
    try:
        yield
    finally:
        (disable_progress_bars if was_disabled else enable_progress_bars)()


def require_downloads(what: str, fetch_command: str, where: Path | None = None) -> None:
    """Raise the one-line error that says why ``what`` cannot be downloaded now, if it cannot.

    ``where`` is the file or folder it would be downloaded to (default: the Hugging Face cache).
    """
    if _local_only.get():  # first: callers of local_only() catch MissingWeightsError, offline or not
        raise MissingWeightsError(f"{what} is not on this machine (nothing is downloaded here); run `{fetch_command}`")
    if offline():
        place = f"the Hugging Face cache {cache_dir()}" if where is None else str(where)
        copy = "that cache (or set HF_HUB_CACHE)" if where is None else "it"
        raise OfflineError(
            f"{what} is not in {place} and xlbench is offline ({offline_reason()}): run `{fetch_command}` where "
            f"there is internet and copy {copy} here, or drop the offline setting"
        )


def fetch_snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    repo_type: str = "model",
    choose: Callable[[Sequence[str]], list[str] | None] | None = None,
    fetch_command: str,
    show_progress: bool = True,
) -> Snapshot:
    """Download ``repo_id`` at ``revision`` (default ``main``) into the cache and pin its commit.

    ``choose`` gets the repository's file list and returns the files to download (None: all), so
    a model with both safetensors and pickle weights is fetched once. Files already in the cache
    are not downloaded again.
    """
    what = f"{repo_type} {repo_id}" + (f" (revision {revision})" if revision else "")
    require_downloads(what, fetch_command)
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub import errors as hub_errors

    http_error = getattr(hub_errors, "HTTPError", OSError)
    url = endpoint()
    try:
        with _library_online(), _progress_bars(show_progress):
            info = HfApi(endpoint=url).repo_info(repo_id, repo_type=repo_type, revision=revision)
            commit = info.sha
            if not commit or not _COMMIT.fullmatch(commit):
                raise NetworkError(f"{url} returned no commit hash for {what}; is HF_ENDPOINT a Hugging Face Hub?")
            files = [s.rfilename for s in (info.siblings or [])]
            patterns = choose(files) if choose else None
            progress.note(f"downloading {what} at commit {commit[:12]} into {cache_dir()}")
            folder = snapshot_download(
                repo_id,
                repo_type=repo_type,
                revision=revision or "main",  # the name, so that the cache records what it points to
                cache_dir=cache_dir(),
                endpoint=url,
                allow_patterns=patterns,
            )
    except hub_errors.RevisionNotFoundError:
        raise ConfigError(f"{repo_id} has no revision {revision!r} on {url}") from None
    except hub_errors.GatedRepoError:
        raise ConfigError(
            f"{repo_id} is gated on {url}: accept its terms on the Hub, log in (`hf auth login`) and try again"
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise ConfigError(
            f"no {repo_type} {repo_id!r} on {url} (a typo, or a private repository: log in with `hf auth login`)"
        ) from None
    except (http_error, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise NetworkError(
            f"cannot download {what} from {url} ({type(exc).__name__}: {first}); check the network (or set "
            f"HF_ENDPOINT to a mirror), or run `{fetch_command}` where there is internet and copy the Hugging "
            f"Face cache ({cache_dir()}) here"
        ) from None
    snapshot = Path(folder)
    if snapshot.name != commit:  # the branch moved between the two calls: report what is on disk
        commit = snapshot.name
    return Snapshot(repo_id, repo_type, commit, snapshot)


def dataset_snapshot(
    repo_id: str,
    *,
    revision: str | None,
    choose: Callable[[Sequence[str]], list[str] | None],
    patterns: list[str],
    fetch_command: str,
    show_progress: bool = True,
) -> Snapshot:
    """A dataset repository's files matching ``patterns``: from the cache when downloads are not
    allowed (offline), else resolved to a commit and downloaded (files already cached are kept)."""
    if downloads_allowed():
        return fetch_snapshot(
            repo_id, revision=revision, repo_type="dataset", choose=choose, fetch_command=fetch_command,
            show_progress=show_progress,
        )
    from huggingface_hub import snapshot_download

    try:
        folder = Path(
            snapshot_download(
                repo_id, repo_type="dataset", revision=revision or "main", cache_dir=cache_dir(),
                local_files_only=True, allow_patterns=patterns,
            )
        )
    except (OSError, ValueError):
        require_downloads(f"dataset {repo_id}" + (f" (revision {revision})" if revision else ""), fetch_command)
        raise
    return Snapshot(repo_id, "dataset", folder.name, folder)
