"""The feature cache: frame-level outputs of frozen encoders, computed once, memory-mapped after.

A frozen encoder (paper Sec. 3.2.1: HuBERT or BYOL-S with only the head h trained) sees the same
audio every epoch, so its frames are computed once per utterance and kept on disk. Training then
gathers windows of cached frames instead of re-encoding audio: a method's random 2 s crop
(PROTOCOL.md section 5) becomes a random window of ``round(2 s x frame_rate)`` frames, and
evaluation pools all of an utterance's frames.

**Approximation.** A window of frames computed on the whole utterance is not the same as
encoding the 2 s crop alone: a frame's receptive field reaches outside the crop. For the CNN
encoders that is a few frames at each edge of the window; for Transformers (HuBERT, wav2vec2)
every frame attends to the whole utterance, so context from outside the crop leaks into every
cached frame. The test-time vectors are exact (the whole utterance is encoded). End-to-end
training (trainable encoders) re-encodes real crops and is not affected.

**Key.** ``features/<encoder key>/``: the key hashes the encoder's identity
(``Encoder.cache_identity()``: name or model family, code version, weights hash -- not the
path --, layer and other options) with ``xlbench.audio.PREPROCESSING_VERSION`` and this cache's
format version. An entry inside it is keyed by the audio's content hash (``Utterance.sha``), so
renaming or moving a corpus reuses it and a changed file misses it. Device and precision are not
in the key: frames extracted on a GPU under bf16 autocast are reused by a CPU run (they differ
from float32 ones by about 1 % relative; each pack records how it was made).

**Layout.** Frames are stored as float16 (float32 for encoders that declare
``cache_dtype = "float32"``, whose values float16 cannot hold) in packs: ``pack-<time>-<pid>-<id>.npy``
(``<pid>``: the writer's) holds the frames of many utterances one after another (an (N, D)
array) and ``pack-<time>-<pid>-<id>.json`` indexes it
(sha -> first row, frame count, blake2b checksum of those rows). A pack is written to a
temporary name and renamed, its index last, so a crash never leaves an entry that looks
complete; packs are flushed every ~64 MB during extraction, so an interrupted extraction keeps
what it finished. Reading memory-maps each pack once (one file descriptor per pack, not per
utterance: the ~7,500 utterances of the benchmark would exhaust descriptors otherwise) and
verifies every requested entry's checksum once. A truncated or corrupted entry is reported with
a FeatureCacheWarning, recomputed, and dropped from its old index.

**Several processes.** One process at a time extracts an (encoder, corpus): it holds
``.extract-<corpus>.lock`` in the encoder's folder, and another process that needs the same
frames waits (with a note), then reads what was cached and computes only what is still
missing. Before reading, temporaries and unindexed packs left by writers that are gone are
removed, and a pack whose index is unreadable is removed with it, with one warning
(docs/concurrency.md).

**Read-only caches.** A cache folder that already holds every requested entry is used as is
(read-only is fine: a shared cache). When entries are missing and the folder cannot be written,
``get_or_compute`` raises a one-line DataError before computing anything (rather than silently
holding gigabytes of frames in memory); point XLBENCH_HOME or ``root`` at a writable folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlbench.accelerator import to_device
from xlbench.audio import PREPROCESSING_VERSION, load_audio
from xlbench.audio_batches import AudioItem, audio_batches, length_batches
from xlbench.encoders.base import Encoder, EncoderInfo
from xlbench.errors import ConfigError, DataError
from xlbench.home import atomic_write_json, features_dir, open_temp_beside
from xlbench.lifetime import STALE_TEMP_SECONDS, process_alive, sweep_temp_files
from xlbench.locks import ProcessLock
from xlbench.progress import note

CACHE_FORMAT = 1
SAMPLE_RATE = 16_000
#: padded audio per extraction batch (seconds): bounds memory, keeps a GPU busy
DEFAULT_BATCH_SECONDS = 120.0
PACK_BYTES = 64 << 20
FP16_MAX = float(np.finfo(np.float16).max)


class FeatureCacheWarning(UserWarning):
    """A cache entry was unusable (truncated, corrupted) and is being recomputed."""


# -- keys ---------------------------------------------------------------------------------------


def encoder_identity(encoder: Encoder) -> dict[str, Any]:
    """Everything the cached frames depend on."""
    identity = {
        "encoder": encoder.cache_identity(),
        "preprocessing": PREPROCESSING_VERSION,
        "format": CACHE_FORMAT,
    }
    if cache_dtype(encoder) != "float16":  # float16 keys stay as they were before dtypes existed
        identity["dtype"] = cache_dtype(encoder)
    return identity


def cache_dtype(encoder: Encoder) -> str:
    """The dtype an encoder's frames are cached in (float16 or float32)."""
    dtype = str(getattr(encoder, "cache_dtype", "float16"))
    if dtype not in ("float16", "float32"):
        raise ConfigError(f"encoder {encoder.info().name!r}: cache_dtype must be float16 or float32, not {dtype!r}")
    return dtype


