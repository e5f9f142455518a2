"""Tiny corpus trees in each corpus's exact native layout, with real (short) WAV files.

Every ``make_<corpus>(root, ...)`` writes a small tree under ``root`` and returns the folder
to pass to ``scan``; every ``make_full_<corpus>(root)`` writes the complete list of file
names of the release (EMO-DB and ShEMO from the id lists shipped in
``xlbench/corpora/data``, the others from their naming schemes) with 10 ms of audio each, so
that a test can check the full expected counts of ``xlbench.protocol``.

Options reproduce the pitfalls real copies have: garbled CaFE folder names, flattened SAVEE
names, flat or nested TESS, odd case in TESS names, RAVDESS song files, EMO-DB 2.0 extras,
stereo and 8-bit files. Each file gets its own low-level noise, so no two files have the
same bytes (the manifest refuses duplicate content).
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from xlbench.corpora.emodb import original_stems
from xlbench.corpora.shemo import utterance_ids

#: seconds of audio in the files of the full-size trees
FULL_SECONDS = 0.01


class _Writer:
    """Writes short sine-plus-noise WAV files; every file gets different bytes.

    soundfile encodes one template; for PCM subtypes each file is the template with a running
    counter patched into its first samples (much faster than encoding thousands of files).
    """

    def __init__(self, rate: int, seconds: float, channels: int, subtype: str) -> None:
        self.rate, self.subtype = rate, subtype
        n = max(4, round(seconds * rate))
        tone = 0.3 * np.sin(2 * np.pi * 220.0 * np.arange(n) / rate)
        noise = 0.05 * np.random.default_rng(0).standard_normal(n)
        mono = (tone + noise).astype(np.float32)
        self.samples = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
        buf = io.BytesIO()
        sf.write(buf, self.samples, rate, subtype=subtype, format="WAV")
        self.template = buf.getvalue()
        self.data_at = self.template.index(b"data") + 8 if subtype.startswith("PCM") else -1
        self.count = 0
        self._dirs: set[Path] = set()

    def __call__(self, path: Path) -> Path:
        self.count += 1
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        if self.data_at >= 0:
            at = self.data_at
            path.write_bytes(self.template[:at] + self.count.to_bytes(4, "little") + self.template[at + 4 :])
        else:  # float subtypes: arbitrary bytes could be NaN, so encode each file
            jitter = 1e-3 * np.random.default_rng(self.count).standard_normal(self.samples.shape)
            sf.write(path, (self.samples + jitter).astype(np.float32), self.rate, subtype=self.subtype)
        return path


def write_wav(
    path: str | os.PathLike[str],
    *,
    rate: int = 16_000,
    seconds: float = 0.3,
    channels: int = 1,
    subtype: str = "PCM_16",
    seed: int = 0,
) -> Path:
    """One WAV file of a 220 Hz tone plus noise; different ``seed`` values give different bytes."""
    writer = _Writer(rate, seconds, channels, subtype)
    writer.count = seed
    return writer(Path(path))


# -- bad files (for manifest tests) ---------------------------------------------------------


def write_empty(path: str | os.PathLike[str]) -> Path:
    """A zero-byte ``.wav``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_truncated(path: str | os.PathLike[str], rate: int = 16_000) -> Path:
    """A WAV whose header is intact but whose samples were cut off (no whole frame left)."""
    path = write_wav(path, rate=rate)
    path.write_bytes(path.read_bytes()[:45])
    return path


