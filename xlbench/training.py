"""Shared training pieces: the paper's optimiser schedule, minibatches, evaluation, model
selection by the run's policy, the epoch loop with NaN checks, progress and learning curves.

Methods compose these; none of them reaches the test sets, which the harness scores after
``fit`` returns (PROTOCOL.md section 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from xlbench import progress
from xlbench.accelerator import LossSums, fused_adam_ok, to_device
from xlbench.errors import TrainingError
from xlbench.inputs import Backbone, Batch, InputStore
from xlbench.method import FitContext, FitReport, MethodConfig
from xlbench.tasks import LabeledSet, ValidationSet


class TrainConfig(MethodConfig):
    """Hyperparameters of paper Sec. 4.2.1, shared by every built-in method."""

    epochs: int = Field(100, ge=1, le=10_000, description="E, training epochs")
    batch_size: int = Field(100, ge=1, le=100_000)
    lr: float = Field(1e-3, gt=0, le=10)
    lr_decay: float = Field(0.95, gt=0, le=1, description="multiplied into the learning rate every lr_step epochs")
    lr_step: int = Field(10, ge=1, le=10_000)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=10)
    crop_seconds: float = Field(2.0, gt=0, le=600, description="random training crop (Sec. 4.2)")
    encoder_lr: float | None = Field(
        None, gt=0, le=10, description="learning rate of the encoder with --finetune (default: lr)"
    )
    # -- the backbone's input and head (beyond the paper: it uses a linear head on raw vectors) ----
    standardize: Literal["auto", "on", "off"] = Field(
        "auto",
        description="standardise the encoder's vectors with the mean and std of the task's training parts "
        "(D_s, K_t, U_t as the method declared them; never validation or test) before the head; "
        "auto: on for encoders that declare it (openSMILE), off otherwise; frozen mode only",
    )
    head_type: Literal["linear", "mlp"] = Field(
        "linear",
        description="the head h: linear = the paper's linear softmax (Eq. 1); mlp = Linear-ReLU-Dropout-Linear",
    )
    head_hidden: int = Field(256, ge=1, le=65_536, description="hidden units of the mlp head")
    head_dropout: float = Field(0.3, ge=0, lt=1, description="dropout of the mlp head")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_optimizer(
    model: nn.Module, cfg: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam (β 0.9/0.999, lr 1e-3) with the rate × 0.95 every 10 epochs (paper Sec. 4.2.1).

    On CUDA (every parameter there: move the model before calling this) Adam runs as one fused
    kernel per step; elsewhere it is torch's default implementation, so CPU results do not change.
    """
    encoder_params = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    other = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    groups = [{"params": other}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": cfg.encoder_lr or cfg.lr})
    fused = True if fused_adam_ok(encoder_params + other) else None
    opt = torch.optim.Adam(
        groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay, fused=fused
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_decay)
    return opt, sched


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Indices 0..n-1 in a random order, in batches (the last one may be smaller)."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@dataclass
class Pool:
    """A labelled training pool: keys with soft targets (one-hot for real labels)."""

    keys: list[str]
    targets: np.ndarray  # (N, C) float32

    @staticmethod
    def from_sets(sets: Sequence[LabeledSet], n_classes: int) -> Pool:
        keys = [k for s in sets for k in s.keys]
        labels = np.concatenate([s.labels for s in sets]) if sets else np.zeros(0, dtype=np.int64)
        return Pool(keys, np.eye(n_classes, dtype=np.float32)[labels])

    def __len__(self) -> int:
        return len(self.keys)

    def __add__(self, other: Pool) -> Pool:
        return Pool(self.keys + other.keys, np.concatenate([self.targets, other.targets]))


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -Σ_c y_c log softmax(z)_c (paper Eq. 8, for hard or soft y)."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


@torch.inference_mode()
def predict_logits(
    model: Backbone, inputs: InputStore, keys: Sequence[str], device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """Logits for whole utterances, batched by similar length to limit padding.

    The batches' results stay on the device until the last one is queued (one transfer, so the
    host never waits for the device in between)."""
    if not keys:
        return np.zeros((0, model.n_classes), dtype=np.float32)
    was_training = model.training
    model.eval()
    out = _by_length(inputs, keys, batch_size, lambda batch: model(batch.to(device)).float(), model.n_classes)
    model.train(was_training)
    return out


def _by_length(
    inputs: InputStore, keys: Sequence[str], batch_size: int, fn: Callable[[Batch], torch.Tensor], width: int
) -> np.ndarray:
    """``fn`` of every key's whole-utterance batch, in key order; batches of similar length."""
    order = sorted(range(len(keys)), key=lambda i: inputs.length(keys[i]))
    parts = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        parts.append(fn(inputs.eval_batch([keys[i] for i in idx])))
    out = np.zeros((len(keys), width), dtype=np.float32)
    if parts:
        out[order] = torch.cat(parts).cpu().numpy()
    return out


@torch.inference_mode()
def embed(
    model: Backbone, inputs: InputStore, keys: Sequence[str], device: torch.device, batch_size: int = 64
) -> np.ndarray:
    model_was_training = model.training
    model.eval()
    out = _by_length(inputs, keys, batch_size, lambda batch: model.embed(batch.to(device)).float(), model.dim)
    model.train(model_was_training)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def validation_ua(model: Backbone, ctx: FitContext, sets: Sequence[ValidationSet]) -> dict[str, float]:
    """UA on each validation set (the model-selection signal), scored by the harness: the
    method never holds validation labels (PROTOCOL.md §4)."""
    out = {}
    for s in sets:
        if len(s) == 0:
            continue
        pred = predict_logits(model, ctx.inputs, s.keys, ctx.device).argmax(1)
        out[s.name] = ctx.score_validation(s.name, pred)
    return out


class Selector:
    """Keep the weights of the epoch with the best mean validation UA (paper Sec. 3.2.4).

    Under the ``paper`` policy the sets are S-val and T-val; under ``strict`` they are S-val and
    K_t. With no validation set the last epoch is kept.
    """

    def __init__(self, sets: Sequence[ValidationSet]):
        self.sets = [s for s in sets if len(s)]
        self.best_score = -math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, model: nn.Module, scores: dict[str, float]) -> float | None:
        if not self.sets:
            self.best_epoch = epoch
            return None
        score = float(np.mean([scores[s.name] for s in self.sets]))
        if score > self.best_score:  # strict: the earliest best epoch wins ties
            self.best_score, self.best_epoch = score, epoch
            # a copy on the model's device: no wait for the device and no trip over the bus per
            # improvement (one more copy of the weights in GPU memory)
            self._state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return score

    def restore(self, model: nn.Module) -> None:
        if self._state is not None:
            model.load_state_dict(self._state)


def train_loop(
    ctx: FitContext,
    model: Backbone,
    cfg: TrainConfig,
    validation: Sequence[ValidationSet],
    epoch_fn: Callable[[int], dict[str, float]],
    on_epoch_end: Callable[[int], dict[str, float] | None] | None = None,
    modules: Sequence[nn.Module] = (),
) -> FitReport:
    """Run ``epoch_fn(epoch)`` for epochs 1..E (it does its own batches and optimiser steps,
    and returns mean losses), step the schedule, validate, select, log; restore the best
    weights at the end. ``modules`` are extra modules (e.g. a domain head) saved with the model.
    """
    selector = Selector(validation)
    holder = nn.ModuleList([model, *modules])
    with progress.bar(ctx.label or "training", cfg.epochs, enabled=ctx.show_progress) as advance:
        for epoch in range(1, cfg.epochs + 1):
            holder.train()
            row: dict[str, float] = {"epoch": float(epoch)}
            losses = epoch_fn(epoch)
            for k, v in losses.items():
                if not math.isfinite(v):
                    raise TrainingError(
                        f"the {k} became {v} at epoch {epoch}; no record was written (try a lower --set lr=...)"
                    )
                row[k] = float(v)
            if on_epoch_end is not None:
                row.update(on_epoch_end(epoch) or {})
            scores = validation_ua(model, ctx, selector.sets)
            row.update({f"{k}_ua": v for k, v in scores.items()})
            score = selector.update(epoch, holder, scores)
            if score is not None:
                row["selection_score"] = score
            ctx.history.append(row)
            advance(1)
    selector.restore(holder)
    holder.eval()
    return FitReport(
        selected_epoch=selector.best_epoch,
        selection_score=None if selector.best_score == -math.inf else selector.best_score,
        history=list(ctx.history),
    )


def run_supervised_epoch(
    model: Backbone,
    ctx: FitContext,
    pool: Pool,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, Batch], torch.Tensor] | None = None,
) -> dict[str, float]:
    """One pass over a labelled pool with random crops; returns the mean loss (read once per
    epoch: the host never waits for the device between steps)."""
    sums = LossSums()
    for idx in minibatches(len(pool), cfg.batch_size, rng):
        batch = ctx.inputs.train_batch([pool.keys[i] for i in idx], rng).to(ctx.device)
        targets = to_device(torch.from_numpy(pool.targets[idx]), ctx.device)
        logits = model(batch)
        loss = loss_fn(logits, targets, batch) if loss_fn else soft_cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums.add("loss", loss, len(idx))
        sums.step(len(idx))
    return sums.means() or {"loss": 0.0}
