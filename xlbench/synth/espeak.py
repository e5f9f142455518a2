"""A small ctypes wrapper around espeak-ng (the library shipped by ``espeakng-loader``).

Synchronous synthesis to memory: ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ...)`` plus a
synth callback that collects the 16-bit samples, so ``espeak_Synth`` returns when the text is
spoken and nothing is played.

Two properties of espeak-ng shape this module:

- It is one global, thread-unsafe engine per loaded library. Every call goes through
  :func:`session`, which holds a process-wide lock; a process (e.g. a pool worker) gets its
  own engine, initialised on first use.
- Its output depends on history: statics that are never reset (the pitch-flutter index, the
  automatic gain control, the breath resonators, the random state) carry over from one
  utterance to the next, so the same text with the same settings gives different samples
  depending on what was spoken before. :meth:`Engine.reset` therefore loads a *fresh private
  copy* of the library (a new file, hence a new instance with pristine statics) and
  initialises it again, in about 5 ms. The generator resets before each fixed-order chunk of
  utterances, which makes generation byte-for-byte deterministic and independent of how
  chunks are spread over processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np

from xlbench.errors import DataError

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
POS_CHARACTER = 1
CHARS_UTF8 = 1
EE_OK = 0


class Param(IntEnum):
    """espeak_PARAMETER values used here."""

    RATE = 1  # words per minute, 80-450 (175 normal)
    VOLUME = 2  # 0-200 (100 normal), linear amplitude
    PITCH = 3  # 0-100 (50 = the voice's own base pitch; +50 doubles it)
    RANGE = 4  # 0-100 (50 = the voice's own range; 0 is monotone)
    WORDGAP = 7  # extra pause between words, units of 10 ms at normal speed


@dataclass(frozen=True)
class Prosody:
    """The espeak-ng parameters of one utterance, clamped to the library's ranges on use."""

    rate: int = 175
    volume: int = 100
    pitch: int = 50
    range: int = 50
    wordgap: int = 0

    def clamped(self) -> Prosody:
        def clip(v: float, lo: int, hi: int) -> int:
            return int(min(hi, max(lo, round(v))))

        return Prosody(
            rate=clip(self.rate, 80, 450),
            volume=clip(self.volume, 0, 200),
            pitch=clip(self.pitch, 0, 100),
            range=clip(self.range, 0, 100),
            wordgap=clip(self.wordgap, 0, 50),
        )


# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events); the events are unused
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _locate() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise DataError(
            "espeak-ng is not available: install the `espeakng-loader` package (it ships the library "
            "and voices used to generate the synthetic corpus)"
        ) from None
    try:
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except Exception as exc:  # the loader raises RuntimeError when its data folder is missing
        raise DataError(f"espeak-ng data not found ({exc}); reinstall `espeakng-loader`") from None


def _unload(handle: int) -> None:
    import _ctypes

    try:
        if sys.platform == "win32":
            _ctypes.FreeLibrary(handle)  # type: ignore[attr-defined]
        else:
            _ctypes.dlclose(handle)  # type: ignore[attr-defined]
    except OSError:
        pass  # a leaked copy costs memory, never correctness: the next copy is a new instance


