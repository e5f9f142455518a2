"""Protocol v1 of the benchmark as typed data.

Everything a loader, a split or a run needs to know about the languages, corpora and
emotions lives here, so that the rest of the code never hard-codes a label or a count.
Facts come from the paper (Agarla et al. 2024, Sec. 4.1, Tables 2-3) and the corpora's own
documentation; see docs/protocol.md. The paper's Table 3 prints the English 616 and French 72
under sadness: file listings show they are the neutral counts, corrected here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

PROTOCOL_VERSION = "1"
SAMPLE_RATE = 16_000


class Emotion(StrEnum):
    """The five emotions every corpus is mapped onto (paper Sec. 4.1)."""

    ANGER = "anger"
    FEAR = "fear"
    HAPPINESS = "happiness"
    NEUTRAL = "neutral"
    SADNESS = "sadness"

    @property
    def letter(self) -> str:
        return self.value[0].upper()


A, F, H, N, S = Emotion.ANGER, Emotion.FEAR, Emotion.HAPPINESS, Emotion.NEUTRAL, Emotion.SADNESS

#: Class order used everywhere (index = class id): the order of the paper's Table 3.
EMOTIONS_5: tuple[Emotion, ...] = (A, F, H, N, S)
#: The 4-emotion variant of Table 6 drops fear.
EMOTIONS_4: tuple[Emotion, ...] = (A, H, N, S)

EmotionSetName = Literal["5", "4"]


def emotion_set(name: str | int) -> tuple[Emotion, ...]:
    """The class list of an emotion set: ``5`` (A F H N S) or ``4`` (fear dropped)."""
    key = str(name)
    if key == "5":
        return EMOTIONS_5
    if key == "4":
        return EMOTIONS_4
    raise ValueError(f"unknown emotion set {name!r}: use 5 or 4")


Gender = Literal["male", "female"]


@dataclass(frozen=True)
class Language:
    name: str  # "italian"
    code: str  # ISO 639-1, "it"
    corpora: tuple[str, ...]  # real corpora of the language, merged when several
    source: bool = False


@dataclass(frozen=True)
class CorpusSpec:
    """What the protocol knows about one corpus before a single file is read."""

    name: str
    title: str
    language: str
    native_rate: int | None  # Hz; None where it varies (TESS is ~24.4 kHz)
    licence: str
    citation: str
    url: str
    #: speaker id -> gender, exactly as the ids appear in file names
    speakers: MappingProxyType[str, Gender]
    #: raw label code (as it appears in file names) -> emotion, or None when dropped
    label_map: MappingProxyType[str, Emotion | None]
    #: raw code -> human-readable name, for reports
    label_names: MappingProxyType[str, str]
    #: utterances kept per emotion in the full corpus (PROTOCOL.md section 1)
    expected: MappingProxyType[Emotion, int]
    #: files in the full release, kept or not
    expected_files: int
    synthetic: bool = False
    notes: tuple[str, ...] = field(default=())
    #: kept counts of the public release, where its file names disagree with the published
    #: table in ``expected`` (validation shows both; neither is silently preferred)
    release_counts: MappingProxyType[Emotion, int] | None = None

    @property
    def expected_total(self) -> int:
        return sum(self.expected.values())

    def emotion_of(self, raw: str) -> Emotion | None:
        """The emotion of a raw label code; KeyError for codes the corpus does not define."""
        return self.label_map[raw]


def _ro(d: dict) -> MappingProxyType:
    return MappingProxyType(dict(d))


def _numbered(n: int, male_if_odd: bool = True, width: int = 2) -> dict[str, Gender]:
    return {f"{i:0{width}d}": ("male" if (i % 2 == 1) == male_if_odd else "female") for i in range(1, n + 1)}


RAVDESS = CorpusSpec(
    name="ravdess",
    title="RAVDESS (speech)",
    language="english",
    native_rate=48_000,
    licence="CC BY-NC-SA 4.0",
    citation="Livingstone & Russo (2018), PLoS ONE 13(5): e0196391",
    url="https://zenodo.org/record/1188976",
    speakers=_ro(_numbered(24)),
    label_map=_ro({"01": N, "02": None, "03": H, "04": S, "05": A, "06": F, "07": None, "08": None}),
    label_names=_ro(
        {
            "01": "neutral",
            "02": "calm",
            "03": "happy",
            "04": "sad",
            "05": "angry",
            "06": "fearful",
            "07": "disgust",
            "08": "surprised",
        }
    ),
    expected=_ro({A: 192, F: 192, H: 192, N: 96, S: 192}),
    expected_files=1440,
    notes=("song files (vocal channel 02) are excluded", "neutral has no strong intensity"),
)

SAVEE = CorpusSpec(
    name="savee",
    title="SAVEE",
    language="english",
    native_rate=44_100,
    licence="research use, after registration",
    citation="Haq & Jackson (2010), Machine Audition, IGI Global",
    url="http://kahlan.eps.surrey.ac.uk/savee/",
    speakers=_ro({"DC": "male", "JE": "male", "JK": "male", "KL": "male"}),
    label_map=_ro({"a": A, "d": None, "f": F, "h": H, "n": N, "sa": S, "su": None}),
    label_names=_ro(
        {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise"}
    ),
    expected=_ro({A: 60, F: 60, H: 60, N: 120, S: 60}),
    expected_files=480,
)

TESS = CorpusSpec(
    name="tess",
    title="TESS",
    language="english",
    native_rate=24_414,
    licence="CC BY-NC-ND 4.0",
    citation="Pichora-Fuller & Dupuis (2020), Toronto emotional speech set, Borealis",
    url="https://doi.org/10.5683/SP2/E8H2MF",
    speakers=_ro({"OAF": "female", "YAF": "female"}),
    label_map=_ro({"angry": A, "disgust": None, "fear": F, "happy": H, "neutral": N, "ps": None, "sad": S}),
    label_names=_ro(
        {
            "angry": "anger",
            "disgust": "disgust",
            "fear": "fear",
            "happy": "happiness",
            "neutral": "neutral",
            "ps": "pleasant surprise",
            "sad": "sadness",
        }
    ),
    expected=_ro({A: 400, F: 400, H: 400, N: 400, S: 400}),
    expected_files=2800,
    notes=("two speakers only: one trains, the other is split by word into validation and test",),
)

CAFE = CorpusSpec(
    name="cafe",
    title="CaFE (Canadian French Emotional)",
    language="french",
    native_rate=48_000,
    licence="CC BY-NC-SA 4.0",
    citation="Gournay, Lahaie & Lefebvre (2018), ACM MMSys",
    url="https://zenodo.org/record/1478765",
    speakers=_ro(_numbered(12)),
    label_map=_ro({"C": A, "D": None, "J": H, "N": N, "P": F, "S": None, "T": S}),
    label_names=_ro(
        {"C": "colère", "D": "dégoût", "J": "joie", "N": "neutre", "P": "peur", "S": "surprise", "T": "tristesse"}
    ),
    expected=_ro({A: 144, F: 144, H: 144, N: 72, S: 144}),
    expected_files=936,
    notes=("neutral has one intensity only",),
)

EMODB = CorpusSpec(
    name="emodb",
    title="EMO-DB (Berlin Database of Emotional Speech)",
    language="german",
    native_rate=16_000,
    licence="CC0 / CC BY 4.0 (depending on the distributor)",
    citation="Burkhardt et al. (2005), Interspeech",
    url="http://emodb.bilderbar.info/",
    speakers=_ro(
        {
            "03": "male",
            "08": "female",
            "09": "female",
            "10": "male",
            "11": "male",
            "12": "male",
            "13": "female",
            "14": "female",
            "15": "male",
            "16": "female",
        }
    ),
    label_map=_ro({"W": A, "L": None, "E": None, "A": F, "F": H, "T": S, "N": N}),
    label_names=_ro(
        {
            "W": "Ärger (anger)",
            "L": "Langeweile (boredom)",
            "E": "Ekel (disgust)",
            "A": "Angst (fear)",
            "F": "Freude (happiness)",
            "T": "Trauer (sadness)",
            "N": "neutral",
        }
    ),
    expected=_ro({A: 127, F: 69, H: 71, N: 79, S: 62}),
    expected_files=535,
    notes=("the original 535-file release; EMO-DB 2.0 adds 281 low-agreement files",),
)

EMOVO = CorpusSpec(
    name="emovo",
    title="EMOVO",
    language="italian",
    native_rate=48_000,
    licence="research use",
    citation="Costantini et al. (2014), LREC",
    url="http://voice.fub.it/activities/corpora/emovo/index.html",
    speakers=_ro({"f1": "female", "f2": "female", "f3": "female", "m1": "male", "m2": "male", "m3": "male"}),
    label_map=_ro({"dis": None, "gio": H, "neu": N, "pau": F, "rab": A, "sor": None, "tri": S}),
    label_names=_ro(
        {
            "dis": "disgusto",
            "gio": "gioia",
            "neu": "neutro",
            "pau": "paura",
            "rab": "rabbia",
            "sor": "sorpresa",
            "tri": "tristezza",
        }
    ),
    expected=_ro({A: 84, F: 84, H: 84, N: 84, S: 84}),
    expected_files=588,
)

SHEMO = CorpusSpec(
    name="shemo",
    title="ShEMO (Sharif Emotional Speech Database)",
    language="persian",
    native_rate=44_100,
    licence="research use",
    citation="Mohamad Nezami, Jamshid Lou & Karami (2019), Language Resources and Evaluation 53",
    url="https://github.com/pariajm/sharif-emotional-speech-dataset",
    speakers=_ro({f"F{i:02d}": "female" for i in range(1, 32)} | {f"M{i:02d}": "male" for i in range(1, 57)}),
    label_map=_ro({"A": A, "F": F, "H": H, "N": N, "S": S, "W": None}),
    label_names=_ro({"A": "anger", "F": "fear", "H": "happiness", "N": "neutral", "S": "sadness", "W": "surprise"}),
    expected=_ro({A: 1059, F: 38, H: 201, N: 1028, S: 449}),
    expected_files=3000,
    notes=(
        "the published table (paper Table 3, ShEMO paper) counts A1059 F38 H201 N1028 S449 (surprise 225); "
        "the file names of the public release (shemo.json, GitHub) give A1042 F32 H203 N1160 S362 "
        "(surprise 201) for the same 3000 files",
    ),
    release_counts=_ro({A: 1042, F: 32, H: 203, N: 1160, S: 362}),
)

REAL_CORPORA: MappingProxyType[str, CorpusSpec] = _ro(
    {c.name: c for c in (RAVDESS, SAVEE, TESS, CAFE, EMODB, EMOVO, SHEMO)}
)

LANGUAGES: MappingProxyType[str, Language] = _ro(
    {
        "english": Language("english", "en", ("ravdess", "savee", "tess"), source=True),
        "french": Language("french", "fr", ("cafe",)),
        "german": Language("german", "de", ("emodb",)),
        "italian": Language("italian", "it", ("emovo",)),
        "persian": Language("persian", "fa", ("shemo",)),
    }
)

SOURCE_LANGUAGE = "english"
TARGET_LANGUAGES: tuple[str, ...] = tuple(name for name, lang in LANGUAGES.items() if not lang.source)

#: Utterances kept per language (PROTOCOL.md section 1), for validation after merging.
EXPECTED_PER_LANGUAGE: MappingProxyType[str, MappingProxyType[Emotion, int]] = _ro(
    {
        lang.name: _ro({e: sum(REAL_CORPORA[c].expected[e] for c in lang.corpora) for e in EMOTIONS_5})
        for lang in LANGUAGES.values()
    }
)


def language(name: str) -> Language:
    """Look a language up by name or ISO code, with a helpful error."""
    key = name.strip().lower()
    for lang in LANGUAGES.values():
        if key in (lang.name, lang.code):
            return lang
    from xlbench.errors import unknown_name

    raise unknown_name("language", name, list(LANGUAGES))


def partial_source(language_name: str, corpora: tuple[str, ...] | list[str], synthetic: bool) -> bool:
    """True when real data of a language comes from only some of its corpora (for English:
    not the protocol's RAVDESS + SAVEE + TESS union) -- a different setting, always shown."""
    return not synthetic and set(corpora) != set(language(language_name).corpora)


def data_label(language_name: str, corpora: tuple[str, ...] | list[str], synthetic: bool) -> str:
    """``english`` for the protocol's data, ``english (ravdess only)`` / ``english (ravdess + tess)``."""
    if not partial_source(language_name, corpora, synthetic):
        return language_name
    named = " + ".join(corpora)
    return f"{language_name} ({named} only)" if len(corpora) == 1 else f"{language_name} ({named})"
