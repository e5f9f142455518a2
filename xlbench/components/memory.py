"""The external memory of NNPM (Li, Yan & Wang 2021): labelled embeddings, and what is read from it.

The memory holds L2-normalised embeddings of labelled utterances with their class ids, one
first-in-first-out queue per class (``capacity_per_class`` entries each; ``None`` keeps all).
It is refreshed from outside: ``push`` appends a batch (dropping the oldest entries of a full
class), ``replace`` swaps in a complete new set (e.g. all of D_s re-embedded every epoch).
Entries are detached copies: no gradient flows into the memory.

Reading it, for query embeddings q (normalised here too):

- ``similarities``: cosine similarity of every query to every entry, (B, N);
- ``class_scores``: per class, the similarity of the nearest entry of that class, (B, C);
  classes with no entry score ``-inf``;
- ``multilabels``: a pseudo multi-label per query -- ``topk``: every class among the labels of
  the k nearest entries; ``threshold``: every class whose score reaches the threshold, plus the
  best-scoring class so that no query is left without a label;
- ``hard_negatives``: the entries most similar to each query among those whose class is not one
  of the query's (pseudo-)labels -- the "hard negative samples" NNPM mines;
- ``hard_negative_margin_loss``: a margin (triplet-style) loss that keeps each hard negative at
  least ``margin`` less similar than the query's nearest positive entry.

The reconstruction choices behind these are listed in ``xlbench_baselines.nnpm`` and
docs/baselines.md; this module only implements them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

MultiLabelMode = Literal["topk", "threshold"]


@dataclass
class PseudoMultiLabel:
    """``targets``: (B, C) 0/1 multi-hot labels; ``scores``: (B, C) per-class nearest-entry similarity."""

    targets: torch.Tensor
    scores: torch.Tensor

    @property
    def labels(self) -> torch.Tensor:
        """One class per query: the argmax of the scores (the nearest entry's class)."""
        return self.scores.argmax(dim=1)

    @property
    def confidence(self) -> torch.Tensor:
        """The best score, i.e. the cosine similarity to the nearest entry."""
        return self.scores.max(dim=1).values


@dataclass
class HardNegatives:
    """Per query, the ``n`` most similar wrong-class entries, most similar first.

    ``valid`` is False where a query had fewer than ``n`` wrong-class entries to choose from.
    """

    similarity: torch.Tensor  # (B, n)
    index: torch.Tensor  # (B, n) row in ``EmbeddingMemory.entries()``
    valid: torch.Tensor  # (B, n) bool


class EmbeddingMemory:
    """Per-class FIFO queues of normalised, detached embeddings with their labels."""

    def __init__(self, n_classes: int, capacity_per_class: int | None = None):
        if n_classes < 1:
            raise ValueError(f"n_classes must be positive, got {n_classes}")
        if capacity_per_class is not None and capacity_per_class < 1:
            raise ValueError(f"capacity_per_class must be positive or None, got {capacity_per_class}")
        self.n_classes = n_classes
        self.capacity = capacity_per_class
        self._banks: list[torch.Tensor | None] = [None] * n_classes
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- writing --------------------------------------------------------------------------
    def clear(self) -> None:
        self._banks = [None] * self.n_classes
        self._cache = None

    @torch.no_grad()
    def push(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Append (B, D) embeddings with their (B,) labels; each full class drops its oldest entries.

        Within a batch, rows count as arriving in order, so of a batch larger than the capacity
        the last rows stay.
        """
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"expected (B, D) embeddings and (B,) labels, got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes}), got {labels.tolist()}")
        new = F.normalize(embeddings.detach().float(), dim=1)
        for c in labels.unique().tolist():
            rows = new[labels == c]
            old = self._banks[c]
            bank = rows if old is None else torch.cat([old, rows.to(old.device)])
            if self.capacity is not None:
                bank = bank[-self.capacity :]
            self._banks[c] = bank.clone()  # no view into the caller's batch
        self._cache = None

    def replace(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Swap the whole memory for these entries (the capacity still applies per class)."""
        self.clear()
        self.push(embeddings, labels)

    # -- reading --------------------------------------------------------------------------
    def counts(self) -> list[int]:
        return [0 if b is None else len(b) for b in self._banks]

    def __len__(self) -> int:
        return sum(self.counts())

    def entries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All entries (N, D) and labels (N,): class by class, oldest first within a class."""
        if self._cache is None:
            banks = [(c, b) for c, b in enumerate(self._banks) if b is not None and len(b)]
            if not banks:
                raise RuntimeError("the memory is empty: push labelled embeddings before reading it")
            feats = torch.cat([b for _, b in banks])
            labels = torch.cat([torch.full((len(b),), c, dtype=torch.long, device=b.device) for c, b in banks])
            self._cache = (feats, labels)
        return self._cache

    def similarities(self, queries: torch.Tensor) -> torch.Tensor:
        """(B, N) cosine similarities; differentiable in ``queries``, constant in the memory."""
        feats, _ = self.entries()
        return F.normalize(queries, dim=1) @ feats.to(queries.device, queries.dtype).T

    def class_scores(self, queries: torch.Tensor, sims: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C): per class, the similarity of the nearest entry of that class (-inf if none)."""
        sims = self.similarities(queries) if sims is None else sims
        _, labels = self.entries()
        labels = labels.to(sims.device)
        out = sims.new_full((sims.shape[0], self.n_classes), float("-inf"))
        index = labels.unsqueeze(0).expand_as(sims)
        return out.scatter_reduce(1, index, sims, reduce="amax", include_self=True)

    @torch.no_grad()
    def multilabels(
        self, queries: torch.Tensor, mode: MultiLabelMode = "topk", k: int = 5, threshold: float = 0.5
    ) -> PseudoMultiLabel:
        """A pseudo multi-label per query from its similarities to the memory (no gradient)."""
        sims = self.similarities(queries)
        scores = self.class_scores(queries, sims)
        targets = torch.zeros_like(scores)
        if mode == "topk":
            if k < 1:
                raise ValueError(f"k must be positive, got {k}")
            _, labels = self.entries()
            nearest = sims.topk(min(k, sims.shape[1]), dim=1).indices
            targets.scatter_(1, labels.to(sims.device)[nearest], 1.0)
        elif mode == "threshold":
            targets[scores >= threshold] = 1.0
            targets.scatter_(1, scores.argmax(dim=1, keepdim=True), 1.0)  # never leave a query unlabelled
        else:
            raise ValueError(f"multi-label mode must be 'topk' or 'threshold', not {mode!r}")
        return PseudoMultiLabel(targets, scores)

    def hard_negatives(
        self, queries: torch.Tensor, positive: torch.Tensor, n: int, sims: torch.Tensor | None = None
    ) -> HardNegatives:
        """The ``n`` entries most similar to each query whose class is not positive for it.

        ``positive`` is (B, C), true (or 1) where the class is one of the query's labels.
        """
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        sims = self.similarities(queries) if sims is None else sims
        _, labels = self.entries()
        is_pos = positive.bool()[:, labels.to(sims.device)]  # (B, N): entry's class is a label of the query
        masked = sims.masked_fill(is_pos, float("-inf"))
        top = masked.topk(min(n, sims.shape[1]), dim=1)
        return HardNegatives(top.values, top.indices, torch.isfinite(top.values))


def hard_negative_margin_loss(
    queries: torch.Tensor, memory: EmbeddingMemory, positive: torch.Tensor, n: int = 5, margin: float = 0.2
) -> torch.Tensor:
    """Mean over (query, hard negative) pairs of relu(s_neg - s_pos + margin).

    s_pos is the query's similarity to its nearest entry of a positive class; s_neg runs over
    its ``n`` most similar entries of the other classes. Queries with no positive entry in the
    memory, or no negative, add nothing. Zero (with a gradient path) when nothing qualifies.
    """
    sims = memory.similarities(queries)
    _, labels = memory.entries()
    is_pos = positive.bool()[:, labels.to(sims.device)]
    s_pos = sims.masked_fill(~is_pos, float("-inf")).max(dim=1).values  # (B,)
    neg = memory.hard_negatives(queries, positive, n, sims)
    ok = neg.valid & torch.isfinite(s_pos).unsqueeze(1)
    if not bool(ok.any()):
        return queries.sum() * 0.0
    # -inf placeholders would make inf - inf = nan in the graph; zero them before the arithmetic
    s_neg = torch.where(ok, neg.similarity, torch.zeros_like(neg.similarity))
    s_pos = torch.where(torch.isfinite(s_pos), s_pos, torch.zeros_like(s_pos))
    gaps = F.relu(s_neg - s_pos.unsqueeze(1) + margin)
    return gaps[ok].mean()
