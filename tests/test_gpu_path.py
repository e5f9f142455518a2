"""The GPU path, tested on a CPU where it can be: kernel options against the float32 native path,
a forward that never waits for the device, audio read by worker processes, waveform crops gathered
in one operation, and training pieces that only change behaviour on CUDA. Tests that need CUDA are
marked ``gpu`` (skipped without one)."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from tests.loader_method import LoaderMethod
from tests.method_utils import hide_validation_labels
from xlbench.accelerator import LossSums, autocast, fused_adam_ok, to_device
from xlbench.audio import AudioError, load_audio
from xlbench.audio_batches import AudioItem
from xlbench.encoders import build_encoder
from xlbench.encoders.hf_kernels import MaskedGroupNorm
from xlbench.encoders.tiny import tiny_hubert, tiny_wav2vec2
from xlbench.errors import ConfigError
from xlbench.features import encoder_key, extract_frames
from xlbench.inputs import Backbone, FrozenInputs, WaveBank, WaveInputs, random_crops
from xlbench.isolation import TestSet as HeldOut
from xlbench.isolation import job_for, run_method
from xlbench.protocol import EMOTIONS_5
from xlbench.tasks import LabeledSet, TransferTask, UnlabeledSet
from xlbench.training import TrainConfig, make_optimizer
from xlbench.view import BackboneSpec

SR = 16_000
#: stated tolerance of every kernel option against the float32 native path on a CPU (absolute and
#: relative, per frame value); docs/encoders.md says the same
TOL = 1e-4
CONVS = ["native", "conv2d", "unfold"]
pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")  # tiny tensors


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    # hubert: group-norm front end (HuBERT base's); wav2vec2: layer-norm front end, stable layer norm
    return {"hubert": tiny_hubert(root / "hubert"), "wav2vec2": tiny_wav2vec2(root / "wav2vec2")}


def padded_batch(seed: int = 0, lengths: tuple[int, ...] = (SR, 9_000, 4_321, 12_345)) -> tuple[torch.Tensor, ...]:
    """Padding that holds garbage and is wider than the longest utterance."""
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(len(lengths), max(lengths) + 777, generator=g), torch.tensor(lengths)


# -- kernels --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["hubert", "wav2vec2"])
@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_every_kernel_option_gives_the_float32_native_frames(models, model: str, conv: str, attn: str) -> None:
    """Each utterance of a padded batch, with the option, equals that utterance encoded alone by
    the default float32 CPU path (native convolutions, SDPA) -- also the length-aware GroupNorm."""
    reference = build_encoder(f"hf:{models[model]}").eval()
    enc = build_encoder(f"hf:{models[model]}", {"conv": conv, "attn": attn}).eval()
    wav, lengths = padded_batch()
    with torch.inference_mode():
        frames, flen = enc.frames(wav, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone, n_frames = reference.frames(wav[i : i + 1, :n], lengths[i : i + 1])
            assert int(n_frames) == int(flen[i])
            torch.testing.assert_close(frames[i, : int(n_frames)], alone[0], rtol=TOL, atol=TOL)
            assert not frames[i, int(n_frames) :].any()  # padded frames are zeros


@pytest.mark.parametrize("conv", ["conv2d", "unfold"])
def test_kernels_train_like_native(models, conv: str) -> None:
    """Fine-tuning: the gradients through a kernel option equal those through native convolutions."""
    wav, lengths = padded_batch(seed=1)
    grads = {}
    for kernel in ("native", conv):
        torch.manual_seed(0)
        enc = build_encoder(f"hf:{models['hubert']}", {"conv": kernel}).train()
        enc.model.config.mask_time_prob = 0.0  # SpecAugment draws random masks: off for a comparison
        enc.model.config.layerdrop = 0.0
        loss = enc(wav, lengths).square().sum()
        loss.backward()
        grads[kernel] = {n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None}
    assert grads["native"].keys() == grads[conv].keys() and len(grads["native"]) > 10
    for name, g in grads["native"].items():
        torch.testing.assert_close(grads[conv][name], g, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("groups", [8, 2])
@pytest.mark.parametrize("layout", ["contiguous", "channels-last"])
def test_masked_group_norm_is_group_norm_of_the_valid_steps(groups: int, layout: str) -> None:
    """Brute force: each row normalised alone over its valid steps by torch's GroupNorm."""
    torch.manual_seed(0)
    plain = torch.nn.GroupNorm(groups, 8)
    torch.nn.init.normal_(plain.weight)
    torch.nn.init.normal_(plain.bias)
    norm = MaskedGroupNorm(plain, [(1, 1)])
    x = torch.randn(3, 8, 20) * 3 + 1
    if layout == "channels-last":  # what the unfold kernel hands over: (B, T, C) memory
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    steps = torch.tensor([20, 13, 2])
    norm.steps, norm.padded = steps, True
    y = norm(x)
    for b, n in enumerate(steps.tolist()):
        expected = F.group_norm(x[b : b + 1, :, :n], groups, plain.weight, plain.bias, plain.eps)
        torch.testing.assert_close(y[b : b + 1, :, :n], expected, rtol=1e-5, atol=1e-5)
    norm.padded = False  # no padding: torch's own kernel
    torch.testing.assert_close(norm(x), plain(x))


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("where", ["host", "device"])
def test_a_forward_never_waits_for_the_device(models, conv: str, where: str) -> None:
    """On the meta device any read of a device value (``.item()``, ``.tolist()``, ``bool(t)``,
    a mask-dependent shape) raises; a forward that runs there never makes the host wait for a GPU."""
    for model in ("hubert", "wav2vec2"):
        enc = build_encoder(f"hf:{models[model]}", {"conv": conv}).eval().to("meta")
        lengths = torch.tensor([SR, 12_000, 9_000])
        with torch.inference_mode():
            frames, flen = enc.frames(torch.zeros(3, SR + 320, device="meta"),
                                      lengths if where == "host" else lengths.to("meta"))
        assert frames.device.type == "meta" and flen.shape == (3,)


