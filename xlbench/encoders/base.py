"""The utterance-encoder interface (paper Sec. 3.2.1: the encoder e of the backbone).

An encoder turns 16 kHz waveforms into frames (``frames``) and frames into one vector per
utterance (``pool``). Keeping the two apart lets a frozen encoder's frames be cached once and
a random 2 s training crop become a window of cached frames (xlbench.features).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class EncoderInfo(BaseModel):
    """How an encoder describes itself in run records and cache keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # registry name, e.g. "hubert" or "hf:microsoft/wavlm-base-plus"
    revision: str | None = None  # model revision / commit, where known
    weights_sha: str | None = None  # hash of the weights actually loaded; None for parameter-free
    dim: int  # pooled vector size
    frame_dim: int  # size of one frame (what the feature cache stores)
    frame_rate: float  # frames per second of audio
    params: int  # all parameters
    pretraining: str | None = None  # e.g. "LibriSpeech 960 h"
    pretrained: bool  # weights come from pretraining (False: random init / parameter-free)
    #: benchmark corpora known to be in the pretraining data (a contamination flag)
    contamination: list[str] = Field(default_factory=list)
    options: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class Encoder(nn.Module, ABC):
    """Subclasses set the class attributes and implement ``frames`` and ``info``."""

    sample_rate: int = 16_000
    #: shortest waveform (samples) that yields at least one frame
    min_samples: int = 400
    #: whether frozen outputs mean something (pretrained or parameter-free); False for
    #: from-scratch models such as EmotionCNN, which must be trained end to end
    frozen_ok: bool = True
    #: how frames become a vector: "mean", "mean+std" or "mean+max"
    pooling: str = "mean"

    @abstractmethod
    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveforms with valid lengths (B,) -> (B, F, frame_dim) frames and valid frame counts (B,)."""

    @abstractmethod
    def info(self) -> EncoderInfo:
        """Identity, size and provenance."""

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames for given valid sample counts (override for exact receptive fields)."""
        return torch.clamp((lengths.float() * self.info().frame_rate / self.sample_rate).floor().long(), min=1)

    def pool(self, frames: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        """Masked pooling over time: padded frames never change the vector."""
        return masked_pool(frames, frame_lengths, self.pooling)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames, flen = self.frames(wav, lengths)
        return self.pool(frames, flen)

    @property
    def dim(self) -> int:
        return self.info().dim


def masked_pool(frames: torch.Tensor, lengths: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """Pool (B, F, D) frames over the first ``lengths[b]`` frames of each row."""
    b, f, _ = frames.shape
    mask = (torch.arange(f, device=frames.device)[None, :] < lengths.to(frames.device)[:, None]).unsqueeze(-1)
    n = mask.sum(1).clamp(min=1).to(frames.dtype)
    mean = (frames * mask).sum(1) / n
    if how == "mean":
        return mean
    if how == "mean+std":
        var = (((frames - mean[:, None, :]) * mask) ** 2).sum(1) / n
        return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)
    if how == "mean+max":
        neg = torch.finfo(frames.dtype).min
        mx = frames.masked_fill(~mask, neg).amax(1)
        return mean + mx
    raise ValueError(f"unknown pooling {how!r}")
