"""What a model eats: batches of random 2 s crops for training, whole utterances for testing.

Two stores behind one interface, keyed by the opaque utterance key:

- ``FrozenInputs``: a frozen encoder's cached frames (xlbench.features); a training crop is a
  window of frames, pooled by the encoder's pooling (the backbone's encoder is not run).
- ``WaveInputs``: 16 kHz waveforms held in memory, for end-to-end fine-tuning (``--finetune``);
  crops are gathered from one flat bank (``WaveBank``), on the GPU when there is one.

Neither store knows labels, paths or corpus ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xlbench.accelerator import autocast, to_device
from xlbench.audio import load_audio
from xlbench.encoders.base import Encoder, masked_pool
from xlbench.manifest import Utterance
from xlbench.protocol import SAMPLE_RATE


@dataclass
class Batch:
    """Padded inputs (B, T[, D]) and the valid length of each row (B,).

    ``host_lengths``: the same lengths on the host (CPU), kept when the batch moves to a device,
    so that an encoder taking them there (``Encoder.host_lengths``) never waits for the device.
    """

    x: torch.Tensor
    lengths: torch.Tensor
    host_lengths: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        host = self.host_lengths
        if host is None and self.lengths.device.type == "cpu":
            host = self.lengths
        return Batch(to_device(self.x, device), to_device(self.lengths, device), host)

    def __len__(self) -> int:
        return self.x.shape[0]

    def mix(self, other: Batch, alpha: torch.Tensor) -> Batch:
        """Mixup of inputs (paper Eq. 6): alpha * self + (1 - alpha) * other, per row."""
        shape = (-1,) + (1,) * (self.x.dim() - 1)
        x = alpha.view(shape) * self.x + (1 - alpha.view(shape)) * other.x
        host = None
        if self.host_lengths is not None and other.host_lengths is not None:
            host = torch.maximum(self.host_lengths, other.host_lengths)
        return Batch(x, torch.maximum(self.lengths, other.lengths), host)


class InputStore(ABC):
    mode: str
    crop_seconds: float

    @abstractmethod
    def train_batch(self, keys: Sequence[str], rng: np.random.Generator) -> Batch:
        """A random crop of ``crop_seconds`` of each utterance (shorter ones padded)."""

    @abstractmethod
    def eval_batch(self, keys: Sequence[str]) -> Batch:
        """Whole utterances, padded to the longest."""

    @abstractmethod
    def length(self, key: str) -> int:
        """Length of an utterance in the store's units (frames or samples), for bucketing."""

    def to(self, device: torch.device | str) -> InputStore:
        """The store serving batches made on ``device`` where that pays (default: as it is)."""
        return self


