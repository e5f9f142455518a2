"""Kernels of the wav2vec2-family speech encoders (xlbench.encoders.hf), chosen by options.

The convolutional feature encoder of HuBERT base (7 strided 1-D convolutions, 512 channels) is a
third of the model's FLOPs, and on an H100 it took two thirds of the GPU time in cuDNN's generic
kernels for strided 1-D convolutions. The same convolution can be computed three ways
(``conv=`` option, every way giving the same numbers within float rounding):

- ``native``: ``torch.nn.functional.conv1d`` (what transformers runs);
- ``conv2d``: the convolution as a 2-D one of height 1 in channels-last memory, for which cuDNN
  has tuned kernels;
- ``unfold``: one matrix product over the time windows (``Tensor.unfold`` + ``linear``), with
  activations kept in (batch, time, channels) memory between layers, so a window is a contiguous
  row and a stride-2 kernel-2 layer needs no copy at all: the work goes to cuBLAS GEMMs.

``auto`` (the default) is ``native`` on a CPU, where results must not change, and
``CUDA_DEFAULT_CONV`` on CUDA. ``benchmarks/bench_encoders.py --kernels`` times every choice;
the CUDA default is the one that measured fastest there (docs/performance.md).

Padding is kept out by ``MaskedGroupNorm`` (statistics over each utterance's valid steps) and by
attention masks. ``SDPA`` is transformers' ``scaled_dot_product_attention`` path registered under
its own name with the padding mask always materialised: transformers' own ``sdpa`` mask builder
first asks whether the mask could be dropped (``mask.all()``), which makes the host wait for the
device once per forward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CONV_KERNELS = ("native", "conv2d", "unfold")
#: what ``conv=auto`` runs on CUDA (benchmarks/gpu_check.sh prints which kernel measured fastest)
CUDA_DEFAULT_CONV = "unfold"
ATTENTION = ("sdpa", "eager")
#: the name the sync-free SDPA path is registered under in transformers
SDPA = "xlbench_sdpa"


def resolve_conv(kernel: str, device: torch.device) -> str:
    if kernel == "auto":
        return CUDA_DEFAULT_CONV if device.type == "cuda" else "native"
    return kernel


def conv_by_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int) -> torch.Tensor:
    """Conv1d without padding as one matrix product over time windows.

    Returns (B, C_out, T') as a view of (B, T', C_out) memory; a following layer of this kernel
    reads it as contiguous (B, T, C) rows without a copy.
    """
    b, c, t = x.shape
    c_out, _, k = weight.shape
    xt = x.transpose(1, 2)  # (B, T, C)
    if k == stride:  # non-overlapping windows: a reshape, free when xt is contiguous
        n = (t - k) // stride + 1
        windows = xt[:, : n * k].reshape(b, n, k * c)
    else:  # overlapping windows: (B, T', C, k) view -> (B, T', k, C) rows, one copy
        windows = xt.unfold(1, k, stride).transpose(2, 3).reshape(b, -1, k * c)
    w = weight.permute(0, 2, 1).reshape(c_out, k * c)  # the same (k, C) order
    return F.linear(windows, w, bias).transpose(1, 2)


def conv_by_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int) -> torch.Tensor:
    """Conv1d as a height-1 Conv2d on channels-last memory."""
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    w4 = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    return F.conv2d(x4, w4, bias, stride=(1, stride)).squeeze(2)


class FeatureConv(nn.Conv1d):
    """A feature-encoder Conv1d computed by the kernel ``self.kernel`` names.

    Takes over the parameters of the Conv1d it replaces (same state-dict keys), so weights load,
    fine-tune and hash as before.
    """

    kernel: str = "auto"

    @classmethod
    def replacing(cls, conv: nn.Conv1d, kernel: str) -> FeatureConv:
        if conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("FeatureConv replaces unpadded, undilated, ungrouped convolutions only")
        with torch.device("meta"):  # no throw-away parameters: the old ones are taken over
            new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, bias=conv.bias is not None)
        new.weight = conv.weight
        if conv.bias is not None:
            new.bias = conv.bias
        new.kernel = kernel
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = resolve_conv(self.kernel, x.device)
        stride = self.stride[0]
        if kernel == "unfold":
            return conv_by_matmul(x, self.weight, self.bias, stride)
        if kernel == "conv2d":
            return conv_by_conv2d(x, self.weight, self.bias, stride)
        return F.conv1d(x, self.weight, self.bias, stride)


def output_steps(n: Any, geometry: list[tuple[int, int]]) -> Any:
    """Steps left after unpadded convolutions of (kernel, stride) ``geometry``, for an int or an integer tensor."""
    for k, s in geometry:
        n = (n - k) // s + 1
    return n


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics cover each utterance's valid time steps only.

    HuBERT base and wav2vec2 base normalise the first convolution's output over time; padding
    would change those statistics. Takes over the parameters of the GroupNorm it replaces. The
    encoder sets ``steps`` (valid steps per utterance at this layer, on the device) and ``padded``
    (False: no row is padded at this layer, so the plain kernel applies) around each forward.
    """

    steps: torch.Tensor

    def __init__(self, norm: nn.GroupNorm, geometry: list[tuple[int, int]]) -> None:
        super().__init__(norm.num_groups, norm.num_channels, norm.eps, norm.affine)
        if norm.affine:
            self.weight, self.bias = norm.weight, norm.bias
        self.geometry = geometry  # (kernel, stride) of the convolutions up to this norm
        # a buffer, not a plain attribute: it moves and copies with the model, stays out of the
        # state dict, and torch.compile reads it as an input rather than a constant
        self.register_buffer("steps", torch.zeros(0, dtype=torch.long), persistent=False)
        self.padded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.padded:
            return super().forward(x)
        b, c, t = x.shape
        g = self.num_groups
        # sums and sums of squares over each utterance's valid steps, in float32, in a few
        # whole-batch kernels that work on (B, C, T) and (B, T, C) memory alike
        mask = torch.arange(t, device=x.device)[None, :] < self.steps[:, None]
        xm = x.masked_fill(~mask[:, None, :], 0)
        s1 = xm.sum(-1, dtype=torch.float32)  # (B, C)
        s2 = torch.linalg.vector_norm(xm, dim=-1, dtype=torch.float32).square()
        if g != c:
            s1, s2 = s1.view(b, g, c // g).sum(-1), s2.view(b, g, c // g).sum(-1)
        count = self.steps.float()[:, None] * (c // g)
        mean = s1 / count
        var = (s2 / count - mean.square()).clamp_min(0.0)
        scale = torch.rsqrt(var + self.eps)[:, :, None].expand(b, g, c // g).reshape(b, c)
        shift = -mean[:, :, None].expand(b, g, c // g).reshape(b, c) * scale
        if self.affine:
            scale = scale * self.weight.float()
            shift = shift * self.weight.float() + self.bias.float()
        # one fused pass: y = x * scale + shift (in x's dtype: bfloat16 under autocast)
        return torch.addcmul(shift[..., None].to(x.dtype), x, scale[..., None].to(x.dtype))


_registered = False


def register_sdpa() -> str:
    """Register ``SDPA`` with transformers (once): its SDPA attention, with a mask builder that
    always materialises the padding mask instead of asking the device whether it may drop it."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.masking_utils import sdpa_mask

        def padding_mask(*args: Any, **kwargs: Any) -> torch.Tensor | None:
            kwargs["allow_is_bidirectional_skip"] = False
            kwargs["allow_is_causal_skip"] = False
            return sdpa_mask(*args, **kwargs)

        AttentionInterface.register(SDPA, sdpa_attention_forward)
        AttentionMaskInterface.register(SDPA, padding_mask)
        _registered = True
    return SDPA
