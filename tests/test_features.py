"""The feature cache: keys, hits and misses, integrity, windows, read-only folders, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import xlbench.features as features
from xlbench.audio import inspect_audio, load_audio
from xlbench.encoders import build_encoder
from xlbench.encoders.tiny import tiny_hubert
from xlbench.errors import ConfigError, DataError
from xlbench.features import (
    AudioItem,
    FeatureCache,
    FeatureCacheWarning,
    FrameStore,
    cached_encoders,
    clear_cache,
    encoder_key,
    length_batches,
    resolve_device,
)
from xlbench.manifest import Manifest, Utterance, save_manifest

SR = 16_000
pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")  # tiny tensors


def write_utterances(folder: Path, durations: list[float], seed: int = 0, rate: int = 22_050) -> list[Utterance]:
    """Tiny wav files (noise with a pitch-like tone) and their Utterance records."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i, seconds in enumerate(durations):
        n = int(seconds * rate)
        t = np.arange(n) / rate
        wav = 0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * t)
        path = folder / f"utt{i}.wav"
        sf.write(path, wav.astype(np.float32), rate)
        info = inspect_audio(path)
        out.append(
            Utterance(
                id=f"test/utt{i}",
                path=str(path),
                corpus="test",
                language="english",
                speaker=f"s{i % 3}",
                gender="female",
                raw_label="ang",
                emotion="anger",
                duration=info.duration,
                sample_rate=info.sample_rate,
                channels=info.channels,
                subtype=info.subtype,
                sha=info.sha,
            )
        )
    return out


@pytest.fixture
def utts(tmp_path: Path) -> list[Utterance]:
    return write_utterances(tmp_path / "audio", [0.5, 1.3, 2.5, 3.2, 0.3])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hubert(tmp_path_factory.mktemp("tiny") / "hubert")


def counting(encoder):
    """Count the utterances an encoder is asked to encode."""
    calls = {"utterances": 0}
    original = encoder.frames

    def frames(wav, lengths):
        calls["utterances"] += len(lengths)
        return original(wav, lengths)

    encoder.frames = frames
    return calls


def packs(cache: FeatureCache) -> list[Path]:
    return sorted(cache.dir.glob("pack-*.npy"))


# -- hits, misses, storage ------------------------------------------------------------------


def test_miss_then_hit_and_float16_frames_equal_the_encoder(utts: list[Utterance]) -> None:
    enc = build_encoder("logmel-stats")
    calls = counting(enc)
    cache = FeatureCache(enc)
    store = cache.get_or_compute(utts, device="cpu", progress=False)
    assert calls["utterances"] == len(utts) and len(store) == len(utts)
    again = FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    assert calls["utterances"] == len(utts)  # nothing recomputed
    for u in utts:
        wav = torch.from_numpy(load_audio(u.path))
        with torch.inference_mode():
            direct, flen = enc.frames(wav[None], torch.tensor([len(wav)]))
        got = again.frames(u.sha)
        assert got.dtype == np.float16 and isinstance(got, np.memmap)
        assert got.shape == (int(flen[0]), 128)
        np.testing.assert_allclose(got.astype(np.float32), direct[0].numpy(), rtol=2e-3, atol=2e-3)
    # on disk: float16 packs with a json index carrying checksums
    (npy,) = packs(cache)
    assert np.load(npy, mmap_mode="r").dtype == np.float16
    index = json.loads(npy.with_suffix(".json").read_text())
    assert set(index["entries"]) == {u.sha for u in utts} and index["dim"] == 128
    assert json.loads((cache.dir / "key.json").read_text())["name"] == "logmel-stats"
    # only the missing ones are computed
    more = write_utterances(Path(utts[0].path).parent.parent / "more", [1.0, 1.1], seed=7)
    before = calls["utterances"]
    cache.get_or_compute(utts + more, device="cpu", progress=False)
    assert calls["utterances"] - before == 2


def test_cache_lives_under_xlbench_home(private_home: Path, utts: list[Utterance]) -> None:
    cache = FeatureCache(build_encoder("logmel-stats"))
    assert cache.dir.parent == private_home / "features"
    assert cache.dir.name.startswith("logmel-stats-")


