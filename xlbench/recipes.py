"""Recipes of ``xlbench reproduce``: which setting a reproduction runs, and what it costs.

- ``frozen`` (the default): the encoder frozen, its frames cached once, the linear head trained
  with the paper's E, batch and crop (Sec. 4.2.1). Runs on a CPU.
- ``paper``: the paper's setting end to end (Sec. 3.2.4, 4.2.1): HuBERT base fine-tuned with the
  head, E = 100, batch 100, random 2 s crops, Adam 1e-3 decayed 0.95 every 10 epochs. It needs a
  GPU: on a CPU it is refused, with the estimated time, when that is over ``CPU_LIMIT_S``.

Which recipe made a record is not stored as a label: it is what defines the run already,
``task.mode`` (frozen / finetune), the encoder, and the method's config (``epochs``,
``batch_size``, ``crop_seconds``), all part of the run id and of the board's setting. A label
beside them could only repeat them, or contradict them. ``recipe_of`` reads it back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xlbench.errors import ConfigError

#: effective float32 GFLOP/s one CPU core sustains on HuBERT base (forward: 2.7 audio-s/s x 14.8
#: GFLOP on 2 cores, benchmarks/bench_encoders.py; a training step runs at about the same rate).
#: Rounded up, so that an estimate errs short.
CPU_GFLOPS_PER_CORE = 20.0
#: on a CPU, a paper-recipe reproduction estimated to take longer than this is refused
CPU_LIMIT_S = 3600.0
#: forward + backward of a training crop cost about three forward passes
TRAIN_FACTOR = 3.0


@dataclass(frozen=True)
class Recipe:
    name: str
    finetune: bool
    encoder: str | None  # what --encoder auto means under this recipe (None: the usual auto)
    fixed: dict[str, Any] = field(default_factory=dict)  # method options the recipe fixes
    summary: str = ""


PAPER_TRAINING = {"epochs": 100, "batch_size": 100, "crop_seconds": 2.0}  # Sec. 4.2.1
RECIPES = {
    "frozen": Recipe("frozen", False, None, {}, "frozen encoder, cached features, the head trained (default)"),
    "paper": Recipe("paper", True, "hubert", dict(PAPER_TRAINING),
                    "HuBERT base fine-tuned end to end, E = 100, batch 100, 2 s crops (needs a GPU)"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}") from None


def check_recipe(recipe: Recipe, encoder: str, sets: Mapping[str, Any], finetune: bool) -> str:
    """The encoder the recipe runs with; a one-line ConfigError for options that contradict it."""
    if finetune and not recipe.finetune:
        raise ConfigError(f"--finetune contradicts --recipe {recipe.name} (drop one of them)")
    if recipe.name == "paper":
        if encoder not in ("auto", "hubert"):
            raise ConfigError(
                f"--recipe paper fine-tunes HuBERT base, the paper's encoder; for {encoder!r} use --finetune "
                "without --recipe (the board lists such runs as fine-tuned with that encoder)"
            )
        for key, value in recipe.fixed.items():
            if key in sets and sets[key] != value:
                raise ConfigError(
                    f"--recipe paper fixes {key}={value} (paper Sec. 4.2.1); drop --set {key}, or use --finetune "
                    "without --recipe for another setting"
                )
        return "hubert"
    return encoder


def recipe_of(mode: str, encoder: str, config: Mapping[str, Any]) -> str:
    """The recipe a record's setting is: paper, frozen, or custom (anything else)."""
    paper_training = all(config.get(k) == v for k, v in PAPER_TRAINING.items())
    if not paper_training:
        return "custom"
    if mode == "finetune":
        return "paper" if encoder == "hubert" else "custom"
    return "frozen"


@dataclass(frozen=True)
class RunSize:
    """What one run reads per epoch: utterances it trains on and seconds of audio it evaluates."""

    train_utterances: int
    eval_seconds: float  # validation, every epoch
    test_seconds: float  # both test sets, once


def run_seconds(size: RunSize, flops_per_audio_second: float, gflops: float, epochs: int, crop_seconds: float) -> float:
    """Seconds of compute for one fine-tuning run at ``gflops`` effective GFLOP/s."""
    audio = epochs * (TRAIN_FACTOR * size.train_utterances * crop_seconds + size.eval_seconds) + size.test_seconds
    return audio * flops_per_audio_second / (gflops * 1e9)


def cpu_gflops() -> float:
    return CPU_GFLOPS_PER_CORE * max(1, os.cpu_count() or 1)


def human_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "an unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate(sizes: Sequence[RunSize], flops: float, gflops: float, epochs: int, crop_seconds: float) -> float:
    return sum(run_seconds(s, flops, gflops, epochs, crop_seconds) for s in sizes)
