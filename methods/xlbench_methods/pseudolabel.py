"""Semi-supervised cross-lingual SER by pseudo-labelling (Agarla et al. 2024, Sec. 3.2, Algorithm 1).

The backbone is the encoder e plus a linear head h with softmax (Eq. 1, ``ctx.make_backbone()``).
It trains for E epochs on D = D_s ∪ K_t; after every W-th epoch (mod(e, W) = 0, Algorithm 1
line 6) it predicts the unlabelled target utterances U_t (whole utterances, eval mode) and
forms K'_t:

- ``mode=hard``: ỹ = argmax p, kept where max p >= τ (Eq. 2), trained with cross-entropy (Eq. 8);
- ``mode=soft``: the probability vector is the target; batches are mixed up (Eq. 6-7, α ~ U(0, 1)
  per row) and the loss is L = CE + λ_A R_A + λ_H R_H (Eq. 3-5, R_H averaged over the batch).

Decisions where the paper is silent or ambiguous (docs/methods.md has the full list):

- **K'_t replaces** the previous round's by default, D = D_s ∪ K_t ∪ K'_t (PROTOCOL.md §6);
  ``accumulate=true`` unites the rounds instead, an utterance keeping only its latest label.
- **Soft-mode scope** (``soft_scope``): ``always`` (default) applies mixup and R_A/R_H to every
  batch from epoch 1, as Arazo et al. (2020), which the paper follows, do from their warm-up
  on; ``pseudo`` applies them only once pseudo-labels exist (plain CE before the first round).
  Hard mode is plain cross-entropy throughout, as in the paper.
- **Rebalancing** (Sec. 3.2.3): K_t ∪ K'_t is randomly oversampled up to N_s (γ = 1) at the
  start when N_k > 0 and after every round (``xlbench.components.rebalance``). A target pool
  already as large as N_s is used as it is: nothing is ever dropped.
- In frozen mode a batch is a set of pooled encoder vectors, so mixup mixes those (a cached
  encoder cannot re-encode mixed audio); with ``--finetune`` it mixes waveform crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from xlbench.accelerator import LossSums, to_device
from xlbench.components.mixup import mixup
from xlbench.components.pseudo_labels import hard_pseudo_labels, soft_pseudo_labels, update_pseudo_pool
from xlbench.components.rebalance import oversample
from xlbench.components.regularizers import entropy_regularizer_from_logits, prior_regularizer_from_logits
from xlbench.inputs import Backbone
from xlbench.method import FitReport, Method, PseudoLabelRound
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

CITATION = "Agarla et al. (2024), Semi-supervised cross-lingual speech emotion recognition, ESWA 237:121368"


class PseudoLabelConfig(TrainConfig):
    """Options of ``pseudolabel`` (``--set key=value``); the defaults are the paper's (Sec. 4.2.1)."""

    mode: Literal["hard", "soft"] = Field(
        "hard",
        description="hard: argmax labels kept where max p >= tau (Eq. 2); "
        "soft: probability vectors, with mixup and R_A/R_H (Eq. 3-7)",
    )
    tau: float = Field(
        0.5, ge=0, le=1,
        description="τ, confidence threshold of hard pseudo-labels (Eq. 2; Table 7 tries 0.5, 0.65, 0.85); "
        "unused in soft mode",
    )
    every: int = Field(
        30, ge=1, le=10_000,
        description="W: pseudo-label U_t after each epoch e with mod(e, W) = 0 (Algorithm 1)")
    accumulate: bool = Field(
        False,
        description="false: each round's K'_t replaces the previous one (PROTOCOL.md §6); "
        "true: rounds accumulate and an utterance keeps its latest label",
    )
    rebalance: bool = Field(
        True,
        description="oversample K_t ∪ K'_t up to N_s at the start (if N_k > 0) and after each round (Sec. 3.2.3); "
        "false for the Table 8 ablation",
    )
    lambda_a: float = Field(
        0.8, ge=0, le=1_000,
        description="λ_A, weight of the class-prior term R_A (Eq. 3, 5); soft mode")
    lambda_h: float = Field(
        0.4, ge=0, le=1_000,
        description="λ_H, weight of the mean entropy R_H (Eq. 4, 5); soft mode")
    mixup: bool = Field(True, description="mixup of inputs and targets, α ~ U(0, 1) per row (Eq. 6-7); soft mode")
    soft_scope: Literal["always", "pseudo"] = Field(
        "always",
        description="when soft mode's mixup and regularisers apply: always (every batch from epoch 1, as "
        "Arazo et al. 2020) or pseudo (only once pseudo-labels exist; plain CE before)",
    )


