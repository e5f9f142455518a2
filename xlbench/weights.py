"""Encoder weights on this machine: what ``xlbench weights list`` shows and ``weights fetch`` gets.

Names: ``hubert`` (facebook/hubert-base-ls960 in the Hugging Face cache), ``byols`` (the
serab-byols checkpoint in the data home) and ``hf:<model id>`` (any speech model of the Hub).
Fetching goes through the same code as first use (xlbench.hub, xlbench.encoders), so what
``weights fetch`` downloads is exactly what a run would load; it then checks the files can be
read as that encoder's weights, without building the model.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from xlbench import hub
from xlbench.encoders import byols
from xlbench.encoders.hf import HUBERT_ID, SPEECH_MODEL_TYPES, choose_model_files, load_config, weight_files
from xlbench.errors import ConfigError, MissingWeightsError

KNOWN = ("hubert", "byols")


@dataclass(frozen=True)
class WeightsEntry:
    """One row of ``xlbench weights list``."""

    name: str  # how to ask for it: "hubert", "byols", "hf:<id>"
    source: str  # Hub id or URL
    present: bool
    revision: str | None = None  # commit hash (Hub) or repository@commit (BYOL-S)
    size: int | None = None  # bytes on disk
    location: Path | None = None


def _hub_id(name: str) -> str:
    if name == "hubert":
        return HUBERT_ID
    if name.startswith("hf:") and name[3:].strip():
        model = name[3:].strip()
        if Path(model).expanduser().exists():
            raise ConfigError(f"{model} is a local folder: nothing to fetch (use --encoder hf:{model})")
        return model
    raise ConfigError(f"unknown weights {name!r}: use hubert, byols or hf:<model id>")


def fetch(name: str, revision: str | None = None, show_progress: bool = True) -> WeightsEntry:
    """Download ``name`` (resolving ``revision``, default main, to a commit) and check it loads."""
    name = name.strip()
    if name == "byols":
        if revision:
            raise ConfigError(f"byols is pinned to {byols.REPOSITORY}@{byols.COMMIT[:12]}; it takes no --revision")
        path = byols.fetch_checkpoint(show_progress=show_progress)
        byols.check_state(byols.read_checkpoint(path), path)
        return _byols_entry()
    repo_id = _hub_id(name)
    command = f"xlbench weights fetch {name}"
    snapshot = hub.fetch_snapshot(
        repo_id, revision=revision, choose=choose_model_files, fetch_command=command, show_progress=show_progress
    )
    load_config(snapshot.folder, ("hubert",) if name == "hubert" else None)
    files = weight_files(snapshot.folder, f"run `{command}` again")
    size = sum(p.stat().st_size for p in snapshot.folder.iterdir() if p.is_file())
    return WeightsEntry(name, repo_id, True, snapshot.commit, size, snapshot.folder if files else None)


def _byols_entry() -> WeightsEntry:
    given = os.environ.get(byols.WEIGHTS_ENV)
    if given and Path(given).expanduser().is_file():  # what runs load first
        path = Path(given).expanduser()
        return WeightsEntry("byols", f"${byols.WEIGHTS_ENV}", True, path.stem, path.stat().st_size, path)
    path = byols.default_checkpoint_path()
    if not path.is_file():
        return WeightsEntry("byols", f"github:{byols.REPOSITORY}", False, location=path)
    revision = f"{byols.REPOSITORY}@{byols.COMMIT}"
    return WeightsEntry("byols", f"github:{byols.REPOSITORY}", True, revision, path.stat().st_size, path)


def _speech_model(snapshot: Path) -> bool:
    try:
        config = json.loads((snapshot / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") in SPEECH_MODEL_TYPES


def _complete(snapshot: Path) -> bool:
    """Whether the snapshot holds the weights its config needs (an interrupted download does not)."""
    try:
        weight_files(snapshot, "")
    except MissingWeightsError:
        return False
    return True


def list_weights() -> list[WeightsEntry]:
    """HuBERT and BYOL-S (present or not), then every other speech model in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    rows: list[WeightsEntry] = []
    cached: list = []
    with contextlib.suppress(CacheNotFound, CorruptedCacheException, OSError):
        cached = [r for r in scan_cache_dir(hub.cache_dir()).repos if r.repo_type == "model"]
    hubert_rows = []
    for repo in sorted(cached, key=lambda r: r.repo_id):
        for rev in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            if not _speech_model(Path(rev.snapshot_path)):
                continue
            name = "hubert" if repo.repo_id == HUBERT_ID else f"hf:{repo.repo_id}"
            folder = Path(rev.snapshot_path)
            entry = WeightsEntry(name, repo.repo_id, _complete(folder), rev.commit_hash, rev.size_on_disk, folder)
            (hubert_rows if name == "hubert" else rows).append(entry)
    head = hubert_rows or [WeightsEntry("hubert", HUBERT_ID, False, location=hub.cache_dir())]
    return [*head, _byols_entry(), *rows]
