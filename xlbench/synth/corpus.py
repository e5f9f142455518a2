"""Loaders for the generated corpus: ``<lang>/<speaker>/<emotion>-<speaker>-<sentence>.wav``.

Registered as ``synth_en`` ... ``synth_fa`` in the ``xlbench.corpora`` entry-point group. Like
every loader, they read labels and speakers from file names only; the text id is the sentence
id (``s01`` ...), whose sentence is in ``xlbench.synth.spec``.
"""

from __future__ import annotations

import re
from pathlib import Path

from xlbench.corpora.base import Corpus, ParsedFile, Unknown
from xlbench.synth.spec import SYNTH_SPECS

_NAME = re.compile(
    r"(?P<emotion>[a-z]{3})-(?P<speaker>[a-z]{2}_[mf]\d{2})-(?P<sentence>s\d{2})\.wav", re.IGNORECASE
)


class _SynthCorpus(Corpus):
    def parse(self, path: Path, root: Path) -> ParsedFile:
        m = _NAME.fullmatch(path.name)
        if m is None:
            raise Unknown("expected <emotion>-<speaker>-<sentence>.wav, e.g. ang-en_m01-s01.wav")
        return ParsedFile(
            speaker=m["speaker"].lower(), raw_label=m["emotion"].lower(), text=m["sentence"].lower()
        )


class SynthEnglish(_SynthCorpus):
    spec = SYNTH_SPECS["english"]


class SynthFrench(_SynthCorpus):
    spec = SYNTH_SPECS["french"]


class SynthGerman(_SynthCorpus):
    spec = SYNTH_SPECS["german"]


class SynthItalian(_SynthCorpus):
    spec = SYNTH_SPECS["italian"]


class SynthPersian(_SynthCorpus):
    spec = SYNTH_SPECS["persian"]


LOADERS: dict[str, type[_SynthCorpus]] = {
    cls.spec.language: cls for cls in (SynthEnglish, SynthFrench, SynthGerman, SynthItalian, SynthPersian)
}
