"""What the generated default corpus contains: languages, speakers, sentences, file names.

Synthetic speech generated on this machine with espeak-ng; **not a real emotion corpus**
(PROTOCOL.md section 9, docs/synthetic-corpus.md). Like EMO-DB it has 10 speakers (5 male,
5 female) who each say 10 short everyday sentences, here in each of the five emotions:
10 x 10 x 5 = 500 utterances per language, 2,500 in all. How the emotions are rendered is in
``xlbench.synth.rules``.

Layout: ``<lang code>/<speaker>/<emotion code>-<speaker>-<sentence id>.wav``, e.g.
``en/en_m01/ang-en_m01-s03.wav`` (16 kHz mono PCM_16), plus a ``SYNTHETIC.json`` stamp.

Everything that changes the generated audio (this module, ``rules``, ``generate``) must bump
``GENERATOR_VERSION``: the corpus folder and the manifests are keyed by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from xlbench.protocol import LANGUAGES, SAMPLE_RATE, CorpusSpec, Emotion, Gender

GENERATOR_VERSION = "1"
DEFAULT_SEED = 0
NOTICE = "synthetic speech generated with espeak-ng; not a real emotion corpus"
STAMP_NAME = "SYNTHETIC.json"

#: emotion code in file names -> emotion (all five are kept)
EMOTION_CODES: MappingProxyType[str, Emotion] = MappingProxyType(
    {
        "ang": Emotion.ANGER,
        "fea": Emotion.FEAR,
        "hap": Emotion.HAPPINESS,
        "neu": Emotion.NEUTRAL,
        "sad": Emotion.SADNESS,
    }
)
CODE_OF: MappingProxyType[Emotion, str] = MappingProxyType({e: c for c, e in EMOTION_CODES.items()})

SPEAKERS_PER_GENDER = 5
SENTENCES_PER_LANGUAGE = 10

_Z = "\u200c"  # zero-width non-joiner, part of Persian spelling (می‌رود); written out to stay visible


@dataclass(frozen=True)
class Speaker:
    id: str  # "en_m01": unique per language, as in file names
    gender: Gender
    variant: str  # espeak-ng voice variant, "m3"


@dataclass(frozen=True)
class Channel:
    """The "recording conditions" of a language's corpus (real corpora differ in studio and
    microphone too): a fixed spectral tilt and a background-noise floor."""

    tilt: float  # -1 (dull) .. +1 (bright), a first-order filter
    noise_db: float  # noise floor, dBFS


@dataclass(frozen=True)
class SynthLanguage:
    code: str  # "en", as in LANGUAGES and the folder name
    name: str  # "english"
    voice: str  # espeak-ng voice
    sentences: tuple[str, ...]  # s01, s02, ... in order
    male_variants: tuple[str, ...]
    female_variants: tuple[str, ...]
    channel: Channel

    @property
    def corpus(self) -> str:
        return f"synth_{self.code}"

    @property
    def sentence_ids(self) -> tuple[str, ...]:
        return tuple(f"s{i:02d}" for i in range(1, len(self.sentences) + 1))

    def sentence(self, sentence_id: str) -> str:
        return self.sentences[int(sentence_id[1:]) - 1]

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        """Alternating male and female, so that the first n of them are gender-balanced."""
        out: list[Speaker] = []
        for i, (m, f) in enumerate(zip(self.male_variants, self.female_variants, strict=True), start=1):
            out.append(Speaker(f"{self.code}_m{i:02d}", "male", m))
            out.append(Speaker(f"{self.code}_f{i:02d}", "female", f))
        return tuple(out)


# Ten neutral everyday sentences per language (the same ten situations, written in each
# language rather than translated word for word), so that the words carry no emotion.
_ENGLISH = (
    "The book is lying on the table.",
    "She takes the bus to work in the morning.",
    "The shop closes at six in the evening.",
    "We put the boxes in the kitchen.",
    "The letter arrived on Tuesday.",
    "He is painting the fence in the garden.",
    "There is a blue car in front of the house.",
    "They carried the chairs into the other room.",
    "The train leaves from the second platform.",
    "The keys are in the top drawer.",
)
_FRENCH = (
    "Le livre est posé sur la table.",
    "Elle prend le bus pour aller au travail le matin.",
    "Le magasin ferme à six heures du soir.",
    "Nous avons mis les cartons dans la cuisine.",
    "La lettre est arrivée mardi.",
    "Il repeint la clôture du jardin.",
    "Il y a une voiture bleue devant la maison.",
    "Ils ont porté les chaises dans l'autre pièce.",
    "Le train part du deuxième quai.",
    "Les clés sont dans le tiroir du haut.",
)
_GERMAN = (
    "Das Buch liegt auf dem Tisch.",
    "Sie fährt morgens mit dem Bus zur Arbeit.",
    "Der Laden schließt um sechs Uhr abends.",
    "Wir haben die Kisten in die Küche gestellt.",
    "Der Brief ist am Dienstag angekommen.",
    "Er streicht den Zaun im Garten.",
    "Vor dem Haus steht ein blaues Auto.",
    "Sie haben die Stühle ins andere Zimmer getragen.",
    "Der Zug fährt vom zweiten Gleis ab.",
    "Die Schlüssel liegen in der obersten Schublade.",
)
_ITALIAN = (
    "Il libro è sul tavolo.",
    "La mattina lei prende l'autobus per andare al lavoro.",
    "Il negozio chiude alle sei di sera.",
    "Abbiamo messo le scatole in cucina.",
    "La lettera è arrivata martedì.",
    "Lui sta dipingendo il recinto del giardino.",
    "Davanti alla casa c'è una macchina blu.",
    "Hanno portato le sedie nell'altra stanza.",
    "Il treno parte dal secondo binario.",
    "Le chiavi sono nel cassetto in alto.",
)
_PERSIAN = (
    "کتاب روی میز است.",
    f"او صبح{_Z}ها با اتوبوس سر کار می{_Z}رود.",
    f"مغازه ساعت شش عصر بسته می{_Z}شود.",
    f"جعبه{_Z}ها را در آشپزخانه گذاشتیم.",
    f"نامه روز سه{_Z}شنبه رسید.",
    f"او دارد نرده{_Z}های باغ را رنگ می{_Z}زند.",
    "جلوی خانه یک ماشین آبی پارک شده است.",
    f"آن{_Z}ها صندلی{_Z}ها را به اتاق دیگر بردند.",
    f"قطار از سکوی دوم حرکت می{_Z}کند.",
    "کلیدها در کشوی بالایی هستند.",
)

# espeak-ng has eight male (m1-m8) and five female (f1-f5) variants: each language draws its
# own five men (so the speaker populations differ) and all five women, with per-speaker pitch,
# rate and loudness baselines drawn from the seed on top (generate.py).
SYNTH_LANGUAGES: MappingProxyType[str, SynthLanguage] = MappingProxyType(
    {
        lang.name: lang
        for lang in (
            SynthLanguage("en", "english", "en", _ENGLISH, ("m1", "m2", "m3", "m4", "m6"),
                          ("f1", "f2", "f3", "f4", "f5"), Channel(tilt=0.0, noise_db=-60.0)),
            SynthLanguage("fr", "french", "fr", _FRENCH, ("m2", "m3", "m5", "m7", "m8"),
                          ("f2", "f4", "f1", "f5", "f3"), Channel(tilt=0.15, noise_db=-52.0)),
            SynthLanguage("de", "german", "de", _GERMAN, ("m1", "m3", "m4", "m6", "m7"),
                          ("f3", "f1", "f5", "f2", "f4"), Channel(tilt=-0.1, noise_db=-66.0)),
            SynthLanguage("it", "italian", "it", _ITALIAN, ("m2", "m4", "m5", "m6", "m8"),
                          ("f4", "f5", "f2", "f3", "f1"), Channel(tilt=0.1, noise_db=-56.0)),
            SynthLanguage("fa", "persian", "fa", _PERSIAN, ("m1", "m3", "m5", "m7", "m8"),
                          ("f5", "f3", "f4", "f1", "f2"), Channel(tilt=-0.2, noise_db=-46.0)),
        )
    }
)
assert set(SYNTH_LANGUAGES) == set(LANGUAGES), "one generated corpus per protocol language"
for _lang in SYNTH_LANGUAGES.values():
    assert _lang.code == LANGUAGES[_lang.name].code
    assert len(_lang.sentences) == SENTENCES_PER_LANGUAGE
    assert len(_lang.male_variants) == len(_lang.female_variants) == SPEAKERS_PER_GENDER

def synth_language(name_or_code: str) -> SynthLanguage:
    """A generated language by name ("french") or code ("fr"); KeyError when unknown."""
    key = name_or_code.strip().lower()
    for lang in SYNTH_LANGUAGES.values():
        if key in (lang.name, lang.code, lang.corpus):
            return lang
    raise KeyError(name_or_code)


def _spec(lang: SynthLanguage) -> CorpusSpec:
    speakers = lang.speakers
    per_emotion = len(speakers) * len(lang.sentences)
    return CorpusSpec(
        name=lang.corpus,
        title=f"Synthetic {lang.name.capitalize()} (espeak-ng, generated; not a real emotion corpus)",
        language=lang.name,
        native_rate=SAMPLE_RATE,
        licence="generated on this machine (espeak-ng, GPL-3.0 engine)",
        citation=(
            "Murray & Arnott (1993), Toward the simulation of emotion in synthetic speech, "
            "JASA 93(2): 1097-1108; espeak-ng (https://github.com/espeak-ng/espeak-ng)"
        ),
        url="https://github.com/espeak-ng/espeak-ng",
        speakers=MappingProxyType({s.id: s.gender for s in speakers}),
        label_map=EMOTION_CODES,
        label_names=MappingProxyType({code: e.value for code, e in EMOTION_CODES.items()}),
        expected=MappingProxyType({e: per_emotion for e in EMOTION_CODES.values()}),
        expected_files=per_emotion * len(EMOTION_CODES),
        synthetic=True,
        notes=(
            NOTICE,
            f"generator version {GENERATOR_VERSION}; emotions rendered by prosody rules after "
            "Murray & Arnott (1993) with per-language differences (docs/synthetic-corpus.md)",
            "text ids s01-s10 are sentence ids; the sentences are in xlbench.synth.spec",
        ),
    )


#: One CorpusSpec per language, keyed by language name ("english", ...).
SYNTH_SPECS: dict[str, CorpusSpec] = {name: _spec(lang) for name, lang in SYNTH_LANGUAGES.items()}
