"""RAVDESS speech: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (PROTOCOL.md section 2).

Seven two-digit fields: modality, vocal channel, emotion, intensity, statement, repetition,
actor. Song files (vocal channel 02) and anything that is not audio-only are left out on
purpose; the Actor_XX folder is never read (the actor is the last field of the name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, Excluded, ParsedFile, ScanResult, Unknown
from xlbench.errors import DataError
from xlbench.protocol import RAVDESS, CorpusSpec

NAME = re.compile(
    r"(?P<modality>\d{2})-(?P<channel>\d{2})-(?P<emotion>\d{2})-(?P<intensity>\d{2})"
    r"-(?P<statement>\d{2})-(?P<repetition>\d{2})-(?P<actor>\d{2})"
)

_MODALITIES = {"01": "full audio-video", "02": "video-only"}
_BINARY = ("01", "02")  # intensity (normal, strong), statement (kids, dogs), repetition


class Ravdess(Corpus):
    spec: ClassVar[CorpusSpec] = RAVDESS

    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = NAME.fullmatch(path.stem)
        if m is None:
            raise Unknown("not a RAVDESS name (expected MM-VV-EE-II-SS-RR-AA.wav)")
        modality, channel = m["modality"], m["channel"]
        if modality in _MODALITIES:
            raise Excluded(f"not audio-only (modality {modality}, {_MODALITIES[modality]})")
        if modality != "03":
            raise Unknown(f"unknown modality {modality!r}")
        if channel == "02":
            raise Excluded("song (vocal channel 02)")
        if channel != "01":
            raise Unknown(f"unknown vocal channel {channel!r}")
        for field in ("intensity", "statement", "repetition"):
            if m[field] not in _BINARY:
                raise Unknown(f"unknown {field} {m[field]!r}")
        return ParsedFile(
            speaker=m["actor"],
            raw_label=m["emotion"],
            text=m["statement"],
            extras=(("intensity", m["intensity"]), ("repetition", m["repetition"])),
        )

    def post_scan(self, result: ScanResult) -> None:
        # Pointing at the song folder would otherwise read as "not RAVDESS file names".
        if not result.entries and not result.dropped and result.excluded:
            why = result.excluded[0][1]
            raise DataError(
                f"ravdess: all {len(result.excluded)} audio files under {result.root} are left out "
                f"(e.g. {result.excluded[0][0]}: {why}); point at the speech folder "
                "(Audio_Speech_Actors_01-24)"
            )
