"""Tiny randomly initialised transformers speech encoders, written to a folder like a download.

``tiny_hubert(folder)`` returns a folder that ``build_encoder("hf:<folder>")`` and
``build_encoder("hubert", {"path": folder})`` load through the real offline code path, in
milliseconds: tests, ``xlbench check-method`` and benchmarks use them instead of mocks. The
convolutional front end keeps HuBERT's geometry (400-sample receptive field, 320-sample hop,
50 frames/s) with few channels, so frame counts and masking are exercised exactly.

The config carries ``xlbench_random_init: true``, which makes ``info().pretrained`` False.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

#: HuBERT base's convolutional geometry
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)


def _tiny_kwargs(hidden: int, layers: int) -> dict[str, Any]:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden,
        "conv_dim": (16,) * len(CONV_KERNEL),
        "conv_kernel": CONV_KERNEL,
        "conv_stride": CONV_STRIDE,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        "xlbench_random_init": True,
    }


def write_model(folder: str | os.PathLike[str], config: Any, *, seed: int = 0, do_normalize: bool = False) -> Path:
    """Initialise ``AutoModel.from_config(config)`` with ``seed`` and save it with its preprocessor config."""
    from transformers import AutoModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):  # the caller's random stream stays untouched
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
    from xlbench.encoders.hf import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(folder)
    preprocessor = {
        "do_normalize": do_normalize,
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": getattr(config, "feat_extract_norm", "layer") == "layer",
        "sampling_rate": 16000,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=1) + "\n")
    return folder


def tiny_hubert(folder: str | os.PathLike[str], *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A 2-layer HuBERT (hidden 32, group-norm front end like HuBERT base), ~30 k parameters."""
    from transformers import HubertConfig

    return write_model(folder, HubertConfig(**_tiny_kwargs(hidden, layers)), seed=seed, do_normalize=False)


#: the name ``xlbench.contract`` uses
tiny_hubert_path = tiny_hubert


def tiny_wav2vec2(folder: str | os.PathLike[str], *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A 2-layer wav2vec2 with the other front end (layer norm, stable layer norm, normalised input)."""
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config(**_tiny_kwargs(hidden, layers), feat_extract_norm="layer", do_stable_layer_norm=True)
    return write_model(folder, config, seed=seed, do_normalize=True)


def random_hubert_base(folder: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Full-size HuBERT base (``HubertConfig()`` defaults, 94.4 M parameters), random weights."""
    from transformers import HubertConfig

    return write_model(folder, HubertConfig(xlbench_random_init=True), seed=seed, do_normalize=False)
