"""EMO-DB: ``wav/03a01Fa.wav`` (PROTOCOL.md section 2).

Speaker ``[0:2]``, text ``[2:5]``, emotion ``[5]``, version ``[6]``. The protocol uses the
original 535-file release. "EMO-DB 2.0" adds 281 low-agreement files (816 in all) under the
same naming scheme; they are recognised with the shipped list of the 535 original stems
(``data/emodb_535.txt``, file names only) and left out with a reason.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, Excluded, ParsedFile, ScanResult, Unknown
from xlbench.errors import DataError
from xlbench.protocol import EMODB, CorpusSpec

NAME = re.compile(r"(?P<speaker>\d{2})(?P<text>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])")

ORIGINAL_FILES = 535
NOT_ORIGINAL = "not in the original 535-file EMO-DB release (an EMO-DB 2.0 addition)"


@cache
def original_stems() -> frozenset[str]:
    """The 535 file stems of the original release (shipped with the package)."""
    text = resources.files("xlbench.corpora").joinpath("data", "emodb_535.txt").read_text("utf-8")
    stems = frozenset(line.strip() for line in text.splitlines() if line.strip())
    if len(stems) != ORIGINAL_FILES:  # a damaged install must not silently change the corpus
        raise DataError(f"emodb: the shipped list of original files has {len(stems)} names, not 535")
    return stems


class EmoDB(Corpus):
    spec: ClassVar[CorpusSpec] = EMODB

    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = NAME.fullmatch(path.stem)
        if m is None:
            raise Unknown("not an EMO-DB name (expected e.g. 03a01Fa.wav)")
        known = m["speaker"] in self.spec.speakers and m["emotion"] in self.spec.label_map
        # An unknown speaker or code is reported as such by the scan, not as a 2.0 addition.
        if known and path.stem not in original_stems():
            raise Excluded(NOT_ORIGINAL)
        return ParsedFile(
            speaker=m["speaker"],
            raw_label=m["emotion"],
            text=m["text"],
            extras=(("version", m["version"]),),
        )

    def post_scan(self, result: ScanResult) -> None:
        named = Counter(
            p.stem
            for p in self.audio_files(result.root)
            if p.suffix.lower() == ".wav" and NAME.fullmatch(p.stem)
        )
        twice = sorted(stem for stem, n in named.items() if n > 1)
        if twice:
            raise DataError(
                f"emodb: {len(twice)} file name(s) occur more than once under {result.root} "
                f"(e.g. {twice[0]}.wav): point at one copy of the corpus (its wav/ folder)"
            )
        extras = sum(1 for _, why in result.excluded if why == NOT_ORIGINAL)
        readable = len(result.entries) + sum(result.dropped.values())
        if readable and result.files_seen > ORIGINAL_FILES and not extras:
            first = f" (e.g. {result.unknown[0][0]}: {result.unknown[0][1]})" if result.unknown else ""
            raise DataError(
                f"emodb: {result.files_seen} .wav files under {result.root}, more than the 535 of the "
                f"original release, and none of the extra ones can be identified{first}; "
                "this looks like EMO-DB 2.0 with renamed files: use the original 535-file release"
            )