def encoder_key(encoder: Encoder) -> str:
    """The folder name of an encoder's entries: a readable slug plus a hash of its identity."""
    identity = encoder_identity(encoder)
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    digest = hashlib.blake2b(blob, digest_size=10).hexdigest()
    # transformers models are named by their type: `hubert` and `hf:<folder>` share one folder
    label = identity["encoder"].get("model_type") or encoder.info().name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", str(label)).strip("-")[:40] or "encoder"
    return f"{slug}-{digest}"


def _checksum(rows: np.ndarray) -> str:
    return hashlib.blake2b(memoryview(np.ascontiguousarray(rows)).cast("B"), digest_size=8).hexdigest()


# -- devices --------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """auto -> cuda, else mps, else cpu; a named device that is not there is a ConfigError."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA device is visible to torch (use --device cpu or auto)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r}: MPS is not available on this machine (use --device cpu or auto)")
    if kind not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None


# -- the store ------------------------------------------------------------------------------------


class FrameStore:
    """Cached frames of a set of utterances, by content hash; float16 (or float32) arrays, usually memory-mapped.

    Training crops are cut from these frames by ``xlbench.inputs.FrozenInputs`` (random 2 s
    windows pooled from prefix sums); this class only stores and hands out frames.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        frame_rate: float,
        dim: int,
        info: EncoderInfo | None = None,
    ) -> None:
        self._arrays = dict(arrays)
        self.frame_rate = float(frame_rate)
        self.dim = int(dim)
        self.info = info

    def __contains__(self, sha: object) -> bool:
        return sha in self._arrays

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def shas(self) -> list[str]:
        return list(self._arrays)

    def frames(self, sha: str) -> np.ndarray:
        """(F, D) frames of one utterance in the cache's dtype (a read-only view)."""
        try:
            return self._arrays[sha]
        except KeyError:
            raise KeyError(f"utterance {sha} is not in this frame store") from None

    def num_frames(self, sha: str) -> int:
        return int(self.frames(sha).shape[0])

    def crop_frames(self, seconds: float) -> int:
        """Frames in a crop of ``seconds`` (a 2 s crop of HuBERT at 50 frames/s: 100)."""
        return max(1, round(seconds * self.frame_rate))


# -- extraction -----------------------------------------------------------------------------------


def default_audio_workers(device: torch.device) -> int:
    """Audio-reading processes: up to 8 feeding a GPU, up to 2 beside a CPU model (which needs
    the cores itself), never more than the cores but one."""
    spare = max(0, (os.cpu_count() or 1) - 1)
    return min(8 if device.type == "cuda" else 2, spare)


