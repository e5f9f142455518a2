"""Audio for an encoder, in length-bucketed padded batches read by worker processes.

Feature extraction (xlbench.features) reads every utterance once: decoding, checking its hash,
resampling to 16 kHz and padding into a batch tensor. ``audio_batches`` does that in
``torch.utils.data.DataLoader`` worker processes, a few batches ahead of the model, so none of
it holds the GIL of the process feeding the GPU; on CUDA the batches arrive in pinned memory,
ready for a non-blocking copy. A user-caused failure in a worker (an unreadable or changed
file) comes back as the same one-line XLBenchError, not as a worker traceback.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xlbench.errors import XLBenchError
from xlbench.lifetime import die_with_parent
from xlbench.protocol import SAMPLE_RATE


@dataclass(frozen=True)
class AudioItem:
    """Something to encode: a key (the content hash), its duration, how to get its samples.

    ``load`` runs in a worker process: a module-level function or a ``functools.partial`` of
    one (picklable) works everywhere; a closure works where workers are forked (Linux).
    """

    key: str
    seconds: float
    load: Callable[[], np.ndarray]
    label: str = ""  # for error messages (the utterance id)


def length_batches(items: Sequence[AudioItem], batch_seconds: float, quantum: float = 0.0) -> list[list[AudioItem]]:
    """Longest first, each batch filled until its padded audio would exceed ``batch_seconds``.

    With ``quantum`` (seconds), a batch's width is its longest item rounded up to a multiple.
    """
    ordered = sorted(items, key=lambda it: it.seconds, reverse=True)
    batches: list[list[AudioItem]] = []

    def width(it: AudioItem) -> float:
        return math.ceil(it.seconds / quantum - 1e-9) * quantum if quantum > 0 else it.seconds

    for it in ordered:
        if batches and (len(batches[-1]) + 1) * width(batches[-1][0]) <= batch_seconds:
            batches[-1].append(it)
        else:
            batches.append([it])
    return batches


def pad_waves(waves: Sequence[np.ndarray], quantum: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) float32 zero-padded to the longest rounded up to a multiple of ``quantum`` samples, and lengths (B,)."""
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    longest = int(lengths.max()) if len(waves) else 0
    width = -(-longest // quantum) * quantum
    out = torch.zeros(len(waves), width, dtype=torch.float32)
    for i, w in enumerate(waves):
        out[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return out, lengths


class _Batches(torch.utils.data.Dataset):
    """Item i: batch i read and padded, or the XLBenchError that reading it raised."""

    def __init__(self, batches: Sequence[Sequence[AudioItem]], quantum: int) -> None:
        self.batches = batches
        self.quantum = quantum

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | XLBenchError:
        try:
            return pad_waves([it.load() for it in self.batches[i]], self.quantum)
        except XLBenchError as exc:  # handed back whole: the caller raises it as one line
            return exc


def _reader_started(parent: int, worker_id: int) -> None:
    die_with_parent(parent)


#: batches each reader prepares ahead (DataLoader's prefetch_factor)
PREFETCH = 2
SHM = "/dev/shm"


def readers_shared_memory_holds(batches: Sequence[Sequence[AudioItem]], wanted: int, shm: str = SHM) -> int:
    """How many of ``wanted`` reader processes the free shared memory holds: each hands its batches
    over through it (``PREFETCH`` ahead, plus the one being handed over) as padded float32 audio
    at the model rate. A container's /dev/shm is 64 MB by default; eight readers of 120-second
    batches need about 180 MB, and a DataLoader whose readers run out of it does not recover."""
    if not wanted or not batches:
        return wanted
    try:
        st = os.statvfs(shm)
    except OSError:  # no such mount (not Linux): the platform's own shared memory
        return wanted
    largest = max(len(b) * max(it.seconds for it in b) for b in batches) * SAMPLE_RATE * 4
    return max(0, min(wanted, int(st.f_bavail * st.f_frsize // ((PREFETCH + 1) * largest))))


def audio_batches(
    batches: Sequence[Sequence[AudioItem]], *, workers: int = 4, quantum: int = 1, pin: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(padded waveforms, lengths) of each batch in order; ``workers`` processes read ahead.

    ``workers=0`` reads in this process. ``pin``: batches in pinned memory (for CUDA). Fewer
    readers than asked when shared memory cannot hold their batches (said once).
    """
    workers = max(0, min(workers, len(batches) - 1))  # one batch: no process is worth starting
    fits = readers_shared_memory_holds(batches, workers)
    if fits < workers:
        from xlbench import progress

        progress.note_once(f"[yellow]note: shared memory ({SHM}) holds the batches of {fits} audio reader(s), not "
                           f"{workers}; reading with fewer (slower; in a container, give it more: docker run "
                           "--shm-size=2g)[/]")
        workers = fits
    context = None
    if workers:
        # fork where it exists: workers start in milliseconds and any ``load`` works; they only
        # read audio (no CUDA), which is what fork is safe for
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with warnings.catch_warnings():
        # torch warns when the workers outnumber the cores; the caller chose the number (and more
        # readers than cores pay while files are read from disk)
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        loader = torch.utils.data.DataLoader(
            _Batches(batches, quantum),
            batch_size=None,
            num_workers=workers,
            pin_memory=pin,
            prefetch_factor=PREFETCH if workers else None,
            multiprocessing_context=context,
            # a reader dies with this process, also when it is killed (no orphan readers)
            worker_init_fn=functools.partial(_reader_started, os.getpid()) if workers else None,
        )
        it = iter(loader)
    try:
        for item in it:
            if isinstance(item, XLBenchError):
                raise item
            yield item
    finally:
        del it  # shuts the workers down, also when the caller stops early
