"""DANN: domain-adversarial training for cross-lingual SER (paper Sec. 5.5, Table 6).

After Ganin & Lempitsky (ICML 2015; Ganin et al., JMLR 2016) as applied to cross-corpus SER by
Abdelwahab & Busso (IEEE/ACM TASLP 2018). Three parts:

- the *feature extractor* G_f: the encoder followed by a small trainable projection
  (Linear → ReLU → Dropout, ``bottleneck`` units). The projection is there in both modes: in
  frozen mode the encoder cannot move, and DANN needs features that *can* become
  language-invariant, so the projection is the trainable part of G_f (with ``--finetune`` the
  encoder trains too, with ``encoder_lr``);
- the *emotion head* G_y: a linear layer on the projection, trained with cross-entropy on the
  labelled utterances D_s ∪ K_t;
- the *domain classifier* G_d: gradient reversal → MLP → one logit (source 0 / target 1),
  trained with binary cross-entropy on D_s (source) and the target training audio K_t ∪ U_t
  (target; U_t's emotion labels are never used, only the fact that it is target speech).

One optimiser step minimises L_y + w_d · L_d. The reversal layer makes the step *maximise* L_d
with respect to G_f, scaled by λ_p = λ_max · (2 / (1 + exp(-γ p)) - 1), p = steps done / total
steps (``xlbench.components.schedules``). Each step draws half its batch from the labelled
pool and half from the target audio (``batch_composition=halves``, as Ganin & Lempitsky); an
epoch is one pass over the labelled pool. The optimiser is the paper's Adam schedule (Sec.
4.2.1), not Ganin's annealed SGD, so that every method of the benchmark trains alike; model
selection follows the run's policy like every other method.

The pieces this module defines beyond the method (``ProjectedBackbone``, ``TargetStream``,
``adaptation_steps``, ``optimizer_for``) are shared with ``xlbench_baselines.nnpm``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from xlbench.components.gradient_reversal import GradientReversal
from xlbench.components.schedules import DANN_GAMMA, StepSchedule
from xlbench.errors import ConfigError
from xlbench.inputs import Backbone, Batch
from xlbench.method import FitReport, Method
from xlbench.tasks import TransferTask
from xlbench.training import (
    FitContext,
    Pool,
    TrainConfig,
    embed,
    make_optimizer,
    minibatches,
    predict_logits,
    soft_cross_entropy,
    softmax,
    train_loop,
)

CITATION = (
    "Abdelwahab & Busso (2018), Domain adversarial for acoustic emotion recognition, IEEE/ACM TASLP 26(12); "
    "Ganin & Lempitsky (2015), Unsupervised domain adaptation by backpropagation, ICML"
)

BatchComposition = Literal["halves", "paired"]


# -- pieces shared with NNPM ---------------------------------------------------------------------

class ProjectedBackbone(Backbone):
    """Encoder e → trainable projection → (optionally L2-normalised, scaled) → linear head.

    A ``Backbone`` as the harness's helpers expect (``head``, ``dim``, ``embed``, ``forward``),
    with the encoder kept at ``.encoder`` so that ``make_optimizer`` gives it ``encoder_lr``.
    ``embed`` returns the projected (normalised) features: what the heads see, what the PCA
    figure shows.
    """

    def __init__(self, base: Backbone, project: nn.Module, out_dim: int, n_classes: int,
                 normalize: bool = False, scale: float = 1.0):
        if not isinstance(base.head, nn.Linear):
            raise ConfigError("this method builds its own projection and head on the encoder: head_type=mlp does not "
                              "apply (use its own options, e.g. hidden or bottleneck)")
        # the base's standardiser (TrainConfig standardize) stays in front of the projection
        super().__init__(base.encoder, out_dim, n_classes, base.pooling, standardizer=base.standardizer)
        self.in_dim = base.dim
        self.project = project
        self.normalize = normalize
        self.scale = scale

    def encode(self, batch: Batch) -> torch.Tensor:
        """The encoder's vector (cached in frozen mode, computed in fine-tune mode)."""
        return super().embed(batch)

    def embed(self, batch: Batch) -> torch.Tensor:
        z = self.project(self.encode(batch))
        return F.normalize(z, dim=-1) if self.normalize else z

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.scale * z)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.classify(self.embed(batch))


