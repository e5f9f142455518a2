"""NNPM: neural network with pseudo multilabel (Li, Yan & Wang 2021) -- a reconstruction.

Li, Yan & Wang, "Unsupervised cross-lingual speech emotion recognition using pseudo multilabel",
IEEE ASRU 2021 (arXiv:2108.08663). The paper's abstract points to github.com/happyjin/NNPM, but
that repository holds only a one-line README; Agarla et al. (2024, Sec. 5.5) also found no
implementation and reimplemented it for their Table 6. What is known of the method: source and
target utterances are projected into a learned feature space; source features are stored in a
dynamically updated external memory; each target utterance gets a pseudo *multi*-label from its
cosine similarities to the memory; hard negative samples are mined to sharpen the features.
Everything else here is a reconstruction, and every choice is an option of ``NNPMConfig``.

Per step (``batch_composition`` as in DANN: half labelled D_s ∪ K_t, half unlabelled U_t):

- embedding z = normalise(P(e(x))): the encoder e (frozen, or trained with ``--finetune``) and a
  trainable projection P = Linear → ReLU → Dropout → Linear (``hidden`` → ``embedding_dim``),
  L2-normalised so that the memory is read by cosine similarity;
- emotion head: a cosine classifier s · cos(z, w_c) (``head``, ``scale``), so that the source
  cross-entropy itself shapes the angles the memory is read by;
- source loss: cross-entropy on the labelled utterances;
- target loss: each U_t utterance's pseudo multi-label y ∈ {0, 1}^C, read from the memory (once
  per epoch from its whole-utterance embedding, ``pseudo_label_update``); binary cross-entropy
  between sigmoid(head logits) and y, summed over classes, averaged over the batch;
- hard-negative term: for each query (labelled utterances with their true label, U_t ones with
  their pseudo multi-label, per ``hard_negative_on``), the ``hard_negatives`` memory entries
  most similar to it among the classes that are *not* its labels, and a margin loss
  relu(s_neg - s_pos + margin), s_pos the similarity to its nearest same-label entry;
- loss = L_src + w(t) · target_weight · L_tgt + hard_negative_weight · (L_hn,lab + w(t) · L_hn,tgt),
  w(t) = 0 during the ``warmup_epochs``, then ramping up as 2/(1+exp(-10 p)) - 1 (``target_ramp``);
- memory (``xlbench.components.memory``): labelled source embeddings (``memory_sets``), a FIFO
  queue of ``memory_per_class`` entries per class, filled at the start from whole utterances and
  then refreshed after every step with the step's detached labelled embeddings
  (``memory_update=fifo``), or re-embedded in full from whole utterances every epoch (``epoch``).

Assumptions (all options; docs/baselines.md discusses each):

1. the feature space is an MLP projection over the pooled encoder vector, not the paper's
   siamese network with self-attention over frames (the harness pools frames);
2. memory = source embeddings only, per-class FIFO of 128, pushed every step;
3. pseudo multi-label = the classes among the k = 5 nearest memory entries (``topk``), or every
   class whose nearest entry has cosine ≥ ``threshold`` plus the best class (``threshold``);
   the single pseudo-label reported to the harness (``FitReport.pseudo_labels``, every
   ``report_every`` epochs after the warm-up) is the argmax of the per-class nearest-entry
   similarities, i.e. the 1-nearest-neighbour class;
4. the multi-label BCE trains the emotion head, which is thus a multi-label (sigmoid)
   classifier on U_t and a softmax classifier on the labelled data; ``target_loss_on=memory``
   scores the memory similarities instead ((s_c - offset) / temperature as logits) -- it was
   unstable in our trials on the synthetic corpus, hence not the default;
5. hard negatives: 5 per query, cosine margin 0.2, for labelled and target queries (in the
   spirit of memory-based multi-label classification with hard negative mining, Wang & Zhang,
   CVPR 2020, which NNPM's description resembles);
6. 10 warm-up epochs and a ramp for the target terms (the usual guard of self-training against
   confirmation bias); the paper's Adam schedule and the run's model selection, as every method
   of the benchmark; predictions are the softmax of the emotion head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from xlbench.components.memory import EmbeddingMemory, PseudoMultiLabel, hard_negative_margin_loss
from xlbench.components.schedules import StepSchedule
from xlbench.errors import ConfigError
from xlbench.method import FitReport, Method, PseudoLabelRound
from xlbench.tasks import TransferTask
from xlbench.training import (
    FitContext,
    Pool,
    TrainConfig,
    embed,
    predict_logits,
    soft_cross_entropy,
    softmax,
    train_loop,
)
from xlbench_baselines.dann import (
    BatchComposition,
    ProjectedBackbone,
    TargetStream,
    adaptation_steps,
    mlp,
    optimizer_for,
    steps_per_epoch,
)

CITATION = (
    "Li, Yan & Wang (2021), Unsupervised cross-lingual speech emotion recognition using pseudo multilabel, "
    "IEEE ASRU (arXiv:2108.08663); reconstruction, no public code"
)


class CosineHead(nn.Module):
    """Logits s · cos(z, w_c): a linear layer without bias on normalised inputs and weights."""

    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


class NNPMConfig(TrainConfig):
    """NNPM options (a reconstruction: every assumption is an option) on top of TrainConfig."""

    embedding_dim: int = Field(
        128, ge=2, le=65_536,
        description="size of the L2-normalised embedding the memory stores")
    hidden: int = Field(256, ge=1, le=65_536, description="hidden units of the projection Linear-ReLU-Dropout-Linear")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout inside the projection")
    head: Literal["cosine", "linear"] = Field(
        "cosine", description="emotion head: cosine = s · cos(z, w_c) (weights normalised too), so that the source "
                              "cross-entropy shapes the angles the memory is read by; linear = W (s z) + b")
    scale: float = Field(10.0, gt=0, le=1_000, description="s, the logit scale of the head (z has unit norm)")
    memory_update: Literal["fifo", "epoch"] = Field(
        "fifo", description="fifo: push each step's labelled embeddings into per-class queues; "
                            "epoch: re-embed the memory sets from whole utterances at the start of every epoch")
    memory_per_class: int | None = Field(
        128, ge=1, le=1_000_000,
        description="entries kept per class (FIFO); null keeps all")
    memory_sets: Literal["source", "labeled"] = Field(
        "source", description="what the memory holds: source = D_s (as NNPM); labeled = D_s ∪ K_t")
    pseudo_label: Literal["topk", "threshold"] = Field(
        "topk", description="topk: the classes of the k nearest memory entries; threshold: every class whose "
                            "nearest entry has cosine >= threshold, plus the best class")
    top_k: int = Field(5, ge=1, le=1_000, description="k of the topk pseudo multi-label")
    threshold: float = Field(0.5, ge=-1, le=1, description="cosine threshold of the threshold pseudo multi-label")
    target_weight: float = Field(1.0, ge=0, le=1_000, description="weight of the multi-label BCE on target utterances")
    target_loss_on: Literal["memory", "classifier"] = Field(
        "classifier", description="what the multi-label BCE scores: memory = the per-class nearest-entry cosine s_c as "
                              "logit (s_c - offset) / temperature; classifier = the emotion head's logits")
    temperature: float = Field(
        0.1, gt=0, le=1_000,
        description="temperature of the memory logits (s_c - offset) / temperature")
    similarity_offset: float = Field(0.5, ge=-1, le=1, description="cosine at which a memory logit is 0 (p = 0.5)")
    hard_negatives: int = Field(
        5, ge=1, le=1_000,
        description="hard negatives per query (the most similar wrong-class entries)")
    margin: float = Field(0.2, ge=0, le=2, description="cosine margin of the hard-negative term")
    hard_negative_weight: float = Field(
        1.0, ge=0, le=1_000,
        description="weight of the hard-negative margin term (0: off)")
    hard_negative_on: Literal["both", "target", "labeled"] = Field(
        "both", description="queries of the hard-negative term: target (pseudo multi-label), labeled (true label) "
                            "or both")
    pseudo_label_update: Literal["epoch", "step"] = Field(
        "epoch", description="epoch: label every U_t utterance once per epoch from its whole-utterance embedding "
                             "(eval mode); step: label each batch's training crops online against the current memory")
    target_ramp: Literal["dann", "none"] = Field(
        "dann", description="dann: the target and hard-negative target weights ramp up after the warm-up as "
                            "2/(1+exp(-10 p)) - 1, p the progress through the post-warm-up steps; none: full weight")
    warmup_epochs: int = Field(
        10, ge=0, le=10_000,
        description="epochs of source-only training before the memory's pseudo-labels "
            "are used")
    batch_composition: BatchComposition = Field(
        "halves", description="halves: each step is half labelled (D_s ∪ K_t), half unlabelled target (U_t); "
                              "paired: a full labelled batch plus an equally large U_t batch")
    report_every: int = Field(
        10, ge=1, le=10_000,
        description="report U_t's pseudo-labels to the harness every this many epochs "
            "(and at the last epoch), once the warm-up is over")


class NNPM(Method):
    """Memory-based pseudo multi-labelling for cross-lingual SER (reconstruction of Li et al. 2021)."""

    name = "nnpm"
    version = "1"
    citation = CITATION
    summary = "external memory of source embeddings, pseudo multi-labels by cosine similarity, hard negatives"
    Config = NNPMConfig
    needs = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})

    @classmethod
    def smoke_config(cls) -> dict[str, Any]:
        return {"epochs": 3, "batch_size": 32, "embedding_dim": 16, "hidden": 32, "memory_per_class": 16,
                "warmup_epochs": 1, "report_every": 1}

    def fit(self, task: TransferTask, ctx: FitContext) -> FitReport:
        cfg: NNPMConfig = self.config  # type: ignore[assignment]
        self.ctx = ctx
        C = task.n_classes
        base = ctx.make_backbone()
        project = mlp(base.dim, cfg.hidden, cfg.embedding_dim, cfg.dropout)
        if cfg.head == "cosine":
            self.model = ProjectedBackbone(base, project, cfg.embedding_dim, C, normalize=True)
            self.model.head = CosineHead(cfg.embedding_dim, C, cfg.scale)
        else:
            self.model = ProjectedBackbone(base, project, cfg.embedding_dim, C, normalize=True, scale=cfg.scale)
        self.model.to(ctx.device)

        labelled = Pool.from_sets([task.source_train, task.target_labeled], C)
        lab_labels = labelled.targets.argmax(1)
        n_source = len(task.source_train)
        # which labelled rows may enter the memory
        in_memory = np.arange(len(labelled)) < (n_source if cfg.memory_sets == "source" else len(labelled))
        # the target stream is U_t: K_t already has true labels in the labelled pool
        target_keys = list(task.target_unlabeled.keys)
        if not n_source:
            raise ConfigError("nnpm needs labelled source utterances (D_s is empty)")

        self.memory = EmbeddingMemory(C, cfg.memory_per_class)
        optimizer, scheduler = optimizer_for(self.model, [], cfg)
        rng = ctx.rng("batches")
        stream = TargetStream(len(target_keys), ctx.rng("target-batches"))
        rounds: list[PseudoLabelRound] = []
        mem_keys = [k for k, m in zip(labelled.keys, in_memory, strict=True) if m]
        mem_labels = torch.from_numpy(lab_labels[in_memory]).to(ctx.device)

        def refresh_memory() -> None:
            feats = embed(self.model, ctx.inputs, mem_keys, ctx.device)  # whole utterances, eval mode
            self.memory.replace(torch.from_numpy(feats).to(ctx.device), mem_labels)

        refresh_memory()  # so that the first step already has a memory (from the initial model)
        adapt_epochs = max(cfg.epochs - cfg.warmup_epochs, 1)
        ramp = StepSchedule(  # the target terms' weight ramp, counted over the post-warm-up steps
            total_steps=adapt_epochs * steps_per_epoch(len(labelled), cfg.batch_size, cfg.batch_composition),
            constant=cfg.target_ramp == "none",
        )

        def pseudo(z: torch.Tensor) -> PseudoMultiLabel:
            return self.memory.multilabels(z.detach(), cfg.pseudo_label, k=cfg.top_k, threshold=cfg.threshold)

        def label_targets() -> PseudoMultiLabel:
            """U_t's pseudo multi-labels from whole utterances (eval mode) against the memory."""
            z = torch.from_numpy(embed(self.model, ctx.inputs, target_keys, ctx.device)).to(ctx.device)
            return pseudo(z)

        epoch_labels: dict[int, PseudoMultiLabel] = {}  # pseudo_label_update=epoch: what each epoch trains on

        def epoch_fn(epoch: int) -> dict[str, float]:
            if cfg.memory_update == "epoch" and epoch > 1:
                refresh_memory()
            adapt = epoch > cfg.warmup_epochs
            if adapt and cfg.pseudo_label_update == "epoch" and target_keys:
                epoch_labels[epoch] = label_targets()
            keys_ = ("loss", "source_loss", "target_loss", "hard_negative_loss", "multilabel_size", "target_ramp")
            sums = dict.fromkeys(keys_, 0.0)
            n_steps = 0
            for lab, tgt in adaptation_steps(len(labelled), stream, cfg.batch_size, cfg.batch_composition, rng):
                keys = [labelled.keys[i] for i in lab] + [target_keys[i] for i in tgt]
                batch = ctx.inputs.train_batch(keys, rng).to(ctx.device)
                z = self.model.embed(batch)
                z_lab, z_tgt = z[: len(lab)], z[len(lab) :]
                y_lab = torch.from_numpy(lab_labels[lab]).to(ctx.device)
                onehot = torch.from_numpy(labelled.targets[lab]).to(ctx.device)

                source_loss = soft_cross_entropy(self.model.classify(z_lab), onehot)
                target_loss = hn_lab = hn_tgt = torch.zeros((), device=ctx.device)
                w_ramp = 0.0
                if cfg.hard_negative_weight > 0 and cfg.hard_negative_on in ("both", "labeled"):
                    hn_lab = hard_negative_margin_loss(z_lab, self.memory, F.one_hot(y_lab, C), cfg.hard_negatives,
                                                       cfg.margin)
                if adapt and len(tgt):
                    w_ramp = ramp.lambda_
                    ramp.step()
                    if cfg.pseudo_label_update == "epoch":
                        rows = torch.from_numpy(tgt).to(ctx.device)
                        ml = PseudoMultiLabel(epoch_labels[epoch].targets[rows], epoch_labels[epoch].scores[rows])
                    else:
                        ml = pseudo(z_tgt)
                    sums["multilabel_size"] += ml.targets.sum(1).mean().item()
                    if cfg.target_loss_on == "memory":
                        # -inf (a class with no entry) would give nan in the BCE: floor at cos = -1
                        scores = self.memory.class_scores(z_tgt).clamp(min=-1.0)
                        logits_t = (scores - cfg.similarity_offset) / cfg.temperature
                    else:
                        logits_t = self.model.classify(z_tgt)
                    # summed over classes, averaged over utterances: the scale of a cross-entropy
                    target_loss = F.binary_cross_entropy_with_logits(logits_t, ml.targets, reduction="none")
                    target_loss = target_loss.sum(1).mean()
                    if cfg.hard_negative_weight > 0 and cfg.hard_negative_on in ("both", "target"):
                        hn_tgt = hard_negative_margin_loss(z_tgt, self.memory, ml.targets, cfg.hard_negatives,
                                                           cfg.margin)
                hn_loss = hn_lab + w_ramp * hn_tgt
                loss = source_loss + w_ramp * cfg.target_weight * target_loss + cfg.hard_negative_weight * hn_loss

                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if cfg.memory_update == "fifo":
                    keep = torch.from_numpy(in_memory[lab]).to(ctx.device)
                    if bool(keep.any()):
                        self.memory.push(z_lab.detach()[keep], y_lab[keep])

                n_steps += 1
                sums["loss"] += loss.item()
                sums["source_loss"] += source_loss.item()
                sums["target_loss"] += target_loss.item()
                sums["hard_negative_loss"] += hn_loss.item()
                sums["target_ramp"] += w_ramp
            scheduler.step()
            return {k: v / max(n_steps, 1) for k, v in sums.items()}

        def on_epoch_end(epoch: int) -> dict[str, float]:
            trained_on = epoch_labels.pop(epoch, None)
            epoch_labels.clear()
            if epoch <= cfg.warmup_epochs or not target_keys:
                return {}
            if epoch % cfg.report_every and epoch != cfg.epochs:
                return {}
            # what this epoch trained on (epoch mode), else what the memory says of whole utterances now
            ml = trained_on if trained_on is not None else label_targets()
            labels = ml.labels.cpu().numpy()
            rounds.append(PseudoLabelRound(epoch=epoch, keys=tuple(target_keys), labels=labels))
            return {"pseudo_multilabel_size": float(ml.targets.sum(1).mean())}

        report = train_loop(ctx, self.model, cfg, task.validation, epoch_fn, on_epoch_end)
        report.pseudo_labels = rounds
        report.extras.update({
            "projection": f"Linear({base.dim}→{cfg.hidden})-ReLU-Dropout({cfg.dropout})-"
                          f"Linear(→{cfg.embedding_dim}), L2-normalised",
            "memory_entries": self.memory.counts(),
        })
        return report

    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        return softmax(predict_logits(self.model, self.ctx.inputs, keys, self.ctx.device))

    def embed(self, keys: Sequence[str]) -> np.ndarray:
        return embed(self.model, self.ctx.inputs, keys, self.ctx.device)