def extract_frames(
    encoder: Encoder,
    items: Sequence[AudioItem],
    *,
    device: str | torch.device = "auto",
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    bf16: bool | None = None,
    progress: bool = False,
    workers: int | None = None,
    description: str = "",
    pad_multiple: int | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Encode ``items`` in length-bucketed batches; yields (key, (F, D) frames in the encoder's cache dtype).

    Audio is read, resampled and padded by ``workers`` processes (xlbench.audio_batches; default
    ``default_audio_workers``) a few batches ahead of the model, into pinned memory on CUDA; the
    copy to the device does not block, and the host never waits for the device until it hands
    out a batch's frames, by then one batch behind the one running. ``bf16`` (default: on for
    CUDA) runs the model under bfloat16 autocast; front ends stay float32. ``pad_multiple``
    rounds each batch's padded length up to a multiple of that many samples (default: 0.25 s on
    CUDA, where every new shape costs kernel selection; none elsewhere). Padding never changes a
    frame, so this is a speed choice only.
    """
    dev = resolve_device(device)
    half = cache_dtype(encoder) == "float16"
    use_bf16 = dev.type == "cuda" if bf16 is None else (bf16 and dev.type in ("cuda", "cpu"))
    cuda = dev.type == "cuda"
    quantum = max(1, pad_multiple if pad_multiple is not None else (4000 if dev.type == "cuda" else 1))
    batches = length_batches(items, batch_seconds, quantum / SAMPLE_RATE if quantum > 1 else 0.0)
    total = sum(it.seconds for it in items)
    was_training = encoder.training
    first_param = next(encoder.parameters(), None)
    home = first_param.device if first_param is not None else torch.device("cpu")
    encoder.eval().to(dev)
    bar = _Progress(total, description or f"encoding with {encoder.info().name}", progress)
    clipped = False

    def hand_out(
        batch: list[AudioItem], host: torch.Tensor, flen: torch.Tensor, stats: torch.Tensor, event: Any
    ) -> Iterator[tuple[str, np.ndarray]]:
        nonlocal clipped
        if event is not None:
            event.synchronize()
        peak, bad = float(stats[0]), bool(stats[1])
        arrays = host.numpy()
        if bad or not np.isfinite(peak):
            first = next(i for i in range(len(batch)) if not np.isfinite(arrays[i]).all())
            it = batch[first]
            raise DataError(f"{it.label or it.key}: encoder {encoder.info().name!r} produced NaN or inf")
        if half and peak > FP16_MAX and not clipped:
            clipped = True
            warnings.warn(
                f"encoder {encoder.info().name!r} produced values beyond float16 range "
                f"(|x| up to {peak:.3g}); they are clipped in the cache",
                FeatureCacheWarning,
                stacklevel=3,
            )
        for i, (it, n) in enumerate(zip(batch, flen.tolist(), strict=True)):
            yield it.key, arrays[i, :n]
        bar.advance(sum(it.seconds for it in batch))

    def encode(batch: list[AudioItem], wav: torch.Tensor, lengths: torch.Tensor) -> tuple[Any, ...]:
        short = [(it, n) for it, n in zip(batch, lengths.tolist(), strict=True) if n < encoder.min_samples]
        if short:
            it, n = short[0]
            raise DataError(
                f"{it.label or it.key}: {n} samples ({1000 * n / SAMPLE_RATE:.1f} ms) is shorter "
                f"than the {encoder.min_samples} samples encoder {encoder.info().name!r} needs; "
                "remove the file from the corpus"
            )
        with torch.inference_mode():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                # lengths stay on the host for encoders that take them there (no device sync)
                frames, flen = encoder.frames(
                    to_device(wav, dev), lengths if encoder.host_lengths else to_device(lengths, dev)
                )
            # checks and the float16 cast run on the device; the copy back is asynchronous on
            # CUDA, so the GPU encodes the next batch while the host hands out this one
            flen = flen.to(frames.device)
            valid = torch.arange(frames.shape[1], device=frames.device)[None, :] < flen[:, None]
            frames = frames.float().masked_fill(~valid[..., None], 0.0)
            peak = frames.abs().amax() if frames.numel() else frames.new_zeros(())
            stats = torch.stack([peak, (~torch.isfinite(frames)).any()]).float()
            stored = frames.clamp(-FP16_MAX, FP16_MAX).to(torch.float16) if half else frames
            out = tuple(t.to("cpu", non_blocking=cuda) for t in (stored, flen, stats))
            event = torch.cuda.Event() if cuda else None
            if event is not None:
                event.record()
        return (*out, event)

    n_workers = default_audio_workers(dev) if workers is None else workers
    loaded = audio_batches(batches, workers=n_workers, quantum=quantum, pin=cuda)
    try:
        previous = None
        with bar:
            for batch in batches:
                try:
                    wav, lengths = next(loaded)
                    current = (batch, *encode(batch, wav, lengths))
                except BaseException:
                    if previous is not None:  # what finished is handed out before the error goes up
                        done, previous = previous, None
                        yield from hand_out(*done)
                    raise
                if previous is not None:
                    yield from hand_out(*previous)
                previous = current
            if previous is not None:
                yield from hand_out(*previous)
    finally:
        loaded.close()  # stops the reading processes, also when the caller stops early
        encoder.train(was_training).to(home)


class _Progress:
    """A rich progress bar in audio seconds, or nothing."""

    def __init__(self, total: float, description: str, enabled: bool) -> None:
        from xlbench import progress

        # quiet under XLBENCH_PROGRESS=0 and when stderr is not a terminal, like every other bar
        self.enabled = enabled and total > 0 and progress.globally_enabled() and progress.console.is_terminal
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} s of audio"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=progress.console,
                transient=True,
            )
            self._task = self._p.add_task(description, total=total)

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._p.__exit__(*exc)

    def advance(self, seconds: float) -> None:
        if self.enabled:
            self._p.advance(self._task, seconds)


# -- the cache ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    pack: str  # stem: pack-<time>-<pid>-<id>
    offset: int
    frames: int
    checksum: str


class _PackWriter:
    """Buffers (sha, frames) and writes them as packs of about PACK_BYTES each."""

    def __init__(self, folder: Path, dim: int, key: str, meta: dict[str, Any], dtype: str = "float16") -> None:
        self.folder, self.dim, self.key, self.meta, self.dtype = folder, dim, key, meta, dtype
        self._rows: list[np.ndarray] = []
        self._shas: list[str] = []
        self._bytes = 0
        self.written: list[str] = []

    def add(self, sha: str, frames: np.ndarray) -> None:
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise DataError(f"encoder gave frames of shape {frames.shape}, expected (F, {self.dim})")
        self._rows.append(frames)
        self._shas.append(sha)
        self._bytes += frames.nbytes
        if self._bytes >= PACK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._shas:
            return
        # the writer's pid in the name: a pack a killed writer renamed but never indexed is removed
        stem = f"pack-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        data = np.concatenate(self._rows, axis=0).astype(self.dtype, copy=False)
        entries, offset = {}, 0
        for sha, rows in zip(self._shas, self._rows, strict=True):
            entries[sha] = [offset, int(rows.shape[0]), _checksum(rows)]
            offset += rows.shape[0]
        index = {
            "format": CACHE_FORMAT,
            "key": self.key,
            "dim": self.dim,
            "dtype": self.dtype,
            "rows": int(data.shape[0]),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "meta": self.meta,
            "entries": entries,
        }
        try:
            _atomic_save_npy(self.folder / f"{stem}.npy", data)
            atomic_write_json(self.folder / f"{stem}.json", index)  # the index last: it commits the pack
        except OSError as exc:
            raise DataError(f"cannot write to the feature cache {self.folder}: {exc.strerror or exc}") from None
        self.written.append(stem)
        self._rows, self._shas, self._bytes = [], [], 0


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    fd, tmp = open_temp_beside(path)  # group-readable where the umask says so; the pid lets a sweep judge it
    try:
        with os.fdopen(fd, "wb") as f:
            np.lib.format.write_array(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _open_pack(path: Path, dim: int, dtype: str = "float16") -> np.ndarray | None:
    """Memory-map a pack's rows; a truncated file maps the rows it still holds; None if unreadable."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, stored = read_header(f)
            header = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError, SyntaxError):
        return None
    if fortran or stored != np.dtype(dtype) or len(shape) != 2 or shape[1] != dim:
        return None
    rows = min(shape[0], (size - header) // (stored.itemsize * dim))
    if rows <= 0:
        return np.zeros((0, dim), dtype=stored)
    return np.memmap(path, dtype=stored, mode="r", offset=header, shape=(rows, dim))


class FeatureCache:
    """Cached frames of one frozen encoder, under ``<root>/<encoder key>/``."""

    def __init__(
        self,
        encoder: Encoder,
        root: str | os.PathLike[str] | None = None,
        *,
        verify: bool = True,
        allow_untrained: bool = False,
    ) -> None:
        refusal = encoder.cache_refusal(allow_untrained)
        if refusal:
            raise ConfigError(refusal)
        self.encoder = encoder
        self.info = encoder.info()
        self.key = encoder_key(encoder)
        self.dtype = cache_dtype(encoder)
        self.root = Path(root).expanduser() if root is not None else features_dir()
        self.dir = self.root / self.key
        self.verify = verify

    # -- reading ------------------------------------------------------------------------------
    def _indexes(self) -> list[tuple[str, dict[str, Any]]]:
        """(pack stem, index) for every readable pack index, newest first."""
        out = []
        if not self.dir.is_dir():
            return out
        for p in sorted(self.dir.glob("pack-*.json"), reverse=True):
            try:
                index = json.loads(p.read_text())
                if (
                    index.get("format") != CACHE_FORMAT
                    or index.get("dim") != self.info.frame_dim
                    or index.get("dtype", "float16") != self.dtype
                ):
                    continue
                entries = index["entries"]
                if not isinstance(entries, dict):
                    raise TypeError("entries is not a mapping")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # an index is renamed into place whole, so an unreadable one is damage, not a
                # write in progress: the pack is dead; removing it says so once, not every run
                gone = self._remove_pack(p.stem)
                warnings.warn(
                    f"feature cache: unreadable index {p} ({exc}); "
                    + ("removed it and its pack (their entries are recomputed)" if gone else "ignoring it"),
                    FeatureCacheWarning,
                    stacklevel=3,
                )
                continue
            out.append((p.stem, index))
        return out

    def _lookup(self, shas: set[str]) -> tuple[dict[str, np.ndarray], dict[str, list[str]], list[str]]:
        """Valid arrays for the requested shas, bad entries per pack, and why they were bad."""
        found: dict[str, np.ndarray] = {}
        bad: dict[str, list[str]] = {}
        reasons: list[str] = []
        maps: dict[str, np.ndarray | None] = {}
        dim = self.info.frame_dim
        for stem, index in self._indexes():
            for sha, raw in index["entries"].items():
                if sha not in shas or sha in found:
                    continue
                try:
                    entry = _Entry(stem, int(raw[0]), int(raw[1]), str(raw[2]))
                except (TypeError, ValueError, IndexError):
                    bad.setdefault(stem, []).append(sha)
                    reasons.append(f"{sha[:12]}: malformed index entry")
                    continue
                if stem not in maps:
                    maps[stem] = _open_pack(self.dir / f"{stem}.npy", dim, self.dtype)
                mm = maps[stem]
                if mm is None or entry.offset + entry.frames > mm.shape[0] or entry.frames < 1:
                    bad.setdefault(stem, []).append(sha)
                    reasons.append(f"{sha[:12]}: truncated ({stem}.npy)")
                    continue
                rows = mm[entry.offset : entry.offset + entry.frames]
                if self.verify and _checksum(rows) != entry.checksum:
                    bad.setdefault(stem, []).append(sha)
                    reasons.append(f"{sha[:12]}: checksum mismatch ({stem}.npy)")
                    continue
                found[sha] = rows
        return found, bad, reasons

    def _remove_pack(self, stem: str) -> bool:
        """Delete a pack and its index; False when the folder is read-only."""
        try:
            (self.dir / f"{stem}.json").unlink(missing_ok=True)
            (self.dir / f"{stem}.npy").unlink(missing_ok=True)
        except OSError:
            return False
        return True

    def sweep(self) -> None:
        """Remove what killed writers left in this encoder's folder (``sweep_cache_folder``)."""
        sweep_cache_folder(self.dir)

    def stored(self) -> int:
        """How many utterances this encoder has cached (without verifying them)."""
        return len({sha for _, index in self._indexes() for sha in index["entries"]})

    # -- writing ------------------------------------------------------------------------------
    def _ensure_writable(self, missing: int) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe.", dir=self.dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise DataError(
                f"feature cache {self.dir} is not writable ({exc.strerror or exc}) and {missing} "
                f"utterance(s) of encoder {self.info.name!r} are not cached yet; set XLBENCH_HOME to a "
                "writable folder"
            ) from None
        self._remember_name()

    def _remember_name(self) -> None:
        """key.json lists every encoder name that used this folder (for `features clear --encoder`)."""
        key_file = self.dir / "key.json"
        try:
            record = json.loads(key_file.read_text()) if key_file.exists() else None
        except (OSError, ValueError):
            record = None
        if record is None:
            record = {"name": self.info.name, "names": [], "key": self.key, "identity": encoder_identity(self.encoder)}
        names = record.setdefault("names", [])
        if self.info.name in names:
            return
        names.append(self.info.name)
        with contextlib.suppress(OSError, DataError):  # a read-only shared cache stays as it is
            atomic_write_json(key_file, record)

    def _drop(self, bad: dict[str, list[str]]) -> None:
        """Remove bad entries from their indexes (after their replacements were written)."""
        for stem, shas in bad.items():
            path = self.dir / f"{stem}.json"
            try:
                index = json.loads(path.read_text())
                for sha in shas:
                    index["entries"].pop(sha, None)
                if index["entries"]:
                    atomic_write_json(path, index)
                else:
                    path.unlink()
                    (self.dir / f"{stem}.npy").unlink(missing_ok=True)
            except (OSError, ValueError, KeyError, DataError):
                pass  # a read-only or vanished pack: the replacements are found first anyway

    def get_or_compute(
        self,
        utterances: Sequence[Any],
        device: str | torch.device = "auto",
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        progress: bool = True,
        *,
        bf16: bool | None = None,
        workers: int | None = None,
    ) -> FrameStore:
        """Frames of every utterance (anything with .sha, .path, .duration, .id), computing the missing."""
        by_sha: dict[str, Any] = {}
        for u in utterances:
            by_sha.setdefault(u.sha, u)
        if self.dir.is_dir():
            self.sweep()
        found, bad, reasons = self._lookup(set(by_sha))
        if reasons:
            shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
            noun = "entry" if len(reasons) == 1 else "entries"
            warnings.warn(
                f"feature cache {self.key}: {len(reasons)} unusable {noun} ({shown}); recomputing",
                FeatureCacheWarning,
                stacklevel=2,
            )
        todo = [u for sha, u in by_sha.items() if sha not in found]
        if found and not todo:
            self._remember_name()
        if todo:
            self._ensure_writable(len(todo))
            dev = resolve_device(device)
            meta = {
                "device": str(dev),
                "bf16": dev.type == "cuda" if bf16 is None else bool(bf16),
                "torch": torch.__version__,
                "encoder": self.info.name,
            }
            by_corpus: dict[str, list[Any]] = {}
            for u in todo:
                by_corpus.setdefault(str(getattr(u, "corpus", "") or "any"), []).append(u)
            for corpus, group in sorted(by_corpus.items()):
                # one process extracts an (encoder, corpus) at a time; the others wait, then read
                # what it cached and compute only what is still missing
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", corpus)
                what = f"extracting {self.info.name} features of {corpus}"
                with ProcessLock(self.dir / f".extract-{slug}.lock", what, on_wait=note):
                    done, _, _ = self._lookup({u.sha for u in group})
                    found.update(done)
                    rest = [u for u in group if u.sha not in found]
                    if rest:
                        self._extract(rest, dev, meta, batch_seconds, bf16, progress, workers)
            self._drop(bad)
            more, _, _ = self._lookup({u.sha for u in todo})
            found.update(more)
            lost = [u for u in todo if u.sha not in found]
            if lost:
                raise DataError(f"feature cache {self.dir}: {len(lost)} entries did not read back after writing")
        return FrameStore(
            {sha: found[sha] for sha in by_sha},
            frame_rate=self.info.frame_rate,
            dim=self.info.frame_dim,
            info=self.info,
        )


    def _extract(
        self,
        todo: Sequence[Any],
        dev: torch.device,
        meta: dict[str, Any],
        batch_seconds: float,
        bf16: bool | None,
        progress: bool,
        workers: int | None,
    ) -> None:
        """Encode ``todo`` and write it as packs."""
        writer = _PackWriter(self.dir, self.info.frame_dim, self.key, meta, self.dtype)
        items = [
            AudioItem(u.sha, float(u.duration), _loader(u.path, u.sha), label=str(getattr(u, "id", u.path)))
            for u in todo
        ]
        try:
            for sha, frames in extract_frames(
                self.encoder,
                items,
                device=dev,
                batch_seconds=batch_seconds,
                bf16=bf16,
                progress=progress,
                workers=workers,
                description=f"{self.info.name}: {len(todo)} utterance(s)",
            ):
                writer.add(sha, frames)
        finally:
            writer.flush()  # what finished is kept, also on an error or Ctrl-C


