"""``opensmile-egemaps`` and ``opensmile-compare``: the hand-crafted feature sets of SER.

- eGeMAPS v02 (Eyben et al. 2016, IEEE Trans. Affective Computing 7(2)): 88 functionals of 25
  low-level descriptors (pitch, jitter, shimmer, loudness, formants, spectral slope, ...);
- ComParE 2016 (Schuller et al., Interspeech 2016 ComParE challenge): 6,373 functionals of 65
  low-level descriptors and their deltas.

Both are computed by the ``opensmile`` package (audEERING's Python wrapper; its wheels ship the
openSMILE library, nothing is downloaded) on the harness's 16 kHz mono audio.

**How they fit the frozen pipeline.** A feature set is defined by its functionals over an
utterance (percentiles, regression coefficients, peak statistics, voiced-segment lengths...), so
each utterance is cached as ONE frame: its functionals (``frame_rate`` 0, ``pooling`` mean of
that single frame). The training "crop" is then the whole utterance -- the random 2 s crop of
PROTOCOL.md section 5 does not apply to these encoders. Recomputing functionals on every random
crop would mean running openSMILE again for every utterance in every epoch (its functionals
are not a pooling of cached frames), or re-implementing them; docs/encoders.md gives the
measurements behind this choice.

Frames are cached as float32 (``cache_dtype``): ComParE values reach 1e12, far beyond float16.
Their scales differ by twelve orders of magnitude, so ``standardize=auto`` standardises them
with statistics of the task's training parts (``standardize_features``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from xlbench.encoders.base import Encoder, EncoderInfo
from xlbench.errors import ConfigError, DataError
from xlbench.opensmile_worker import extract_batch, installed_version

#: openSMILE needs 60 ms of audio for a finite value in every functional (shorter: NaN)
MIN_SAMPLES = 960


def opensmile_version() -> str:
    """The installed opensmile version; a one-line ConfigError when the package is missing."""
    version = installed_version()
    if version is None:
        raise ConfigError(
            "the opensmile encoders need the opensmile package: pip install opensmile "
            "(or reinstall xlbench, which depends on it)"
        )
    return version


class OpenSmileFunctionals(Encoder):
    """Utterance-level openSMILE functionals, one cached frame per utterance."""

    #: ``opensmile.FeatureSet`` member name
    feature_set: ClassVar[str]
    #: how many functionals the set has (checked against openSMILE on first use)
    n_features: ClassVar[int]

    pooling = "mean"  # of the single frame: the functionals themselves
    min_samples = MIN_SAMPLES
    frozen_ok = True
    cache_dtype: ClassVar[str] = "float32"
    standardize_features: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.opensmile_version = opensmile_version()

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(lengths, dtype=torch.long)

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveforms -> (B, 1, n_features) functionals of each row's first ``lengths[b]`` samples."""
        self.check_lengths(lengths)
        rows = [wav[b, :n].detach().float().cpu().numpy() for b, n in enumerate(lengths.tolist())]
        try:
            out = extract_batch(self.feature_set, "Functionals", rows)
        except (OSError, RuntimeError) as exc:  # a worker that died (BrokenProcessPool is a RuntimeError)
            raise DataError(f"encoder {self.name!r}: openSMILE extraction failed: {exc}") from None
        values = np.stack([r.reshape(-1) for r in out]) if out else np.zeros((0, self.n_features), np.float32)
        if values.shape[1] != self.n_features:
            raise DataError(
                f"encoder {self.name!r}: openSMILE {self.opensmile_version} gave {values.shape[1]} features, "
                f"expected {self.n_features}"
            )
        frames = torch.from_numpy(values).to(wav.device)[:, None, :]
        return frames, torch.ones(len(rows), dtype=torch.long, device=wav.device)

    def info(self) -> EncoderInfo:
        return EncoderInfo(
            name=self.name,
            revision=f"opensmile {self.opensmile_version}",  # keys the cache: a new openSMILE recomputes
            dim=self.n_features,
            frame_dim=self.n_features,
            frame_rate=0.0,  # one frame per utterance
            params=0,
            pretraining=None,
            pretrained=False,
            pooling=self.pooling,
            frozen_ok=True,
            code_version=self.version,
        )

    def cache_identity(self) -> dict[str, Any]:
        """The base identity (name, code version, ``revision`` = the opensmile version) plus the
        feature set and level, so the key changes with either even if a name were reused."""
        return {**super().cache_identity(), "feature_set": self.feature_set, "level": "functionals"}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        opensmile_version()  # a missing package shows in the listing
        return {"dim": cls.n_features, "params": 0, "pretrained": False, "weights": "not needed"}


class EGeMAPS(OpenSmileFunctionals):
    """openSMILE eGeMAPS v02: 88 utterance-level functionals (Eyben et al. 2016)."""

    name = "opensmile-egemaps"
    feature_set = "eGeMAPSv02"
    n_features = 88


class ComParE(OpenSmileFunctionals):
    """openSMILE ComParE 2016: 6,373 utterance-level functionals (Schuller et al. 2016)."""

    name = "opensmile-compare"
    feature_set = "ComParE_2016"
    n_features = 6373