def test_key_follows_options_weights_and_preprocessing(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = encoder_key(build_encoder("hubert", {"path": str(tiny_dir)}))
    assert encoder_key(build_encoder(f"hf:{tiny_dir}")) == base  # same weights, other name: shared
    moved = tmp_path / "moved"
    shutil.copytree(tiny_dir, moved)
    assert encoder_key(build_encoder("hubert", {"path": str(moved)})) == base  # a moved folder still hits
    assert encoder_key(build_encoder("hubert", {"path": str(tiny_dir), "layer": "1"})) != base
    other = tiny_hubert(tmp_path / "other", seed=1)
    assert encoder_key(build_encoder("hubert", {"path": str(other)})) != base
    logmel = encoder_key(build_encoder("logmel-stats"))
    monkeypatch.setattr(features, "PREPROCESSING_VERSION", "test-2")
    assert encoder_key(build_encoder("logmel-stats")) != logmel
    assert encoder_key(build_encoder("hubert", {"path": str(tiny_dir)})) != base


def test_changed_preprocessing_version_recomputes(utts: list[Utterance], monkeypatch: pytest.MonkeyPatch) -> None:
    enc = build_encoder("logmel-stats")
    calls = counting(enc)
    FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    monkeypatch.setattr(features, "PREPROCESSING_VERSION", "test-2")
    FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    assert calls["utterances"] == 2 * len(utts)


def test_tiny_hubert_frames_are_cached_exactly(tiny_dir: Path, utts: list[Utterance]) -> None:
    enc = build_encoder("hubert", {"path": str(tiny_dir)})
    store = FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False, batch_seconds=4.0)
    assert store.frame_rate == 50.0 and store.dim == 32
    for u in utts:
        wav = torch.from_numpy(load_audio(u.path))
        with torch.inference_mode():
            direct, _ = enc.eval().frames(wav[None], torch.tensor([len(wav)]))
        np.testing.assert_allclose(store.frames(u.sha).astype(np.float32), direct[0].numpy(), rtol=2e-3, atol=2e-3)


# -- integrity --------------------------------------------------------------------------------


def test_truncated_pack_is_detected_recomputed_and_repaired(utts: list[Utterance]) -> None:
    enc = build_encoder("logmel-stats")
    calls = counting(enc)
    cache = FeatureCache(enc)
    first = cache.get_or_compute(utts, device="cpu", progress=False)
    reference = {u.sha: np.array(first.frames(u.sha)) for u in utts}
    (npy,) = packs(cache)
    size = npy.stat().st_size
    with open(npy, "r+b") as f:
        f.truncate(size - 3000)  # the last utterances lose their rows
    del first
    with pytest.warns(FeatureCacheWarning, match="truncated"):
        store = FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    assert 0 < calls["utterances"] - len(utts) < len(utts)  # only the damaged ones
    for sha, rows in reference.items():
        np.testing.assert_array_equal(store.frames(sha), rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureCacheWarning)  # repaired: no warning the second time
        FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)


def test_corrupted_bytes_fail_the_checksum(utts: list[Utterance]) -> None:
    enc = build_encoder("logmel-stats")
    calls = counting(enc)
    cache = FeatureCache(enc)
    cache.get_or_compute(utts, device="cpu", progress=False)
    (npy,) = packs(cache)
    data = bytearray(npy.read_bytes())
    data[-200:-100] = bytes(100)  # zero some float16 values of the last entry
    npy.write_bytes(bytes(data))
    with pytest.warns(FeatureCacheWarning, match="checksum mismatch"):
        FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    assert calls["utterances"] == len(utts) + 1


def test_unreadable_index_is_ignored_with_a_warning(utts: list[Utterance]) -> None:
    enc = build_encoder("logmel-stats")
    cache = FeatureCache(enc)
    cache.get_or_compute(utts, device="cpu", progress=False)
    (npy,) = packs(cache)
    npy.with_suffix(".json").write_text("{ broken")
    with pytest.warns(FeatureCacheWarning, match="unreadable index"):
        store = FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    assert len(store) == len(utts)


def test_an_interrupted_extraction_keeps_what_it_finished(utts: list[Utterance]) -> None:
    enc = build_encoder("logmel-stats")
    original = enc.frames
    seen = {"batches": 0}

    def failing(wav, lengths):
        seen["batches"] += 1
        if seen["batches"] == 3:
            raise KeyboardInterrupt
        return original(wav, lengths)

    enc.frames = failing
    cache = FeatureCache(enc)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute(utts, device="cpu", progress=False, batch_seconds=1.0)
    assert cache.stored() == 2  # two batches of one utterance were finished and flushed


# -- read-only folders ------------------------------------------------------------------------