def _pad(rows: Sequence[np.ndarray]) -> Batch:
    longest = max(len(r) for r in rows)
    shape = (len(rows), longest, *rows[0].shape[1:])
    out = np.zeros(shape, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return Batch(torch.from_numpy(out), torch.tensor([len(r) for r in rows], dtype=torch.long))


class WaveBank:
    """Waveforms as one flat float32 tensor with an offset and a length per row.

    On a GPU a batch is gathered from it in one indexing kernel (no loop over utterances, no
    copy over the bus: the bank is moved there once). On a CPU a batch is B slice copies, which
    are plain memory copies and measured 50x faster there than any gather kernel
    (benchmarks/bench_finetune.py prints the time per batch). A crop's start is drawn on the
    host from the run's random stream, as before (the draws, and so the crops, are those of the
    per-utterance loop this replaced).
    """

    def __init__(self, rows: Sequence[np.ndarray], device: torch.device | str = "cpu") -> None:
        self.lengths = np.array([len(r) for r in rows], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        flat = np.concatenate([np.asarray(r, dtype=np.float32) for r in rows]) if rows else np.zeros(0, np.float32)
        self.device = torch.device(device)
        self.host = flat if self.device.type == "cpu" else None  # the bank itself, for slice copies
        self.samples = to_device(torch.from_numpy(flat), self.device)

    def gather(self, rows: np.ndarray, starts: np.ndarray, valid: np.ndarray, width: int) -> Batch:
        """Rows' samples [start, start + valid), zero-padded to ``width``."""
        host_valid = torch.from_numpy(np.ascontiguousarray(valid, dtype=np.int64))
        first = self.offsets[np.asarray(rows, dtype=np.int64)] + np.asarray(starts, dtype=np.int64)
        if self.host is not None:  # numpy slices: torch's per-copy overhead made this 6x slower
            x = np.zeros((len(first), width), dtype=np.float32)
            for i, (o, n) in enumerate(zip(first.tolist(), host_valid.tolist(), strict=True)):
                x[i, :n] = self.host[o : o + n]
            return Batch(torch.from_numpy(x), host_valid, host_valid)
        n = to_device(host_valid, self.device)
        steps = torch.arange(width, device=self.device)
        inside = steps[None, :] < n[:, None]
        pos = torch.where(inside, to_device(torch.from_numpy(first), self.device)[:, None] + steps[None, :], 0)
        x = self.samples[pos].masked_fill(~inside, 0.0)  # padded steps read sample 0, then zeroed
        return Batch(x, n, host_valid)

    def crops(self, rows: np.ndarray, size: int, rng: np.random.Generator) -> Batch:
        """A random window of ``size`` samples of each row (shorter rows whole, zero-padded)."""
        lens = self.lengths[rows]
        starts = np.zeros(len(rows), dtype=np.int64)
        long = lens > size
        starts[long] = rng.integers(0, lens[long] - size + 1)  # one draw per long row, in order
        return self.gather(rows, starts, np.minimum(lens, size), size)

    def whole(self, rows: np.ndarray) -> Batch:
        lens = self.lengths[rows]
        return self.gather(rows, np.zeros(len(rows), dtype=np.int64), lens, int(lens.max()) if len(rows) else 0)


def random_crops(rows: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> Batch:
    """A random window of ``size`` steps from each row; rows shorter than ``size`` are padded."""
    return WaveBank(rows).crops(np.arange(len(rows)), size, rng)


class WaveInputs(InputStore):
    """Waveforms in memory for fine-tuning; loaded once, in parallel.

    Held per utterance (parts and views share arrays without copies); the first batch builds
    one ``WaveBank`` of the store's utterances, on the device ``to`` chose.
    """

    mode = "finetune"
    #: a bank larger than this share of a GPU's free memory stays on the host (each batch is
    #: then cut there and copied to the GPU)
    DEVICE_SHARE = 0.25

    def __init__(
        self, utterances: Sequence[Utterance], crop_seconds: float = 2.0, progress: Callable[[int], None] | None = None
    ):
        self.crop_seconds = crop_seconds
        self.crop = round(crop_seconds * SAMPLE_RATE)

        def load(u: Utterance) -> np.ndarray:
            wav = load_audio(u.path, expected_sha=u.sha)
            if progress:
                progress(1)
            return wav

        with ThreadPoolExecutor(max_workers=4) as pool:
            waves = list(pool.map(load, utterances))
        self._wave = {u.sha: w for u, w in zip(utterances, waves, strict=True)}
        self._device = torch.device("cpu")
        self._bank: WaveBank | None = None
        self._row: dict[str, int] = {}

    @classmethod
    def from_arrays(
        cls, waves: dict[str, np.ndarray], crop_seconds: float = 2.0, device: torch.device | str = "cpu"
    ) -> WaveInputs:
        """A store over waveforms already in memory (keyed by utterance key)."""
        out = cls.__new__(cls)
        out.crop_seconds = crop_seconds
        out.crop = round(crop_seconds * SAMPLE_RATE)
        out._wave = dict(waves)
        out._device = torch.device(device)
        out._bank = None
        out._row = {}
        return out

    def __getstate__(self) -> dict:
        # what travels to the method's worker: the waveforms, not a bank on some device
        return {**self.__dict__, "_bank": None, "_row": {}, "_device": torch.device("cpu")}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._wave)

    def to(self, device: torch.device | str) -> WaveInputs:
        """The same store batching on ``device`` (on CUDA: the bank on the GPU when it fits)."""
        device = torch.device(device)
        if device.type == "cuda":
            need = 4 * sum(len(w) for w in self._wave.values())
            free, _ = torch.cuda.mem_get_info(device)
            if need > self.DEVICE_SHARE * free:
                device = torch.device("cpu")  # batches are gathered on the host and copied
        return WaveInputs.from_arrays(self._wave, self.crop_seconds, device)

    def subset(self, keys: Sequence[str]) -> WaveInputs:
        return WaveInputs.from_arrays({k: self._wave[k] for k in keys}, self.crop_seconds, self._device)

    @classmethod
    def concat(cls, stores: Sequence[WaveInputs], device: torch.device | str = "cpu") -> WaveInputs:
        waves: dict[str, np.ndarray] = {}
        for s in stores:
            waves.update(s._wave)
        return cls.from_arrays(waves, stores[0].crop_seconds)

    def _rows(self, keys: Sequence[str]) -> tuple[WaveBank, np.ndarray]:
        if self._bank is None:
            self._row = {k: i for i, k in enumerate(self._wave)}
            self._bank = WaveBank(list(self._wave.values()), self._device)
        return self._bank, np.array([self._row[k] for k in keys], dtype=np.int64)

    def train_batch(self, keys: Sequence[str], rng: np.random.Generator) -> Batch:
        bank, rows = self._rows(keys)
        return bank.crops(rows, self.crop, rng)

    def eval_batch(self, keys: Sequence[str]) -> Batch:
        bank, rows = self._rows(keys)
        return bank.whole(rows)

    def length(self, key: str) -> int:
        return len(self._wave[key])


def pool_windows(x: torch.Tensor, lengths: torch.Tensor, how: str) -> torch.Tensor:
    """Pool (B, L, D) windows like ``masked_pool``, faster: one mask product, and the
    variance as E[x²] - E[x]² (windows are short, float32 is ample)."""
    mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype).unsqueeze(-1)
    n = mask.sum(1).clamp(min=1)
    xm = x * mask
    mean = xm.sum(1) / n
    if how == "mean":
        return mean
    if how == "mean+std":
        var = (xm * x).sum(1) / n - mean * mean
        return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)
    return masked_pool(x, lengths, how)


