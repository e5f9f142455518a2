"""Encoder throughput and the speed-up of training a frozen encoder's head from the feature cache.

    python benchmarks/bench_encoders.py [--device auto|cpu|cuda|mps] [--seconds S] [--bf16/--no-bf16]
                                        [--utterances N] [--encoders a,b,...] [--peak-tflops T]
                                        [--kernels] [--compile] [--data-path] [--cache-path]
                                        [--profile DIR] [--encoder-option KEY=VALUE ...]

Everything runs offline on generated audio (2-5 s noise-and-harmonics "utterances") and randomly
initialised models, so the numbers measure speed, not quality:

- logmel-stats, emotioncnn, byols-scratch (BYOL-S's architecture), a tiny HuBERT, and a full-size
  HuBERT base built from ``HubertConfig()`` defaults (94.4 M parameters; nothing downloaded);
- **throughput**: audio seconds encoded per wall-clock second through ``extract_frames`` (the
  feature cache's path: length-bucketed batches, frames copied back as float16), and for the
  HuBERTs the model alone (batches already on the device, forward only);
- on CUDA, HuBERT base's model throughput as a fraction of the bf16 bound: peak dense bf16
  TFLOP/s divided by its FLOPs per audio second (counted with torch's FlopCounterMode; about
  13 GFLOP). The peak comes from the device name (H100/H200 SXM: 989 TFLOP/s) or --peak-tflops;
- ``--kernels``: HuBERT base's model-alone throughput for every kernel option of its
  convolutional feature encoder (``conv=native|conv2d|unfold``, xlbench.encoders.hf_kernels;
  with ``--compile`` also ``compile=true``) and with transformers' eager attention, and which
  measured fastest (the CUDA default should be that one);
- ``--data-path``: the extraction path with an encoder that does nothing, from 48 kHz wav files on
  disk (read, hash-checked, resampled to 16 kHz and padded by 0, 2, 4 and 8 worker processes):
  how much audio the data path alone can feed, against what the model consumes;
- ``--cache-path``: HuBERT base through ``FeatureCache.get_or_compute``, the whole path a run
  takes (workers reading files, the model, packs written with checksums);
- ``--profile DIR``: a torch.profiler trace of a few extraction batches of HuBERT base (a Chrome
  trace and the top operators by self time, CPU and CUDA);
- **epoch speed-up** for frozen encoders: one epoch of the paper's training (random 2 s crop of
  every utterance, pooling, linear head, Adam step, batch 100) from cached frames, through
  ``xlbench.inputs.FrozenInputs`` as training uses it, against re-encoding every crop through
  the encoder. Slow re-encoding epochs are timed on some batches and extrapolated (said so in the output).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("XLBENCH_PROGRESS", "0")

import numpy as np
import torch

from xlbench.encoders import build_encoder
from xlbench.encoders.base import Encoder, EncoderInfo
from xlbench.encoders.emotioncnn import PAPER_PARAMS
from xlbench.encoders.hf_kernels import CONV_KERNELS, CUDA_DEFAULT_CONV
from xlbench.encoders.tiny import random_hubert_base, tiny_hubert
from xlbench.features import AudioItem, FeatureCache, extract_frames, resolve_device
from xlbench.inputs import FrozenInputs

SR = 16_000
HUBERT_BASE_GFLOP_NOMINAL = 13.0
BATCH = 100  # the paper's batch size
CROP_SECONDS = 2.0
#: dense bf16 peak TFLOP/s by device name (no sparsity)
PEAKS = [("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0), ("A100", 312.0), ("L40S", 362.0)]
ALL = ["logmel-stats", "emotioncnn", "byols-scratch", "hubert-tiny", "hubert-base"]
FROZEN = {"logmel-stats", "byols-scratch", "hubert-tiny", "hubert-base"}  # byols-scratch stands in for byols


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def make_audio(total_seconds: float = math.inf, seed: int = 0, count: int | None = None) -> list[np.ndarray]:
    """Utterances of 2-5 s: noise plus a few harmonics of a wandering pitch (speech-like spectra)."""
    rng = np.random.default_rng(seed)
    out, total = [], 0.0
    while total < total_seconds and (count is None or len(out) < count):
        seconds = float(rng.uniform(2.0, 5.0))
        n = int(seconds * SR)
        t = np.arange(n) / SR
        f0 = rng.uniform(90, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wav = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.1 + 0.02 * rng.standard_normal(n)
        out.append(wav.astype(np.float32))
        total += seconds
    return out


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "--peak-tflops"
    if device.type != "cuda":
        return None, ""
    name = torch.cuda.get_device_name(device)
    for key, value in PEAKS:
        if key in name:
            return value, name
    return None, name


def flops_per_audio_second(enc: Encoder, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    wav = torch.randn(1, 10 * SR, device=device) * 0.1
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        enc.frames(wav, torch.tensor([10 * SR], device=device))
    return counter.get_total_flops() / 10.0


def throughput(
    enc: Encoder, waves: list[np.ndarray], device: torch.device, bf16: bool, batch_seconds: float, pad: int | None
) -> float:
    """Audio seconds per wall-clock second through the cache's extraction path."""
    items = [AudioItem(f"u{i}", len(w) / SR, (lambda w=w: w)) for i, w in enumerate(waves)]
    kwargs = {"device": device, "batch_seconds": batch_seconds, "bf16": bf16, "pad_multiple": pad}
    for _ in extract_frames(enc, items[:4], **kwargs):
        pass  # warm-up: kernels, allocator, filter spectra
    sync(device)
    t0 = time.perf_counter()
    for _ in extract_frames(enc, items, **kwargs):
        pass
    sync(device)
    return sum(it.seconds for it in items) / (time.perf_counter() - t0)


