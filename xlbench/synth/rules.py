"""How the generated corpus renders the five emotions: prosody rules per language.

The rules follow the qualitative table of Murray & Arnott (1993) relative to neutral speech:
anger — slightly faster, much higher mean pitch, much wider range, louder, tense voice;
happiness — faster, much higher pitch, much wider range, louder;
sadness — slower, slightly lower pitch, narrower range, softer;
fear — much faster, very much higher pitch, much wider range, irregular voicing.

Each language renders them with its own magnitudes and partly different cues (the
cross-lingual shift that makes transfer a real problem), and every speaker and utterance adds
its own variation (``VARIABILITY``), so that classes overlap. The numbers were written down
once from these qualitative descriptions; they are not tuned toward any learning method, and
results on this corpus say nothing about real emotion recognition.

Columns: ``rate`` multiplies words per minute; ``pitch`` and ``range`` add espeak-ng units
(0-100, 50 = the voice's own; +10 pitch is about +2.4 semitones); ``dB`` is loudness through
espeak-ng's volume; ``gap`` adds pauses between words (10 ms units); ``tilt`` is a first-order
spectral tilt (+ bright / pressed, - dull / soft); ``tense`` is soft-clipping drive (tension);
``tremolo`` is the depth of a 5-8 Hz amplitude modulation; ``jitter`` is the depth of a fast
random time-warp wobble (irregular pitch); ``breath`` is envelope-following noise (breathy voice).
Neutral is all zeros (rate 1).

| lang | emotion | rate | pitch | range | dB | gap | tilt | tense | tremolo | jitter | breath | cues |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| en | anger | 1.10 | +16 | +30 | +7 | 0 | +0.5 | 0.6 | 0 | 0.005 | 0 | textbook: loud, high, wide, tense |
| en | fear | 1.35 | +28 | +30 | +1 | 0 | +0.1 | 0 | 0.3 | 0.02 | 0.1 | much faster, very high, trembling |
| en | happiness | 1.15 | +20 | +25 | +4 | 0 | +0.2 | 0 | 0 | 0 | 0 | faster, high, wide |
| en | sadness | 0.80 | -6 | -25 | -6 | 2 | -0.5 | 0 | 0 | 0 | 0.15 | slow, low, narrow, soft |
| fr | anger | 1.25 | +6 | +15 | +8 | 0 | +0.6 | 0.8 | 0 | 0 | 0 | tempo and loudness, little pitch |
| fr | fear | 1.15 | +22 | +20 | 0 | 0 | 0 | 0 | 0.45 | 0.015 | 0.15 | less speed, strong tremolo |
| fr | happiness | 1.05 | +24 | +40 | +3 | 0 | +0.1 | 0 | 0 | 0 | 0 | mostly pitch range |
| fr | sadness | 0.90 | -2 | -15 | -4 | 1 | -0.3 | 0 | 0 | 0 | 0.35 | mostly breathy and narrow |
| de | anger | 1.05 | +12 | +40 | +9 | 0 | +0.7 | 0.7 | 0 | 0 | 0 | very loud and wide |
| de | fear | 1.30 | +26 | +25 | +2 | 0 | +0.1 | 0 | 0.2 | 0.025 | 0.05 | close to english |
| de | happiness | 1.10 | +22 | +20 | +3 | 0 | +0.2 | 0 | 0 | 0 | 0 | close to english |
| de | sadness | 0.72 | -8 | -30 | -5 | 3 | -0.6 | 0 | 0 | 0 | 0.1 | very slow, dull |
| it | anger | 1.00 | +24 | +20 | +5 | 0 | +0.4 | 0.5 | 0 | 0 | 0 | high pitch, no tempo change |
| it | fear | 1.45 | +14 | +10 | 0 | 0 | 0 | 0 | 0.4 | 0.02 | 0.1 | very fast, modest pitch |
| it | happiness | 1.00 | +28 | +40 | +5 | 0 | +0.3 | 0 | 0 | 0 | 0 | pitch only, no tempo change |
| it | sadness | 0.95 | -2 | -10 | -10 | 0 | -0.2 | 0 | 0 | 0 | 0.2 | mainly much softer |
| fa | anger | 0.92 | +10 | +40 | +9 | 3 | +0.6 | 0.8 | 0 | 0 | 0 | slower, emphatic pauses, loud |
| fa | fear | 1.10 | +35 | +5 | -2 | 0 | -0.1 | 0 | 0.2 | 0.03 | 0.25 | very high but quiet and narrow |
| fa | happiness | 1.25 | +12 | +15 | +2 | 0 | +0.2 | 0 | 0 | 0 | 0 | mainly faster |
| fa | sadness | 0.85 | +4 | -20 | -3 | 1 | -0.4 | 0 | 0.15 | 0.01 | 0.3 | not lower, trembling, breathy |

Variation on top (``VARIABILITY``): per speaker, a pitch baseline (sd 6 units), a rate
factor (log-sd 0.08), a range offset (sd 6), a loudness offset (sd 2 dB), a microphone tilt
(sd 0.08), a noise-floor offset (sd 3 dB) and an expressiveness factor (uniform 0.7-1.3) that
scales all of that speaker's emotion deltas; per utterance, each delta is scaled by a factor
(sd 0.15, clipped to 0.6-1.4) and pitch (sd 3), range (sd 5), log-rate (sd 0.04) and loudness
(sd 1.5 dB) get independent noise. Each language also has its own "recording channel"
(``spec.Channel``: tilt and noise floor).

This table is checked against ``RULES`` by the tests; ``rules_markdown()`` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType

from xlbench.protocol import EMOTIONS_5, LANGUAGES, Emotion

A, F, H, N, S = Emotion.ANGER, Emotion.FEAR, Emotion.HAPPINESS, Emotion.NEUTRAL, Emotion.SADNESS


@dataclass(frozen=True)
class Rule:
    """How one emotion differs from neutral speech in one language."""

    rate: float = 1.0  # x words per minute
    pitch: float = 0.0  # + espeak pitch units
    range: float = 0.0  # + espeak range units
    loud: float = 0.0  # dB
    gap: int = 0  # + word gap, 10 ms units
    tilt: float = 0.0  # -1 .. +1
    tense: float = 0.0  # 0 .. 1
    tremolo: float = 0.0  # 0 .. 1
    jitter: float = 0.0  # fraction of playback speed
    breath: float = 0.0  # 0 .. 1
    note: str = ""


NEUTRAL = Rule(note="reference")

_R = Rule
RULES: MappingProxyType[str, MappingProxyType[Emotion, Rule]] = MappingProxyType(
    {
        lang: MappingProxyType({N: NEUTRAL, **table})
        for lang, table in {
            "english": {
                A: _R(1.10, 16, 30, 7, 0, 0.5, 0.6, 0, 0.005, 0, "textbook: loud, high, wide, tense"),
                F: _R(1.35, 28, 30, 1, 0, 0.1, 0, 0.3, 0.02, 0.1, "much faster, very high, trembling"),
                H: _R(1.15, 20, 25, 4, 0, 0.2, 0, 0, 0, 0, "faster, high, wide"),
                S: _R(0.80, -6, -25, -6, 2, -0.5, 0, 0, 0, 0.15, "slow, low, narrow, soft"),
            },
            "french": {
                A: _R(1.25, 6, 15, 8, 0, 0.6, 0.8, 0, 0, 0, "tempo and loudness, little pitch"),
                F: _R(1.15, 22, 20, 0, 0, 0, 0, 0.45, 0.015, 0.15, "less speed, strong tremolo"),
                H: _R(1.05, 24, 40, 3, 0, 0.1, 0, 0, 0, 0, "mostly pitch range"),
                S: _R(0.90, -2, -15, -4, 1, -0.3, 0, 0, 0, 0.35, "mostly breathy and narrow"),
            },
            "german": {
                A: _R(1.05, 12, 40, 9, 0, 0.7, 0.7, 0, 0, 0, "very loud and wide"),
                F: _R(1.30, 26, 25, 2, 0, 0.1, 0, 0.2, 0.025, 0.05, "close to english"),
                H: _R(1.10, 22, 20, 3, 0, 0.2, 0, 0, 0, 0, "close to english"),
                S: _R(0.72, -8, -30, -5, 3, -0.6, 0, 0, 0, 0.1, "very slow, dull"),
            },
            "italian": {
                A: _R(1.00, 24, 20, 5, 0, 0.4, 0.5, 0, 0, 0, "high pitch, no tempo change"),
                F: _R(1.45, 14, 10, 0, 0, 0, 0, 0.4, 0.02, 0.1, "very fast, modest pitch"),
                H: _R(1.00, 28, 40, 5, 0, 0.3, 0, 0, 0, 0, "pitch only, no tempo change"),
                S: _R(0.95, -2, -10, -10, 0, -0.2, 0, 0, 0, 0.2, "mainly much softer"),
            },
            "persian": {
                A: _R(0.92, 10, 40, 9, 3, 0.6, 0.8, 0, 0, 0, "slower, emphatic pauses, loud"),
                F: _R(1.10, 35, 5, -2, 0, -0.1, 0, 0.2, 0.03, 0.25, "very high but quiet and narrow"),
                H: _R(1.25, 12, 15, 2, 0, 0.2, 0, 0, 0, 0, "mainly faster"),
                S: _R(0.85, 4, -20, -3, 1, -0.4, 0, 0.15, 0.01, 0.3, "not lower, trembling, breathy"),
            },
        }.items()
    }
)


@dataclass(frozen=True)
class Variability:
    """Speaker- and utterance-level spread (standard deviations unless said otherwise)."""

    speaker_pitch: float = 6.0  # espeak pitch units
    speaker_log_rate: float = 0.08
    speaker_range: float = 6.0
    speaker_loud_db: float = 2.0
    speaker_expressiveness: tuple[float, float] = (0.7, 1.3)  # uniform; scales every emotion delta
    speaker_mic_tilt: float = 0.08  # added to the language's channel tilt
    speaker_noise_db: float = 3.0  # added to the language's noise floor
    utterance_scale: float = 0.15  # each delta x N(1, sd), clipped to [0.6, 1.4]
    utterance_pitch: float = 3.0
    utterance_range: float = 5.0
    utterance_log_rate: float = 0.04
    utterance_loud_db: float = 1.5
    padding_s: tuple[float, float] = (0.10, 0.30)  # uniform silence before and after the speech


VARIABILITY = Variability()

_COLUMNS = ("rate", "pitch", "range", "loud", "gap", "tilt", "tense", "tremolo", "jitter", "breath")


def _fmt(name: str, value: float) -> str:
    if name == "rate":
        return f"{value:.2f}"
    if value == 0:
        return "0"
    return f"{value:+g}" if name in ("pitch", "range", "loud", "tilt") else f"{value:g}"


def rules_markdown() -> str:
    """The rule table as markdown (as in this module's docstring and docs/synthetic-corpus.md)."""
    assert tuple(f.name for f in fields(Rule))[: len(_COLUMNS)] == _COLUMNS
    lines = [
        "| lang | emotion | rate | pitch | range | dB | gap | tilt | tense | tremolo | jitter | breath "
        "| cues |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, table in RULES.items():
        for emotion in EMOTIONS_5:
            if emotion is N:
                continue
            rule = table[emotion]
            cells = [_fmt(c, getattr(rule, c)) for c in _COLUMNS]
            lines.append(f"| {LANGUAGES[lang].code} | {emotion.value} | {' | '.join(cells)} | {rule.note} |")
    return "\n".join(lines)
