"""``hubert`` and ``hf:<model id or folder>``: transformers speech encoders, loaded offline.

HuBERT base (Hsu et al. 2021; paper Sec. 3.2.1, Table 1) is ``facebook/hubert-base-ls960`` in
transformers' ``HubertModel``; the utterance vector is the mean of the last hidden state over
the valid frames. ``hf:<id or path>`` takes any wav2vec2-family speech encoder (wav2vec2, HuBERT,
WavLM, data2vec-audio) through ``AutoModel``. Weights come from a local folder (``path=`` for
``hubert``, the path itself for ``hf:``) or the standard Hugging Face cache; a model id missing
from the cache is downloaded on first use (xlbench.hub: only its config and one copy of its
weights, with a progress bar), unless xlbench is offline. ``revision=`` picks a branch, tag or
commit (default ``main``); the commit actually loaded is recorded in ``info().revision``, in run
records and in the feature-cache key.

Batching never changes an utterance's frames. The reference is each utterance encoded alone, at
its own length; a padded batch reproduces it because
- an attention mask is always passed, so padded frames are zeroed before the positional
  convolution and never attended to (also for models whose feature extractor config says
  ``return_attention_mask: false``: the warning in transformers' docs is about zero-padded
  batches drifting from unpadded inputs, which the next point removes);
- the group norm of the first convolution in "group" models (HuBERT base, wav2vec2 base) is
  computed over the valid time steps only (a forward hook replaces its output);
- stacked positional convolutions (data2vec-audio) see zeros past the end after every layer;
- frame counts come from the convolutional receptive field
  (``_get_feat_extract_output_lengths``): 400 samples give the first frame, then one per 320.
Audio shorter than the receptive field is refused with a one-line DataError.

The waveform is normalised (zero mean, unit variance over the valid samples) exactly when the
folder's ``preprocessor_config.json`` says ``do_normalize``; without that file, when the model's
convolutions use layer norm (the fairseq convention for models trained on normalised audio).

Options: ``layer=N`` takes hidden state N (0 = the Transformer's input, L = the last layer's
output; for "stable layer norm" models the default last hidden state also has the final layer
norm applied); ``layer=avg`` learns a softmax-weighted average of all L+1 hidden states
(s3prl's weighted-sum upstream, a small separate module whose weights train even when the
Transformer is frozen). ``layer=avg`` frames change while it trains, so the feature cache refuses
it (caching all 13 layers of HuBERT base would take 13 times the disk); use ``layer=N`` to cache
one layer. ``conv=``, ``attn=`` and ``compile=`` choose how the same frames are computed
(xlbench.encoders.hf_kernels); they are speed choices, not part of the encoder's identity.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from xlbench import hub
from xlbench.accelerator import to_device
from xlbench.encoders.base import Encoder, EncoderInfo, Option
from xlbench.encoders.hf_kernels import (
    ATTENTION,
    CONV_KERNELS,
    SDPA,
    FeatureConv,
    MaskedGroupNorm,
    output_steps,
    register_sdpa,
)
from xlbench.encoders.weights import files_sha256
from xlbench.errors import ConfigError, MissingWeightsError, OfflineError

#: model types whose transformers implementation has the wav2vec2-style conv feature encoder,
#: attention masks and ``_get_feat_extract_output_lengths`` this module relies on (all tested)
SPEECH_MODEL_TYPES = ("hubert", "wav2vec2", "wavlm", "data2vec-audio")
HUBERT_ID = "facebook/hubert-base-ls960"
HUBERT_BASE_PARAMS = 94_371_712  # HubertModel(HubertConfig()); a test checks it
#: pretraining data of well-known checkpoints (matched on the model id, or a folder's name)
PRETRAINING = {
    "hubert-base-ls960": "LibriSpeech 960 h",
    "hubert-large-ll60k": "Libri-Light 60k h",
    "wav2vec2-base": "LibriSpeech 960 h",
    "wav2vec2-large-lv60": "Libri-Light 60k h",
    "wavlm-base": "LibriSpeech 960 h",
    "wavlm-base-plus": "Libri-Light 60k h, GigaSpeech 10k h, VoxPopuli 24k h (English)",
    "data2vec-audio-base": "LibriSpeech 960 h",
}
# Contamination flags: benchmark corpora (by xlbench corpus name, e.g. "ravdess") known to be in
# a checkpoint's pretraining data. LibriSpeech, Libri-Light, GigaSpeech and VoxPopuli hold none
# of RAVDESS, SAVEE, TESS, CaFE, EMO-DB, EMOVO or ShEMO, so every entry is empty; add a model
# here with the corpora it saw when one is (e.g. a checkpoint fine-tuned on emotion corpora).
CONTAMINATION: dict[str, list[str]] = {name: [] for name in PRETRAINING}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def parse_layer(text: str) -> int | str:
    if text.lower() in ("avg", "average", "weighted"):
        return "avg"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer or 'avg', got {text!r}") from None


def parse_choice(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text.lower()

    return parse


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


class LayerAverage(nn.Module):
    """s3prl-style learned softmax-weighted sum of the L+1 hidden states."""

    def __init__(self, n: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n))  # uniform at the start

    def forward(self, hidden: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
        w = torch.softmax(self.logits.float(), dim=0)
        out = hidden[0].float() * w[0]
        for h, wi in zip(hidden[1:], w[1:], strict=True):
            out = out + h.float() * wi
        return out.to(hidden[-1].dtype)


class HFEncoder(Encoder):
    """Any transformers speech encoder (wav2vec2, HuBERT, WavLM, data2vec-audio) via ``hf:``."""

    name = "hf"
    pooling = "mean"
    frozen_ok = True
    OPTIONS: ClassVar[dict[str, Option]] = {
        "layer": Option(
            "hidden state to use: 0..L (default: the last), or avg (learned weighted average)", parse_layer
        ),
        "revision": Option("branch, tag or commit of a Hub model (default: main); the commit is recorded"),
        # speed choices: the same frames within float rounding, so not part of the encoder's
        # identity (like the device); docs/performance.md has what each measured
        "conv": Option(
            "kernels of the convolutional feature encoder: auto (native on a CPU, the fastest measured on "
            f"CUDA), {', '.join(CONV_KERNELS)}",
            parse_choice(("auto", *CONV_KERNELS)),
        ),
        "attn": Option(f"attention: {', '.join(ATTENTION)} (default sdpa: scaled_dot_product_attention)",
                       parse_choice(ATTENTION)),
        "compile": Option("torch.compile the convolutional feature encoder (true/false, default false)", parse_bool),
    }
    #: model types this class accepts (None: any of SPEECH_MODEL_TYPES)
    expect_types: ClassVar[tuple[str, ...] | None] = None

    def __init__(
        self,
        model: str,
        *,
        layer: int | str | None = None,
        revision: str | None = None,
        display_name: str | None = None,
        conv: str = "auto",
        attn: str = "sdpa",
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not model:
            raise ConfigError("hf: needs a model id or folder, e.g. hf:facebook/wav2vec2-base or hf:/path/to/model")
        self.source = model
        self.display_name = display_name or f"hf:{model}"
        self.folder, self.revision, self.model_id = locate(
            model, self._how_to_get(model), revision=revision, fetch_command=self._fetch_command(model)
        )
        self.config = load_config(self.folder, self.expect_types)
        self.revision = self.revision or getattr(self.config, "_commit_hash", None)
        self.weight_files = weight_files(self.folder, self._how_to_get(model))
        self.model = load_model(self.folder, self.config, self.weight_files)
        if not hasattr(self.model, "feature_extractor") or not hasattr(self.model, "_get_feat_extract_output_lengths"):
            raise ConfigError(f"{self.folder}: {type(self.model).__name__} has no convolutional feature encoder")
        self.do_normalize = read_do_normalize(self.folder, self.config)
        self.num_layers = int(self.config.num_hidden_layers)
        self.layer = self._check_layer(layer)
        self.layer_average = LayerAverage(self.num_layers + 1) if self.layer == "avg" else None
        kernels, strides = list(self.config.conv_kernel), list(self.config.conv_stride)
        self.hop = int(torch.tensor(strides).prod())
        receptive = 1
        for k, s in zip(reversed(kernels), reversed(strides), strict=True):
            receptive = (receptive - 1) * s + k
        self.min_samples = receptive
        self._frame_lengths: torch.Tensor | None = None
        self._install_mask_hooks()
        self.kernels = self._install_kernels(conv, attn)
        self.compile_convs = bool(compile)
        self._compiled = False
        self._weights_sha: str | None = None

    # -- options and errors -------------------------------------------------------------------
    def _fetch_command(self, model: str) -> str:
        return f"xlbench weights fetch hf:{model}"

    def _how_to_get(self, model: str) -> str:
        if _looks_like_repo_id(model) and not Path(model).expanduser().exists():
            return (
                f"run `{self._fetch_command(model)}` (it downloads into the Hugging Face cache), or put the "
                "model folder at PATH and use hf:PATH"
            )
        return "pass a folder written by save_pretrained (config.json + model.safetensors)"

    def _check_layer(self, layer: int | str | None) -> int | str | None:
        if layer is None or layer == "avg":
            return layer
        n = self.num_layers
        if not -(n + 1) <= int(layer) <= n:
            raise ConfigError(f"encoder {self.display_name!r}: layer must be 0..{n} or avg, got {layer}")
        return int(layer) % (n + 1)

    # -- masking hooks ------------------------------------------------------------------------
    def _install_mask_hooks(self) -> None:
        # The first convolution's GroupNorm is swapped for a masked one (same parameters, same
        # state-dict keys); stacked positional convolutions get a hook that zeroes padded steps.
        # Both find the current lengths through this encoder's attributes, so a deepcopy of the
        # encoder (one per seed when fine-tuning) works on the copy, not on the original.
        convs = list(self.model.feature_extractor.conv_layers)
        self._masked_norms: list[MaskedGroupNorm] = []
        for i, layer in enumerate(convs):
            norm = getattr(layer, "layer_norm", None)
            if isinstance(norm, nn.GroupNorm) and not isinstance(norm, MaskedGroupNorm):
                geometry = [(c.conv.kernel_size[0], c.conv.stride[0]) for c in convs[: i + 1]]
                layer.layer_norm = MaskedGroupNorm(norm, geometry)
                self._masked_norms.append(layer.layer_norm)
        pos = getattr(getattr(self.model, "encoder", None), "pos_conv_embed", None)
        for sub in getattr(pos, "layers", []) or []:  # stacked positional convolutions
            sub.register_forward_hook(self._zero_padded_frames_hook)

    def _install_kernels(self, conv: str, attn: str) -> dict[str, str]:
        """Feature-encoder convolutions computed by ``conv``; attention by ``attn`` (hf_kernels)."""
        for layer in self.model.feature_extractor.conv_layers:
            if not isinstance(layer.conv, FeatureConv):
                layer.conv = FeatureConv.replacing(layer.conv, conv)
            layer.conv.kernel = conv
        if attn == "sdpa":
            attn = register_sdpa() if getattr(self.model, "_supports_sdpa", False) else "eager"
        if getattr(self.model.config, "_attn_implementation", None) != attn:
            try:
                self.model.set_attn_implementation(attn)
            except (ValueError, ImportError) as exc:  # a model type that has no such attention
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise ConfigError(f"encoder {self.display_name!r}: attn={attn} is not available ({first})") from None
        return {"conv": conv, "attn": "sdpa" if attn == SDPA else attn}

    def _zero_padded_frames_hook(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if self._frame_lengths is None:
            return None
        t = output.shape[-1]  # (B, C, T)
        mask = torch.arange(t, device=output.device)[None, :] < self._frame_lengths.to(output.device)[:, None]
        return output.masked_fill(~mask[:, None, :], 0.0)

    @contextmanager
    def _lengths_active(
        self, samples: torch.Tensor, frames: torch.Tensor, width: int, host: bool
    ) -> Iterator[None]:
        """Valid lengths for the masking hooks and norms during one forward.

        With ``host`` lengths (CPU) the norms learn on the host whether a row is padded at all and
        get their steps through a non-blocking copy; with device lengths everything stays on the
        device (no row is assumed unpadded). Either way the host never waits for the device.
        """
        self._frame_lengths = frames
        device = frames.device
        for norm in self._masked_norms:
            t = output_steps(width, norm.geometry)
            steps = output_steps(samples, norm.geometry).clamp(1, max(t, 1))
            norm.padded = bool((steps < t).any()) if host else True
            norm.steps = to_device(steps, device) if host else steps
        try:
            yield
        finally:
            self._frame_lengths = None
            for norm in self._masked_norms:
                norm.padded = False
                norm.steps = norm.steps.new_zeros(0)

    # -- the interface ------------------------------------------------------------------------
    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.model._get_feat_extract_output_lengths(lengths).long()

    #: lengths may be given on the host with audio on a device (Encoder.host_lengths)
    host_lengths = True

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames and valid frame counts (on ``wav``'s device).

        Lengths on the host (a CPU tensor, also with audio on a GPU) keep the host from ever
        waiting for the device: frame counts and padding come from them. Lengths on the device
        work too; then the output is not trimmed to the longest utterance.
        """
        device = wav.device
        host = lengths.device.type == "cpu"
        lengths = lengths.long()
        if host or device.type == "cpu":
            self.check_lengths(lengths)
        flen_host = self.frame_lengths(lengths) if host else None
        lengths_dev = to_device(lengths, device)
        flen = to_device(flen_host, device) if flen_host is not None else self.frame_lengths(lengths_dev)
        # the width as given (not trimmed to the longest): rounded batch widths repeat shapes, so
        # cuDNN's per-shape kernel choice is made once, not once per batch
        mask = torch.arange(wav.shape[1], device=device)[None, :] < lengths_dev[:, None]
        x = wav.float().masked_fill(~mask, 0.0)
        if self.do_normalize:  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm over valid samples
            n = lengths_dev[:, None].to(x.dtype)
            mean = x.sum(1, keepdim=True) / n
            var = ((x - mean).masked_fill(~mask, 0) ** 2).sum(1, keepdim=True) / n
            x = ((x - mean) / torch.sqrt(var + 1e-7)).masked_fill(~mask, 0.0)
        if self.compile_convs and not self._compiled:  # on first use, on this very copy of the model
            self.model.feature_extractor.compile(dynamic=True)
            self._compiled = True
        hidden_wanted = self.layer is not None
        with self._lengths_active(lengths, flen, wav.shape[1], host), warnings.catch_warnings():
            # WavLM's attention hands torch mixed mask types; the result is right, the warning noise
            warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask.*")
            out = self.model(x, attention_mask=mask.long(), output_hidden_states=hidden_wanted, return_dict=True)
        if self.layer is None:
            frames = out.last_hidden_state
        elif self.layer == "avg":
            assert self.layer_average is not None
            frames = self.layer_average(out.hidden_states)
        else:
            frames = out.hidden_states[int(self.layer)]
        if flen_host is not None:
            frames = frames[:, : int(flen_host.max())]
        valid = torch.arange(frames.shape[1], device=frames.device)[None, :] < flen[:, None]
        return frames.masked_fill(~valid[..., None], 0.0), flen

    @property
    def weights_sha(self) -> str:
        if self._weights_sha is None:  # hashing 360 MB takes a second: once, and only when asked
            self._weights_sha = files_sha256(self.weight_files)
        return self._weights_sha

    def _known(self, table: dict[str, Any]) -> Any:
        key = (self.model_id or Path(self.source).name).rsplit("/", 1)[-1]
        return table.get(key)

    def info(self) -> EncoderInfo:
        random_init = bool(getattr(self.config, "xlbench_random_init", False))
        options: dict[str, Any] = {}
        if self.layer is not None:
            options["layer"] = self.layer
        return EncoderInfo(
            name=self.display_name,
            revision=self.revision,
            weights_sha=self.weights_sha,
            dim=int(self.config.hidden_size),
            frame_dim=int(self.config.hidden_size),
            frame_rate=self.sample_rate / self.hop,
            params=self.parameter_count(),
            pretraining=None if random_init else self._known(PRETRAINING),
            pretrained=not random_init,
            contamination=list(self._known(CONTAMINATION) or []),
            options=options,
            pooling=self.pooling,
            frozen_ok=self.frozen_ok,
            code_version=self.version,
        )

    def cache_refusal(self, allow_untrained: bool = False) -> str | None:
        if self.layer == "avg":
            return (
                f"encoder {self.display_name!r} with layer=avg learns its layer weights while training, so "
                "its frames are not fixed and are not cached; use layer=N to cache one hidden layer"
            )
        return super().cache_refusal(allow_untrained)

    def cache_identity(self) -> dict[str, Any]:
        # the same weights give the same frames whatever name or folder they were loaded by
        return {
            "family": "transformers-speech",
            "code_version": self.version,
            "model_type": self.config.model_type,
            # the Hub commit, where known: a new revision may change the config (and so the frames)
            # while keeping the weights' bytes, so it gets its own cache entry
            "revision": self.revision,
            "weights_sha": self.weights_sha,
            "layer": self.layer,
            "do_normalize": self.do_normalize,
            "frame_dim": int(self.config.hidden_size),
        }

    @classmethod
    def from_options(cls, options: Any = None, *, model: str = "") -> HFEncoder:  # type: ignore[override]
        return cls(model, **cls.parse_options(options))


