"""Utterance encoders, registered through the ``xlbench.encoders`` entry-point group.

``build_encoder("hubert", {"layer": "9"})`` builds a registered encoder from text options;
``build_encoder("hf:<model id or folder>")`` wraps any transformers speech encoder (wav2vec2,
HuBERT, WavLM, data2vec-audio) without registering it. See docs/encoders.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlbench.encoders.base import Encoder, EncoderInfo, masked_pool
from xlbench.errors import ConfigError, MissingWeightsError, XLBenchError
from xlbench.registry import Registry

ENCODERS: Registry[type[Encoder]] = Registry("xlbench.encoders", "encoder")

#: the built-in parameter-free encoder (``--encoder auto`` uses it where openSMILE is not installed)
DEFAULT_ENCODER = "logmel-stats"


def encoder_class(name: str) -> type[Encoder]:
    """The class registered as ``name`` (unknown names get a "did you mean")."""
    try:
        cls = ENCODERS.get(name)
    except ConfigError as exc:
        if name not in ENCODERS:
            raise ConfigError(f"{exc}; or use hf:<model id or folder> for a transformers speech encoder") from None
        raise
    if not (isinstance(cls, type) and issubclass(cls, Encoder)):
        reg = ENCODERS.registration(name)
        raise ConfigError(f"encoder {name!r} (from {reg.distribution}) is not an xlbench Encoder class")
    return cls


def build_encoder(name: str, options: Mapping[str, object] | None = None) -> Encoder:
    """An encoder by registry name or ``hf:<model id or folder>``, with validated options."""
    name = name.strip()
    if name.startswith("hf:"):
        from xlbench.encoders.hf import HFEncoder

        return HFEncoder.from_options(options, model=name[3:].strip())
    return encoder_class(name).from_options(options)


@dataclass(frozen=True)
class EncoderListing:
    """One row of ``xlbench features encoders``."""

    name: str
    status: str  # the registry's: ok, broken, conflict
    distribution: str
    summary: str
    dim: int | None = None
    params: int | None = None
    pretrained: bool | None = None
    frozen_ok: bool | None = None
    weights: str = ""
    error: str | None = None


def describe_encoders() -> list[EncoderListing]:
    """Every registered encoder with what can be known without loading model weights."""
    rows = []
    for reg in ENCODERS.try_load_all():
        base = {"name": reg.name, "status": reg.status, "distribution": reg.distribution}
        if reg.status != "ok":
            rows.append(EncoderListing(**base, summary="", error=reg.error or f"also from {', '.join(reg.others)}"))
            continue
        cls = reg.obj
        summary = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        details: dict[str, Any] = {}
        try:
            details = cls.describe()
        except XLBenchError as exc:  # a plugin may need something this machine lacks
            details = {"weights": f"error: {exc}"}
        except Exception as exc:  # a broken plugin shows as broken, the listing goes on
            rows.append(EncoderListing(**{**base, "status": "broken"}, summary=summary, error=repr(exc)))
            continue
        rows.append(
            EncoderListing(
                **base,
                summary=summary,
                dim=details.get("dim"),
                params=details.get("params"),
                pretrained=details.get("pretrained"),
                frozen_ok=getattr(cls, "frozen_ok", None),
                weights=str(details.get("weights", "")),
            )
        )
    return rows


__all__ = [
    "DEFAULT_ENCODER",
    "ENCODERS",
    "Encoder",
    "EncoderInfo",
    "EncoderListing",
    "MissingWeightsError",
    "build_encoder",
    "describe_encoders",
    "encoder_class",
    "masked_pool",
]
