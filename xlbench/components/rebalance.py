"""Utterance rebalancing by random oversampling (paper Sec. 3.2.3, Table 8).

The target-language training utterances (K_t ∪ K'_t) are replicated at random until there are
as many as source utterances (γ = N_target / N_s = 1). Decisions (docs/methods.md):

- Every utterance is kept once; only copies are added. When the pool already has ``target``
  utterances or more, it is returned as it is: nothing is dropped (γ ≥ 1 then).
- ``even`` (default): each utterance gets ⌊target/n⌋ copies and the remaining target mod n
  copies go to distinct utterances drawn at random, so counts differ by at most one. That is
  random oversampling with the least variance; ``replace=True`` draws all target - n extra
  copies with replacement instead (imbalanced-learn's RandomOverSampler).
- Deterministic for a given numpy Generator state.
"""

from __future__ import annotations

import numpy as np

from xlbench.training import Pool


def oversample_indices(n: int, target: int, rng: np.random.Generator, replace: bool = False) -> np.ndarray:
    """Indices into a pool of ``n`` items, max(n, target) long (every item at least once)."""
    if n < 0 or target < 0:
        raise ValueError(f"counts must be non-negative (n={n}, target={target})")
    base = np.arange(n, dtype=np.int64)
    if n == 0 or target <= n:
        return base
    if replace:
        extra = rng.integers(0, n, size=target - n)
    else:
        copies, rest = divmod(target, n)
        extra = np.concatenate([np.tile(base, copies - 1), rng.choice(n, size=rest, replace=False)])
    return np.concatenate([base, extra.astype(np.int64)])


def oversample(pool: Pool, target: int, rng: np.random.Generator, replace: bool = False) -> Pool:
    """``pool`` with random copies added until it holds ``target`` entries (never fewer than it had)."""
    idx = oversample_indices(len(pool), target, rng, replace)
    return Pool([pool.keys[i] for i in idx], pool.targets[idx])
