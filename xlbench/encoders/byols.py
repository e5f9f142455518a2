"""``byols`` and ``byols-scratch``: BYOL-S (Scheidwasser-Clow et al. 2022; Elbanna et al. 2022).

The network is BYOL-A's AudioNTT2020 encoder as published in the serab-byols repository: three
blocks of (3x3 conv, batch norm, ReLU, 2x2 max pool) with 64 channels, then per time step a
two-layer MLP (dropout between), and mean + max over time. Input: a log-mel spectrogram with 64
bands from 60 to 7800 Hz, 1024-point FFT of a 25 ms Hann window (the paper's "64 ms" is the FFT
length), 10 ms hop, centred frames with reflected edges (torchaudio's MelSpectrogram defaults,
which serab-byols uses), normalised per spectrogram by its own mean and standard deviation
(paper Sec. 3.2.1; serab-byols itself normalises with statistics of the whole set of clips).

Frames are the MLP's outputs per time step after the three poolings (12.5 per second); the
vector is their mean plus their maximum, as in BYOL-A. Edges are reflected per utterance and
padded steps are zeroed before each convolution, so padding never changes a valid frame.

Dimension: the published checkpoint ``default2048_...pth`` gives 2048 values (5.3 M parameters);
the paper's Table 1 says 1024 and 1.6 M, which is this network with ``d = 1024``. The width is
read from the checkpoint, so either loads.

Weights: ``weights=PATH`` or ``$XLBENCH_BYOLS_WEIGHTS``; otherwise the published checkpoint in
the data home (``$XLBENCH_HOME/weights/byols/``), downloaded on first use from the serab-byols
repository at a pinned commit and checked against git's blob id of the file at that commit.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xlbench import hub
from xlbench.download import Checksum, fetch_file
from xlbench.encoders.base import Encoder, EncoderInfo, Option, describe_built, parse_int
from xlbench.encoders.frontends import log_mel, masked_mean_std, mel_filterbank, time_mask
from xlbench.encoders.weights import file_sha256
from xlbench.errors import ConfigError, MissingWeightsError
from xlbench.home import subdir

N_FFT, WIN, HOP, N_MELS = 1024, 400, 160, 64
F_MIN, F_MAX = 60.0, 7800.0
EPS = float(torch.finfo(torch.float32).eps)  # serab-byols: log(mel + float32 eps)
DEFAULT_DIM = 2048
WEIGHTS_ENV = "XLBENCH_BYOLS_WEIGHTS"
CHECKPOINT = "default2048_BYOLAs64x96-2105311814-e100-bs256-lr0003-rs42.pth"
#: the serab-byols repository at the commit whose checkpoint xlbench downloads
REPOSITORY = "GasserElbanna/serab-byols"
COMMIT = "115fd81235d2c14ddab4bcf55ed79250711c2a2c"
#: git's blob id of checkpoints/<CHECKPOINT> at that commit (`git ls-tree`): the published checksum
CHECKPOINT_BLOB = "04fb26805f52db1af541b2186d1fc1a9ce86e4c7"
#: where it is downloaded from; XLBENCH_BYOLS_URL names a mirror of the same file
CHECKPOINT_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/checkpoints/{CHECKPOINT}"
FETCH_COMMAND = "xlbench weights fetch byols"
WHERE = (
    f"run `{FETCH_COMMAND}` (it downloads checkpoints/{CHECKPOINT} from https://github.com/{REPOSITORY}), or "
    f"pass --encoder-option weights=/path/to/it.pth or set {WEIGHTS_ENV}=/path/to/it.pth"
)


class AudioNTT2020(nn.Module):
    """BYOL-A's encoder: (B, 1, mels, T) log-mel -> (B, T/8, d) per-step embeddings (masked)."""

    def __init__(self, n_mels: int = N_MELS, d: int = DEFAULT_DIM):
        super().__init__()
        # layer indices mirror the published state dict (features.0/1/4/5/8/9, fc.0/fc.3)
        blocks: list[nn.Module] = []
        for c_in in (1, 64, 64):
            blocks += [
                nn.Conv2d(c_in, 64, 3, stride=1, padding=1),
                nn.BatchNorm2d(64),
                nn.ReLU(),
                nn.MaxPool2d(2, 2),
            ]
        self.features = nn.Sequential(*blocks)
        self.fc = nn.Sequential(
            nn.Linear(64 * (n_mels // 8), d), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(d, d), nn.ReLU()
        )
        self.d = d

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i in range(0, len(self.features), 4):
            conv, bn, act, pool = self.features[i : i + 4]
            x = x.masked_fill(~time_mask(lengths, x.shape[-1])[:, None, None, :], 0.0)
            x = pool(act(bn(conv(x))))
            lengths = torch.div(lengths, 2, rounding_mode="floor")
        b, c, m, t = x.shape
        x = x.permute(0, 3, 2, 1).reshape(b, t, m * c)  # (B, time, mel*ch), BYOL-A's flattening order
        return self.fc(x), lengths


class BYOLS(Encoder):
    """BYOL-S (AudioNTT2020) with pretrained serab-byols weights; 2048-d, mean+max over time."""

    name = "byols"
    pooling = "mean+max"
    frozen_ok = True
    # centred frames: 8 of them (1120 samples, 70 ms) survive the three 2x poolings
    min_samples = 7 * HOP
    OPTIONS: ClassVar[dict[str, Option]] = {
        "weights": Option(f"the serab-byols .pth checkpoint (or set {WEIGHTS_ENV})")
    }

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, *, dim: int = DEFAULT_DIM, _scratch: bool = False
    ):
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN, periodic=True), persistent=False)
        self.register_buffer("fbank", mel_filterbank(N_FFT, N_MELS, F_MIN, F_MAX, self.sample_rate), persistent=False)
        self.weights_path: Path | None = None
        self._weights_sha: str | None = None
        if _scratch:
            self.net = AudioNTT2020(N_MELS, dim)
            return
        path = resolve_weights(weights)
        state = read_checkpoint(path)
        dim = check_state(state, path)
        self.net = AudioNTT2020(N_MELS, dim)
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"{path}: not a BYOL-S AudioNTT2020 state dict ({first})") from None
        self.weights_path = path
        self._weights_sha = file_sha256(path)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(1 + torch.div(lengths, HOP, rounding_mode="floor"), 8, rounding_mode="floor")

    def spectrogram(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (B, 1, 64, F) log-mel spectrograms and their valid frame counts."""
        half = N_FFT // 2
        n = 1 + torch.div(lengths, HOP, rounding_mode="floor")
        padded = wav.new_zeros(wav.shape[0], wav.shape[1] + 2 * half)  # the given width: shapes repeat
        for i, length in enumerate(lengths.tolist()):  # reflect each utterance at its own edges
            padded[i, : length + 2 * half] = F.pad(wav[i, :length][None, None], (half, half), mode="reflect")[0, 0]
        # a centred 1024-point frame holds the 400-sample window in its middle; the magnitude
        # spectrum does not depend on where in the zero-padded frame the window sits
        off = (N_FFT - WIN) // 2
        frames = padded[:, off:].unfold(-1, WIN, HOP)[:, : int(n.max())]
        mel = log_mel(frames, self.window, N_FFT, self.fbank, EPS)  # (B, F, 64)
        mean, std = masked_mean_std(mel, time_mask(n, mel.shape[1])[..., None])
        mel = (mel - mean[:, None, None]) / (std[:, None, None] + EPS)
        return mel.transpose(1, 2)[:, None], n

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_lengths(lengths)
        lengths = lengths.to(wav.device)
        with torch.autocast(wav.device.type, enabled=False):
            lms, n = self.spectrogram(wav.float(), lengths)
        frames, flen = self.net(lms, n)
        return frames.masked_fill(~time_mask(flen, frames.shape[1])[..., None], 0.0), flen

    def info(self) -> EncoderInfo:
        fetched = self.weights_path is not None and self.weights_path == default_checkpoint_path()
        return EncoderInfo(
            name=self.name,
            revision=(f"{REPOSITORY}@{COMMIT}" if fetched else self.weights_path.stem) if self.weights_path else None,
            weights_sha=self._weights_sha,
            dim=self.net.d,
            frame_dim=self.net.d,
            frame_rate=self.sample_rate / HOP / 8,
            params=self.parameter_count(),
            pretraining="AudioSet, speech-related clips (BYOL-S, serab-byols)",
            pretrained=True,
            # AudioSet is YouTube audio; none of the benchmark corpora is known to be in it.
            # A corpus found in the pretraining data goes here by its xlbench name ("ravdess").
            contamination=[],
            options={"weights": str(self.weights_path)} if self.weights_path else {},
            pooling=self.pooling,
            frozen_ok=True,
            code_version=self.version,
        )

    @classmethod
    def describe(cls) -> dict[str, Any]:
        scratch = AudioNTT2020(N_MELS, DEFAULT_DIM)
        out: dict[str, Any] = {"dim": DEFAULT_DIM, "params": sum(p.numel() for p in scratch.parameters())}
        out["pretrained"] = True
        try:
            with hub.local_only():  # a listing never downloads
                path = resolve_weights(None)
        except MissingWeightsError:
            out["weights"] = f"missing: `{FETCH_COMMAND}` (or downloaded on first use), or set {WEIGHTS_ENV}"
        else:
            out["weights"] = f"found: {path}"
        return out


class BYOLSScratch(BYOLS):
    """BYOL-S architecture, random initialisation (no weights): trained end to end."""

    name = "byols-scratch"
    frozen_ok = False
    OPTIONS: ClassVar[dict[str, Option]] = {
        "dim": Option(f"embedding width (default {DEFAULT_DIM}; the paper's Table 1 says 1024)", parse_int)
    }

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        if dim < 1:
            raise ConfigError(f"encoder 'byols-scratch': dim must be positive, got {dim}")
        super().__init__(dim=dim, _scratch=True)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return describe_built(cls())  # random init: nothing to find

    def info(self) -> EncoderInfo:
        return (
            super()
            .info()
            .model_copy(
                update={
                    "pretraining": None,
                    "pretrained": False,
                    "revision": "from scratch (random init)",
                    "options": {"dim": self.net.d} if self.net.d != DEFAULT_DIM else {},
                    "frozen_ok": False,
                }
            )
        )


# -- checkpoints ----------------------------------------------------------------------------


def default_checkpoint_path() -> Path:
    """Where the downloaded checkpoint lives: ``$XLBENCH_HOME/weights/byols/<CHECKPOINT>``."""
    return subdir("weights", "byols", create=False) / CHECKPOINT


def fetch_checkpoint(show_progress: bool = True) -> Path:
    """Download the published checkpoint into the data home (resumable), checked against its git blob id."""
    path = default_checkpoint_path()
    if path.is_file():
        return path
    url = os.environ.get("XLBENCH_BYOLS_URL") or CHECKPOINT_URL
    hub.require_downloads(f"the BYOL-S checkpoint {CHECKPOINT}", FETCH_COMMAND, where=path)
    check = Checksum("git-blob-sha1", CHECKPOINT_BLOB, f"git blob id at {REPOSITORY}@{COMMIT[:12]}")
    fetch_file(url, path, what=f"BYOL-S checkpoint {CHECKPOINT}", checksums=[check], show_progress=show_progress)
    return path


def resolve_weights(weights: str | os.PathLike[str] | None) -> Path:
    """The checkpoint to load: the option, then $XLBENCH_BYOLS_WEIGHTS, then the data home (downloaded
    on first use unless xlbench is offline or inside ``hub.local_only()``)."""
    source = "option weights" if weights else f"${WEIGHTS_ENV}"
    weights = weights or os.environ.get(WEIGHTS_ENV)
    if not weights:
        if default_checkpoint_path().is_file() or hub.downloads_allowed():
            return fetch_checkpoint()
        why = f" and xlbench is offline ({hub.offline_reason()})" if hub.offline() else ""
        raise MissingWeightsError(f"BYOL-S weights are not on this machine{why}: {WHERE}")
    path = Path(weights).expanduser()
    if path.is_dir():
        found = sorted(path.glob("default*.pth"))
        if len(found) != 1:
            raise MissingWeightsError(f"{path} ({source}) is a folder without a single default*.pth in it: {WHERE}")
        path = found[0]
    if not path.is_file():
        raise MissingWeightsError(f"BYOL-S weights {path} ({source}) not found: {WHERE}")
    return path


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A flat state dict from a .pth file that may nest it or prefix its keys."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise MissingWeightsError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated? {first}); {WHERE}"
        ) from None
    for _ in range(3):  # {"state_dict": {...}}, {"model": {...}}, ... one or two levels deep
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            nested = [v for k, v in obj.items() if isinstance(v, dict) and k in _NEST_KEYS]
            if not nested:
                break
            obj = nested[0]
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{path} holds no state dict of tensors; {WHERE}")
    anchor = "features.0.weight"
    prefixes = [k[: -len(anchor)] for k in obj if isinstance(k, str) and k.endswith(anchor)]
    if not prefixes:
        sample = ", ".join(list(obj)[:3])
        raise ConfigError(
            f"{path} is not a BYOL-S AudioNTT2020 checkpoint (keys like {sample}); the cvt and "
            f"resnetish34 checkpoints are other networks: use {CHECKPOINT}"
        )
    prefix = min(prefixes, key=len)  # e.g. "", "module.", "model.online_net.encoder."
    return {k[len(prefix) :]: v for k, v in obj.items() if isinstance(k, str) and k.startswith(prefix)}


_NEST_KEYS = ("state_dict", "model", "model_state_dict", "net", "encoder", "online_net", "backbone", "module")


def check_state(state: dict[str, torch.Tensor], path: Path) -> int:
    """The embedding width the checkpoint was trained with; refuse other shapes."""
    first, second = state.get("fc.0.weight"), state.get("fc.3.weight")
    if first is None or second is None or first.dim() != 2 or second.dim() != 2:
        raise ConfigError(f"{path}: not a BYOL-S AudioNTT2020 state dict (no fc.0 / fc.3 layers); {WHERE}")
    if first.shape[1] != 64 * (N_MELS // 8) or second.shape != (first.shape[0], first.shape[0]):
        raise ConfigError(
            f"{path}: AudioNTT2020 state dict for another input size (fc.0 takes {first.shape[1]} values, "
            f"this front end gives {64 * (N_MELS // 8)} from {N_MELS} mel bands)"
        )
    return int(first.shape[0])