def model_throughput(
    enc: Encoder, waves: list[np.ndarray], device: torch.device, bf16: bool, batch_seconds: float
) -> float:
    """Forward passes only, on length-sorted batches already on the device."""
    order = sorted(waves, key=len, reverse=True)
    batches, current = [], []
    for w in order:
        if current and (len(current) + 1) * len(current[0]) / SR > batch_seconds:
            batches.append(current)
            current = []
        current.append(w)
    batches.append(current)
    ready = []
    for b in batches:
        x = torch.zeros(len(b), len(b[0]))
        for i, w in enumerate(b):
            x[i, : len(w)] = torch.from_numpy(w)
        # lengths on the host, as extraction passes them (an encoder that takes them there never
        # waits for the device)
        ready.append((x.to(device), torch.tensor([len(w) for w in b])))
    enc.eval().to(device)

    def run(n: int) -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for x, lengths in ready[:n]:
                enc.frames(x, lengths)

    run(2)
    sync(device)
    t0 = time.perf_counter()
    run(len(ready))
    sync(device)
    return sum(len(w) for w in waves) / SR / (time.perf_counter() - t0)


class NullEncoder(Encoder):
    """An encoder that does (almost) nothing: the extraction path's own cost, without a model."""

    name = "null"
    min_samples = 1
    host_lengths = True

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flen = lengths // 320 + 1
        frames = wav[:, ::320, None][:, : int(flen.max())]
        return frames, flen.to(wav.device)

    def info(self) -> EncoderInfo:
        return EncoderInfo(name="null", dim=1, frame_dim=1, frame_rate=50.0, params=0, pretrained=False)


def write_items(folder: Path, waves: list[np.ndarray], rate: int = 48_000) -> list[AudioItem]:
    """The waves as 16-bit wav files at ``rate`` (like RAVDESS and CaFE), to be read back as a run does."""
    import soundfile as sf
    import soxr

    from xlbench.audio import inspect_audio, load_audio

    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i, w in enumerate(waves):
        path = folder / f"u{i:05d}.wav"
        sf.write(path, soxr.resample(w, SR, rate), rate, subtype="PCM_16")
        sha = inspect_audio(path).sha
        items.append(AudioItem(sha, len(w) / SR, functools.partial(load_audio, str(path), expected_sha=sha)))
    return items