def write_not_audio(path: str | os.PathLike[str]) -> Path:
    """A ``.wav`` that is really text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not audio\n")
    return path


# -- RAVDESS ----------------------------------------------------------------------------------

RAVDESS_EMOTIONS = ("01", "02", "03", "04", "05", "06", "07", "08")
#: song has neutral, calm, happy, sad, angry and fearful only
RAVDESS_SONG_EMOTIONS = ("01", "02", "03", "04", "05", "06")


def ravdess_names(actor: int, channel: str = "01", emotions: Iterable[str] = RAVDESS_EMOTIONS) -> list[str]:
    """File names of one actor: 60 speech (or 44 song) files; neutral has normal intensity only."""
    names = []
    for emo in emotions:
        for intensity in ("01",) if emo == "01" else ("01", "02"):
            for statement, rep in itertools.product(("01", "02"), repeat=2):
                names.append(f"03-{channel}-{emo}-{intensity}-{statement}-{rep}-{actor:02d}.wav")
    return names


def make_ravdess(
    root: Path,
    actors: Sequence[int] = (1, 2),
    *,
    emotions: Iterable[str] = RAVDESS_EMOTIONS,
    song: bool = False,
    seconds: float = 0.3,
    rate: int = 48_000,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``Actor_XX/03-01-...wav``; with ``song``, the song files merged into the same folders."""
    write = _Writer(rate, seconds, channels, subtype)
    emotions = tuple(emotions)
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        for name in ravdess_names(actor, "01", emotions):
            write(folder / name)
        if song:
            for name in ravdess_names(actor, "02", [e for e in emotions if e in RAVDESS_SONG_EMOTIONS]):
                write(folder / name)
    return root


def make_full_ravdess(root: Path, *, song: bool = False) -> Path:
    """All 1,440 speech files (24 actors x 60)."""
    return make_ravdess(root, range(1, 25), song=song, seconds=FULL_SECONDS)


# -- SAVEE ------------------------------------------------------------------------------------

SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
#: label code -> sentences per speaker (neutral has 30, the others 15)
SAVEE_CODES = {"a": 15, "d": 15, "f": 15, "h": 15, "n": 30, "sa": 15, "su": 15}


