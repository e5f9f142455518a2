"""Manifests: every kept utterance of a corpus, read, checked and hashed, written atomically.

``scan`` (a corpus loader) -> ``build_manifest`` (reads every audio file) -> ``save_manifest``.
A manifest is the only thing later stages read about a corpus; they never walk the folder again.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xlbench import __version__
from xlbench.audio import AudioError, inspect_audio
from xlbench.corpora.base import Entry, ScanResult
from xlbench.corpus_store import read_source
from xlbench.errors import ConfigError, DataError
from xlbench.home import atomic_write_text, manifests_dir
from xlbench.protocol import EMOTIONS_5, PROTOCOL_VERSION, REAL_CORPORA, CorpusSpec, Emotion, Gender

MANIFEST_SCHEMA = 1


class Utterance(BaseModel):
    """One kept utterance. ``id`` is human-readable; ``sha`` is the opaque content key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str  # "<corpus>/<relative path without suffix>"
    path: str  # absolute path of the audio file
    corpus: str
    language: str
    speaker: str  # as in the file names; unique within the corpus
    gender: Gender
    raw_label: str
    emotion: Emotion
    text: str | None = None
    duration: float  # seconds
    sample_rate: int  # native rate of the file
    channels: int
    subtype: str
    sha: str  # blake2b-128 of the file bytes
    synthetic: bool = False

    @property
    def speaker_key(self) -> str:
        return f"{self.corpus}:{self.speaker}"


class BadFile(BaseModel):
    path: str
    reason: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = MANIFEST_SCHEMA
    corpus: str
    language: str
    protocol_version: str = PROTOCOL_VERSION
    xlbench_version: str = __version__
    root: str
    created: str
    synthetic: bool = False
    files_seen: int
    dropped: dict[str, int] = Field(default_factory=dict)  # raw label -> files dropped by the protocol
    excluded: list[BadFile] = Field(default_factory=list)  # left out on purpose (song, EMO-DB 2.0 ...)
    skipped: list[BadFile] = Field(default_factory=list)  # bad files skipped with --skip-bad
    #: where a downloaded or imported corpus came from (archive URLs and checksums, or the Hub
    #: repository and commit); None for a folder the user prepared themselves
    source: dict[str, Any] | None = None
    utterances: list[Utterance]

    def counts(self) -> Counter[Emotion]:
        return Counter(u.emotion for u in self.utterances)


def _utterance(spec: CorpusSpec, entry: Entry, synthetic: bool) -> Utterance:
    info = inspect_audio(entry.path)
    rel = entry.relpath.rsplit(".", 1)[0]
    return Utterance(
        id=f"{spec.name}/{rel}",
        path=str(entry.path),
        corpus=spec.name,
        language=spec.language,
        speaker=entry.speaker,
        gender=entry.gender,
        raw_label=entry.raw_label,
        emotion=entry.emotion,
        text=entry.text,
        duration=round(info.duration, 4),
        sample_rate=info.sample_rate,
        channels=info.channels,
        subtype=info.subtype,
        sha=info.sha,
        synthetic=synthetic,
    )


def _list(items: Sequence[tuple[str, str]], limit: int = 5) -> str:
    shown = "; ".join(f"{p}: {r}" for p, r in items[:limit])
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return shown + more


def build_manifest(
    spec: CorpusSpec,
    scan: ScanResult,
    *,
    skip_bad: bool = False,
    synthetic: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Manifest:
    """Read every kept file; stop on the first bad ones unless ``skip_bad``."""
    if scan.unknown and not skip_bad:
        raise DataError(
            f"{spec.name}: {len(scan.unknown)} file(s) with names this loader cannot read "
            f"({_list(scan.unknown)}); fix them or pass --skip-bad"
        )
    skipped: list[tuple[str, str]] = list(scan.unknown)

    def one(entry: Entry) -> Utterance | tuple[str, str]:
        try:
            return _utterance(spec, entry, synthetic)
        except AudioError as exc:
            return (entry.relpath, str(exc).split(": ", 1)[-1])

    utterances: list[Utterance] = []
    bad: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        for result in pool.map(one, scan.entries):
            if isinstance(result, tuple):
                bad.append(result)
            else:
                utterances.append(result)
            if progress:
                progress(1)
    if bad and not skip_bad:
        raise DataError(f"{spec.name}: {len(bad)} bad audio file(s): {_list(bad)}; pass --skip-bad to skip them")
    skipped += bad

    by_sha: dict[str, str] = {}
    dups: list[tuple[str, str]] = []
    for u in utterances:
        if u.sha in by_sha:
            dups.append((u.id, f"same content as {by_sha[u.sha]}"))
        else:
            by_sha[u.sha] = u.id
    if dups:
        raise DataError(f"{spec.name}: {len(dups)} duplicate file(s): {_list(dups)}; remove the copies")
    if not utterances:
        raise DataError(f"{spec.name}: no usable utterance left after skipping bad files")
    return Manifest(
        corpus=spec.name,
        language=spec.language,
        root=str(scan.root),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        synthetic=synthetic,
        files_seen=scan.files_seen,
        dropped=dict(sorted(scan.dropped.items())),
        excluded=[BadFile(path=p, reason=r) for p, r in scan.excluded],
        skipped=[BadFile(path=p, reason=r) for p, r in skipped],
        source=read_source(scan.root),
        utterances=utterances,
    )


#: a corpus name: what loaders register (lower case, digits, ``_`` and ``-``); never a path
CORPUS_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def manifest_path(corpus: str) -> Path:
    if not CORPUS_NAME.fullmatch(corpus):
        raise ConfigError(f"{corpus!r} is not a corpus name (a registered name such as emovo or synth_it, not a path)")
    return manifests_dir() / f"{corpus}.json"


def save_manifest(manifest: Manifest) -> Path:
    path = manifest_path(manifest.corpus)
    atomic_write_text(path, manifest.model_dump_json(indent=1) + "\n")
    return path


def rebuild_advice(corpus: str) -> str:
    """How a user rebuilds the manifest of ``corpus``."""
    if corpus in REAL_CORPORA:
        return f"run `xlbench data prepare --corpus {corpus}` again"
    return f"run `xlbench data prepare --corpus {corpus}` again (`xlbench data generate` for a generated corpus)"


def load_manifest(corpus: str) -> Manifest | None:
    """The saved manifest of a corpus, None when it was never prepared."""
    path = manifest_path(corpus)
    if not path.exists():
        return None
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise DataError(f"manifest {path} is corrupt ({first}); {rebuild_advice(corpus)}") from None
    except OSError as exc:
        raise DataError(f"manifest {path} cannot be read ({exc.strerror or exc})") from None
    if manifest.schema_version != MANIFEST_SCHEMA:
        raise DataError(f"manifest {path} has schema {manifest.schema_version}; {rebuild_advice(corpus)}")
    return manifest


def validation_rows(spec: CorpusSpec, counts: Counter[Emotion]) -> list[tuple[str, int, int, int]]:
    """(emotion, expected, found, difference) for each emotion plus a total row."""
    rows = []
    for e in EMOTIONS_5:
        exp, got = spec.expected.get(e, 0), counts.get(e, 0)
        rows.append((e.value, exp, got, got - exp))
    exp_t, got_t = spec.expected_total, sum(counts.values())
    rows.append(("total", exp_t, got_t, got_t - exp_t))
    return rows
