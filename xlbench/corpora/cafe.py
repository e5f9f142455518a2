"""CaFE: ``CaFE/<emotion>/<Faible|Fort>/SS-E-I-P.wav``; neutral ``Neutre/SS-N-P.wav`` (PROTOCOL.md 2).

Speaker SS (01-12, odd = male), emotion letter E, intensity I (1 faible, 2 fort) and sentence
P (1-6). Neutral has a single intensity and its files have no intensity field (``03-N-1``);
a four-field neutral name is accepted too. The accented folder names (Colère, Dégoût) arrive
garbled from some unzip tools (``ColКre``, ``DВgoЦt``) and are never read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, ParsedFile, ScanResult, Unknown
from xlbench.errors import DataError
from xlbench.protocol import CAFE, CorpusSpec

NAME = re.compile(r"(?P<speaker>\d{2})-(?P<emotion>[A-Za-z])-(?:(?P<intensity>\d)-)?(?P<sentence>\d)")

_SENTENCES = frozenset("123456")
_INTENSITIES = {"1": "faible", "2": "fort"}


class Cafe(Corpus):
    spec: ClassVar[CorpusSpec] = CAFE

    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = NAME.fullmatch(path.stem)
        if m is None:
            raise Unknown("not a CaFE name (expected SS-E-I-P.wav, or SS-N-P.wav for neutral)")
        emotion, intensity, sentence = m["emotion"].upper(), m["intensity"], m["sentence"]
        if sentence not in _SENTENCES:
            raise Unknown(f"unknown sentence {sentence!r} (CaFE has sentences 1-6)")
        if intensity is None:
            if emotion != "N":
                raise Unknown("no intensity field (only neutral files have none)")
            extras: tuple[tuple[str, str], ...] = ()
        elif intensity in _INTENSITIES:
            extras = (("intensity", intensity),)
        else:
            raise Unknown(f"unknown intensity {intensity!r} (1 faible, 2 fort)")
        return ParsedFile(speaker=m["speaker"], raw_label=emotion, text=sentence, extras=extras)

    def post_scan(self, result: ScanResult) -> None:
        # The 192 kHz release ships .aiff files, which the scan does not read.
        if result.files_seen == 0 and next(result.root.rglob("*.aiff"), None) is not None:
            raise DataError(
                f"cafe: {result.root} holds .aiff files (the 192 kHz release); "
                "use the 48 kHz release (CaFE_48k.zip), whose files are .wav"
            )
