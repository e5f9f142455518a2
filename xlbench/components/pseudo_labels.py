"""Pseudo-labels for unlabelled target utterances (Agarla et al. 2024, Sec. 3.2.2).

- ``hard_pseudo_labels``: ỹ = argmax p, kept where max p >= τ (Eq. 2). Like TLlib's
  confidence-thresholded pseudo-label loss it hands back everything a caller needs to train
  and to log: the labels, the selection mask and the confidences.
- ``soft_pseudo_labels``: the softmax vector itself is the target (after Arazo et al. 2020).
- ``update_pseudo_pool``: how a new round's K'_t combines with the previous one (replace, the
  protocol's default, or accumulate with the latest label winning).

Everything works on numpy probabilities: pseudo-labelling happens between epochs, on
whole-utterance predictions, outside the autograd graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xlbench.training import Pool


@dataclass(frozen=True)
class PseudoLabels:
    """One pseudo-labelling pass over N utterances.

    ``labels`` (N,) argmax class ids, ``confidence`` (N,) max probability, ``mask`` (N,) which
    rows are selected, ``targets`` (N, C) the training target of every row (one-hot for hard
    labels, the probability vector for soft ones; rows outside the mask are not to be used).
    """

    labels: np.ndarray
    confidence: np.ndarray
    mask: np.ndarray
    targets: np.ndarray

    @property
    def n_selected(self) -> int:
        return int(self.mask.sum())

    def selected(self, keys: Sequence[str]) -> Pool:
        """The selected rows as a training pool (keys in the order given)."""
        if len(keys) != len(self.mask):
            raise ValueError(f"{len(keys)} keys for {len(self.mask)} pseudo-labels")
        idx = np.flatnonzero(self.mask)
        return Pool([keys[i] for i in idx], self.targets[idx].astype(np.float32, copy=True))


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs)
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    if probs.ndim != 2:
        raise ValueError(f"expected (N, C) probabilities, got shape {probs.shape}")
    return probs


def hard_pseudo_labels(probs: np.ndarray, tau: float) -> PseudoLabels:
    """Eq. 2: ỹ_b = argmax p_b, selected where g_b = 1[max p_b >= τ].

    The comparison is ``>=`` as in Eq. 2, so a confidence exactly equal to τ is kept. Ties in
    the argmax go to the lowest class index (numpy's argmax), which keeps the choice
    deterministic; with C classes a tie at the top means max p <= 1/2, so τ > 0.5 never
    selects one.
    """
    probs = _check_probs(probs)
    labels = probs.argmax(axis=1).astype(np.int64)
    confidence = probs.max(axis=1)
    # compare in the probabilities' own dtype: float32(0.65) >= 0.65 in float64 is False
    mask = confidence >= np.asarray(tau, dtype=probs.dtype)
    targets = np.eye(probs.shape[1], dtype=np.float32)[labels]
    return PseudoLabels(labels, confidence.astype(np.float32), mask, targets)


def soft_pseudo_labels(probs: np.ndarray) -> PseudoLabels:
    """The probability vector as the target (paper Sec. 3.2.2, soft pseudo-labels): every row
    is selected; ``labels``/``confidence`` (argmax, max p) are kept for reporting."""
    probs = _check_probs(probs)
    labels = probs.argmax(axis=1).astype(np.int64)
    confidence = probs.max(axis=1)
    # renormalise in float32 so each target sums to 1 in the dtype it is trained with
    targets = probs.astype(np.float32)
    targets /= targets.sum(axis=1, keepdims=True).clip(min=np.finfo(np.float32).tiny)
    return PseudoLabels(labels, confidence.astype(np.float32), np.ones(len(probs), dtype=bool), targets)


def update_pseudo_pool(current: Pool, new: Pool, accumulate: bool = False) -> Pool:
    """K'_t after a round (Algorithm 1, line 9).

    ``accumulate=False`` (the protocol's decision, PROTOCOL.md §6): the new round replaces the
    previous one, so D = D_s ∪ K_t ∪ K'_t always holds the latest predictions only and a label
    the model no longer believes (confidence now below τ) leaves the pool.
    ``accumulate=True``: the pools are united; an utterance labelled in both keeps only its
    latest label, so every utterance appears at most once. Older entries come first.
    """
    if not accumulate:
        return Pool(list(new.keys), new.targets.copy())
    fresh = set(new.keys)
    keep = [i for i, k in enumerate(current.keys) if k not in fresh]
    keys = [current.keys[i] for i in keep] + list(new.keys)
    targets = np.concatenate([current.targets[keep], new.targets]) if keys else new.targets.copy()
    return Pool(keys, targets.astype(np.float32, copy=False))
