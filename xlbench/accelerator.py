"""How work reaches an accelerator without stalling it: transfers, precision, memory.

A CUDA device runs ahead of the Python host only while the host never waits for it. Three
habits keep it that way, and every hot loop of xlbench (feature extraction, fine-tuning,
validation) follows them:

- host tensors reach the device through pinned memory with ``non_blocking=True``
  (``to_device``): a plain ``.to("cuda")`` of pageable memory synchronises the whole stream;
- values the host needs (lengths, frame counts) are computed on the host, never read back
  (``int(t.max())``, ``.item()``, ``.tolist()`` of a device tensor wait for the device);
- losses are summed on the device and read once per epoch (``LossSums``).

Precision on CUDA: the encoder runs under bfloat16 autocast (``autocast``), the head and the
losses in float32; on a CPU autocast is off, so CPU numbers do not change. bf16 needs no loss
scaling (it has float32's exponent range).

``XLBENCH_GPU_SHARE`` (a fraction in (0, 1], set by ``xlbench grid --per-gpu N`` to 1/N) caps
the share of a GPU's memory this process may allocate, so N runs can share one GPU and one that
needs more fails alone with an out-of-memory error instead of starving the others.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch

#: environment variable: the fraction of a GPU's memory this process may use (``--per-gpu``)
GPU_SHARE_ENV = "XLBENCH_GPU_SHARE"


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device`` without a stream synchronisation: CPU -> CUDA goes through pinned memory."""
    device = torch.device(device)
    if t.device == device or (device.type == t.device.type and device.index is None):
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)
    return t.to(device)


def autocast(device: torch.device | str, enabled: bool = True) -> AbstractContextManager[object]:
    """bfloat16 autocast on CUDA; nothing elsewhere (CPU results stay float32 and unchanged)."""
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def fused_adam_ok(params: list[torch.Tensor]) -> bool:
    """Whether Adam's fused CUDA kernel applies: every parameter a floating CUDA tensor."""
    return bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)


def gpu_share() -> float | None:
    """``XLBENCH_GPU_SHARE`` as a fraction in (0, 1], or None when unset or malformed."""
    raw = os.environ.get(GPU_SHARE_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 < value <= 1.0 else None


def apply_gpu_share(device: torch.device | str) -> float | None:
    """Cap this process's allocations on ``device`` at ``XLBENCH_GPU_SHARE`` of its memory."""
    device = torch.device(device)
    share = gpu_share()
    if share is None or device.type != "cuda" or share >= 1.0:
        return None
    torch.cuda.set_per_process_memory_fraction(share, device.index or 0)
    return share


def reset_peak_memory(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device | str) -> int | None:
    """Peak memory allocated by tensors on a CUDA device since the last reset (None elsewhere)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return int(torch.cuda.max_memory_allocated(device))


class LossSums:
    """Per-epoch sums of losses kept on the device, read once (``means``): no sync per step.

    ``add(name, loss, n)`` adds ``loss * n`` in float64, which gives exactly the sum of
    ``loss.item() * n`` over the steps, so epoch means equal those of a per-step ``.item()``.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, name: str, loss: torch.Tensor, n: int) -> None:
        # float64 where the device has it (MPS has not: float32 there)
        value = loss.detach().to(torch.float32 if loss.device.type == "mps" else torch.float64) * n
        self._sums[name] = self._sums[name] + value if name in self._sums else value

    def step(self, n: int) -> None:
        self.count += n

    def means(self) -> dict[str, float]:
        if not self._sums:
            return {}
        names = list(self._sums)
        values = torch.stack([self._sums[k] for k in names]).cpu().tolist()  # one transfer
        return {k: v / max(self.count, 1) for k, v in zip(names, values, strict=True)}
