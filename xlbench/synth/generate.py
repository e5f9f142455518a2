"""Generate the synthetic emotional-speech corpus with espeak-ng (PROTOCOL.md section 9).

Per utterance: espeak-ng speaks the sentence with the speaker's voice variant and the
emotion's prosody (rate, pitch, range, volume, word gap; ``rules.RULES``); the 22,050 Hz
samples are trimmed, optionally time-warped (jitter), resampled to 16 kHz with soxr, then get
simple signal effects standing in for voice quality (spectral tilt, soft clipping, tremolo,
breath noise), the language's channel (tilt, noise floor) and random silence padding, and are
written as 16-bit mono wav.

Determinism: every random draw comes from a numpy Generator seeded by a hash of (generator
version, seed, language, speaker[, emotion, sentence]); espeak-ng is reloaded fresh (see
``espeak.Engine.reset``) before each (speaker, emotion) chunk, whose sentences are always
spoken in order. The same version and seed therefore give byte-identical wav files on the same
machine and library versions, whatever the number of worker processes, and a run limited to
the first n speakers / sentences gives exactly the files of the full corpus.

The corpus is written into a hidden temporary folder beside ``out_dir`` and renamed into place
at the end, so an interrupted generation never leaves a half corpus that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import secrets
import shutil
import struct
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from xlbench import __version__
from xlbench.errors import ConfigError, DataError, os_error_line
from xlbench.home import atomic_write_json
from xlbench.protocol import EMOTIONS_5, SAMPLE_RATE, Emotion
from xlbench.synth import espeak
from xlbench.synth.rules import RULES, VARIABILITY, Rule
from xlbench.synth.spec import (
    CODE_OF,
    DEFAULT_SEED,
    GENERATOR_VERSION,
    NOTICE,
    STAMP_NAME,
    SYNTH_LANGUAGES,
    Speaker,
    SynthLanguage,
    synth_language,
)

Progress = Callable[[int, int], None]  # (utterances done, utterances planned)

BASE_RATE = 175.0  # espeak-ng words per minute
BASE_VOLUME = 70.0  # espeak-ng volume for neutral speech: headroom for +9 dB before its own limiter
OUTPUT_GAIN = 0.6  # after espeak-ng: neutral speech peaks around -8 dBFS
LIMIT_KNEE = 0.9  # soft limiter above this level (rarely reached)


def _seed(*parts: object) -> int:
    """A 64-bit seed from a hash of the parts (stable across processes and Python runs)."""
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


# -- speakers and utterances ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerStyle:
    """A speaker's personal baseline, drawn once per (version, seed, language, speaker)."""

    pitch: float  # espeak pitch units added to 50
    log_rate: float
    range: float
    loud_db: float
    expressiveness: float  # scales every emotion delta of this speaker
    mic_tilt: float  # small per-speaker colouring on top of the language channel
    noise_db: float  # offset of this speaker's noise floor


def speaker_style(lang: SynthLanguage, speaker: Speaker, seed: int) -> SpeakerStyle:
    rng = np.random.default_rng(_seed(GENERATOR_VERSION, seed, lang.code, speaker.id))
    v = VARIABILITY
    return SpeakerStyle(
        pitch=float(rng.normal(0, v.speaker_pitch)),
        log_rate=float(rng.normal(0, v.speaker_log_rate)),
        range=float(rng.normal(0, v.speaker_range)),
        loud_db=float(rng.normal(0, v.speaker_loud_db)),
        expressiveness=float(rng.uniform(*v.speaker_expressiveness)),
        mic_tilt=float(rng.normal(0, v.speaker_mic_tilt)),
        noise_db=float(rng.normal(0, v.speaker_noise_db)),
    )


@dataclass(frozen=True)
class Rendering:
    """Everything drawn for one utterance: espeak-ng settings and effect strengths."""

    prosody: espeak.Prosody
    espeak_seed: int
    tilt: float
    tense: float
    tremolo: float
    jitter: float
    breath: float
    noise_db: float
    effects_seed: int