def mlp(in_dim: int, hidden: int, out_dim: int | None, dropout: float) -> nn.Sequential:
    """Linear(in, hidden) → ReLU → Dropout [→ Linear(hidden, out)]."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
    if out_dim is not None:
        layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)


class _ParamView(nn.Module):
    """The model's children plus extra modules under one roof, for ``make_optimizer``.

    The model's children keep their names (so ``encoder.*`` still gets ``encoder_lr``); the
    extras become ``extra0.*``, ``extra1.*``. Nothing is copied: the parameters are shared.
    """

    def __init__(self, model: nn.Module, extras: Sequence[nn.Module]):
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        for i, m in enumerate(extras):
            self.add_module(f"extra{i}", m)


def optimizer_for(model: nn.Module, extras: Sequence[nn.Module], cfg: TrainConfig):
    """The paper's Adam + step decay over the model and extra modules (e.g. a domain head)."""
    return make_optimizer(_ParamView(model, extras), cfg)


class TargetStream:
    """Endless shuffled passes over n target items: every item is drawn once per pass."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.n, self.rng = n, rng
        self._order = np.zeros(0, dtype=np.int64)
        self._pos = 0

    def take(self, m: int) -> np.ndarray:
        if self.n == 0 or m <= 0:
            return np.zeros(0, dtype=np.int64)
        out = []
        while m > 0:
            if self._pos >= len(self._order):
                self._order, self._pos = self.rng.permutation(self.n), 0
            chunk = self._order[self._pos : self._pos + m]
            self._pos += len(chunk)
            m -= len(chunk)
            out.append(chunk)
        return np.concatenate(out)


def labelled_chunk(batch_size: int, composition: BatchComposition) -> int:
    """Labelled utterances per step: half the batch (``halves``) or all of it (``paired``)."""
    return max(1, batch_size // 2) if composition == "halves" else batch_size


def steps_per_epoch(n_labelled: int, batch_size: int, composition: BatchComposition) -> int:
    chunk = labelled_chunk(batch_size, composition)
    return -(-n_labelled // chunk)


def adaptation_steps(
    n_labelled: int, stream: TargetStream, batch_size: int, composition: BatchComposition, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (labelled indices, target indices) per step.

    ``halves``: batch_size // 2 labelled + as many target items per step (Ganin & Lempitsky).
    ``paired``: batch_size labelled + batch_size target items per step. In both, the epoch is
    one pass over the labelled pool and the target items come from a stream of shuffled passes.
    """
    chunk = labelled_chunk(batch_size, composition)
    for lab in minibatches(n_labelled, chunk, rng):
        yield lab, stream.take(len(lab))


# -- DANN ------------------------------------------------------------------------------------------

class DANNConfig(TrainConfig):
    """DANN options on top of the paper's training schedule (TrainConfig)."""

    bottleneck: int = Field(
        128, ge=1, le=65_536,
        description="units of the trainable projection between the encoder and "
            "the heads (the trainable part of DANN's feature extractor)")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout after the projection and in the domain classifier")
    domain_hidden: int = Field(
        128, ge=0, le=65_536,
        description="hidden units of the domain classifier (0: a linear classifier)")
    domain_weight: float = Field(1.0, ge=0, le=1_000, description="w_d, weight of the domain loss in L_y + w_d L_d")
    lambda_max: float = Field(1.0, ge=0, le=1_000, description="λ_max: the reversal coefficient is λ_max · λ_p")
    lambda_gamma: float = Field(
        DANN_GAMMA, gt=0, le=1_000,
        description="γ of λ_p = 2/(1+exp(-γp)) - 1 (Ganin & Lempitsky: 10)")
    lambda_schedule: Literal["dann", "constant"] = Field(
        "dann", description="dann: λ ramps with training progress p (per step); constant: λ = λ_max from the start")
    batch_composition: BatchComposition = Field(
        "halves", description="halves: each step is half labelled (D_s ∪ K_t), half target audio (K_t ∪ U_t); "
                              "paired: a full labelled batch plus an equally large target batch")