class HuBERT(HFEncoder):
    """HuBERT base (facebook/hubert-base-ls960), 768-d masked mean of the last hidden state."""

    name = "hubert"
    expect_types = ("hubert",)
    OPTIONS: ClassVar[dict[str, Option]] = {
        "path": Option(f"a local folder with the model (default: {HUBERT_ID} from the Hugging Face cache)"),
        **HFEncoder.OPTIONS,
    }

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        layer: int | str | None = None,
        revision: str | None = None,
        **speed: Any,
    ) -> None:
        self.path = str(Path(path).expanduser()) if path else None
        source = self.path or HUBERT_ID
        if self.path and not Path(self.path).is_dir():
            raise MissingWeightsError(
                f"HuBERT folder {self.path} (option path) does not exist: put the {HUBERT_ID} folder there, or "
                "drop the option to use the Hugging Face cache (`xlbench weights fetch hubert`)"
            )
        super().__init__(source, layer=layer, revision=revision, display_name=self.name, **speed)

    def _fetch_command(self, model: str) -> str:
        return "xlbench weights fetch hubert"

    def _how_to_get(self, model: str) -> str:
        return (
            "run `xlbench weights fetch hubert` (it downloads into the Hugging Face cache), or put the model "
            "folder at PATH and pass --encoder-option path=PATH"
        )

    def info(self) -> EncoderInfo:
        base = super().info()
        if self.path:
            return base.model_copy(update={"options": {"path": self.path, **base.options}})
        return base

    @classmethod
    def from_options(cls, options: Any = None, **_: Any) -> HuBERT:  # type: ignore[override]
        return cls(**cls.parse_options(options))

    @classmethod
    def describe(cls) -> dict[str, Any]:
        found = describe_hf(HUBERT_ID, cls.expect_types)
        if "dim" not in found:  # not on this machine: HuBERT base's sizes are known anyway
            found.update(dim=768, params=HUBERT_BASE_PARAMS)
        if str(found.get("weights", "")).startswith("missing"):
            found["weights"] = "missing: `xlbench weights fetch hubert` (or downloaded on first use)"
        return {"pretrained": True, **found}