def _prefix_sums(
    frames: Sequence[np.ndarray], lens: np.ndarray, squares: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-utterance prefix sums of frames (and of their squares), each utterance led by a zero
    row, as float32, summed in float64. One small cumsum per utterance stays in cache; one big
    vectorised cumsum was measured 3x slower (memory-bound)."""
    dim = np.asarray(frames[0]).shape[1] if len(frames) else 1
    s1 = np.zeros((int((lens + 1).sum()), dim), dtype=np.float32)
    s2 = np.zeros_like(s1) if squares else None
    off = 0
    for f, n in zip(frames, lens, strict=True):
        x = np.asarray(f, dtype=np.float64)
        np.cumsum(x, axis=0, out=x)  # in place: x is a fresh float64 copy
        s1[off + 1 : off + n + 1] = x
        if s2 is not None:
            sq = np.square(np.asarray(f, dtype=np.float64))
            s2[off + 1 : off + n + 1] = np.cumsum(sq, axis=0, out=sq)
        off += n + 1
    return s1, s2


class FrozenInputs(InputStore):
    """A frozen encoder's cached frames, served as pooled utterance vectors.

    Whole-utterance vectors are pooled once (they never change in frozen mode). A training crop
    is a random window of ``crop_seconds`` of frames, pooled with the encoder's pooling: for mean
    and mean+std pooling from per-utterance prefix sums (O(D) per window, whatever its length),
    for other poolings by gathering the window's frames. Batches are (B, dim) vectors, so the
    backbone only applies its head; mixup on them mixes encoder outputs (docs/methods.md).
    The store stays on the host even for a GPU run (``to`` is the identity): a batch is B pooled
    vectors, while the prefix sums would take twice the frames' size in float32 on the GPU.
    """

    mode = "frozen"

    def __init__(
        self,
        frames: dict[str, np.ndarray],
        frame_rate: float,
        crop_seconds: float = 2.0,
        pooling: str = "mean",
        device: torch.device | str = "cpu",
    ):
        self.crop_seconds = crop_seconds
        self.crop = max(1, round(crop_seconds * frame_rate))
        self.pooling = pooling
        self.device = torch.device(device)
        keys = list(frames)
        self.keys = tuple(keys)
        self._row = {k: i for i, k in enumerate(keys)}
        lens = np.array([len(frames[k]) for k in keys], dtype=np.int64)
        self._len = torch.from_numpy(lens)
        self._prefix = pooling in ("mean", "mean+std")
        if self._prefix:
            # one leading zero row per utterance: window sum = S[off + end] - S[off + start]
            starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
            s1, s2 = _prefix_sums([frames[k] for k in keys], lens, squares=pooling == "mean+std")
            self._s1 = torch.from_numpy(s1).to(self.device)
            self._s2 = torch.from_numpy(s2).to(self.device) if s2 is not None else None
            self._offset = torch.from_numpy(starts)
            self._whole = self._pool_from_prefix(torch.arange(len(keys)), torch.zeros(len(keys), dtype=torch.long),
                                                 self._len)
        else:
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
            bank = np.concatenate([np.asarray(frames[k]) for k in keys]) if keys else np.zeros((0, 1), np.float16)
            dtype = torch.float16 if self.device.type == "cpu" else torch.float32
            self._bank = torch.from_numpy(np.ascontiguousarray(bank)).to(self.device, dtype)
            self._offset = torch.from_numpy(starts)
            self._whole = self._pool_whole(keys, frames)

    @classmethod
    def concat(cls, stores: Sequence[FrozenInputs], device: torch.device | str = "cpu") -> FrozenInputs:
        """One store serving the keys of several (disjoint) stores of the same encoder, on ``device``.

        Used to hand a method exactly the parts it declared: the harness builds one store per
        part once, and each run joins the ones its view allows (a copy, no re-pooling).
        """
        if not stores:
            raise ValueError("concat needs at least one store")
        first = stores[0]
        out = cls.__new__(cls)
        out.crop_seconds, out.crop, out.pooling = first.crop_seconds, first.crop, first.pooling
        out.device = torch.device(device)
        out._prefix = first._prefix
        out.keys = tuple(k for s in stores for k in s.keys)
        out._row = {k: i for i, k in enumerate(out.keys)}
        if len(out._row) != len(out.keys):
            raise ValueError("stores to concatenate share keys")
        out._len = torch.cat([s._len for s in stores])
        arrays = ("_s1", "_s2") if first._prefix else ("_bank",)
        shift, offsets = 0, []
        for s in stores:
            offsets.append(s._offset + shift)
            shift += int(getattr(s, arrays[0]).shape[0])
        out._offset = torch.cat(offsets)
        for name in arrays:
            parts = [getattr(s, name) for s in stores]
            setattr(out, name, None if parts[0] is None else torch.cat([t.to(out.device) for t in parts]))
        out._whole = torch.cat([s._whole.to(out.device) for s in stores])
        return out

    def subset(self, keys: Sequence[str]) -> FrozenInputs:
        """A store holding only ``keys`` (rows copied): nothing else is in its memory."""
        rows = [self._row[k] for k in keys]
        seg = self._len[rows] + (1 if self._prefix else 0)  # prefix sums lead with a zero row
        starts = self._offset[rows]
        index = torch.repeat_interleave(starts - torch.cumsum(seg, 0) + seg, seg) + torch.arange(int(seg.sum()))
        out = self.__class__.__new__(self.__class__)
        out.crop_seconds, out.crop, out.pooling, out.device = self.crop_seconds, self.crop, self.pooling, self.device
        out._prefix = self._prefix
        out.keys = tuple(keys)
        out._row = {k: i for i, k in enumerate(out.keys)}
        out._len = self._len[rows].clone()
        out._offset = torch.cumsum(seg, 0) - seg
        for name in ("_s1", "_s2") if self._prefix else ("_bank",):
            full = getattr(self, name)
            setattr(out, name, None if full is None else full[index.to(full.device)].clone())
        out._whole = self._whole[torch.tensor(rows, dtype=torch.long, device=self.device)].clone()
        return out

    def _pool_from_prefix(self, rows: torch.Tensor, starts: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Pooled windows [start, start + valid) of the given rows, from the prefix sums: O(dim) each."""
        lo = (self._offset[rows] + starts).to(self.device)
        hi = lo + valid.to(self.device)
        n = valid.to(self.device, torch.float32).clamp(min=1)[:, None]
        mean = (self._s1[hi] - self._s1[lo]) / n
        if self._s2 is None:
            return mean
        var = (self._s2[hi] - self._s2[lo]) / n - mean * mean
        return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)

    def _pool_whole(self, keys: list[str], frames: dict[str, np.ndarray]) -> torch.Tensor:
        out = []
        for start in range(0, len(keys), 64):
            batch = _pad([np.asarray(frames[k], dtype=np.float32) for k in keys[start : start + 64]])
            out.append(pool_windows(batch.x.to(self.device), batch.lengths.to(self.device), self.pooling))
        return torch.cat(out) if out else torch.zeros((0, 1), device=self.device)

    def train_batch(self, keys: Sequence[str], rng: np.random.Generator) -> Batch:
        rows = torch.tensor([self._row[k] for k in keys], dtype=torch.long)
        lens = self._len[rows]
        room = (lens - self.crop).clamp(min=0)
        starts = torch.from_numpy(np.floor(rng.random(len(keys)) * (room.numpy() + 1)).astype(np.int64))
        valid = torch.clamp(lens, max=self.crop)
        if self._prefix:
            pooled = self._pool_from_prefix(rows, starts, valid)
        else:
            steps = torch.arange(self.crop)
            # positions past a short utterance's end repeat its last frame; the mask ignores them
            pos = self._offset[rows, None] + torch.minimum(starts[:, None] + steps[None, :], lens[:, None] - 1)
            windows = self._bank[pos.to(self.device)].float()
            pooled = pool_windows(windows, valid.to(self.device), self.pooling)
        return Batch(pooled, torch.ones(len(keys), dtype=torch.long, device=self.device))

    def eval_batch(self, keys: Sequence[str]) -> Batch:
        rows = torch.tensor([self._row[k] for k in keys], dtype=torch.long, device=self.device)
        return Batch(self._whole[rows], torch.ones(len(keys), dtype=torch.long, device=self.device))

    def length(self, key: str) -> int:
        return int(self._len[self._row[key]])