def test_the_meta_check_catches_a_wait(models) -> None:
    """The check above has teeth: transformers' own eager path asks the device whether the
    padding mask may be dropped (``mask.all()``), and fails there."""
    enc = build_encoder(f"hf:{models['hubert']}", {"attn": "eager"}).eval().to("meta")
    with pytest.raises(RuntimeError, match="meta"), torch.inference_mode():
        enc.frames(torch.zeros(2, SR, device="meta"), torch.tensor([SR, 9_000]))


def test_speed_options_are_not_part_of_the_identity(models) -> None:
    base = build_encoder(f"hf:{models['hubert']}")
    fast = build_encoder(f"hf:{models['hubert']}", {"conv": "unfold", "attn": "eager", "compile": "false"})
    assert base.info() == fast.info() and encoder_key(base) == encoder_key(fast)
    assert fast.kernels == {"conv": "unfold", "attn": "eager"}
    assert fast.state_dict().keys() == base.state_dict().keys()  # weights load and hash as before
    for option, value in (("conv", "winograd"), ("attn", "flash"), ("compile", "maybe")):
        with pytest.raises(ConfigError, match=f"bad value for option '{option}'"):
            build_encoder(f"hf:{models['hubert']}", {option: value})


def test_kernels_survive_a_deepcopy(models) -> None:
    """Fine-tuning deep-copies the pretrained encoder per seed; the copy keeps its kernel choice."""
    enc = copy.deepcopy(build_encoder(f"hf:{models['hubert']}", {"conv": "unfold"})).eval()
    ref = build_encoder(f"hf:{models['hubert']}").eval()
    wav, lengths = padded_batch(seed=3)
    with torch.inference_mode():
        torch.testing.assert_close(enc(wav, lengths), ref(wav, lengths), rtol=TOL, atol=TOL)