def make_savee(
    root: Path,
    speakers: Sequence[str] = ("DC", "JE"),
    *,
    layout: str = "nested",
    per_code: int | None = 3,
    seconds: float = 0.3,
    rate: int = 44_100,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``AudioData/DC/a01.wav`` (nested) or ``ALL/DC_a01.wav`` (flat).

    ``per_code`` files per label code (neutral gets twice as many, as in the corpus);
    None writes all 120 files per speaker.
    """
    if layout not in ("nested", "flat"):
        raise ValueError("layout is 'nested' or 'flat'")
    write = _Writer(rate, seconds, channels, subtype)
    for speaker in speakers:
        for code, full in SAVEE_CODES.items():
            n = full if per_code is None else per_code * (2 if code == "n" else 1)
            for i in range(1, n + 1):
                if layout == "nested":
                    write(root / "AudioData" / speaker / f"{code}{i:02d}.wav")
                else:
                    write(root / "ALL" / f"{speaker}_{code}{i:02d}.wav")
    return root


def make_full_savee(root: Path, *, layout: str = "nested") -> Path:
    """All 480 files (4 speakers x 120)."""
    return make_savee(root, SAVEE_SPEAKERS, layout=layout, per_code=None, seconds=FULL_SECONDS)


# -- TESS -------------------------------------------------------------------------------------

TESS_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
#: the per-emotion folder names of the common nested copy (inconsistent case included)
TESS_FOLDERS = {
    "OAF": {"angry": "OAF_angry", "disgust": "OAF_disgust", "fear": "OAF_Fear", "happy": "OAF_happy",
            "neutral": "OAF_neutral", "ps": "OAF_Pleasant_surprise", "sad": "OAF_Sad"},
    "YAF": {"angry": "YAF_angry", "disgust": "YAF_disgust", "fear": "YAF_fear", "happy": "YAF_happy",
            "neutral": "YAF_neutral", "ps": "YAF_pleasant_surprised", "sad": "YAF_sad"},
}


def tess_words(n: int = 200) -> list[str]:
    """``n`` distinct stand-in words (TESS has 200 target words; their identity does not matter here)."""
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words = (c1 + v + c2 for c1, v, c2 in itertools.product(consonants, vowels, consonants))
    return list(itertools.islice(words, n))


def make_tess(
    root: Path,
    speakers: Sequence[str] = ("OAF", "YAF"),
    words: Sequence[str] = ("back", "bar", "base"),
    *,
    layout: str = "nested",
    odd_case: bool = False,
    seconds: float = 0.3,
    rate: int = 24_414,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``TESS Toronto emotional speech set data/OAF_angry/OAF_back_angry.wav`` or all flat in root.

    ``odd_case`` capitalises the emotion of the first word's files (``YAF_back_Sad.wav``).
    """
    if layout not in ("nested", "flat"):
        raise ValueError("layout is 'nested' or 'flat'")
    write = _Writer(rate, seconds, channels, subtype)
    for speaker in speakers:
        for emo in TESS_EMOTIONS:
            for k, word in enumerate(words):
                name = f"{speaker}_{word}_{emo.capitalize() if odd_case and k == 0 else emo}.wav"
                if layout == "nested":
                    write(root / "TESS Toronto emotional speech set data" / TESS_FOLDERS[speaker][emo] / name)
                else:
                    write(root / name)
    return root


def make_full_tess(root: Path, *, layout: str = "nested") -> Path:
    """All 2,800 files (2 speakers x 200 words x 7 emotions)."""
    return make_tess(root, ("OAF", "YAF"), tess_words(), layout=layout, seconds=FULL_SECONDS)


# -- CaFE -------------------------------------------------------------------------------------

#: emotion letter -> folder name, as in the release and as some unzip tools garble it
CAFE_FOLDERS = {
    "C": ("Colère", "ColКre"), "D": ("Dégoût", "DВgoЦt"), "J": ("Joie", "Joie"),
    "N": ("Neutre", "Neutre"), "P": ("Peur", "Peur"), "S": ("Surprise", "Surprise"),
    "T": ("Tristesse", "Tristesse"),
}


def make_cafe(
    root: Path,
    speakers: Sequence[int] = (1, 2),
    sentences: Sequence[int] = (1, 2),
    *,
    garbled: bool = False,
    seconds: float = 0.3,
    rate: int = 48_000,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``CaFE/<emotion>/<Faible|Fort>/SS-E-I-P.wav``; neutral ``CaFE/Neutre/SS-N-P.wav``."""
    write = _Writer(rate, seconds, channels, subtype)
    base = root / "CaFE"
    for letter, names in CAFE_FOLDERS.items():
        folder = base / names[1 if garbled else 0]
        for speaker, sentence in itertools.product(speakers, sentences):
            if letter == "N":
                write(folder / f"{speaker:02d}-N-{sentence}.wav")
                continue
            for intensity, sub in ((1, "Faible"), (2, "Fort")):
                write(folder / sub / f"{speaker:02d}-{letter}-{intensity}-{sentence}.wav")
    return base


def make_full_cafe(root: Path, *, garbled: bool = False) -> Path:
    """All 936 files (12 speakers x 6 sentences x (6 emotions x 2 intensities + neutral))."""
    return make_cafe(root, range(1, 13), range(1, 7), garbled=garbled, seconds=FULL_SECONDS)


# -- EMO-DB -----------------------------------------------------------------------------------


def emodb_v2_extras(n: int = 281) -> list[str]:
    """``n`` stand-in stems for the EMO-DB 2.0 additions: EMO-DB names that are not among the 535.

    They reuse speaker, text and emotion of original files with a version letter the
    original release does not have, as the 2.0 additions do.
    """
    original = original_stems()
    extras: list[str] = []
    for stem in sorted(original):
        if len(extras) >= n:
            break
        for version in "abcdefgh":
            cand = stem[:6] + version
            if cand not in original and cand not in extras:
                extras.append(cand)
                break
    return extras


def make_emodb(
    root: Path,
    stems: Iterable[str] | None = None,
    *,
    speakers: Sequence[str] = ("03", "08"),
    v2_extras: int = 0,
    seconds: float = 0.3,
    rate: int = 16_000,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``wav/<stem>.wav`` for the given stems (default: every original file of ``speakers``),
    plus ``v2_extras`` EMO-DB 2.0 additions."""
    if stems is None:
        stems = sorted(s for s in original_stems() if s[:2] in speakers)
    write = _Writer(rate, seconds, channels, subtype)
    for stem in [*stems, *emodb_v2_extras(v2_extras)]:
        write(root / "wav" / f"{stem}.wav")
    return root


def make_full_emodb(root: Path, *, v2: bool = False) -> Path:
    """The 535 original files; with ``v2``, EMO-DB 2.0's 816 (281 stand-in additions)."""
    return make_emodb(root, sorted(original_stems()), v2_extras=281 if v2 else 0, seconds=FULL_SECONDS)


# -- EMOVO ------------------------------------------------------------------------------------

EMOVO_SPEAKERS = ("f1", "f2", "f3", "m1", "m2", "m3")
EMOVO_EMOTIONS = ("dis", "gio", "neu", "pau", "rab", "sor", "tri")
EMOVO_SENTENCES = ("b1", "b2", "b3", "d1", "d2", "l1", "l2", "l3", "l4", "n1", "n2", "n3", "n4", "n5")


def make_emovo(
    root: Path,
    speakers: Sequence[str] = ("f1", "m1"),
    sentences: Sequence[str] = ("b1", "l1"),
    *,
    seconds: float = 0.3,
    rate: int = 48_000,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``EMOVO/<speaker>/<emo>-<speaker>-<sentence>.wav``."""
    write = _Writer(rate, seconds, channels, subtype)
    base = root / "EMOVO"
    for speaker, emo, sentence in itertools.product(speakers, EMOVO_EMOTIONS, sentences):
        write(base / speaker / f"{emo}-{speaker}-{sentence}.wav")
    return base


def make_full_emovo(root: Path) -> Path:
    """All 588 files (6 speakers x 7 emotions x 14 sentences)."""
    return make_emovo(root, EMOVO_SPEAKERS, EMOVO_SENTENCES, seconds=FULL_SECONDS)


# -- ShEMO ------------------------------------------------------------------------------------

#: a small default: one female and one male speaker, every emotion code
SHEMO_SMALL = (
    "F01A01", "F01A02", "F01F01", "F01H01", "F01N01", "F01N02", "F01S01", "F01W01",
    "M01A01", "M01F01", "M01H01", "M01H02", "M01N01", "M01S01", "M01S02", "M01W01",
)


def make_shemo(
    root: Path,
    ids: Iterable[str] = SHEMO_SMALL,
    *,
    seconds: float = 0.3,
    rate: int = 44_100,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """``male/M01A01.wav`` and ``female/F01A01.wav``."""
    write = _Writer(rate, seconds, channels, subtype)
    for uid in ids:
        write(root / ("female" if uid.startswith("F") else "male") / f"{uid}.wav")
    return root


def make_full_shemo(root: Path) -> Path:
    """All 3,000 utterances of the public release (ids from ``data/shemo_ids.txt``)."""
    return make_shemo(root, utterance_ids(), seconds=FULL_SECONDS)


#: corpus name -> small / full-size tree builder
MAKERS = {
    "ravdess": make_ravdess, "savee": make_savee, "tess": make_tess, "cafe": make_cafe,
    "emodb": make_emodb, "emovo": make_emovo, "shemo": make_shemo,
}
FULL_MAKERS = {
    "ravdess": make_full_ravdess, "savee": make_full_savee, "tess": make_full_tess,
    "cafe": make_full_cafe, "emodb": make_full_emodb, "emovo": make_full_emovo, "shemo": make_full_shemo,
}
