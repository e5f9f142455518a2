"""The utterance-encoder interface (paper Sec. 3.2.1: the encoder e of the backbone).

An encoder turns 16 kHz waveforms into frames (``frames``) and frames into one vector per
utterance (``pool``). Keeping the two apart lets a frozen encoder's frames be cached once and
a random 2 s training crop become a window of cached frames (xlbench.features).

Contract every encoder keeps (tests check it for the built-ins):

- ``frames(wav, lengths)``: samples beyond ``lengths[b]`` are ignored, whatever they hold, so
  padding a batch never changes an utterance's valid frames (in eval mode);
- ``frame_lengths(lengths)`` gives exactly the number of valid frames ``frames`` returns;
- audio shorter than ``min_samples`` is refused with a one-line DataError.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from xlbench.errors import ConfigError, DataError, did_you_mean

OptionValue = str | int | float | bool | None


class EncoderInfo(BaseModel):
    """How an encoder describes itself in run records and cache keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # registry name, e.g. "hubert" or "hf:microsoft/wavlm-base-plus"
    revision: str | None = None  # model revision / commit, where known
    weights_sha: str | None = None  # hash of the weights actually loaded; None for parameter-free
    dim: int  # pooled vector size
    frame_dim: int  # size of one frame (what the feature cache stores)
    frame_rate: float  # frames per second of audio; 0: one frame per utterance (utterance-level features)
    params: int  # all parameters
    pretraining: str | None = None  # e.g. "LibriSpeech 960 h"
    pretrained: bool  # weights come from pretraining (False: random init / parameter-free)
    #: benchmark corpora known to be in the pretraining data (a contamination flag)
    contamination: list[str] = Field(default_factory=list)
    options: dict[str, OptionValue] = Field(default_factory=dict)
    #: how frames become a vector ("mean", "mean+std", "mean+max")
    pooling: str = "mean"
    #: whether frozen outputs mean something (False: must be trained end to end)
    frozen_ok: bool = True
    #: the encoder's own code version: bumped when its computation changes (keys the cache)
    code_version: str = "1"


@dataclass(frozen=True)
class Option:
    """One ``--encoder-option key=value`` an encoder accepts: help text and a parser from text."""

    help: str
    parse: Callable[[str], Any] = str


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