def rendering(
    lang: SynthLanguage, speaker: Speaker, style: SpeakerStyle, emotion: Emotion, sentence_id: str, seed: int
) -> Rendering:
    rule: Rule = RULES[lang.name][emotion]
    rng = np.random.default_rng(
        _seed(GENERATOR_VERSION, seed, lang.code, speaker.id, CODE_OF[emotion], sentence_id)
    )
    v = VARIABILITY
    # draws in a fixed order, whatever the rule, so each stream stays aligned
    intensity = style.expressiveness * float(np.clip(rng.normal(1, v.utterance_scale), 0.6, 1.4))
    d_log_rate = float(rng.normal(0, v.utterance_log_rate))
    d_pitch = float(rng.normal(0, v.utterance_pitch))
    d_range = float(rng.normal(0, v.utterance_range))
    d_loud = float(rng.normal(0, v.utterance_loud_db))
    espeak_seed = int(rng.integers(0, 2**31 - 1))
    effects_seed = int(rng.integers(0, 2**63 - 1))
    loud_db = style.loud_db + intensity * rule.loud + d_loud
    prosody = espeak.Prosody(
        rate=round(BASE_RATE * math.exp(style.log_rate + intensity * math.log(rule.rate) + d_log_rate)),
        volume=round(BASE_VOLUME * 10 ** (loud_db / 20)),
        pitch=round(50 + style.pitch + intensity * rule.pitch + d_pitch),
        range=round(50 + style.range + intensity * rule.range + d_range),
        wordgap=round(intensity * rule.gap),
    ).clamped()
    return Rendering(
        prosody=prosody,
        espeak_seed=espeak_seed,
        tilt=intensity * rule.tilt + lang.channel.tilt + style.mic_tilt,
        tense=min(1.0, intensity * rule.tense),
        tremolo=min(0.8, intensity * rule.tremolo),
        jitter=intensity * rule.jitter,
        breath=intensity * rule.breath,
        noise_db=lang.channel.noise_db + style.noise_db,
        effects_seed=effects_seed,
    )


# -- signal effects (all on float32 mono) ----------------------------------------------------------


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _keep_rms(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    # voice-quality effects must not change loudness: that is the `loud` column's job
    ry = _rms(y)
    return (y * (_rms(x) / ry)).astype(np.float32) if ry > 0 else y.astype(np.float32)


def _trim(x: np.ndarray, rel: float = 1e-3) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > rel * float(np.max(np.abs(x), initial=0.0)))
    return x[idx[0] : idx[-1] + 1] if len(idx) else x


