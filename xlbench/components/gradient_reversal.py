"""The gradient reversal layer of domain-adversarial training (Ganin & Lempitsky, ICML 2015).

Forward it is the identity; backward it multiplies the incoming gradient by ``-λ``. Put in
front of a domain classifier, it lets one optimiser step train the classifier to tell the
domains apart while pushing the features before it to make them indistinguishable.

``λ`` is a plain float on the module, set from outside each step (see
``xlbench.components.schedules.dann_lambda``); it is not part of the state dict, since it is a
schedule value, not a learned one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class _ReverseGrad(torch.autograd.Function):
    """y = x forward; dL/dx = -λ · dL/dy backward (λ gets no gradient)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)  # a view, so autograd records this node instead of passing x through

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.lambda_, None


def _check_lambda(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"gradient reversal λ must be finite, got {value}")
    return value


def reverse_gradient(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Identity on ``x`` whose backward pass multiplies the gradient by ``-lambda_``."""
    return _ReverseGrad.apply(x, _check_lambda(lambda_))


class GradientReversal(nn.Module):
    """``reverse_gradient`` as a module with a settable ``λ`` (``set_lambda`` or ``.lambda_``)."""

    def __init__(self, lambda_: float = 1.0):
        super().__init__()
        self.lambda_ = _check_lambda(lambda_)

    def set_lambda(self, value: float) -> None:
        self.lambda_ = _check_lambda(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_:.4g}"