class Engine:
    """One espeak-ng instance. Use it only inside :func:`session` (it is not thread-safe)."""

    def __init__(self, library: str | None = None, data: str | None = None):
        lib_path, data_path = _locate() if library is None or data is None else (library, data)
        self.library_path = Path(library or lib_path)
        self.data_path = str(data or data_path)
        self._buffer = bytearray()
        self._interrupted = False  # Ctrl-C seen inside the synth callback
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept alive as long as the engine
        self._copy_dir: str | None = None  # where copies load from; found on first load
        self._lib: ctypes.CDLL | None = None
        self._voice: str | None = None
        self.sample_rate = 0
        self.version = "unknown"
        self.reset()

    # -- loading ------------------------------------------------------------------------------
    def _copy_in(self, folder: str) -> ctypes.CDLL:
        fd, name = tempfile.mkstemp(prefix="xlbench-libespeak-ng-", suffix=self.library_path.suffix, dir=folder)
        os.close(fd)
        try:
            shutil.copyfile(self.library_path, name)
            return ctypes.CDLL(name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)  # the mapping stays valid on POSIX; nothing is left behind

    def _load_fresh_copy(self) -> ctypes.CDLL:
        # a new file means a new library instance with pristine statics, whatever else in this
        # process holds espeak-ng open. The system temp folder may be mounted noexec: then try
        # xlbench's own folder, and as a last resort the original file (reset() then relies on
        # dlclose really unloading it, true unless something else in the process loaded it).
        lib = None
        folders = [self._copy_dir] if self._copy_dir is not None else [tempfile.gettempdir(), "<home>"]
        for folder in folders:
            if folder == "<home>":
                from xlbench.home import subdir

                try:
                    folder = str(subdir("tmp"))
                except DataError:
                    continue
            try:
                lib = self._copy_in(folder)
            except OSError:
                continue
            self._copy_dir = folder
            break
        if lib is None:
            try:
                lib = ctypes.CDLL(str(self.library_path))
            except OSError as exc:
                raise DataError(f"cannot load espeak-ng from {self.library_path}: {exc}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Terminate.restype = ctypes.c_int
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        return lib

    def reset(self) -> None:
        """Replace the engine by a pristine one: the next utterance does not depend on the last."""
        self._close_lib()
        lib = self._load_fresh_copy()
        data = self.data_path.encode()
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, INITIALIZE_DONT_EXIT)
        if rate <= 0:
            _unload(lib._handle)
            raise DataError(f"espeak-ng failed to initialise with data folder {self.data_path}")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib, self.sample_rate, self._voice = lib, rate, None
        version = lib.espeak_Info(None)
        self.version = version.decode() if version else "unknown"

    def _close_lib(self) -> None:
        if self._lib is not None:
            self._lib.espeak_Terminate()
            _unload(self._lib._handle)
            self._lib = None

    def close(self) -> None:
        self._close_lib()

    # -- synthesis ------------------------------------------------------------------------------
    def _collect(self, wav: ctypes._Pointer, n: int, _events: int) -> int:
        # Ctrl-C inside a ctypes callback cannot propagate through C (Python would print
        # "Exception ignored on calling ctypes callback" and go on): note it, stop espeak-ng,
        # and raise it once espeak_Synth has returned
        try:
            if n > 0:
                self._buffer += ctypes.string_at(wav, 2 * n)  # n 16-bit samples
        except KeyboardInterrupt:
            self._interrupted = True
            return 1  # non-zero = stop synthesis
        return 0  # 0 = go on

    def set_voice(self, voice: str) -> None:
        """A voice by name with an optional variant, e.g. ``en``, ``fr+f2``."""
        assert self._lib is not None
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
                raise DataError(f"espeak-ng has no voice {voice!r}")
            self._voice = voice

    def synthesize(
        self, text: str, voice: str, prosody: Prosody = Prosody(), *, seed: int | None = None
    ) -> np.ndarray:
        """Speak ``text``; int16 samples at :attr:`sample_rate` (22050 Hz for the bundled voices)."""
        assert self._lib is not None
        lib = self._lib
        self.set_voice(voice)
        # parameters persist across calls and voices: set every one of them every time
        p = prosody.clamped()
        for param, value in (
            (Param.RATE, p.rate), (Param.VOLUME, p.volume), (Param.PITCH, p.pitch),
            (Param.RANGE, p.range), (Param.WORDGAP, p.wordgap),
        ):
            lib.espeak_SetParameter(int(param), value, 0)
        if seed is not None and hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(seed & 0x7FFFFFFF)  # breath noise
        data = text.encode("utf-8") + b"\0"
        self._buffer = bytearray()
        self._interrupted = False
        status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if self._interrupted:
            self._buffer = bytearray()
            raise KeyboardInterrupt
        if status != EE_OK:
            raise DataError(f"espeak-ng failed to speak {text!r} with voice {voice!r} (status {status})")
        samples, self._buffer = self._buffer, bytearray()
        return np.frombuffer(samples, dtype=np.int16)  # native byte order, as espeak-ng wrote it


_LOCK = threading.RLock()
_ENGINE: Engine | None = None
_ENGINE_PID: int | None = None


@contextmanager
def session() -> Iterator[Engine]:
    """This process's engine, initialised on first use, with the lock held while in use."""
    global _ENGINE, _ENGINE_PID
    with _LOCK:
        if _ENGINE is None or os.getpid() != _ENGINE_PID:  # a forked child needs its own
            _ENGINE, _ENGINE_PID = Engine(), os.getpid()
        yield _ENGINE


def synthesize(
    text: str, voice: str, prosody: Prosody = Prosody(), *, seed: int | None = None, fresh: bool = True
) -> tuple[np.ndarray, int]:
    """Speak one text: (int16 samples, sample rate). ``fresh`` resets the engine first so the
    result depends only on the arguments."""
    with session() as engine:
        if fresh:
            engine.reset()
        return engine.synthesize(text, voice, prosody, seed=seed), engine.sample_rate


def version() -> str:
    """The espeak-ng version string, e.g. ``1.52.0``."""
    with session() as engine:
        return engine.version
