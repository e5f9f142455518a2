"""Schedules of domain-adversarial training: the training progress p and the DANN λ_p.

Ganin & Lempitsky (ICML 2015, Sec. 5; JMLR 2016 Eq. 14) raise the weight of the reversed
domain gradient from 0 to 1 as training goes, so the domain classifier's noisy early signal
does not disturb the features:

    λ_p = 2 / (1 + exp(-γ p)) - 1,  γ = 10,  p = training progress in [0, 1].

Here p is counted in optimiser steps: the step about to run has p = steps_done / total_steps,
so the first step has λ = 0 and the last has p = (T - 1) / T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DANN_GAMMA = 10.0


def dann_lambda(p: float, gamma: float = DANN_GAMMA) -> float:
    """λ_p = 2 / (1 + exp(-γ p)) - 1 for progress ``p`` in [0, 1] (0 at p = 0, → 1 as γp grows)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"training progress must lie in [0, 1], got {p}")
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def training_progress(steps_done: int, total_steps: int) -> float:
    """p = steps_done / total_steps, clipped to [0, 1] (a run may stop early or take an extra step)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    return min(max(steps_done / total_steps, 0.0), 1.0)


@dataclass
class StepSchedule:
    """Counts optimiser steps and gives p and λ_p for the step about to run.

    ``lambda_max`` scales the whole curve (λ = lambda_max · λ_p); ``constant`` skips the ramp
    (λ = lambda_max from the first step), the ablation of the schedule.
    """

    total_steps: int
    gamma: float = DANN_GAMMA
    lambda_max: float = 1.0
    constant: bool = False
    steps_done: int = 0

    def __post_init__(self) -> None:
        if self.total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {self.total_steps}")

    @property
    def progress(self) -> float:
        return training_progress(self.steps_done, self.total_steps)

    @property
    def lambda_(self) -> float:
        if self.constant:
            return self.lambda_max
        return self.lambda_max * dann_lambda(self.progress, self.gamma)

    def step(self) -> None:
        self.steps_done += 1
