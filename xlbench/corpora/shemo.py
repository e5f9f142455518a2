"""ShEMO: ``male/M05N21.wav`` and ``female/F21N37.wav`` (PROTOCOL.md section 2).

Gender ``[0]`` (F/M), speaker ``[0:3]``, emotion ``[3]``, utterance number ``[4:]``. The
male/female folders are never read; the gender letter of the name must agree with the
speaker list. ``data/shemo_ids.txt`` lists the 3,000 utterance ids of the public release
(for fixtures and split design; the loader does not require it). Its emotion codes give
A 1042, F 32, H 203, N 1160, S 362, W 201 -- not the published per-emotion numbers in
``protocol.SHEMO.expected``; both are kept in the protocol and validation shows the difference.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, ParsedFile, ScanResult, Unknown
from xlbench.errors import DataError
from xlbench.protocol import SHEMO, CorpusSpec

NAME = re.compile(r"(?P<gender>[FM])(?P<speaker>\d{2})(?P<emotion>[A-Z])(?P<number>\d{2,3})")

_GENDER = {"F": "female", "M": "male"}


@cache
def utterance_ids() -> tuple[str, ...]:
    """The 3,000 utterance ids of the public ShEMO release, sorted."""
    text = resources.files("xlbench.corpora").joinpath("data", "shemo_ids.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class ShEMO(Corpus):
    spec: ClassVar[CorpusSpec] = SHEMO

    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = NAME.fullmatch(path.stem.upper())
        if m is None:
            raise Unknown("not a ShEMO name (expected e.g. F21N37.wav)")
        speaker = m["gender"] + m["speaker"]
        listed = self.spec.speakers.get(speaker)
        if listed is not None and listed != _GENDER[m["gender"]]:
            raise Unknown(f"gender letter {m['gender']} disagrees with speaker {speaker} ({listed})")
        return ParsedFile(speaker=speaker, raw_label=m["emotion"], extras=(("number", m["number"]),))

    def post_scan(self, result: ScanResult) -> None:
        # Ids are unique in ShEMO; the same id twice means two copies were merged.
        named = Counter(
            p.stem.upper()
            for p in self.audio_files(result.root)
            if p.suffix.lower() == ".wav" and NAME.fullmatch(p.stem.upper())
        )
        twice = sorted(stem for stem, n in named.items() if n > 1)
        if twice:
            raise DataError(
                f"shemo: {len(twice)} utterance id(s) occur more than once under {result.root} "
                f"(e.g. {twice[0]}): point at one copy of the corpus"
            )