class Encoder(nn.Module, ABC):
    """Subclasses set the class attributes and implement ``frames`` and ``info``."""

    #: registry name (what ``info().name`` reports unless overridden)
    name: ClassVar[str] = "encoder"
    #: bump when the computation changes: cached frames of an older version are not reused
    version: ClassVar[str] = "1"
    #: the options ``build_encoder`` accepts for this encoder, as ``key -> Option``
    OPTIONS: ClassVar[dict[str, Option]] = {}

    sample_rate: int = 16_000
    #: shortest waveform (samples) that yields at least one frame
    min_samples: int = 400
    #: whether frozen outputs mean something (pretrained or parameter-free); False for
    #: from-scratch models such as EmotionCNN, which must be trained end to end
    frozen_ok: bool = True
    #: how frames become a vector: "mean", "mean+std" or "mean+max"
    pooling: str = "mean"
    #: ``frames`` accepts ``lengths`` on the host (CPU) with ``wav`` on an accelerator, and then
    #: never waits for the device (xlbench.accelerator); others get lengths on ``wav``'s device
    host_lengths: ClassVar[bool] = False
    #: how the feature cache stores frames: float16 (half the disk) unless values need float32
    #: (openSMILE functionals reach 1e12, beyond float16's 65504)
    cache_dtype: ClassVar[str] = "float16"
    #: whether ``standardize=auto`` (TrainConfig) standardises this encoder's vectors before the
    #: head: True for hand-crafted features whose dimensions have wildly different scales
    standardize_features: ClassVar[bool] = False

    # -- construction from text options ------------------------------------------------------
    @classmethod
    def parse_options(cls, options: Mapping[str, object] | None) -> dict[str, Any]:
        """Validate ``key=value`` options (values may be text, as from the command line)."""
        parsed: dict[str, Any] = {}
        for key, value in (options or {}).items():
            key = str(key).strip()
            if key not in cls.OPTIONS:
                valid = ", ".join(sorted(cls.OPTIONS)) or "none (it takes no options)"
                raise ConfigError(
                    f"encoder {cls.name!r} has no option {key!r}{did_you_mean(key, cls.OPTIONS)}; "
                    f"valid options: {valid}"
                )
            try:
                parsed[key] = value if not isinstance(value, str) else cls.OPTIONS[key].parse(value.strip())
            except ValueError as exc:
                raise ConfigError(f"encoder {cls.name!r}: bad value for option {key!r}: {exc}") from None
        return parsed

    @classmethod
    def from_options(cls, options: Mapping[str, object] | None = None) -> Self:
        return cls(**cls.parse_options(options))

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """What a listing shows, without needing weights: dim, params, pretrained, weights.

        The default builds the encoder with its default options; encoders that need weights
        override it to report whether they are on this machine.
        """
        return describe_built(cls())

    # -- the interface ------------------------------------------------------------------------
    @abstractmethod
    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveforms, valid lengths (B,) -> (B, F, frame_dim) frames and valid frame counts (B,)."""

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

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- helpers for subclasses and the feature cache -----------------------------------------
    def check_lengths(self, lengths: torch.Tensor) -> None:
        """Refuse audio shorter than the receptive field with one line (never a torch crash)."""
        if lengths.numel() and int(lengths.min()) < self.min_samples:
            short = int(lengths.min())
            raise DataError(
                f"encoder {self.info().name!r} needs at least {self.min_samples} samples "
                f"({1000 * self.min_samples / self.sample_rate:.0f} ms at 16 kHz); got an utterance of "
                f"{short} samples ({1000 * short / self.sample_rate:.1f} ms)"
            )

    def cache_refusal(self, allow_untrained: bool = False) -> str | None:
        """Why this encoder's frames must not be cached, or None when they may.

        ``allow_untrained`` lets benchmarks and tests cache a from-scratch encoder anyway.
        """
        if not self.frozen_ok and not allow_untrained:
            return (
                f"encoder {self.info().name!r} is trained from scratch: its frozen frames mean "
                "nothing, so it is trained end to end and never cached"
            )
        return None

    def cache_identity(self) -> dict[str, Any]:
        """Everything that decides the frames this encoder computes (keys the feature cache).

        Local paths are left out (the weights' hash stands for them), so moving a weights folder
        does not invalidate the cache; random-init encoders are keyed by a hash of their state.
        """
        info = self.info()
        weights = info.weights_sha
        if weights is None and info.params > 0:
            weights = "state:" + state_dict_sha(self)
        return {
            "name": info.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "code_version": info.code_version,
            "revision": None if info.weights_sha else info.revision,  # the hash says more than a name
            "weights_sha": weights,
            "frame_dim": info.frame_dim,
            "frame_rate": info.frame_rate,
            "options": {k: v for k, v in sorted(info.options.items()) if k not in PATH_OPTIONS},
        }


def describe_built(encoder: Encoder) -> dict[str, Any]:
    """A listing's row for an encoder that could be built."""
    info = encoder.info()
    return {"dim": info.dim, "params": info.params, "pretrained": info.pretrained, "weights": "not needed"}


#: options that name a file or folder: identity comes from the weights' hash instead
PATH_OPTIONS = frozenset({"path", "weights"})


def state_dict_sha(module: nn.Module) -> str:
    """A hash of every parameter and buffer (for models not loaded from a file)."""
    h = hashlib.blake2b(digest_size=16)
    for key, tensor in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        t = tensor.detach().to("cpu").contiguous().reshape(-1)  # 0-d buffers cannot be viewed as bytes
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) bool: True on the first ``lengths[b]`` positions of each row."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def masked_pool(frames: torch.Tensor, lengths: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """Pool (B, F, D) frames over the first ``lengths[b]`` frames of each row."""
    f = frames.shape[1]
    mask = (torch.arange(f, device=frames.device)[None, :] < lengths.to(frames.device)[:, None]).unsqueeze(-1)
    n = mask.sum(1).clamp(min=1).to(frames.dtype)
    # masked_fill, not a product: padded frames may hold anything, even inf or NaN
    mean = frames.masked_fill(~mask, 0).sum(1) / n
    if how == "mean":
        return mean
    if how == "mean+std":
        var = ((frames - mean[:, None, :]).masked_fill(~mask, 0) ** 2).sum(1) / n
        return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)
    if how == "mean+max":
        neg = torch.finfo(frames.dtype).min
        mx = frames.masked_fill(~mask, neg).amax(1)
        return mean + mx
    raise ValueError(f"unknown pooling {how!r}")
