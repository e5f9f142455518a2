"""What an encoder costs, known before any weights are read: FLOPs per second of audio.

Counted by torch's ``FlopCounterMode`` on a model built from its config on the meta device (no
memory, no weights, no download): HuBERT base gives 14.8 GFLOP per audio second, the figure
benchmarks/bench_encoders.py counts on the real model. Used to estimate a run's time before
starting it (``xlbench reproduce --recipe paper`` on a CPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from xlbench import hub
from xlbench.errors import ConfigError, MissingWeightsError

SECONDS = 4  # audio counted: long enough that the per-frame cost dominates


def speech_config(name: str, options: Mapping[str, str]) -> object | None:
    """The transformers config of ``hubert`` or ``hf:<id|folder>``, from disk only; HuBERT base's
    defaults for ``hubert`` not on this machine; None for other encoders or an unknown model."""
    from transformers import AutoConfig, HubertConfig

    from xlbench.encoders.hf import HUBERT_ID

    if name == "hubert":
        folder = options.get("path")
        if not folder:
            found = hub.cached_snapshot(HUBERT_ID, options.get("revision"))
            if found is None:
                return HubertConfig()  # hubert-base-ls960 is HubertConfig's defaults in every size
            folder = str(found.folder)
    elif name.startswith("hf:"):
        folder = name[3:].strip()
        if not Path(folder).expanduser().is_dir():
            found = hub.cached_snapshot(folder, options.get("revision"))
            if found is None:
                return None
            folder = str(found.folder)
    else:
        return None
    try:
        return AutoConfig.from_pretrained(Path(folder).expanduser(), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise MissingWeightsError(f"{folder}: no readable transformers config ({type(exc).__name__})") from None


def flops_per_audio_second(name: str, options: Mapping[str, str] | None = None) -> float | None:
    """Forward FLOPs of encoder ``name`` per second of audio; None where it cannot be known."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModel

    from xlbench.encoders.hf import quiet_transformers

    config = speech_config(name, dict(options or {}))
    if config is None:
        return None
    try:
        with torch.device("meta"), quiet_transformers():
            model = AutoModel.from_config(config).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, SECONDS * 16_000, device="meta"))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot count the FLOPs of encoder {name!r} ({type(exc).__name__}: {exc})") from None
    return counter.get_total_flops() / SECONDS
