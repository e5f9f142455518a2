"""TESS: ``OAF_back_angry.wav``, flat or nested in per-speaker/emotion folders (PROTOCOL.md 2).

Speaker = the first three letters (OAF, YAF), emotion = the token after the last ``_``, the
spoken word = the token in between (kept as the text: the TESS split rule divides the second
speaker's words between validation and test). Copies differ in case (``YAF_germ_Sad.wav``
style), so the speaker is upper-cased and the word and emotion lower-cased; the per-emotion
folder names (``OAF_Pleasant_surprise``, ``YAF_pleasant_surprised`` ...) are never read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, ParsedFile, Unknown
from xlbench.protocol import TESS, CorpusSpec

NAME = re.compile(r"(?P<speaker>[A-Za-z]{3})_(?P<word>[A-Za-z]+)_(?P<emotion>[A-Za-z]+)")


class Tess(Corpus):
    spec: ClassVar[CorpusSpec] = TESS

    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = NAME.fullmatch(path.stem.strip())
        if m is None:
            raise Unknown("not a TESS name (expected OAF_word_emotion.wav)")
        return ParsedFile(
            speaker=m["speaker"].upper(),
            raw_label=m["emotion"].lower(),
            text=m["word"].lower(),
        )