# -- locating and loading ---------------------------------------------------------------------


def _looks_like_repo_id(text: str) -> bool:
    return bool(_REPO_ID.match(text)) and not text.startswith((".", "~"))


def locate(
    model: str, how: str, *, revision: str | None = None, fetch_command: str = ""
) -> tuple[Path, str | None, str | None]:
    """(folder, commit, hub id) for a local folder, or a model id in (or downloaded into) the cache.

    A model id missing from the cache is downloaded when xlbench.hub allows it; offline (or inside
    ``hub.local_only()``) it is a one-line MissingWeightsError / OfflineError saying what to do.
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise MissingWeightsError(f"{path} is a file; a transformers model is a folder (config.json + weights)")
        if revision:
            raise ConfigError(f"revision={revision} applies to Hub model ids; {path} is a local folder")
        return path, folder_revision(path), None
    if not _looks_like_repo_id(model):
        raise MissingWeightsError(f"model folder {path} does not exist: {how}")
    found = hub.cached_snapshot(model, revision)
    if found is None:
        command = fetch_command or f"xlbench weights fetch hf:{model}"
        try:
            found = hub.fetch_snapshot(model, revision=revision, choose=choose_model_files, fetch_command=command)
        except OfflineError as exc:  # for a caller, weights missing offline are missing weights
            raise MissingWeightsError(str(exc)) from None
    return found.folder, found.commit, model


def choose_model_files(files: list[str] | tuple[str, ...] | Any) -> list[str]:
    """What a speech encoder needs from a Hub repository: its configs and one copy of its weights.

    safetensors are preferred, as transformers does; the pickle weights are fetched only when a
    repository has no safetensors (many repositories carry both, and TensorFlow/Flax ones too).
    """
    names = set(files)
    wanted = [n for n in ("config.json", "preprocessor_config.json") if n in names]
    safetensors = sorted(n for n in names if "/" not in n and n.endswith(".safetensors"))
    index = "model.safetensors.index.json"
    if safetensors or index in names:
        return wanted + ([index] if index in names else []) + safetensors
    pickles = sorted(n for n in names if "/" not in n and re.fullmatch(r"pytorch_model(-\d+-of-\d+)?\.bin", n))
    bin_index = "pytorch_model.bin.index.json"
    return wanted + ([bin_index] if bin_index in names else []) + pickles


def folder_revision(path: Path) -> str | None:
    """The commit a local model folder came from, where the folder says so."""
    snapshot = path.resolve()
    if snapshot.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", snapshot.name):
        return snapshot.name  # a snapshot folder of the hub cache is named by its commit
    # `huggingface-cli download --local-dir` leaves the commit in its download metadata
    meta = path / ".cache" / "huggingface" / "download" / "config.json.metadata"
    try:
        first = meta.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return first if re.fullmatch(r"[0-9a-f]{40}", first) else None


def load_config(folder: Path, expect: tuple[str, ...] | None) -> Any:
    from transformers import AutoConfig

    if not (folder / "config.json").is_file():
        raise MissingWeightsError(f"{folder} has no config.json: not a transformers model folder")
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"{folder}/config.json cannot be read as a transformers config ({first})") from None
    allowed = expect or SPEECH_MODEL_TYPES
    if config.model_type not in allowed:
        what = "a HuBERT model" if expect == ("hubert",) else f"a speech encoder ({', '.join(allowed)})"
        raise ConfigError(f"{folder} holds a {config.model_type!r} model, not {what}")
    return config


def weight_files(folder: Path, how: str) -> list[Path]:
    """The weight files from_pretrained reads, in its order of preference."""
    for name in WEIGHT_FILES:
        p = folder / name
        if not p.is_file():
            continue
        if name.endswith(".index.json"):
            try:
                shards = sorted(set(json.loads(p.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError):
                raise MissingWeightsError(f"{p} is not a readable shard index (corrupt?)") from None
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise MissingWeightsError(f"{folder}: weight shard(s) missing: {', '.join(missing[:3])}; {how}")
            return [folder / s for s in shards]
        return [p]
    raise MissingWeightsError(f"{folder} has a config but no weights (model.safetensors or pytorch_model.bin): {how}")


def load_model(folder: Path, config: Any, files: list[Path]) -> nn.Module:
    from transformers import AutoModel

    try:
        with quiet_transformers():
            model, loading = AutoModel.from_pretrained(
                folder, config=config, local_files_only=True, output_loading_info=True
            )
    except Exception as exc:  # safetensors, pickle and OS errors all mean: the weights are unusable
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if "mismatched" in first or "size mismatch" in first:
            raise MissingWeightsError(
                f"{folder}: the weights do not fit the {config.model_type} architecture in its config.json "
                "(tensors of another shape)"
            ) from None
        raise MissingWeightsError(
            f"{files[0]} cannot be loaded (corrupt or truncated? {type(exc).__name__}: {first})"
        ) from None
    missing = sorted(k for k in loading.get("missing_keys", ()) if not k.endswith("masked_spec_embed"))
    mismatched = list(loading.get("mismatched_keys", ()))
    if missing or mismatched:
        example = (missing or [str(m) for m in mismatched])[0]
        raise MissingWeightsError(
            f"{folder}: the weights do not fit the {config.model_type} architecture in its config.json "
            f"({len(missing)} tensor(s) missing, {len(mismatched)} of another shape, e.g. {example})"
        )
    model.eval()
    return model


def read_do_normalize(folder: Path, config: Any) -> bool:
    p = folder / "preprocessor_config.json"
    if p.is_file():
        try:
            value = json.loads(p.read_text()).get("do_normalize")
        except (OSError, ValueError, AttributeError):
            raise ConfigError(f"{p} is not readable JSON") from None
        if value is not None:
            return bool(value)
    return getattr(config, "feat_extract_norm", "layer") == "layer"


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or warnings from transformers: a user sees our one line, or nothing."""
    from transformers.utils import logging as tlog

    level, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()


def describe_hf(source: str, expect: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What a listing shows without loading weights: dims and parameter count from the config."""
    try:
        with hub.local_only():  # a listing never downloads
            folder, _, _ = locate(source, "")
        config = load_config(folder, expect)
        weight_files(folder, "")
    except (MissingWeightsError, ConfigError) as exc:
        return {"weights": f"missing ({str(exc).split(':')[0]})"}
    from transformers import AutoModel

    with torch.device("meta"), quiet_transformers():
        params = sum(p.numel() for p in AutoModel.from_config(config).parameters())
    return {"dim": int(config.hidden_size), "params": params, "weights": f"found: {folder}"}