def _wobble(x: np.ndarray, depth: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Irregular voicing: resample along a fast random speed curve (pitch and timing jitter)."""
    if depth <= 0 or len(x) < 2:
        return x
    step = max(1, int(sr * 0.012))  # a new random speed every 12 ms
    knots = rng.standard_normal(len(x) // step + 2)
    speed = 1.0 + depth * np.interp(np.arange(len(x)) / step, np.arange(len(knots)), knots)
    pos = np.cumsum(speed) - speed[0]
    pos = pos[pos <= len(x) - 1]
    return np.interp(pos, np.arange(len(x)), x).astype(np.float32)


def _tilt(x: np.ndarray, t: float) -> np.ndarray:
    """First-order spectral tilt y[n] = x[n] - t x[n-1]: t > 0 brightens, t < 0 dulls."""
    t = float(np.clip(t, -0.9, 0.9))
    if abs(t) < 1e-6:
        return x
    y = x.astype(np.float64)
    y[1:] -= t * x[:-1]
    return _keep_rms(y, x)


def _tense(x: np.ndarray, amount: float) -> np.ndarray:
    """Tension: soft clipping (tanh) of the peak-normalised signal adds harmonics, flattens peaks."""
    peak = float(np.max(np.abs(x), initial=0.0))
    if amount <= 0 or peak == 0:
        return x
    drive = 1.0 + 5.0 * amount
    return _keep_rms(np.tanh(drive * x / peak), x)


def _tremolo(x: np.ndarray, depth: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A 5-8 Hz amplitude modulation whose rate wanders a little (a trembling voice)."""
    if depth <= 0:
        return x
    rate = rng.uniform(5.0, 8.0)
    n, step = len(x), int(0.25 * sr)
    knots = rng.standard_normal(n // step + 2)  # the rate drifts by about 10% every 250 ms
    wander = 1.0 + 0.1 * np.interp(np.arange(n) / step, np.arange(len(knots)), knots)
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * rate * np.cumsum(wander) / sr
    return (x * (1.0 + depth * np.sin(phase)) / math.sqrt(1 + depth**2 / 2)).astype(np.float32)


def _breath(x: np.ndarray, amount: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Breathy voice: bright noise that follows the speech envelope."""
    if amount <= 0:
        return x
    w = int(0.02 * sr)
    # a centred 20 ms moving average of |x|, from a padded cumulative sum
    c = np.cumsum(np.abs(x), dtype=np.float64)
    c = np.concatenate([np.zeros(w // 2 + 1), c, np.full(w - w // 2, c[-1])])
    env = (c[w:] - c[:-w])[: len(x)] / w
    noise = rng.standard_normal(len(x) + 1, dtype=np.float32)
    noise = (noise[1:] - noise[:-1]) / math.sqrt(2)  # first difference: a high-frequency tilt
    return (x + 0.8 * amount * env * noise).astype(np.float32)


def _limit(x: np.ndarray) -> np.ndarray:
    """Soft limiter above LIMIT_KNEE, so that nothing clips at 16 bits."""
    a = np.abs(x)
    over = a > LIMIT_KNEE
    if not over.any():
        return x
    room = 0.999 - LIMIT_KNEE
    y = x.copy()
    y[over] = np.sign(x[over]) * (LIMIT_KNEE + room * np.tanh((a[over] - LIMIT_KNEE) / room))
    return y


def render(
    engine: espeak.Engine, lang: SynthLanguage, speaker: Speaker, r: Rendering, sentence_id: str
) -> np.ndarray:
    """One utterance as int16 samples at 16 kHz."""
    raw = engine.synthesize(
        lang.sentence(sentence_id), f"{lang.voice}+{speaker.variant}", r.prosody, seed=r.espeak_seed
    )
    if len(raw) == 0:
        raise DataError(f"espeak-ng produced no audio for {lang.code} {sentence_id} ({speaker.id})")
    rng = np.random.default_rng(r.effects_seed)
    x = _trim(raw.astype(np.float32) / 32768.0)
    x = _wobble(x, r.jitter, rng, engine.sample_rate)
    x = soxr.resample(x, engine.sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    x = _tilt(x, r.tilt)
    x = _tense(x, r.tense)
    x = _tremolo(x, r.tremolo, rng, SAMPLE_RATE)
    x = _breath(x, r.breath, rng, SAMPLE_RATE)
    x = x * OUTPUT_GAIN
    pad = [int(rng.uniform(*VARIABILITY.padding_s) * SAMPLE_RATE) for _ in range(2)]
    x = np.concatenate([np.zeros(pad[0], np.float32), x, np.zeros(pad[1], np.float32)])
    x = x + np.float32(10 ** (r.noise_db / 20)) * rng.standard_normal(len(x), dtype=np.float32)
    x = _limit(x)
    return np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A canonical 44-byte-header PCM_16 mono wav: no metadata, so the bytes depend only on the
    samples (and writing is one call, faster than going through libsndfile)."""
    data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", len(data),
    )
    return header + data


def file_name(emotion: Emotion, speaker: Speaker, sentence_id: str) -> str:
    return f"{CODE_OF[emotion]}-{speaker.id}-{sentence_id}.wav"


# -- the work, in chunks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    """One speaker of one language: five fixed-order chunks (one per emotion)."""

    language: str
    speaker: str
    sentence_ids: tuple[str, ...]
    seed: int
    root: str


def _run(task: _Task) -> tuple[int, float]:
    lang = SYNTH_LANGUAGES[task.language]
    speaker = next(s for s in lang.speakers if s.id == task.speaker)
    style = speaker_style(lang, speaker, task.seed)
    folder = Path(task.root) / lang.code / speaker.id
    folder.mkdir(parents=True, exist_ok=True)
    count, seconds = 0, 0.0
    with espeak.session() as engine:
        for emotion in EMOTIONS_5:
            engine.reset()  # a pristine engine per chunk: the output depends only on the chunk
            for sid in task.sentence_ids:
                r = rendering(lang, speaker, style, emotion, sid, task.seed)
                audio = render(engine, lang, speaker, r, sid)
                path = folder / file_name(emotion, speaker, sid)
                try:
                    path.write_bytes(wav_bytes(audio))
                except OSError as exc:  # a full or read-only disk: say which file (the folder is removed)
                    raise DataError(os_error_line(exc, "write", path)) from None
                count += 1
                seconds += len(audio) / SAMPLE_RATE
    return count, seconds


def _languages(languages: Iterable[str] | None) -> list[SynthLanguage]:
    if languages is None:
        return list(SYNTH_LANGUAGES.values())
    if isinstance(languages, str):
        languages = [languages]
    out: list[SynthLanguage] = []
    for name in languages:
        try:
            lang = synth_language(name)
        except KeyError:
            from xlbench.errors import unknown_name

            raise unknown_name("language", name, list(SYNTH_LANGUAGES)) from None
        if lang not in out:
            out.append(lang)
    return out


def _plan(
    langs: list[SynthLanguage], seed: int, root: Path, limit_speakers: int | None, limit_sentences: int | None
) -> list[_Task]:
    for name, value in (("limit_speakers", limit_speakers), ("limit_sentences", limit_sentences)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")
    tasks = []
    for lang in langs:
        for speaker in lang.speakers[:limit_speakers]:
            tasks.append(_Task(lang.name, speaker.id, lang.sentence_ids[:limit_sentences], seed, str(root)))
    return tasks


def default_workers() -> int:
    """Worker processes for a full generation: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def read_stamp(root: Path) -> dict[str, Any] | None:
    """The SYNTHETIC.json stamp of a generated folder; None when missing or unreadable."""
    try:
        stamp = json.loads((Path(root) / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def generate(
    out_dir: Path,
    *,
    languages: Iterable[str] | None = None,
    seed: int = DEFAULT_SEED,
    workers: int | None = None,
    progress: Progress | None = None,
    limit_speakers: int | None = None,
    limit_sentences: int | None = None,
) -> Path:
    """Generate the corpus into ``out_dir`` (replaced if it exists); return ``out_dir``.

    ``languages``: names or codes (default: all five). ``workers``: processes (default
    :func:`default_workers`; 1 runs in this process). ``limit_speakers`` / ``limit_sentences``
    keep the first n speakers (alternating male/female) / sentences of each language, for tests.
    ``progress(done, total)`` is called as speakers finish.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    langs = _languages(languages)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = out_dir.parent / f".{out_dir.name}.partial-{token}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise DataError(f"cannot create {tmp}: {exc.strerror or exc}") from None
    tasks = _plan(langs, seed, tmp, limit_speakers, limit_sentences)
    per_task = len(EMOTIONS_5) * len(tasks[0].sentence_ids)
    total = per_task * len(tasks)
    workers = default_workers() if workers is None else max(1, workers)
    workers = min(workers, len(tasks))
    started = time.perf_counter()
    done, seconds = 0, 0.0
    try:
        if progress:
            progress(0, total)
        left = list(tasks)
        if workers > 1:
            # spawn, not fork: the caller may hold threads (torch) or an espeak-ng engine already
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending: dict[Future[tuple[int, float]], _Task] = {pool.submit(_run, t): t for t in tasks}
                try:
                    while pending:
                        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            n, s = fut.result()
                            left.remove(pending.pop(fut))
                            done, seconds = done + n, seconds + s
                            if progress:
                                progress(done, total)
                except BrokenProcessPool:
                    # workers could not start (e.g. a __main__ read from stdin cannot be
                    # re-imported by spawn): finish here; the output is the same by design
                    pass
                finally:
                    for fut in pending:
                        fut.cancel()
        for task in left:
            n, s = _run(task)
            done, seconds = done + n, seconds + s
            if progress:
                progress(done, total)
        counts = {lang.code: per_task * len(lang.speakers[:limit_speakers]) for lang in langs}
        created = datetime.now(UTC).isoformat(timespec="seconds")
        limits = (limit_speakers, limit_sentences)
        for lang in langs:
            atomic_write_json(tmp / lang.code / STAMP_NAME, make_stamp(seed, created, [lang], counts, *limits))
        stamp = make_stamp(seed, created, langs, counts, *limits)
        stamp["audio_seconds"] = round(seconds, 2)
        stamp["generation_seconds"] = round(time.perf_counter() - started, 2)
        atomic_write_json(tmp / STAMP_NAME, stamp)  # written last: a folder with a stamp is whole
        _swap_into_place(tmp, out_dir, token)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def make_stamp(
    seed: int,
    created: str,
    langs: list[SynthLanguage],
    counts: dict[str, int],
    limit_speakers: int | None,
    limit_sentences: int | None,
) -> dict[str, Any]:
    return {
        "notice": NOTICE,
        "synthetic": True,
        "generator": "xlbench.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "created": created,
        "espeak_ng": espeak_version(),
        "xlbench_version": __version__,
        "sample_rate": SAMPLE_RATE,
        "layout": "<lang code>/<speaker>/<emotion code>-<speaker>-<sentence id>.wav",
        "limit_speakers": limit_speakers,
        "limit_sentences": limit_sentences,
        "languages": {
            lang.code: {"name": lang.name, "corpus": lang.corpus, "utterances": counts[lang.code]}
            for lang in langs
        },
    }


_VERSION: str | None = None


def espeak_version() -> str:
    global _VERSION
    if _VERSION is None:
        _VERSION = espeak.version()
    return _VERSION


def _swap_into_place(tmp: Path, out_dir: Path, token: str) -> None:
    old = out_dir.parent / f".{out_dir.name}.old-{token}"
    try:
        if out_dir.exists() or out_dir.is_symlink():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    except OSError as exc:
        if old.exists() and not out_dir.exists():
            os.replace(old, out_dir)
        raise DataError(f"cannot move the generated corpus to {out_dir}: {exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)
