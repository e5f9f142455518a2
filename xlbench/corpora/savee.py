"""SAVEE: ``AudioData/DC/a01.wav`` or, flattened, ``DC_a01.wav`` (PROTOCOL.md section 2).

The label code is one or two letters before two digits (a d f h n sa su): the regex takes
both letters so that ``sa``/``su`` are never read as ``s``. In the nested layout the speaker
appears only in the folder name: this is the one loader that reads a folder name, and only
because SAVEE leaves no other choice. Those names are plain ASCII (DC, JE, JK, KL), so unzip
tools do not garble them, and the folder must be one of the four speakers or the file is
reported as unknown. The flattened layout carries the speaker in the file name instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from xlbench.corpora.base import Corpus, ParsedFile, Unknown
from xlbench.protocol import SAVEE, CorpusSpec

#: ``DC_sa01`` (flattened copies)
FLAT = re.compile(r"(?P<speaker>[A-Za-z]{2})_(?P<code>[A-Za-z]{1,2})(?P<number>\d{2})")
#: ``sa01`` under a speaker folder (the original AudioData layout)
NESTED = re.compile(r"(?P<code>[A-Za-z]{1,2})(?P<number>\d{2})")


class Savee(Corpus):
    spec: ClassVar[CorpusSpec] = SAVEE

    def parse(self, path: Path, root: Path) -> ParsedFile:
        stem = path.stem
        folder = path.parent.name.upper() if path.parent != root else ""
        if m := FLAT.fullmatch(stem):
            speaker = m["speaker"].upper()
            if folder in self.spec.speakers and folder != speaker:
                raise Unknown(f"file name says speaker {speaker} but it is in folder {path.parent.name}")
        elif m := NESTED.fullmatch(stem):
            # The only folder name any loader reads (see the module docstring).
            if folder not in self.spec.speakers:
                known = ", ".join(self.spec.speakers)
                raise Unknown(
                    f"speaker folder {path.parent.name!r} is not one of {known} "
                    "(nested SAVEE names carry no speaker)"
                )
            speaker = folder
        else:
            raise Unknown("not a SAVEE name (expected a01.wav .. su15.wav, or DC_a01.wav)")
        return ParsedFile(
            speaker=speaker,
            raw_label=m["code"].lower(),
            extras=(("number", m["number"]),),
        )