class DomainClassifier(nn.Module):
    """Gradient reversal → [Linear → ReLU → Dropout] → Linear → one logit (target = 1)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.reverse = GradientReversal(0.0)
        self.net = mlp(in_dim, hidden, 1, dropout) if hidden else nn.Linear(in_dim, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.reverse(z)).squeeze(-1)


class DANN(Method):
    """Domain-adversarial neural network (Abdelwahab & Busso 2018; Ganin & Lempitsky 2015)."""

    name = "dann"
    version = "1"
    citation = CITATION
    summary = "domain-adversarial training: emotion head + domain classifier behind gradient reversal"
    Config = DANNConfig
    needs = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})

    @classmethod
    def smoke_config(cls) -> dict[str, Any]:
        return {"epochs": 3, "batch_size": 32, "bottleneck": 32, "domain_hidden": 16}

    def fit(self, task: TransferTask, ctx: FitContext) -> FitReport:
        cfg: DANNConfig = self.config  # type: ignore[assignment]
        self.ctx = ctx
        base = ctx.make_backbone()
        self.model = ProjectedBackbone(base, mlp(base.dim, cfg.bottleneck, None, cfg.dropout), cfg.bottleneck,
                                       task.n_classes).to(ctx.device)
        self.domain = DomainClassifier(cfg.bottleneck, cfg.domain_hidden, cfg.dropout).to(ctx.device)

        labelled = Pool.from_sets([task.source_train, task.target_labeled], task.n_classes)
        # domain of each labelled utterance: D_s is source (0), K_t is target (1)
        lab_domain = np.r_[np.zeros(len(task.source_train)), np.ones(len(task.target_labeled))].astype(np.float32)
        target_keys = list(task.target_labeled.keys) + list(task.target_unlabeled.keys)
        if not len(labelled):
            raise ConfigError("dann needs labelled training utterances (D_s is empty)")
        if not target_keys:
            raise ConfigError("dann needs target-language training audio (K_t ∪ U_t is empty)")

        optimizer, scheduler = optimizer_for(self.model, [self.domain], cfg)
        rng = ctx.rng("batches")
        stream = TargetStream(len(target_keys), ctx.rng("target-batches"))
        schedule = StepSchedule(
            total_steps=cfg.epochs * steps_per_epoch(len(labelled), cfg.batch_size, cfg.batch_composition),
            gamma=cfg.lambda_gamma, lambda_max=cfg.lambda_max, constant=cfg.lambda_schedule == "constant",
        )

        def epoch_fn(epoch: int) -> dict[str, float]:
            sums = {"loss": 0.0, "emotion_loss": 0.0, "domain_loss": 0.0, "domain_acc": 0.0}
            n_steps = 0
            for lab, tgt in adaptation_steps(len(labelled), stream, cfg.batch_size, cfg.batch_composition, rng):
                keys = [labelled.keys[i] for i in lab] + [target_keys[i] for i in tgt]
                batch = ctx.inputs.train_batch(keys, rng).to(ctx.device)  # one forward for both parts
                domain = torch.from_numpy(np.r_[lab_domain[lab], np.ones(len(tgt), np.float32)]).to(ctx.device)
                targets = torch.from_numpy(labelled.targets[lab]).to(ctx.device)

                self.domain.reverse.set_lambda(schedule.lambda_)
                z = self.model.embed(batch)
                emotion_loss = soft_cross_entropy(self.model.classify(z[: len(lab)]), targets)
                d_logits = self.domain(z)
                domain_loss = F.binary_cross_entropy_with_logits(d_logits, domain)
                loss = emotion_loss + cfg.domain_weight * domain_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()

                n_steps += 1
                sums["loss"] += loss.item()
                sums["emotion_loss"] += emotion_loss.item()
                sums["domain_loss"] += domain_loss.item()
                sums["domain_acc"] += ((d_logits.detach() > 0).float() == domain).float().mean().item()
            scheduler.step()
            row = {k: v / max(n_steps, 1) for k, v in sums.items()}
            row["grl_lambda"] = schedule.lambda_
            return row

        report = train_loop(ctx, self.model, cfg, task.validation, epoch_fn, modules=[self.domain])
        report.extras.update({
            "feature_extractor": f"encoder + Linear({base.dim}→{cfg.bottleneck})-ReLU-Dropout({cfg.dropout})",
            "steps": schedule.steps_done,
            "n_domain_source": len(task.source_train),
            "n_domain_target": len(target_keys),
        })
        return report

    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        return softmax(predict_logits(self.model, self.ctx.inputs, keys, self.ctx.device))

    def embed(self, keys: Sequence[str]) -> np.ndarray:
        return embed(self.model, self.ctx.inputs, keys, self.ctx.device)