@pytest.mark.slow
def test_compiled_feature_encoder_gives_the_same_frames(models) -> None:
    """compile=true: torch.compile of the convolutional feature encoder (inductor needs a C++
    compiler on a CPU; about half a minute here)."""
    ref = build_encoder(f"hf:{models['hubert']}").eval()
    enc = build_encoder(f"hf:{models['hubert']}", {"compile": "true", "conv": "unfold"}).eval()
    wav, lengths = padded_batch(seed=4)
    with torch.inference_mode():
        torch.testing.assert_close(enc.frames(wav, lengths)[0], ref.frames(wav, lengths)[0], rtol=TOL, atol=TOL)


# -- the extraction path --------------------------------------------------------------------------


def write_items(folder: Path, durations: list[float], rate: int = 22_050) -> list[AudioItem]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for i, seconds in enumerate(durations):
        path = folder / f"u{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
        from xlbench.audio import inspect_audio

        sha = inspect_audio(path).sha
        items.append(AudioItem(sha, seconds, lambda p=str(path), s=sha: load_audio(p, expected_sha=s), f"test/u{i}"))
    return items


def test_worker_processes_give_the_frames_of_in_process_reading(models, tmp_path: Path) -> None:
    items = write_items(tmp_path / "audio", [0.5, 1.3, 2.5, 3.2, 0.9, 1.7, 2.2])
    enc = build_encoder(f"hf:{models['hubert']}")
    kwargs = {"device": "cpu", "batch_seconds": 3.0}  # several batches, so several workers read
    alone = dict(extract_frames(enc, items, workers=0, **kwargs))
    workers = dict(extract_frames(enc, items, workers=2, **kwargs))
    assert alone.keys() == workers.keys() == {it.key for it in items}
    for key, frames in alone.items():
        assert np.array_equal(frames, workers[key])


def test_a_changed_file_read_by_a_worker_is_one_line(models, tmp_path: Path) -> None:
    items = write_items(tmp_path / "audio", [0.5, 1.3, 2.5, 3.2])
    sf.write(tmp_path / "audio" / "u0.wav", np.zeros(8000, np.float32), 22_050)  # changed after hashing
    enc = build_encoder(f"hf:{models['hubert']}")
    with pytest.raises(AudioError) as info:
        list(extract_frames(enc, items, device="cpu", batch_seconds=1.5, workers=2))
    message = str(info.value)
    assert message.count("\n") == 0 and "u0.wav: the file changed" in message
    assert "Traceback" not in message and "worker" not in message


# -- waveform crops ------------------------------------------------------------------------------