@dataclass
class _TrainingData:
    """The pools of one fit: D_s, K_t, the current K'_t (with each key's confidence) and D."""

    source: Pool
    labeled: Pool
    pseudo: Pool
    confidence: dict[str, float] = field(default_factory=dict)
    train: Pool = field(default_factory=lambda: Pool([], np.zeros((0, 1), np.float32)))
    n_target: int = 0  # |K_t ∪ K'_t| after oversampling


class PseudoLabel(Method):
    """The paper's method: pseudo-labels on U_t every W epochs, hard or soft, with rebalancing."""

    name = "pseudolabel"
    version = "1"
    citation = CITATION
    summary = "the paper's method: pseudo-labels for U_t every W epochs (hard or soft), with rebalancing"
    Config = PseudoLabelConfig
    needs: ClassVar[frozenset[str]] = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})

    @classmethod
    def smoke_config(cls) -> dict[str, Any]:
        """Fast settings for ``xlbench check-method``: rounds after epochs 2 and 4."""
        return {"epochs": 4, "every": 2, "batch_size": 32}

    # -- training ------------------------------------------------------------------------------

    def fit(self, task: TransferTask, ctx: FitContext) -> FitReport:
        cfg: PseudoLabelConfig = self.config  # type: ignore[assignment]
        self.ctx = ctx
        self.model: Backbone = ctx.make_backbone().to(ctx.device)
        n_classes = task.n_classes
        optimizer, scheduler = make_optimizer(self.model, cfg)
        rng_batches, rng_mix, rng_balance = ctx.rng("batches"), ctx.rng("mixup"), ctx.rng("rebalance")

        data = _TrainingData(
            source=Pool.from_sets([task.source_train], n_classes),  # D_s
            labeled=Pool.from_sets([task.target_labeled], n_classes),  # K_t
            pseudo=Pool([], np.zeros((0, n_classes), np.float32)),  # K'_t
        )
        unlabeled = list(task.target_unlabeled.keys)  # U_t: keys only, there are no labels to see
        rounds: list[PseudoLabelRound] = []

        def rebuild() -> None:
            """D = D_s ∪ K_t ∪ K'_t, the target part oversampled to N_s when rebalancing (Sec. 3.2.3)."""
            target = data.labeled + data.pseudo
            if cfg.rebalance and len(target):
                target = oversample(target, len(data.source), rng_balance)
            data.n_target = len(target)
            data.train = data.source + target

        rebuild()  # at the start: oversamples K_t when N_k > 0

        def epoch_fn(epoch: int) -> dict[str, float]:
            soft = cfg.mode == "soft" and (cfg.soft_scope == "always" or bool(rounds))
            losses = self._train_epoch(data.train, cfg, optimizer, rng_batches, rng_mix, soft)
            scheduler.step()
            return losses

        def on_epoch_end(epoch: int) -> dict[str, float]:
            # facts about the pool this epoch trained on, then (maybe) a round of Algorithm 1
            row = {"pool_size": float(len(data.train)), "target_pool_size": float(data.n_target),
                   "n_pseudo": float(len(data.pseudo))}
            if data.confidence:
                row["pseudo_confidence"] = float(np.mean(list(data.confidence.values())))
            if epoch % cfg.every == 0 and unlabeled:  # Algorithm 1, lines 6-9
                row.update(self._pseudo_label_round(epoch, unlabeled, cfg, data, rounds))
                rebuild()  # after each round
            return row

        report = train_loop(ctx, self.model, cfg, task.validation, epoch_fn, on_epoch_end)
        report.pseudo_labels = rounds
        report.extras = {
            "n_source": len(data.source),
            "n_labeled": len(data.labeled),
            "n_unlabeled": len(unlabeled),
            "rounds": [r.epoch for r in rounds],
            # with the paper's selection an epoch before the first round means K'_t never
            # influenced the returned weights: worth seeing at a glance
            "selected_before_first_round": bool(rounds and report.selected_epoch is not None
                                                and report.selected_epoch <= rounds[0].epoch),
        }
        return report

    def _train_epoch(
        self,
        pool: Pool,
        cfg: PseudoLabelConfig,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        rng_mix: np.random.Generator,
        soft: bool,
    ) -> dict[str, float]:
        """One pass over D with random crops; in soft mode mixup (Eq. 6-7) and L = CE + λ_A R_A + λ_H R_H (Eq. 5)."""
        ctx, model = self.ctx, self.model
        sums = LossSums()  # summed on the device, read once per epoch: no wait for the device per step
        for idx in minibatches(len(pool), cfg.batch_size, rng):
            batch = ctx.inputs.train_batch([pool.keys[i] for i in idx], rng).to(ctx.device)
            targets = to_device(torch.from_numpy(pool.targets[idx]), ctx.device)
            if soft and cfg.mixup and len(idx) > 1:
                mixed = mixup(batch, targets, rng_mix)
                batch, targets = mixed.batch, mixed.targets
            logits = model(batch)
            ce = soft_cross_entropy(logits, targets)  # Eq. 8, mean over the batch
            loss = ce
            if soft:
                r_a = prior_regularizer_from_logits(logits)  # Eq. 3
                r_h = entropy_regularizer_from_logits(logits)  # Eq. 4 (mean)
                loss = ce + cfg.lambda_a * r_a + cfg.lambda_h * r_h  # Eq. 5
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums.add("loss", loss, len(idx))
            if soft:  # hard mode: the loss is the CE
                sums.add("ce", ce, len(idx))
                sums.add("r_a", r_a, len(idx))
                sums.add("r_h", r_h, len(idx))
            sums.step(len(idx))
        names = ("loss", "ce", "r_a", "r_h") if soft else ("loss",)
        means = sums.means()
        return {k: means.get(k, 0.0) for k in names}

    def _pseudo_label_round(
        self,
        epoch: int,
        unlabeled: list[str],
        cfg: PseudoLabelConfig,
        data: _TrainingData,
        rounds: list[PseudoLabelRound],
    ) -> dict[str, float]:
        """Predict U_t with the current weights and form K'_t (Algorithm 1, lines 7-9)."""
        probs = softmax(predict_logits(self.model, self.ctx.inputs, unlabeled, self.ctx.device))
        pl = hard_pseudo_labels(probs, cfg.tau) if cfg.mode == "hard" else soft_pseudo_labels(probs)
        new = pl.selected(unlabeled)
        data.pseudo = update_pseudo_pool(data.pseudo, new, cfg.accumulate)
        sel = pl.mask
        conf = {k: float(c) for k, c in zip(new.keys, pl.confidence[sel], strict=True)}
        data.confidence = {**data.confidence, **conf} if cfg.accumulate else conf
        rounds.append(PseudoLabelRound(epoch=epoch, keys=tuple(new.keys), labels=pl.labels[sel].copy(),
                                       confidence=pl.confidence[sel].copy()))
        row = {"round_selected": float(pl.n_selected), "round_unlabeled_confidence": float(pl.confidence.mean())}
        if pl.n_selected:
            row["round_selected_confidence"] = float(pl.confidence[sel].mean())
        return row

    # -- inference -----------------------------------------------------------------------------

    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        """p = Softmax(h(e(X))) on whole utterances (Eq. 1), with the selected epoch's weights."""
        return softmax(predict_logits(self.model, self.ctx.inputs, keys, self.ctx.device))

    def embed(self, keys: Sequence[str]) -> np.ndarray:
        return embed(self.model, self.ctx.inputs, keys, self.ctx.device)
