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


#: a WAV data chunk whose size field says "unknown" (written while streaming); libsndfile reads to the end
_STREAMING_SIZES = (0, 0xFFFFFFFF)


def wav_truncation(data: bytes) -> str | None:
    """Why a RIFF/WAVE file is shorter than its header says, or None.

    libsndfile reads whatever samples a truncated file still holds, so a wav cut to 300 bytes
    would pass as an 8 ms clip: the data chunk's declared size is compared with the bytes there.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None  # not a plain RIFF WAVE file (RF64, AIFF, FLAC ... are left to libsndfile)
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            if size in _STREAMING_SIZES:
                return None
            held = len(data) - pos - 8
            if held < size:
                return f"truncated: the header declares {size} bytes of audio, the file holds {held}"
            return None
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
    return "truncated: no audio data chunk within the file"


def _decode(data: bytes, name: str) -> tuple[np.ndarray, int, str]:
    if len(data) == 0:
        raise AudioError(f"{name}: empty file (0 bytes)")
    truncated = wav_truncation(data)
    if truncated:
        raise AudioError(f"{name}: {truncated}")
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