def loop_crops(rows: list[np.ndarray], size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """The per-utterance loop that ``WaveBank`` replaced, as it was: the reference."""
    starts = [int(rng.integers(0, len(r) - size + 1)) if len(r) > size else 0 for r in rows]
    crops = [r[s : s + size] for r, s in zip(rows, starts, strict=True)]
    out = np.zeros((len(rows), size), dtype=np.float32)
    for i, c in enumerate(crops):
        out[i, : len(c)] = c
    return out, [len(c) for c in crops]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gathered_crops_are_the_loop_crops(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    size = 500
    lengths = [size, size + 1, 3 * size, 7, size - 1, 70_000, 1, 2 * size + 3] * 3  # equal, longer, shorter
    rows = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    batch = random_crops(rows, size, a)
    expected, valid = loop_crops(rows, size, b)
    assert np.array_equal(batch.x.numpy(), expected) and batch.lengths.tolist() == valid
    assert batch.host_lengths is not None and batch.host_lengths.tolist() == valid
    assert a.random() == b.random()  # the same draws were taken from the run's random stream
    # the one-kernel gather a GPU runs, here on the CPU: the same crops
    bank = WaveBank(rows)
    bank.host = None
    gathered = bank.crops(np.arange(len(rows)), size, np.random.default_rng(seed))
    assert torch.equal(gathered.x, batch.x) and torch.equal(gathered.lengths, batch.lengths)
    whole = bank.whole(np.array([2, 0]))
    assert whole.x.shape == (2, lengths[2]) and torch.equal(whole.x[1, :size], torch.from_numpy(rows[0]))


def test_wave_inputs_batches_and_their_journey_to_a_worker() -> None:
    rng = np.random.default_rng(0)
    waves = {f"k{i}": rng.standard_normal(n).astype(np.float32) for i, n in enumerate([40_000, 20_000, 33_000])}
    store = WaveInputs.from_arrays(waves, crop_seconds=2.0)
    whole = store.eval_batch(["k1", "k0"])
    assert whole.x.shape == (2, 40_000) and whole.lengths.tolist() == [20_000, 40_000]
    assert np.array_equal(whole.x[0, :20_000].numpy(), waves["k1"]) and not whole.x[0, 20_000:].any()
    store.train_batch(["k0", "k2"], np.random.default_rng(1))  # builds the bank
    travelled = pickle.loads(pickle.dumps(store))
    assert travelled._bank is None and set(pickle.dumps(store)) and travelled.keys == store.keys
    moved = travelled.to("cpu")
    a = moved.train_batch(["k0", "k2", "k1"], np.random.default_rng(5))
    b = store.train_batch(["k0", "k2", "k1"], np.random.default_rng(5))
    assert torch.equal(a.x, b.x) and a.x.shape == (3, 32_000)


# -- training pieces -----------------------------------------------------------------------------


def test_loss_sums_equal_per_step_item_sums() -> None:
    rng = np.random.default_rng(0)
    losses, sizes = rng.random(37).astype(np.float32) * 3, rng.integers(1, 100, 37)
    sums = LossSums()
    total = 0.0
    for v, n in zip(losses, sizes, strict=True):
        t = torch.tensor(v)
        sums.add("loss", t, int(n))
        sums.step(int(n))
        total += t.item() * int(n)  # what the loops did before: exact equality is the claim
    assert sums.means() == {"loss": total / int(sizes.sum())}
    assert LossSums().means() == {}


def test_cpu_training_pieces_are_unchanged() -> None:
    """On a CPU: no autocast, torch's default Adam, tensors stay where they are."""
    model = torch.nn.Linear(4, 3)
    opt, _ = make_optimizer(Backbone(None, 4, 3, "mean"), TrainConfig())
    assert opt.defaults["fused"] is None and not fused_adam_ok(list(model.parameters()))
    with autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    t = torch.ones(3)
    assert to_device(t, "cpu") is t


def test_a_method_may_use_data_loader_workers_in_its_worker() -> None:
    """Since issue 10 a method's fit runs in a worker process; that worker is no daemon, so a
    DataLoader with worker processes of its own works inside it (docs/adding-a-method.md)."""
    rng = np.random.default_rng(0)
    keys = tuple(f"s{i:02d}" for i in range(24))
    frames = {k: rng.standard_normal((30, 4)).astype(np.float32) for k in (*keys, "v0", "v1", "t0", "t1")}
    task = TransferTask(
        source="english", target="italian", classes=EMOTIONS_5, n_labeled=0, seed=0, selection="paper",
        source_train=LabeledSet("source_train", "english", keys, np.arange(24) % 5),
        target_labeled=LabeledSet("target_labeled", "italian", (), np.zeros(0, np.int64)),
        target_unlabeled=UnlabeledSet("target_unlabeled", "italian", ()),
        validation=(LabeledSet("source_val", "english", ("v0", "v1"), np.array([0, 1])),),
    )
    view, scorer = hide_validation_labels(task)
    store = FrozenInputs(frames, frame_rate=10.0)
    job = job_for(LoaderMethod, config={}, task=view, inputs=store.subset(list(view.fit_keys())),
                  backbone=BackboneSpec(mode="frozen", dim=4, n_classes=5, pooling="mean"), device="cpu", seed=0,
                  show_progress=False)
    out = run_method(job, lambda: (store.subset(["t0", "t1"]), [HeldOut("target_test", ("t0", "t1"))]), scorer)
    extras = out.report.extras
    # processes started in the method's worker are fork-served: a dataset and collate_fn must pickle
    assert extras["start_method"] == "forkserver"
    assert extras["served"] == 24 and len(extras["loader_pids"]) == 2
    assert extras["method_pid"] != os.getpid() and extras["method_pid"] not in extras["loader_pids"]
    assert out.probabilities["target_test"].shape == (2, 5)
    assert out.peak_memory is None  # no GPU memory to speak of on a CPU (records then have no peak)


# -- on a GPU ------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("conv", CONVS)
def test_cuda_bf16_frames_match_the_cpu_float32_path(models, conv: str) -> None:
    cpu = build_encoder(f"hf:{models['hubert']}").eval()
    gpu = build_encoder(f"hf:{models['hubert']}", {"conv": conv}).eval().cuda()
    wav, lengths = padded_batch(seed=5)
    with torch.inference_mode():
        ref, flen = cpu.frames(wav, lengths)
        with autocast("cuda"):
            out, _ = gpu.frames(wav.cuda(), lengths)
    for i, n in enumerate(flen.tolist()):
        x, y = ref[i, :n], out[i, :n].float().cpu()
        assert (y - x).norm() / x.norm() < 0.05  # bf16 autocast on the GPU (docs/encoders.md)


@pytest.mark.gpu
def test_cuda_worker_reports_its_peak_memory() -> None:
    rng = np.random.default_rng(0)
    keys = tuple(f"s{i:02d}" for i in range(10))
    frames = {k: rng.standard_normal((30, 4)).astype(np.float32) for k in (*keys, "v0", "t0")}
    task = TransferTask(
        source="english", target="italian", classes=EMOTIONS_5, n_labeled=0, seed=0, selection="paper",
        source_train=LabeledSet("source_train", "english", keys, np.arange(10) % 5),
        target_labeled=LabeledSet("target_labeled", "italian", (), np.zeros(0, np.int64)),
        target_unlabeled=UnlabeledSet("target_unlabeled", "italian", ()),
        validation=(LabeledSet("source_val", "english", ("v0",), np.array([0])),),
    )
    from xlbench_baselines.bounds import CrossLingual

    view, scorer = hide_validation_labels(task)
    store = FrozenInputs(frames, frame_rate=10.0)
    job = job_for(CrossLingual, config={"epochs": 2}, task=view, inputs=store.subset(list(view.fit_keys())),
                  backbone=BackboneSpec(mode="frozen", dim=4, n_classes=5, pooling="mean"), device="cuda", seed=0,
                  show_progress=False)
    out = run_method(job, lambda: (store.subset(["t0"]), [HeldOut("target_test", ("t0",))]), scorer)
    assert out.peak_memory is not None and out.peak_memory > 0


@pytest.mark.gpu
def test_cuda_fine_tuning_step_uses_fused_adam_and_bf16(models) -> None:
    torch.manual_seed(0)
    enc = build_encoder(f"hf:{models['hubert']}")
    model = Backbone(enc, enc.info().dim, 5, "mean").cuda()
    opt, _ = make_optimizer(model, TrainConfig())
    assert opt.defaults["fused"] is True
    store = WaveInputs.from_arrays({f"k{i}": np.random.default_rng(i).standard_normal(40_000).astype(np.float32)
                                    for i in range(4)}).to("cuda")
    batch = store.train_batch([f"k{i}" for i in range(4)], np.random.default_rng(0)).to("cuda")
    assert batch.x.is_cuda and batch.host_lengths is not None and not batch.host_lengths.is_cuda
    logits = model(batch)
    assert logits.dtype == torch.float32
    F.cross_entropy(logits, torch.arange(4, device="cuda") % 5).backward()
    opt.step()
    assert dataclasses.is_dataclass(batch)
