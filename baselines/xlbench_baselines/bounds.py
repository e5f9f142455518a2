"""The bounds of the benchmark (paper Sec. 5.1-5.2, Tables 4-5).

- ``crosslingual`` (lower bound): train on the source language alone, D_s.
- ``multilingual`` (upper bound): train on D_s and every target training utterance, labelled.

Both are plain supervised training of the backbone (encoder + linear head) with the paper's
optimiser schedule and model selection by the run's policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xlbench.method import FitReport, Method
from xlbench.tasks import LabeledSet, TransferTask
from xlbench.training import (
    FitContext,
    Pool,
    TrainConfig,
    embed,
    make_optimizer,
    predict_logits,
    run_supervised_epoch,
    softmax,
    train_loop,
)

CITATION = "Agarla et al. (2024), Semi-supervised cross-lingual speech emotion recognition, ESWA 237:121368"


class SupervisedMethod(Method):
    """Supervised training on the labelled sets ``training_sets`` returns."""

    Config = TrainConfig
    citation = CITATION

    def training_sets(self, task: TransferTask) -> Sequence[LabeledSet]:
        raise NotImplementedError

    def fit(self, task: TransferTask, ctx: FitContext) -> FitReport:
        cfg: TrainConfig = self.config  # type: ignore[assignment]
        self.ctx = ctx
        self.model = ctx.make_backbone().to(ctx.device)
        pool = Pool.from_sets(self.training_sets(task), task.n_classes)
        optimizer, scheduler = make_optimizer(self.model, cfg)
        rng = ctx.rng("batches")

        def epoch_fn(epoch: int) -> dict[str, float]:
            losses = run_supervised_epoch(self.model, ctx, pool, cfg, optimizer, rng)
            scheduler.step()
            return losses

        return train_loop(ctx, self.model, cfg, task.validation, epoch_fn)

    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        return softmax(predict_logits(self.model, self.ctx.inputs, keys, self.ctx.device))

    def embed(self, keys: Sequence[str]) -> np.ndarray:
        return embed(self.model, self.ctx.inputs, keys, self.ctx.device)


class CrossLingual(SupervisedMethod):
    """Lower bound: English only (paper Table 4)."""

    name = "crosslingual"
    version = "1"
    summary = "lower bound: train on the source language only"
    needs = frozenset({"source_train", "validation"})

    def training_sets(self, task: TransferTask) -> Sequence[LabeledSet]:
        return [task.source_train]


class MultiLingual(SupervisedMethod):
    """Upper bound: English plus all target training data with labels (paper Table 5)."""

    name = "multilingual"
    version = "1"
    summary = "upper bound: train on the source and every labelled target training utterance"
    needs = frozenset({"source_train", "target_labeled", "validation"})
    uses_all_target_labels = True

    def training_sets(self, task: TransferTask) -> Sequence[LabeledSet]:
        return [task.source_train, task.target_labeled]
