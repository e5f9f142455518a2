"""EMOVO: ``<speaker>/<emo>-<speaker>-<sentence>.wav``, e.g. ``f1/dis-f1-b1.wav`` (PROTOCOL.md 2).

Emotion = a three-letter Italian code, speaker f1-f3 / m1-m3, sentence one of 14 ids
(b1-b3, l1-l4, n1-n5, d1-d2). The speaker comes from the file name, not the folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, ParsedFile, Unknown
from xlbench.protocol import EMOVO, CorpusSpec

NAME = re.compile(r"(?P<emotion>[a-z]{3})-(?P<speaker>[a-z]\d)-(?P<sentence>[a-z]\d)")

#: the 14 sentence ids: b = bisillabiche, l = lunghe, n = nonsense, d = domande
SENTENCES = frozenset(
    [f"b{i}" for i in range(1, 4)] + [f"l{i}" for i in range(1, 5)]
    + [f"n{i}" for i in range(1, 6)] + [f"d{i}" for i in range(1, 3)]
)


class Emovo(Corpus):
    spec: ClassVar[CorpusSpec] = EMOVO

    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = NAME.fullmatch(path.stem.lower())  # the codes are lower case; tolerate copies that are not
        if m is None:
            raise Unknown("not an EMOVO name (expected emo-speaker-sentence.wav, e.g. dis-f1-b1.wav)")
        if m["sentence"] not in SENTENCES:
            raise Unknown(f"unknown sentence {m['sentence']!r}")
        return ParsedFile(speaker=m["speaker"], raw_label=m["emotion"], text=m["sentence"])