def sweep_cache_folder(folder: Path) -> None:
    """Remove what killed writers left in an encoder's cache folder: temporaries of processes
    that are gone, and packs whose index never got written (their writer is gone, or they are
    an hour old)."""
    sweep_temp_files([folder])
    with contextlib.suppress(OSError):
        for npy in folder.glob("pack-*.npy"):
            if npy.with_suffix(".json").exists():
                continue
            pid = re.fullmatch(r"pack-\d+-(\d+)-[0-9a-f]+", npy.stem)
            if (pid and not process_alive(int(pid[1]))) or time.time() - npy.stat().st_mtime > STALE_TEMP_SECONDS:
                npy.unlink()


def _loader(path: str, sha: str) -> Callable[[], np.ndarray]:
    return functools.partial(load_audio, path, expected_sha=sha)  # picklable: read in a worker process


# -- housekeeping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedEncoder:
    key: str
    name: str  # the first encoder name that wrote it
    packs: int
    bytes: int
    names: tuple[str, ...] = ()  # every name that used it (hubert and hf:<folder> may share one)


def cached_encoders(root: str | os.PathLike[str] | None = None) -> list[CachedEncoder]:
    """What is in the cache folder, one row per encoder key."""
    base = Path(root).expanduser() if root is not None else features_dir()
    rows = []
    for d in sorted(p for p in base.glob("*") if p.is_dir()):
        try:
            record = json.loads((d / "key.json").read_text())
            name, names = str(record.get("name", "?")), tuple(record.get("names") or [record.get("name", "?")])
        except (OSError, ValueError, AttributeError):
            name, names = "?", ("?",)
        size = sum(f.stat().st_size for f in d.glob("*") if f.is_file())
        rows.append(CachedEncoder(d.name, name, len(list(d.glob("pack-*.npy"))), size, names))
    return rows


def clear_cache(encoder: str | None = None, root: str | os.PathLike[str] | None = None) -> list[CachedEncoder]:
    """Delete the cached frames of one encoder (by name, as in ``info().name``) or of all; returns them."""
    removed = []
    for row in cached_encoders(root):
        if encoder is not None and encoder not in row.names:
            continue
        base = Path(root).expanduser() if root is not None else features_dir()
        try:
            shutil.rmtree(base / row.key)
        except OSError as exc:
            raise DataError(f"cannot remove {base / row.key}: {exc.strerror or exc}") from None
        removed.append(row)
    return removed