def data_path(items: list[AudioItem], device: torch.device, batch_seconds: float, workers: list[int]) -> list:
    """(workers, audio-s/s) of the extraction path alone: files read, resampled, padded, copied."""
    out = []
    for n in workers:
        t0 = time.perf_counter()
        for _ in extract_frames(NullEncoder(), items, device=device, batch_seconds=batch_seconds, workers=n):
            pass
        sync(device)
        out.append((n, sum(it.seconds for it in items) / (time.perf_counter() - t0)))
    return out


def kernel_table(folder: Path, waves: list[np.ndarray], device: torch.device, bf16: bool, batch_seconds: float,
                 compile_too: bool) -> list[tuple[str, float]]:
    """Model-alone audio-s/s of HuBERT base for each kernel option."""
    variants = [{"conv": k} for k in CONV_KERNELS] + [{"conv": "native", "attn": "eager"}]
    if compile_too:  # one compiled variant: compiling takes a minute or more per variant
        variants.append({"conv": CUDA_DEFAULT_CONV if device.type == "cuda" else "native", "compile": "true"})
    rows = []
    for options in variants:
        enc = build_encoder(f"hf:{folder}", options)
        rows.append((" ".join(f"{k}={v}" for k, v in options.items()), model_throughput(enc, waves, device, bf16,
                                                                                        batch_seconds)))
        print(f"{'':14s} kernels {rows[-1][0]:28s} model only {rows[-1][1]:10.1f} audio-s/s", flush=True)
        del enc
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def cache_path(enc: Encoder, items: list[AudioItem], device: torch.device, bf16: bool, root: Path) -> float:
    """Audio-s/s of ``FeatureCache.get_or_compute`` on files: reading, the model, packs written."""
    from xlbench.manifest import Utterance

    utts = [
        Utterance(id=f"bench/{i}", path=str(it.load.args[0]), corpus="bench", language="english", speaker="s",
                  gender="female", raw_label="x", emotion="anger", duration=it.seconds, sample_rate=48_000,
                  channels=1, subtype="PCM_16", sha=it.key)
        for i, it in enumerate(items)
    ]
    t0 = time.perf_counter()
    FeatureCache(enc, root=root, allow_untrained=True).get_or_compute(utts, device=device, progress=False, bf16=bf16)
    sync(device)
    return sum(it.seconds for it in items) / (time.perf_counter() - t0)


