"""Mixup of a batch and its targets (paper Eq. 6-7, after Zhang et al. 2018).

Row i of the batch is paired with row π(i) of a random permutation π and mixed with its own
α_i ~ U(0, 1):  x_i = α_i X_i + (1 - α_i) X_π(i)  (Eq. 6),  y_i = α_i y_i + (1 - α_i) y_π(i)  (Eq. 7).
The inputs are mixed by ``Batch.mix`` (xlbench.inputs). What "inputs" are depends on the store:
waveform crops with ``--finetune``; pooled encoder outputs in frozen mode, where a cached
encoder cannot re-encode mixed audio (docs/methods.md).

Targets are probability vectors (one-hot or soft), so each mixed target is a convex
combination of two probability vectors and still sums to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xlbench.accelerator import to_device
from xlbench.inputs import Batch


@dataclass
class Mixed:
    batch: Batch
    targets: torch.Tensor  # (B, C)
    alpha: torch.Tensor  # (B,) the weight of each row's own sample
    partner: torch.Tensor  # (B,) π(i), the row each row was mixed with


def mix_targets(targets: torch.Tensor, partner: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Eq. 7 for a batch: α_i y_i + (1 - α_i) y_π(i)."""
    a = alpha.to(targets.dtype)[:, None]
    return a * targets + (1 - a) * targets[partner]


def mixup(batch: Batch, targets: torch.Tensor, rng: np.random.Generator) -> Mixed:
    """Mix a batch with a random permutation of itself, α_i ~ U(0, 1) per row (Eq. 6-7).

    Deterministic for a given ``rng`` state: the permutation and the α are drawn from it.
    """
    n = len(batch)
    if targets.shape[0] != n:
        raise ValueError(f"{n} inputs but {targets.shape[0]} targets")
    device = batch.x.device
    order = torch.from_numpy(rng.permutation(n))
    partner = to_device(order, device)  # non-blocking: the host does not wait for the device
    alpha = to_device(torch.from_numpy(rng.uniform(0.0, 1.0, size=n)), device).to(batch.x.dtype)
    host = batch.host_lengths[order] if batch.host_lengths is not None else None
    other = Batch(batch.x[partner], batch.lengths[partner], host)
    return Mixed(batch.mix(other, alpha), mix_targets(targets, partner, alpha), alpha, partner)
