"""The corpus-loader interface: turn a folder in a corpus's native layout into parsed entries.

A loader only reads *file names* (labels and speakers never come from folder names, which
unzip tools garble). It does not open audio: the manifest step (xlbench.manifest) reads,
checks and hashes every kept file. Each loader is a small module: a file-name parser plus the
label map of its CorpusSpec (xlbench.protocol).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from xlbench.errors import DataError
from xlbench.protocol import CorpusSpec, Emotion, Gender

AUDIO_SUFFIXES = (".wav",)


@dataclass(frozen=True)
class ParsedFile:
    """What a file name says: the speaker id, the raw label code and optional extras."""

    speaker: str
    raw_label: str
    #: the sentence / word / text id, where the corpus has one (used e.g. by the TESS split rule)
    text: str | None = None
    #: anything else worth keeping (intensity, repetition, version ...), as strings
    extras: tuple[tuple[str, str], ...] = ()


class Unknown(Exception):
    """Raised by ``parse`` for a file whose name the loader cannot read; the message says why."""


class Excluded(Exception):
    """Raised by ``parse`` for a well-formed file the protocol leaves out (e.g. RAVDESS song)."""


@dataclass(frozen=True)
class Entry:
    """One kept file: where it is and what its name says, mapped through the protocol."""

    path: Path
    relpath: str  # relative to the root, with forward slashes
    speaker: str
    gender: Gender
    raw_label: str
    emotion: Emotion
    text: str | None = None
    extras: tuple[tuple[str, str], ...] = ()


@dataclass
class ScanResult:
    corpus: str
    root: Path
    entries: list[Entry] = field(default_factory=list)
    #: raw label code -> number of files dropped because the protocol drops that label
    dropped: Counter[str] = field(default_factory=Counter)
    #: files left out on purpose, with the reason (song files, EMO-DB 2.0 extras ...)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    #: audio files whose names could not be read, with the reason
    unknown: list[tuple[str, str]] = field(default_factory=list)
    #: non-audio files seen (not an error; reported as a count)
    other_files: int = 0

    @property
    def files_seen(self) -> int:
        return len(self.entries) + sum(self.dropped.values()) + len(self.excluded) + len(self.unknown)

    def counts(self) -> Counter[Emotion]:
        return Counter(e.emotion for e in self.entries)


def audio_named_folders(root: Path) -> list[Path]:
    """Folders under ``root`` whose names end like audio files (``x.wav/``), sorted, skipping hidden ones."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        found += [Path(dirpath) / d for d in dirnames if Path(d).suffix.lower() in AUDIO_SUFFIXES]
    return found


class Corpus(ABC):
    """A corpus loader. Subclasses set ``spec`` and implement ``parse``."""

    spec: ClassVar[CorpusSpec]

    @property
    def name(self) -> str:
        return self.spec.name

    def audio_files(self, root: Path) -> Iterator[Path]:
        """Every audio file under root, sorted, skipping hidden files and macOS resource forks."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
            for fn in sorted(filenames):
                if fn.startswith("."):
                    continue
                yield Path(dirpath) / fn

    @abstractmethod
    def parse(self, path: Path, root: Path) -> ParsedFile:
        """Read speaker and raw label from the file name; raise Unknown or Excluded."""

    def post_scan(self, result: ScanResult) -> None:  # noqa: B027 - optional hook
        """A hook for checks that need all files at once (e.g. EMO-DB 2.0 detection)."""

    def scan(self, root: str | os.PathLike[str]) -> ScanResult:
        """Parse every file under ``root``; raise DataError when the folder is unusable."""
        root = Path(root).expanduser()
        if not root.exists():
            raise DataError(f"{self.name}: folder {root} does not exist")
        if not root.is_dir():
            raise DataError(f"{self.name}: {root} is not a folder")
        result = ScanResult(corpus=self.name, root=root.resolve())
        for folder in audio_named_folders(root):  # reported, never silently passed over
            result.unknown.append((folder.relative_to(root).as_posix(), "a folder named like an audio file"))
        for path in self.audio_files(root):
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                result.other_files += 1
                continue
            rel = path.relative_to(root).as_posix()
            try:
                parsed = self.parse(path, root)
            except Excluded as why:
                result.excluded.append((rel, str(why)))
                continue
            except Unknown as why:
                result.unknown.append((rel, str(why)))
                continue
            if parsed.raw_label not in self.spec.label_map:
                result.unknown.append((rel, f"unknown label code {parsed.raw_label!r}"))
                continue
            if parsed.speaker not in self.spec.speakers:
                result.unknown.append((rel, f"unknown speaker {parsed.speaker!r}"))
                continue
            emotion = self.spec.label_map[parsed.raw_label]
            if emotion is None:
                result.dropped[parsed.raw_label] += 1
                continue
            result.entries.append(
                Entry(
                    path=path.resolve(),
                    relpath=rel,
                    speaker=parsed.speaker,
                    gender=self.spec.speakers[parsed.speaker],
                    raw_label=parsed.raw_label,
                    emotion=emotion,
                    text=parsed.text,
                    extras=parsed.extras,
                )
            )
        self.post_scan(result)
        if result.files_seen == 0:
            hint = f" ({result.other_files} other files)" if result.other_files else ""
            raise DataError(f"{self.name}: no .wav files under {root}{hint}")
        if not result.entries:
            first = result.unknown[0] if result.unknown else None
            why = f"; e.g. {first[0]}: {first[1]}" if first else ""
            raise DataError(
                f"{self.name}: none of the {result.files_seen} audio files under {root} has a "
                f"{self.spec.title} file name — is this the right corpus?{why}"
            )
        return result
