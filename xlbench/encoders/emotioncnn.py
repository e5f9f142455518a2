"""``emotioncnn``: EmotionCNN (Tamulevičius et al. 2020), trained from scratch on cochleagrams.

Paper (Agarla et al. 2024, Sec. 3.2.1 and Table 1): three convolutional layers, each followed by
ReLU, batch normalisation and 3x3 max pooling; input a cochleagram; a 128-d vector; 35,584
parameters; no pretraining. The paper gives neither channel counts nor kernel sizes, so they are
chosen here to land on its parameter count: 3x3 convolutions with 21, 26 and 128 channels give
35,580 parameters (batch-norm affine terms included), 4 fewer than Table 1.

Cochleagram (the front end, no parameters): a 4th-order gammatone filterbank of 64 channels
with centre frequencies equally spaced on the ERB-rate scale from 80 to 7800 Hz
(``scipy.signal.gammatone``, 64 ms FIR filters applied by FFT convolution: one filter per channel
over the whole batch at once), the envelope as frame RMS (25 ms window, 10 ms hop), natural-log
compression and per-utterance mean/variance normalisation (loudness differs a lot between the
benchmark's corpora). The filters are causal FIRs and the envelope frames lie inside the
utterance, so padding never changes a valid frame.

Frames are the CNN's time steps after the three poolings (100/27 = 3.7 per second): each is the
mean over the remaining frequency bins of the 128 channels; the vector is their mean over time.
Pooling uses ceil mode so that any utterance with one envelope frame (25 ms) still gives a frame.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F
from torch import nn

from xlbench.encoders.base import Encoder, EncoderInfo, Option
from xlbench.encoders.frontends import (
    ceil_div,
    erb_space,
    masked_mean_std,
    n_frames,
    next_fast_fft,
    time_mask,
    zero_beyond,
)

PAPER_PARAMS = 35_584  # Agarla et al. 2024, Table 1
N_BANDS, F_MIN, F_MAX = 64, 80.0, 7800.0
FIR_TAPS = 1024  # 64 ms: long enough for the slow decay of the 80 Hz channel (< 2 % of peak at the end)
WIN, HOP = 400, 160
CHANNELS = (21, 26, 128)
POOL = 3


class Cochleagram(nn.Module):
    """Waveforms (B, T) -> log gammatone envelopes (B, bands, F) at 100 frames/s."""

    def __init__(self, bands: int = N_BANDS, f_min: float = F_MIN, f_max: float = F_MAX, sample_rate: int = 16_000):
        super().__init__()
        self.sample_rate = sample_rate
        centres = erb_space(f_min, f_max, bands)
        taps = np.stack([scipy.signal.gammatone(f, "fir", numtaps=FIR_TAPS, fs=sample_rate)[0] for f in centres])
        self.register_buffer("centre_hz", torch.from_numpy(centres).float(), persistent=False)
        self.register_buffer("taps", torch.from_numpy(taps).float(), persistent=False)
        self._spectra: OrderedDict[tuple[int, str], torch.Tensor] = OrderedDict()

    def _filter_spectrum(self, n: int) -> torch.Tensor:
        key = (n, str(self.taps.device))
        if key not in self._spectra:
            self._spectra[key] = torch.fft.rfft(self.taps, n=n)
            while len(self._spectra) > 8:  # batches come in a few padded sizes; keep the recent ones
                self._spectra.popitem(last=False)
        self._spectra.move_to_end(key)
        return self._spectra[key]

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = wav.shape
        flen = n_frames(lengths, WIN, HOP)
        n = next_fast_fft(t + FIR_TAPS - 1)  # linear, not circular, convolution
        spec = torch.fft.rfft(wav, n=n)  # (B, n/2+1)
        h = self._filter_spectrum(n)  # (bands, n/2+1)
        # channel chunks bound the memory of the (B, chunk, n) filtered signals
        chunk = max(1, int(2**25 // max(1, b * n)))
        env = []
        for c0 in range(0, h.shape[0], chunk):
            y = torch.fft.irfft(spec[:, None, :] * h[None, c0 : c0 + chunk], n=n)[..., :t]
            env.append(F.avg_pool1d(y * y, WIN, HOP))  # mean power per 25 ms frame
        power = torch.cat(env, dim=1)[..., : int(flen.max())]
        return torch.log(power.clamp(min=0).sqrt() + 1e-5), flen


class EmotionCNN(Encoder):
    """Cochleagram + 3 x (conv, ReLU, batch-norm, 3x3 max-pool) -> 128-d; trained from scratch."""

    name = "emotioncnn"
    pooling = "mean"
    frozen_ok = False
    min_samples = WIN
    OPTIONS: ClassVar[dict[str, Option]] = {"bands": Option("gammatone channels of the cochleagram (default 64)", int)}

    def __init__(self, bands: int = N_BANDS) -> None:
        super().__init__()
        self.bands = bands
        self.cochleagram = Cochleagram(bands)
        convs, norms = [], []
        c_in = 1
        for c_out in CHANNELS:
            convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            norms.append(nn.BatchNorm2d(c_out))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        flen = n_frames(lengths, WIN, HOP)
        for _ in CHANNELS:
            flen = ceil_div(flen, POOL)
        return flen

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_lengths(lengths)
        lengths = lengths.to(wav.device)
        with torch.autocast(wav.device.type, enabled=False):
            x = zero_beyond(wav.float(), lengths)  # the given width: rounded widths give repeating shapes
            coch, flen = self.cochleagram(x, lengths)
            valid = time_mask(flen, coch.shape[-1])[:, None, :]
            mean, std = masked_mean_std(coch, valid)
            coch = (coch - mean[:, None, None]) / (std[:, None, None] + 1e-5)
        x = coch[:, None]  # (B, 1, bands, F)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            valid = time_mask(flen, x.shape[-1])[:, None, None, :]
            x = conv(x.masked_fill(~valid, 0.0))  # zeros past the end, as for a lone utterance
            x = norm(F.relu(x))
            x = F.max_pool2d(x.masked_fill(~valid, float("-inf")), POOL, POOL, ceil_mode=True)
            flen = ceil_div(flen, POOL)
        frames = x.mean(2).transpose(1, 2)  # (B, F', 128): mean over the remaining frequency bins
        frames = frames.masked_fill(~time_mask(flen, frames.shape[1])[..., None], 0.0)
        return frames, flen

    def info(self) -> EncoderInfo:
        return EncoderInfo(
            name=self.name,
            dim=CHANNELS[-1],
            frame_dim=CHANNELS[-1],
            frame_rate=self.sample_rate / HOP / POOL ** len(CHANNELS),
            params=self.parameter_count(),
            pretraining=None,
            pretrained=False,
            options={"bands": self.bands} if self.bands != N_BANDS else {},
            pooling=self.pooling,
            frozen_ok=False,
            code_version=self.version,
        )
