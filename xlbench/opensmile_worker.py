"""openSMILE feature extraction, in this process or in a pool of worker processes.

Kept apart from ``xlbench.encoders`` on purpose: worker processes are started with ``spawn``
(fork is unsafe in a process that runs torch and loader threads) and import this module by
name, so it imports neither torch nor the encoder package -- a worker starts in about half a
second (numpy and opensmile) instead of two.

openSMILE's extraction holds the GIL in its Python callbacks: threads do not run it in
parallel (measured: 2 threads take as long as 1), processes do.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import multiprocessing.util
import os
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


def installed_version() -> str | None:
    """The installed opensmile package's version, or None when it is not installed."""
    try:
        import opensmile
    except ImportError:
        return None
    return str(opensmile.__version__)


@cache
def smile(feature_set: str, level: str) -> Any:
    """One ``opensmile.Smile`` per (feature set, level) and process; building it parses the config."""
    import opensmile

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet[feature_set],
        feature_level=opensmile.FeatureLevel[level],
    )


def extract(feature_set: str, level: str, wave: np.ndarray) -> np.ndarray:
    """(frames, features) float32 of one 16 kHz mono waveform, exactly as openSMILE computes them."""
    with warnings.catch_warnings():
        # "Segment too short, filling with NaN": the harness refuses NaN with a one-line error
        warnings.simplefilter("ignore", UserWarning)
        out = smile(feature_set, level).process_signal(np.asarray(wave, dtype=np.float32), SAMPLE_RATE)
    return np.ascontiguousarray(out.to_numpy(dtype=np.float32))


def _extract_many(feature_set: str, level: str, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [extract(feature_set, level, w) for w in waves]


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


_pools: dict[int, ProcessPoolExecutor] = {}


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: leave as soon as the parent is gone. A worker blocked on the pool's
    queue never sees end-of-file when the parent is killed (every worker holds the queue's write
    end too), so without this a SIGKILLed run would leave its workers behind forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="xlbench-parent-watch", daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool kept for the life of the process: starting workers costs more than a batch."""
    if workers not in _pools:
        _pools[workers] = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
    return _pools[workers]


def shutdown_pools() -> None:
    """Stop every worker process (also run at exit)."""
    while _pools:
        _, pool = _pools.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)
# A process that is itself a multiprocessing child (a grid's worker) leaves through os._exit
# after joining its non-daemon children, without running atexit: our workers would be joined
# before anyone told them to stop. Finalizers with an exit priority run before that join.
multiprocessing.util.Finalize(None, shutdown_pools, exitpriority=100)


def extract_batch(
    feature_set: str, level: str, waves: Sequence[np.ndarray], workers: int | None = None
) -> list[np.ndarray]:
    """``extract`` of every waveform, in order; spread over ``workers`` processes (default: one
    per available CPU) when there is more than one waveform and more than one CPU."""
    workers = min(available_cpus() if workers is None else max(1, workers), len(waves))
    if workers <= 1:
        return _extract_many(feature_set, level, waves)
    # contiguous chunks, a few per worker: fewer round trips than one task per waveform
    n_chunks = min(len(waves), 4 * workers)
    bounds = np.linspace(0, len(waves), n_chunks + 1).astype(int)
    chunks = [list(waves[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    pool = _pool(workers)
    futures = [pool.submit(_extract_many, feature_set, level, chunk) for chunk in chunks]
    return [row for f in futures for row in f.result()]