class Backbone(nn.Module):
    """Encoder e + linear head h with softmax (paper Sec. 3.2.1, Eq. 1).

    Frozen mode: inputs are pooled vectors of cached frames (FrozenInputs); only the head trains.
    Fine-tune mode: inputs are waveforms and the encoder is trained end to end.
    ``head`` replaces the linear head (e.g. an MLP, TrainConfig ``head_type``); ``standardizer``
    maps encoder vectors before the head (fixed statistics, TrainConfig ``standardize``).
    """

    def __init__(
        self,
        encoder: Encoder | None,
        dim: int,
        n_classes: int,
        pooling: str,
        *,
        head: nn.Module | None = None,
        standardizer: nn.Module | None = None,
        bf16: bool = True,
    ):
        super().__init__()
        self.encoder = encoder  # None in frozen mode
        self.pooling = pooling
        self.dim = dim
        self.n_classes = n_classes
        self.standardizer = standardizer
        self.head = head if head is not None else nn.Linear(dim, n_classes)
        #: the encoder under bfloat16 autocast on CUDA (xlbench.accelerator; nothing changes on a CPU)
        self.bf16 = bf16

    def embed(self, batch: Batch) -> torch.Tensor:
        # FrozenInputs serves pooled encoder outputs; fine-tuning runs the encoder
        if self.encoder is None:
            z = batch.x
        else:
            host = batch.host_lengths is not None and self.encoder.host_lengths
            with autocast(batch.x.device, self.bf16):
                z = self.encoder(batch.x, batch.host_lengths if host else batch.lengths)
            z = z.float()  # the head and the losses in float32
        return z if self.standardizer is None else self.standardizer(z)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Logits; the softmax of Eq. 1 is applied by the losses and by ``predict``."""
        return self.head(self.embed(batch))
