"""Heads h for the backbone (TrainConfig ``head_type``).

The paper's head is linear with softmax (Sec. 3.2.1, Eq. 1): ``Backbone`` builds it when no
head is given. ``mlp`` is one hidden layer (Linear-ReLU-Dropout-Linear), the head nkululeko and
SERAB put on hand-crafted features such as eGeMAPS and ComParE.
"""

from __future__ import annotations

from torch import nn

from xlbench.errors import ConfigError


def make_head(kind: str, dim: int, n_classes: int, hidden: int = 256, dropout: float = 0.3) -> nn.Module | None:
    """The head of ``kind``; None for the paper's linear head (the backbone's default)."""
    if kind == "linear":
        return None
    if kind == "mlp":
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
    raise ConfigError(f"unknown head_type {kind!r}: use linear or mlp")
