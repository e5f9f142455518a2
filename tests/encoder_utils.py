"""Encoders for tests of identities and cache keys: they report a given EncoderInfo (or cache
identity) and compute nothing."""

from __future__ import annotations

from typing import Any

import torch

from xlbench.encoders.base import Encoder, EncoderInfo


class FixedInfo(Encoder):
    """An encoder that reports a given EncoderInfo (the base class's cache_identity decides its key)."""

    name = "fixed-info"

    def __init__(self, info: EncoderInfo) -> None:
        super().__init__()
        self.fixed = info

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def info(self) -> EncoderInfo:
        return self.fixed


class FixedIdentity(FixedInfo):
    """An encoder whose cache identity is given (as a subclass such as the transformers one builds its own)."""

    def __init__(self, identity: dict[str, Any], info: EncoderInfo) -> None:
        super().__init__(info)
        self.identity = identity

    def cache_identity(self) -> dict[str, Any]:
        return self.identity
