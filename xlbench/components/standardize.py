"""Feature standardisation fitted on the task's training parts only (TrainConfig ``standardize``).

Hand-crafted features mix scales (ComParE: spectral variances near 1e12 beside ratios near
0.01), which a linear or MLP head trained with the paper's Adam schedule cannot absorb. The
usual remedy (nkululeko, SERAB, scikit-learn's StandardScaler) is a per-dimension z-score. Here
its mean and standard deviation come from the utterances the method was handed for training:
D_s, K_t and U_t -- only the parts it declared (the harness hands the others over empty) --
and never a validation or test utterance, whose features must not shape the model. U_t
contributes its audio features only, as any method that declares it may use them.

The statistics are computed once per run from whole-utterance vectors (what the frozen inputs
serve for evaluation) and kept fixed as buffers: the standardiser is part of the backbone's
input, not something that trains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xlbench.encoders.base import Encoder
from xlbench.errors import ConfigError
from xlbench.inputs import InputStore
from xlbench.tasks import TransferTask

#: a dimension whose std is below this (relative to its mean's magnitude, or absolutely) is
#: constant on the training data: it is centred and left unscaled, so it stays 0, not NaN
CONSTANT = 1e-12


class Standardizer(nn.Module):
    """x -> (x - mean) / std per dimension, with fixed statistics (buffers, never trained)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def clone(self) -> Standardizer:
        return Standardizer(self.mean, self.std)


def fit_standardizer(vectors: np.ndarray | torch.Tensor) -> Standardizer:
    """Mean and population std per dimension of (N, D) vectors, in float64; constant dimensions
    get std 1 (they become 0 after centring)."""
    x = torch.as_tensor(np.asarray(vectors, dtype=np.float64))
    if x.ndim != 2 or x.shape[0] == 0:
        raise ConfigError("standardize: no training utterance to fit the feature statistics on")
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    constant = std <= CONSTANT * torch.clamp(mean.abs(), min=1.0)
    std = torch.where(constant, torch.ones_like(std), std)
    return Standardizer(mean, std)


def training_keys(task: TransferTask) -> list[str]:
    """D_s ∪ K_t ∪ U_t as the method was handed them (undeclared parts are empty); no validation
    or test key, whatever the selection policy (under ``strict`` K_t doubles as validation, but
    it is a training part the method holds anyway)."""
    keys = [*task.source_train.keys, *task.target_labeled.keys, *task.target_unlabeled.keys]
    return list(dict.fromkeys(keys))


def utterance_vectors(inputs: InputStore, keys: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """(N, D) whole-utterance vectors of ``keys`` as the frozen inputs serve them for evaluation."""
    rows = [
        inputs.eval_batch(keys[i : i + batch_size]).x.float().cpu().numpy() for i in range(0, len(keys), batch_size)
    ]
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def wants_standardizer(setting: str, encoder: Encoder, mode: str) -> bool:
    """Resolve ``standardize`` (auto/on/off) for an encoder and training mode."""
    declared = bool(getattr(encoder, "standardize_features", False))
    if setting == "off":
        return False
    if mode != "frozen":
        if setting == "on" or declared:
            raise ConfigError(
                f"encoder {encoder.info().name!r}: standardize works on frozen features only; drop --finetune "
                "(or set standardize=off)"
            )
        return False
    return setting == "on" or declared


def standardizer_for_task(inputs: InputStore, task: TransferTask) -> Standardizer:
    """A standardiser fitted on the training parts of ``task`` (see ``training_keys``)."""
    return fit_standardizer(utterance_vectors(inputs, training_keys(task)))
