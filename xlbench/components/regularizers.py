"""The two regularisers of the soft pseudo-label loss (paper Eq. 3-5, after Tanaka et al. 2018
and Arazo et al. 2020).

- R_A (Eq. 3): Σ_c p_c log(p_c / h̄_c), the KL divergence from the prior p (uniform, 1/C) to
  the batch-mean prediction h̄. It is zero when the model spreads the batch evenly over the
  classes and grows as it piles the batch onto one class.
- R_H (Eq. 4): per-sample entropy of the prediction, **averaged** over the batch. Eq. 4 writes a
  sum over the batch; the text calls it "the average per-sample entropy", Arazo et al.'s code
  takes the mean and PROTOCOL.md §6 fixes the mean, which also keeps λ_H = 0.4 independent of the
  batch size.

Each comes in two forms: on probabilities (what the equations are written in; used by the
tests with hand-computed numbers) and on logits (what training uses: log-softmax and
log-sum-exp keep it finite when a probability underflows to 0).
"""

from __future__ import annotations

import math

import torch


def _prior(prior: torch.Tensor | None, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    if prior is None:
        return torch.full((n_classes,), 1.0 / n_classes, dtype=like.dtype, device=like.device)
    return prior.to(like.device, like.dtype)


def prior_regularizer(probs: torch.Tensor, prior: torch.Tensor | None = None, eps: float = 1e-12) -> torch.Tensor:
    """R_A (Eq. 3) from (B, C) probabilities: Σ_c p_c log(p_c / h̄_c), h̄ = mean_b probs[b].

    ``prior`` defaults to the uniform 1/C. Classes with prior 0 contribute 0 (0 log 0 = 0).
    """
    p = _prior(prior, probs.shape[-1], probs)
    h_bar = probs.mean(dim=0)
    terms = p * (torch.log(p.clamp(min=eps)) - torch.log(h_bar.clamp(min=eps)))
    return torch.where(p > 0, terms, torch.zeros_like(terms)).sum()


def entropy_regularizer(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """R_H (Eq. 4, as a mean over the batch): -1/B Σ_b Σ_c h_b,c log h_b,c."""
    plogp = probs * torch.log(probs.clamp(min=eps))
    return -plogp.sum(dim=-1).mean()


def prior_regularizer_from_logits(logits: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
    """R_A (Eq. 3) from (B, C) logits; log h̄_c = logsumexp_b log softmax(z_b)_c - log B."""
    log_probs = torch.log_softmax(logits, dim=-1)
    log_h_bar = torch.logsumexp(log_probs, dim=0) - math.log(logits.shape[0])
    p = _prior(prior, logits.shape[-1], log_probs)
    terms = p * (torch.log(p.clamp(min=torch.finfo(p.dtype).tiny)) - log_h_bar)
    return torch.where(p > 0, terms, torch.zeros_like(terms)).sum()


def entropy_regularizer_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """R_H (Eq. 4, mean over the batch) from (B, C) logits."""
    log_probs = torch.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1).mean()