def test_unwritable_cache_folder_is_one_line(utts: list[Utterance], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = FeatureCache(build_encoder("logmel-stats"), root=blocker / "features")
    with pytest.raises(DataError, match=r"is not writable .*5 utterance\(s\) .*XLBENCH_HOME") as err:
        cache.get_or_compute(utts, device="cpu", progress=False)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_cache_folder(utts: list[Utterance], tmp_path: Path) -> None:
    root = tmp_path / "ro"
    enc = build_encoder("logmel-stats")
    FeatureCache(enc, root=root).get_or_compute(utts[:3], device="cpu", progress=False)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        store = FeatureCache(enc, root=root).get_or_compute(utts[:3], device="cpu", progress=False)
        assert len(store) == 3  # complete: read-only is fine
        with pytest.raises(DataError, match="is not writable"):
            FeatureCache(enc, root=root).get_or_compute(utts, device="cpu", progress=False)
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_complete_cache_in_a_folder_we_cannot_write_is_still_read(
    utts: list[Utterance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = build_encoder("logmel-stats")
    FeatureCache(enc, root=tmp_path / "shared").get_or_compute(utts, device="cpu", progress=False)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(features.tempfile, "mkstemp", refuse)
    store = FeatureCache(enc, root=tmp_path / "shared").get_or_compute(utts, device="cpu", progress=False)
    assert len(store) == len(utts)
    more = write_utterances(tmp_path / "more", [1.0], seed=3)
    with pytest.raises(DataError, match="Permission denied"):
        FeatureCache(enc, root=tmp_path / "shared").get_or_compute(utts + more, device="cpu", progress=False)


# -- what may be cached -----------------------------------------------------------------------


def test_untrained_and_layer_avg_encoders_are_not_cached(tiny_dir: Path, utts: list[Utterance]) -> None:
    with pytest.raises(ConfigError, match="trained from scratch"):
        FeatureCache(build_encoder("emotioncnn"))
    with pytest.raises(ConfigError, match="layer=avg learns its layer weights"):
        FeatureCache(build_encoder("hubert", {"path": str(tiny_dir), "layer": "avg"}))
    with pytest.raises(ConfigError, match="layer=avg"):  # not even when asked to cache untrained ones
        FeatureCache(build_encoder("hubert", {"path": str(tiny_dir), "layer": "avg"}), allow_untrained=True)
    store = FeatureCache(build_encoder("emotioncnn"), allow_untrained=True).get_or_compute(
        utts, device="cpu", progress=False
    )
    assert store.dim == 128


def test_too_short_utterance_names_the_file(tmp_path: Path) -> None:
    short = write_utterances(tmp_path / "short", [1.0, 0.01])
    with pytest.raises(DataError, match=r"test/utt1: \d+ samples .* shorter than the 400 samples"):
        FeatureCache(build_encoder("logmel-stats")).get_or_compute(short, device="cpu", progress=False)


# -- windows and whole utterances -------------------------------------------------------------


@pytest.fixture
def store() -> FrameStore:
    rng = np.random.default_rng(0)
    arrays = {f"u{i}": rng.standard_normal((n, 4)).astype(np.float16) for i, n in enumerate([250, 120, 100, 30, 1])}
    return FrameStore(arrays, frame_rate=50.0, dim=4)


def test_crop_frames_follow_the_frame_rate(store: FrameStore) -> None:
    assert store.crop_frames(2.0) == 100
    assert FrameStore({}, frame_rate=12.5, dim=1).crop_frames(2.0) == 25
    assert FrameStore({}, frame_rate=100 / 27, dim=1).crop_frames(2.0) == 7


def test_real_cache_frames_pool_like_the_encoder(utts: list[Utterance]) -> None:
    enc = build_encoder("logmel-stats")
    st = FeatureCache(enc).get_or_compute(utts, device="cpu", progress=False)
    for u in utts:
        frames = torch.from_numpy(st.frames(u.sha).astype(np.float32))[None]
        assert frames.shape[-1] == 128
        assert enc.pool(frames, torch.tensor([frames.shape[1]])).shape == (1, 256)
    with pytest.raises(KeyError, match="not in this frame store"):
        st.frames("nope")


# -- batching, devices, housekeeping ----------------------------------------------------------


def test_length_batches_are_sorted_and_bounded() -> None:
    items = [AudioItem(f"k{i}", s, lambda: np.zeros(1)) for i, s in enumerate([1.0, 5.0, 2.0, 2.5, 0.5, 9.0])]
    batches = length_batches(items, batch_seconds=6.0)
    flat = [it.seconds for b in batches for it in b]
    assert flat == sorted(flat, reverse=True)
    for b in batches:
        assert len(b) == 1 or len(b) * b[0].seconds <= 6.0
    assert [len(b) for b in batches] == [1, 1, 2, 2]
    # with widths rounded up to whole seconds, 2.5 s counts as 3 s: 2 x 3 s = 6 s still fits
    assert [len(b) for b in length_batches(items, batch_seconds=6.0, quantum=1.0)] == [1, 1, 2, 2]
    assert [len(b) for b in length_batches(items, batch_seconds=5.5, quantum=1.0)] == [1, 1, 1, 2, 1]


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_clear_by_encoder(utts: list[Utterance], tiny_dir: Path) -> None:
    FeatureCache(build_encoder("logmel-stats")).get_or_compute(utts, device="cpu", progress=False)
    FeatureCache(build_encoder("hubert", {"path": str(tiny_dir)})).get_or_compute(utts, device="cpu", progress=False)
    assert {r.name for r in cached_encoders()} == {"logmel-stats", "hubert"}
    assert [r.name for r in clear_cache("hubert")] == ["hubert"]
    assert [r.name for r in cached_encoders()] == ["logmel-stats"]
    clear_cache()
    assert cached_encoders() == []


# -- the command line -------------------------------------------------------------------------


def _manifest(name: str, utts: list[Utterance]) -> None:
    save_manifest(
        Manifest(
            corpus=name,
            language="english",
            root=str(Path(utts[0].path).parent),
            created=datetime.now(UTC).isoformat(),
            files_seen=len(utts),
            utterances=utts,
        )
    )


def test_cli_extract_encoders_clear(utts: list[Utterance]) -> None:
    from click.testing import CliRunner

    from xlbench.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["features", "extract", "--encoder", "logmel-stats"])
    assert result.exit_code != 0 and "no prepared corpus" in result.output

    _manifest("ravdess", utts)
    result = runner.invoke(main, ["features", "extract", "-e", "logmel-stats", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "ravdess" in result.output and "128-d frames at 100/s" in result.output
    again = runner.invoke(main, ["features", "extract", "-e", "logmel-stats", "-c", "ravdess"])
    assert again.exit_code == 0 and "| ravdess  |            5 |" in again.output

    for args, message in [
        (["-e", "hubrt", "-c", "ravdess"], "did you mean 'hubert'"),
        (["-e", "hubert", "-o", "lyer=2"], "did you mean 'layer'"),
        (["-e", "logmel-stats", "-o", "nokey"], "expected KEY=VALUE"),
        (["-e", "logmel-stats", "-c", "ravdes"], "did you mean 'ravdess'"),
        (["-e", "logmel-stats", "-c", "cafe"], "has no manifest"),
        (["-e", "emotioncnn", "-c", "ravdess"], "trained from scratch"),
        (["-e", "logmel-stats", "--device", "tpu"], "unknown device"),
    ]:
        bad = runner.invoke(main, ["features", "extract", *args])
        assert bad.exit_code != 0 and message in bad.output, (args, bad.output)
        assert bad.output.count("\n") == 1 and "Traceback" not in bad.output

    listing = runner.invoke(main, ["features", "encoders"])
    assert listing.exit_code == 0 and "35,580" in listing.output and "logmel-stats" in listing.output

    cleared = runner.invoke(main, ["features", "clear", "--encoder", "logmel-stats"])
    assert cleared.exit_code == 0 and "removed logmel-stats-" in cleared.output
    assert "already empty" in runner.invoke(main, ["features", "clear"]).output
    for cmd in (["features"], ["features", "extract"], ["features", "encoders"], ["features", "clear"]):
        assert runner.invoke(main, [*cmd, "--help"]).exit_code == 0


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["logmel-stats", "byols-scratch", "hubert-tiny"])
def test_cuda_bf16_extraction_matches_cpu(name: str, tiny_dir: Path, utts: list[Utterance], tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = build_encoder(f"hf:{tiny_dir}") if name == "hubert-tiny" else build_encoder(name)
    cpu = FeatureCache(enc, root=tmp_path / "cpu", allow_untrained=True)
    gpu = FeatureCache(enc, root=tmp_path / "gpu", allow_untrained=True)
    a = cpu.get_or_compute(utts, device="cpu", progress=False)
    b = gpu.get_or_compute(utts, device="cuda", progress=False, batch_seconds=6.0)  # padded batches
    for u in utts:
        x, y = a.frames(u.sha).astype(np.float32), b.frames(u.sha).astype(np.float32)
        assert x.shape == y.shape
        rel = np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-6)
        assert rel < 0.05, (name, u.id, rel)  # bf16 autocast on the GPU, float32 on the CPU
