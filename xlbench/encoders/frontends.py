"""Signal front ends shared by the CNN encoders: framing, mel and ERB scales, masked statistics.

Everything here works on padded batches with valid lengths and never lets a sample beyond an
utterance's end reach one of its valid frames.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# -- scales -----------------------------------------------------------------------------------


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale (torchaudio's default, used by BYOL-A/BYOL-S)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, n_mels: int, f_min: float, f_max: float, sample_rate: int = 16_000) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular filters on the HTK mel scale, unnormalised."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - freqs[:, None]) / (upper - centre)[None, :]
    return torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None)).float()


def erb_rate(f: np.ndarray | float) -> np.ndarray:
    """Glasberg & Moore (1990) ERB-rate scale (ERB number) of frequencies in Hz."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f, dtype=np.float64))


def erb_space(f_min: float, f_max: float, n: int) -> np.ndarray:
    """n centre frequencies equally spaced on the ERB-rate scale, from f_min to f_max."""
    e = np.linspace(erb_rate(f_min), erb_rate(f_max), n)
    return (10.0 ** (e / 21.4) - 1.0) / 0.00437


# -- framing and masks ------------------------------------------------------------------------


def zero_beyond(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero every sample past each row's valid length (callers may pad with anything)."""
    mask = torch.arange(wav.shape[-1], device=wav.device)[None, :] < lengths.to(wav.device)[:, None]
    return wav.masked_fill(~mask, 0.0)


def n_frames(lengths: torch.Tensor, win: int, hop: int) -> torch.Tensor:
    """Frames of ``win`` samples every ``hop`` that fit entirely inside each valid length."""
    return torch.div(lengths - win, hop, rounding_mode="floor").clamp(min=-1) + 1


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row mean and standard deviation of ``x`` (B, ...) over ``mask`` (broadcastable)."""
    dims = tuple(range(1, x.dim()))
    m = mask.expand_as(x)
    n = m.sum(dims).clamp(min=1).to(x.dtype)
    mean = x.masked_fill(~m, 0).sum(dims) / n
    shape = (-1,) + (1,) * (x.dim() - 1)
    var = ((x - mean.view(shape)).masked_fill(~m, 0) ** 2).sum(dims) / (n - 1 if unbiased else n).clamp(min=1)
    return mean, var.sqrt()


def time_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def ceil_div(a: torch.Tensor, b: int) -> torch.Tensor:
    return torch.div(a + b - 1, b, rounding_mode="floor")


def next_fast_fft(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes pocketfft and cuFFT handle fastest)."""
    best = 1 << max(0, math.ceil(math.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def log_mel(frames: torch.Tensor, window: torch.Tensor, n_fft: int, fbank: torch.Tensor, eps: float) -> torch.Tensor:
    """(B, F, win) sample frames -> (B, F, n_mels) log mel power."""
    spec = torch.fft.rfft(frames * window, n=n_fft).abs().pow(2)
    return torch.log(spec @ fbank + eps)


def unfold_frames(wav: torch.Tensor, win: int, hop: int) -> torch.Tensor:
    """(B, T) -> (B, F, win) frames; a batch shorter than one window gets zero frames."""
    if wav.shape[-1] < win:
        wav = F.pad(wav, (0, win - wav.shape[-1]))
    return wav.unfold(-1, win, hop)