def profile(enc: Encoder, waves: list[np.ndarray], device: torch.device, bf16: bool, batch_seconds: float,
            out: Path) -> None:
    """A torch.profiler trace of extracting ``waves`` and the top operators by self time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    items = [AudioItem(f"u{i}", len(w) / SR, (lambda w=w: w)) for i, w in enumerate(waves)]
    for _ in extract_frames(enc, items[:4], device=device, batch_seconds=batch_seconds, bf16=bf16):
        pass  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities, record_shapes=False) as prof:
        for _ in extract_frames(enc, items, device=device, batch_seconds=batch_seconds, bf16=bf16, workers=0):
            pass
        sync(device)
    out.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(out / f"extract-{device.type}.json"))
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=25)
    (out / f"extract-{device.type}-top.txt").write_text(table)
    print(f"profile: {out / f'extract-{device.type}.json'} and the top operators by {key}:")
    print("\n".join(table.splitlines()[:16]), flush=True)


def write_corpus(folder: Path, waves: list[np.ndarray]) -> list:
    import soundfile as sf

    from xlbench.audio import inspect_audio
    from xlbench.manifest import Utterance

    folder.mkdir(parents=True, exist_ok=True)
    utts = []
    for i, w in enumerate(waves):
        path = folder / f"u{i:04d}.wav"
        sf.write(path, w, SR, subtype="FLOAT")
        info = inspect_audio(path)
        utts.append(
            Utterance(
                id=f"bench/u{i:04d}", path=str(path), corpus="bench", language="english", speaker=f"s{i % 10}",
                gender="female", raw_label="x", emotion="anger", duration=info.duration, sample_rate=SR,
                channels=1, subtype=info.subtype, sha=info.sha,
            )
        )  # fmt: skip
    return utts


def epoch_speedup(
    enc: Encoder,
    utts: list,
    waves: list[np.ndarray],
    device: torch.device,
    bf16: bool,
    cache_root: Path,
    budget_s: float,
) -> tuple[float, float, float, str]:
    """(cache build s, cached epoch s, re-encoding epoch s, note) for one epoch over ``utts``."""
    info = enc.info()
    t0 = time.perf_counter()
    store = FeatureCache(enc, root=cache_root, allow_untrained=True).get_or_compute(
        utts, device=device, progress=False, bf16=bf16
    )
    build = time.perf_counter() - t0
    shas = [u.sha for u in utts]
    labels = torch.randint(0, 5, (len(utts),), generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)

    def head_step(head: torch.nn.Module, opt: torch.optim.Optimizer, pooled: torch.Tensor, y: torch.Tensor) -> None:
        loss = torch.nn.functional.cross_entropy(head(pooled.float()), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # cached: the path training really takes (xlbench.inputs.FrozenInputs): a random 2 s window
    # of cached frames per utterance, pooled (prefix sums for mean / mean+std), then the head
    head = torch.nn.Linear(info.dim, 5).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    inputs = FrozenInputs({sha: store.frames(sha) for sha in shas}, info.frame_rate, CROP_SECONDS, enc.pooling, device)
    sync(device)
    build += time.perf_counter() - t0
    y_all = labels.to(device)

    def cached_epoch() -> None:
        for s in range(0, len(shas), BATCH):
            batch = inputs.train_batch(shas[s : s + BATCH], rng)
            head_step(head, opt, batch.x, y_all[s : s + BATCH])

    # as the runner does for frozen training on a CPU: one thread (a tiny head loses more to
    # thread hand-offs than it gains; measured 0.4 ms vs 55 ms per Adam step on a busy 2-core box)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    cached_epoch()
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - t0 < 1.0:
        cached_epoch()
        reps += 1
    sync(device)
    cached = (time.perf_counter() - t0) / reps
    torch.set_num_threads(threads)

    # re-encoding: a random 2 s crop of every waveform through the (frozen) encoder each epoch
    head = torch.nn.Linear(info.dim, 5).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    enc.eval().to(device)
    n_crop = int(CROP_SECONDS * SR)

    def reencode_batch(s: int) -> None:
        ws = waves[s : s + BATCH]
        x = torch.zeros(len(ws), n_crop)
        lengths = []
        for i, w in enumerate(ws):
            start = int(rng.integers(0, max(len(w) - n_crop, 0) + 1))
            piece = w[start : start + n_crop]
            x[i, : len(piece)] = torch.from_numpy(piece)
            lengths.append(len(piece))
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pooled = enc(x.to(device), torch.tensor(lengths, device=device))
        head_step(head, opt, pooled, labels[s : s + BATCH].to(device))

    starts = list(range(0, len(waves), BATCH))
    reencode_batch(0)  # warm-up
    sync(device)
    done, t0 = 0, time.perf_counter()
    for s in starts:
        reencode_batch(s)
        done += 1
        sync(device)
        if time.perf_counter() - t0 > budget_s and done < len(starts):
            break
    elapsed = time.perf_counter() - t0
    sizes = [min(BATCH, len(waves) - s) for s in starts]
    reencode = elapsed * sum(sizes) / sum(sizes[:done])
    note = "" if done == len(starts) else f"extrapolated from {done} of {len(starts)} batches"
    return build, cached, reencode, note


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seconds", type=float, default=None, help="audio for the throughput runs (CPU 60, GPU 3600)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (CUDA: on)")
    p.add_argument("--utterances", type=int, default=None, help="utterances per epoch (CPU 100, GPU 1000)")
    p.add_argument("--encoders", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--batch-seconds", type=float, default=None, help="padded audio per batch (CPU 60, GPU 800)")
    p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device, if not known")
    p.add_argument("--reencode-budget", type=float, default=30.0, help="seconds to time a re-encoding epoch")
    p.add_argument("--pad-multiple", type=int, default=None, help="round batch lengths up (samples; CUDA: 4000)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms per shape")
    p.add_argument("--kernels", action="store_true", help="HuBERT base: model throughput for every kernel option")
    p.add_argument("--compile", action="store_true", help="with --kernels: also compile=true (slow to compile)")
    p.add_argument("--data-path", action="store_true", help="the extraction path alone, from wav files, by workers")
    p.add_argument("--data-files", type=int, default=None,
                   help="wav files for --data-path and --cache-path (CPU 120, GPU 1500)")
    p.add_argument("--cache-path", action="store_true", help="HuBERT base through the feature cache, from wav files")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR", help="torch.profiler trace of HuBERT base")
    p.add_argument("--encoder-option", action="append", default=[], metavar="KEY=VALUE",
                   help="options of the HuBERT encoders, e.g. conv=unfold (repeatable)")
    args = p.parse_args(argv)
    options = dict(o.split("=", 1) for o in args.encoder_option)

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    bf16 = gpu if args.bf16 is None else args.bf16
    seconds = args.seconds or (3600.0 if gpu else 60.0)
    n_utts = args.utterances or (1000 if gpu else 100)
    batch_seconds = args.batch_seconds or (800.0 if gpu else 60.0)
    wanted = [e.strip() for e in args.encoders.split(",") if e.strip()]
    unknown = sorted(set(wanted) - set(ALL))
    if unknown:
        p.error(f"unknown encoder(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = args.cudnn_benchmark

    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    load = f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"device: {device} ({name}); torch {torch.__version__}; bf16 autocast {'on' if bf16 else 'off'}{load}")
    waves = make_audio(seconds, seed=0)
    epoch_waves = make_audio(seed=1, count=n_utts)
    print(f"throughput audio: {len(waves)} utterances, {sum(map(len, waves)) / SR:.0f} s; "
          f"epoch: {len(epoch_waves)} utterances, {CROP_SECONDS:g} s crops, batch {BATCH}")  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="xlbench-bench-"))
    builders: dict[str, Callable[[], Encoder]] = {
        "logmel-stats": lambda: build_encoder("logmel-stats"),
        "emotioncnn": lambda: build_encoder("emotioncnn"),
        "byols-scratch": lambda: build_encoder("byols-scratch"),
        "hubert-tiny": lambda: build_encoder(f"hf:{tiny_hubert(tmp / 'tiny')}", options),
        "hubert-base": lambda: build_encoder(f"hf:{base_folder()}", options),
    }

    @functools.cache
    def base_folder() -> Path:
        return random_hubert_base(tmp / "base")

    @functools.cache
    def files() -> list[AudioItem]:
        count = args.data_files or (1500 if gpu else 120)
        t0 = time.perf_counter()
        items = write_items(tmp / "wav48k", make_audio(seed=2, count=count))
        print(f"wav files: {len(items)} at 48 kHz, {sum(it.seconds for it in items):.0f} s of audio "
              f"(written in {time.perf_counter() - t0:.0f} s)", flush=True)
        return items

    goals: list[str] = []
    if args.data_path:
        for n, rate in data_path(files(), device, batch_seconds, [0, 2, 4, 8]):
            print(f"data path alone, {n} worker processes: {rate:10.1f} audio-s/s", flush=True)
    utts = write_corpus(tmp / "audio", epoch_waves) if FROZEN & set(wanted) else []
    peak, peak_source = peak_tflops(device, args.peak_tflops)

    rows = []
    for key in wanted:
        torch.manual_seed(0)
        enc = builders[key]()
        params = enc.parameter_count()
        if key == "emotioncnn":
            print(f"EmotionCNN parameter_count() = {params:,} (paper Table 1: {PAPER_PARAMS:,})")
        rate = throughput(enc, waves, device, bf16, batch_seconds, args.pad_multiple)
        line = f"{key:14s} {params:>12,} params  extract {rate:10.1f} audio-s/s"
        if key.startswith("hubert"):
            model_rate = model_throughput(enc, waves, device, bf16, batch_seconds)
            line += f"  model only {model_rate:10.1f} audio-s/s  (extract/model {rate / model_rate:.2f})"
            if key == "hubert-base":
                kernels = getattr(enc, "kernels", {})
                line += f"\n{'':14s} kernels {kernels}"
                verdict = "met" if rate >= 0.8 * model_rate else "NOT met"
                goals.append(f"GOAL extraction >= 0.8 of the model alone: {verdict} "
                             f"({rate / model_rate:.3f}: {rate:.1f} vs {model_rate:.1f} audio-s/s)")
                flops = flops_per_audio_second(enc, device)
                achieved = model_rate * flops / 1e12
                line += (
                    f"\n{'':14s} {flops / 1e9:.1f} GFLOP per audio second counted "
                    f"({HUBERT_BASE_GFLOP_NOMINAL:g} nominal); {achieved:.2f} TFLOP/s achieved"
                )
                if peak:
                    bound = peak * 1e12 / flops
                    line += (
                        f"\n{'':14s} bf16 bound {bound:,.0f} audio-s/s at {peak:g} TFLOP/s ({peak_source}): "
                        f"ratio {model_rate / bound:.3f}"
                    )
                    verdict = "met" if model_rate >= 0.3 * bound else "NOT met"
                    goals.append(f"GOAL model >= 0.30 of the bf16 bound: {verdict} ({model_rate / bound:.3f})")
                    if not bf16:
                        line += " (bf16 autocast is off: the bound is for bf16)"
        print(line, flush=True)
        if key == "hubert-base" and args.cache_path:
            cached_rate = cache_path(enc, files(), device, bf16, tmp / "cache-path")
            print(f"{'':14s} through the feature cache from 48 kHz files: {cached_rate:10.1f} audio-s/s", flush=True)
        if key == "hubert-base" and args.profile:
            profile(enc, waves[: max(8, len(waves) // 8)], device, bf16, batch_seconds, args.profile)
        if key == "hubert-base" and args.kernels:
            table = kernel_table(base_folder(), waves, device, bf16, batch_seconds, args.compile)
            best = max(table, key=lambda r: r[1])
            default = f"conv={CUDA_DEFAULT_CONV}" if gpu else "conv=native"
            print(f"{'':14s} fastest: {best[0]} ({best[1]:.0f} audio-s/s); conv=auto is {default} here", flush=True)
        if key in FROZEN:
            build, cached, reencode, note = epoch_speedup(
                enc, utts, epoch_waves, device, bf16, tmp / "cache", args.reencode_budget
            )
            ratio = reencode / cached if cached > 0 else math.inf
            extra = f"; {note}" if note else ""
            print(
                f"{'':14s} epoch of {len(utts)}: cached {cached * 1000:8.1f} ms, re-encoding {reencode:8.2f} s "
                f"-> {ratio:,.0f}x faster from the cache (one-off cache build {build:.1f} s{extra})",
                flush=True,
            )
            rows.append((key, ratio))
        del enc
        if gpu:
            torch.cuda.empty_cache()
    for goal in goals:
        print(goal)
    speedups = dict(rows)
    if "hubert-base" in speedups:  # the encoder the cache exists for (paper Table 1: 95 M parameters)
        ok = speedups["hubert-base"] >= 100
        print(
            f"speed-up goal (>= 100x for HuBERT base): {'met' if ok else 'NOT met'} ({speedups['hubert-base']:,.0f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
