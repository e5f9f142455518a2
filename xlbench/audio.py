"""Audio input: soundfile reads, downmix to mono, soxr resamples to 16 kHz (PROTOCOL.md section 5).

Every failure becomes an AudioError whose message says what is wrong with which file.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from xlbench.errors import DataError
from xlbench.protocol import SAMPLE_RATE

#: Bump when anything below changes the samples a model sees (keys the feature cache).
PREPROCESSING_VERSION = "1"


class AudioError(DataError):
    """A file that cannot be used as audio; the message names the file and the reason."""


@dataclass(frozen=True)
class AudioInfo:
    sha: str  # blake2b-128 of the file bytes
    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _decode(data: bytes, name: str) -> tuple[np.ndarray, int, str]:
    if len(data) == 0:
        raise AudioError(f"{name}: empty file (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, subtype = f.samplerate, f.subtype
            samples = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        # libsndfile names the in-memory buffer ("Error opening <_io.BytesIO ...>: "); keep the reason.
        reason = str(exc).strip().rsplit(": ", 1)[-1] or type(exc).__name__
        raise AudioError(f"{name}: not readable as audio ({reason})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: no audio samples (header only or truncated)")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    return samples, rate, subtype


def inspect_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Read a file fully (a header alone can lie about a truncated file), hash and check it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    samples, rate, subtype = _decode(data, str(path))
    return AudioInfo(content_hash(data), rate, samples.shape[1], samples.shape[0], subtype)


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Downmix (mean of channels) and resample to 16 kHz with soxr's high-quality filter."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return samples


def load_audio(path: str | os.PathLike[str], expected_sha: str | None = None) -> np.ndarray:
    """A file as float32 mono 16 kHz samples; with expected_sha, refuse a file that changed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if expected_sha is not None and content_hash(data) != expected_sha:
        raise AudioError(f"{path}: the file changed since the corpus was prepared; run `xlbench data prepare` again")
    samples, rate, _ = _decode(data, str(path))
    return to_mono_16k(samples, rate)
