"""``logmel-stats``: the built-in, parameter-free default encoder (nothing to download).

Frames: 64 log-mel bands (25 ms Hann window, 10 ms hop, 60-7800 Hz: the band limits of BYOL-S,
paper Sec. 3.2.1) and their deltas, 128 values at 100 frames/s. Vector: mean and standard
deviation of the frames over time, 256 values -- the classic "statistics of low-level
descriptors" baseline of SER. It is what the main command uses when no HuBERT weights are on
the machine, so it is plain tensor code, fast on a CPU.

Frames are computed only from windows that lie entirely inside the utterance, and deltas
repeat an utterance's own edge frames, so batching and padding never change them.
"""

from __future__ import annotations

import torch

from xlbench.encoders.base import Encoder, EncoderInfo
from xlbench.encoders.frontends import log_mel, mel_filterbank, n_frames, unfold_frames, zero_beyond

WIN, HOP, N_FFT, N_MELS = 400, 160, 512, 64
F_MIN, F_MAX = 60.0, 7800.0
DELTA_N = 2  # regression over +-2 frames (HTK's usual delta window)


class LogMelStats(Encoder):
    """Log-mel (64) + deltas at 100 Hz, pooled mean+std to 256 values; no parameters."""

    name = "logmel-stats"
    pooling = "mean+std"
    min_samples = WIN
    frozen_ok = True

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN, periodic=True), persistent=False)
        self.register_buffer("fbank", mel_filterbank(N_FFT, N_MELS, F_MIN, F_MAX, self.sample_rate), persistent=False)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return n_frames(lengths, WIN, HOP)

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_lengths(lengths)
        lengths = lengths.to(wav.device)
        flen = self.frame_lengths(lengths)
        # the front end stays in float32 under autocast: a log of bf16 power loses the quiet bands
        with torch.autocast(wav.device.type, enabled=False):
            x = zero_beyond(wav.float(), lengths)
            mel = log_mel(unfold_frames(x, WIN, HOP), self.window, N_FFT, self.fbank, 1e-6)
            mel = mel[:, : int(flen.max())]
            return torch.cat([mel, deltas(mel, flen)], dim=-1), flen

    def info(self) -> EncoderInfo:
        return EncoderInfo(
            name=self.name,
            dim=4 * N_MELS,
            frame_dim=2 * N_MELS,
            frame_rate=self.sample_rate / HOP,
            params=0,
            pretraining=None,
            pretrained=False,
            pooling=self.pooling,
            frozen_ok=True,
            code_version=self.version,
        )


def deltas(x: torch.Tensor, lengths: torch.Tensor, n: int = DELTA_N) -> torch.Tensor:
    """Regression deltas over time of (B, F, D) frames, each row repeating its own edge frames."""
    b, f, d = x.shape
    t = torch.arange(f, device=x.device)[None, :]
    last = (lengths.to(x.device) - 1).clamp(min=0)[:, None]

    def at(idx: torch.Tensor) -> torch.Tensor:
        idx = torch.minimum(idx.clamp(min=0).expand(b, -1), last)
        return x.gather(1, idx[..., None].expand(-1, -1, d))

    out = sum(k * (at(t + k) - at(t - k)) for k in range(1, n + 1))
    return out / (2 * sum(k * k for k in range(1, n + 1)))
