"""openSMILE encoders (values against opensmile called directly), their float32 cache and keys,
the standardiser fitted on training parts only, the MLP head option, and ``--encoder auto``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import opensmile
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from torch import nn

import xlbench.encoders.opensmile as xos
import xlbench.runner as runner
from xlbench.audio import inspect_audio, load_audio
from xlbench.cli import main
from xlbench.components.standardize import fit_standardizer
from xlbench.encoders import build_encoder
from xlbench.encoders.tiny import tiny_hubert
from xlbench.errors import ConfigError, DataError
from xlbench.features import FeatureCache, encoder_identity, encoder_key
from xlbench.fitting import backbone_spec
from xlbench.inputs import FrozenInputs
from xlbench.manifest import Utterance
from xlbench.opensmile_worker import extract_batch
from xlbench.records import read_record
from xlbench.runner import RunRequest, execute, prepare, resolve_encoder, run_identity
from xlbench.tasks import build_task

SR = 16_000
SETS = {"opensmile-egemaps": ("eGeMAPSv02", 88), "opensmile-compare": ("ComParE_2016", 6373)}


def voice(n: int, f0: float, seed: int) -> np.ndarray:
    """A voiced-speech-like signal: harmonics of a gliding F0 with vibrato, an envelope, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    pitch = f0 * (1 + 0.15 * t) * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 - np.cos(2 * np.pi * np.minimum(t / max(t[-1], 1e-9), 1)))
    return (0.2 * env * x + 0.01 * rng.standard_normal(n)).astype(np.float32)


def direct(feature_set: str, wave: np.ndarray) -> np.ndarray:
    """openSMILE itself, as its documentation shows it."""
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet[feature_set], feature_level=opensmile.FeatureLevel.Functionals
    )
    return smile.process_signal(wave, SR).to_numpy()


# -- values and dimensions ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_values_equal_opensmile_called_directly_with_garbage_padding(name: str) -> None:
    feature_set, dim = SETS[name]
    enc = build_encoder(name)
    lengths = [SR, 9_000, 24_000]
    waves = [voice(n, 110 + 50 * i, i) for i, n in enumerate(lengths)]
    batch = torch.from_numpy(np.random.default_rng(9).uniform(-1, 1, (3, max(lengths) + 777)).astype(np.float32))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)  # beyond each length: garbage the encoder must ignore
    frames, flen = enc.frames(batch, torch.tensor(lengths))  # 3 waveforms: the worker pool's path
    assert frames.shape == (3, 1, dim) and flen.tolist() == [1, 1, 1]
    info = enc.info()
    assert info.dim == info.frame_dim == dim and info.params == 0 and info.frame_rate == 0
    for i, w in enumerate(waves):
        ref = direct(feature_set, w)
        assert ref.shape == (1, dim)
        np.testing.assert_array_equal(frames[i].numpy(), ref)
    assert torch.equal(enc.pool(frames, flen), frames[:, 0])  # the vector is the functionals


def test_worker_pool_equals_one_process() -> None:
    waves = [voice(n, 150, n) for n in (4_000, 12_000, 7_000, 20_000, 960)]
    serial = extract_batch("eGeMAPSv02", "Functionals", waves, workers=1)
    pooled = extract_batch("eGeMAPSv02", "Functionals", waves, workers=2)
    assert len(pooled) == 5 and all(np.array_equal(a, b) for a, b in zip(serial, pooled, strict=True))


def test_audio_too_short_for_openSMILE_is_one_clear_line() -> None:
    enc = build_encoder("opensmile-egemaps")
    with pytest.raises(DataError, match=r"needs at least 960 samples"):
        enc.frames(torch.zeros(2, 2_000), torch.tensor([2_000, 959]))


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
def test_workers_leave_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import numpy as np, os, sys, time\n"
        "from xlbench.opensmile_worker import extract_batch\n"
        "if __name__ == '__main__':\n"
        "    extract_batch('eGeMAPSv02', 'Functionals', [np.ones(2000, np.float32) * 0.1] * 4, workers=2)\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(120)\n"
    )
    path = tmp_path / "parent.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        children = [int(p) for t in Path(f"/proc/{proc.pid}/task").iterdir()
                    for p in (t / "children").read_text().split()]
        workers = [c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in _state(w)]
    for w in alive:  # leave no orphan behind, even when the check fails
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their killed parent"


NESTED = """
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
import numpy as np

def job(i):
    from xlbench.opensmile_worker import extract_batch
    return len(extract_batch("eGeMAPSv02", "Functionals", [np.ones(4000, np.float32) * 0.1] * 3, workers=2))

if __name__ == "__main__":
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:  # as `grid --workers 2`
        print(list(pool.map(job, range(2))))
"""


def test_a_pool_worker_that_used_opensmile_workers_exits(tmp_path: Path) -> None:
    # a multiprocessing child leaves through os._exit after joining its children, skipping
    # atexit: its openSMILE workers must be stopped before that join, or it waits forever
    path = tmp_path / "nested.py"
    path.write_text(NESTED)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[3, 3]", out.stderr


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"


# -- the cache -------------------------------------------------------------------------------------


def utterances(folder: Path, lengths: list[int]) -> list[Utterance]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, n in enumerate(lengths):
        path = folder / f"u{i}.wav"
        sf.write(path, voice(n, 120 + 30 * i, i), SR, subtype="FLOAT")
        info = inspect_audio(path)
        out.append(Utterance(id=f"t/u{i}", path=str(path), corpus="t", language="english", speaker=f"s{i}",
                             gender="female", raw_label="ang", emotion="anger", duration=info.duration,
                             sample_rate=info.sample_rate, channels=info.channels, subtype=info.subtype, sha=info.sha))
    return out


def test_compare_cache_keeps_float32_values_float16_could_not_hold(tmp_path: Path) -> None:
    utts = utterances(tmp_path / "wav", [SR, 30_000])
    enc = build_encoder("opensmile-compare")
    store = FeatureCache(enc, root=tmp_path / "cache").get_or_compute(utts, device="cpu", progress=False)
    for u in utts:
        ref = direct("ComParE_2016", load_audio(u.path, expected_sha=u.sha))
        got = store.frames(u.sha)
        assert got.dtype == np.float32 and got.shape == (1, 6373)
        np.testing.assert_array_equal(got, ref)
    assert max(np.abs(store.frames(u.sha)).max() for u in utts) > np.finfo(np.float16).max
    index = json.loads(next((tmp_path / "cache").glob("*/pack-*.json")).read_text())
    assert index["dtype"] == "float32"
    # a second cache object reads the same values back from disk
    again = FeatureCache(enc, root=tmp_path / "cache").get_or_compute(utts, device="cpu", progress=False)
    assert all(np.array_equal(again.frames(u.sha), store.frames(u.sha)) for u in utts)


def test_cache_key_changes_with_feature_set_and_opensmile_version(monkeypatch: pytest.MonkeyPatch) -> None:
    egemaps, compare = build_encoder("opensmile-egemaps"), build_encoder("opensmile-compare")
    assert encoder_key(egemaps) != encoder_key(compare)
    ident = encoder_identity(compare)
    assert ident["dtype"] == "float32" and ident["encoder"]["feature_set"] == "ComParE_2016"
    assert ident["encoder"]["revision"] == f"opensmile {opensmile.__version__}"
    assert "dtype" not in encoder_identity(build_encoder("logmel-stats"))  # float16 keys did not move
    # the same feature set under another openSMILE release
    monkeypatch.setattr(xos, "installed_version", lambda: "0.0-other")
    other = build_encoder("opensmile-compare")
    assert other.info().revision == "opensmile 0.0-other" and encoder_key(other) != encoder_key(compare)
    # a subclass reusing the name with another feature set still gets its own key
    renamed = type("Renamed", (xos.ComParE,), {"feature_set": "eGeMAPSv02", "n_features": 88})()
    assert encoder_key(renamed) != encoder_key(other)


def test_missing_opensmile_is_one_line_and_auto_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xos, "installed_version", lambda: None)
    monkeypatch.setattr(runner, "installed_version", lambda: None)
    with pytest.raises(ConfigError, match="pip install opensmile"):
        build_encoder("opensmile-compare")
    r = resolve_encoder("auto", {}, torch.device("cpu"))
    enc, note = r.encoder, r.note
    assert enc.info().name == "logmel-stats" and "needs openSMILE (pip install opensmile)" in (note or "")


def test_auto_is_logmel_on_a_cpu_and_hubert_on_a_gpu_with_weights(tmp_path: Path) -> None:
    """On a CPU auto keeps the main command within a minute (logmel-stats) and names the more
    accurate openSMILE encoder in its note (docs/performance.md)."""
    r = resolve_encoder("auto", {}, torch.device("cpu"))
    enc, note = r.encoder, r.note
    assert enc.info().name == "logmel-stats" and "HuBERT" in (note or "")
    assert "--encoder opensmile-compare is more accurate" in (note or "")
    tiny = tiny_hubert(tmp_path / "hubert")  # weights on disk; the device only has to be a GPU type
    r = resolve_encoder("auto", {"path": str(tiny)}, torch.device("cuda"))
    enc, note = r.encoder, r.note
    assert enc.info().name == "hubert" and note is None
    assert resolve_encoder("opensmile-egemaps", {}, torch.device("cuda")).encoder.info().name == "opensmile-egemaps"


# -- the standardiser ------------------------------------------------------------------------------


def test_fit_standardizer_matches_numpy_on_wild_scales() -> None:
    rng = np.random.default_rng(0)
    scales = np.array([1e-3, 1.0, 50.0, 1e6, 1e11])
    x = rng.normal(size=(40, 5)) * scales + np.array([0.0, -3.0, 200.0, 5e6, 8e11])
    x = np.concatenate([x, np.full((40, 1), 7.5)], axis=1)  # a constant dimension
    st = fit_standardizer(x.astype(np.float32))
    xf = x.astype(np.float32).astype(np.float64)
    mean, std = xf.mean(0), xf.std(0)  # population std, as StandardScaler
    np.testing.assert_allclose(st.mean.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(st.std.numpy()[:5], std[:5], rtol=1e-6)
    out = st(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_allclose(out[:, :5], (xf[:, :5] - mean[:5]) / std[:5], atol=2e-3)
    assert np.all(out[:, 5] == 0)  # constant: centred, not divided by zero
    with pytest.raises(ConfigError, match="no training utterance"):
        fit_standardizer(np.zeros((0, 3)))


def fake_inputs(shas: list[str], dim: int, scale: dict[str, float] | None = None) -> tuple[FrozenInputs, dict]:
    """One random 'functionals' frame per utterance, wildly scaled per dimension."""
    rng = np.random.default_rng(1)
    scales = 10.0 ** rng.uniform(-3, 9, dim)
    frames = {s: (rng.normal(size=(1, dim)) * scales).astype(np.float32) for s in sorted(shas)}
    for s, k in (scale or {}).items():
        frames[s] = frames[s] * k + 7
    return FrozenInputs(frames, 0.0, 2.0, "mean"), frames


@pytest.mark.parametrize(("method", "parts"), [
    ("pseudolabel", ("source_train", "target_labeled", "target_unlabeled")),
    ("crosslingual", ("source_train",)),  # declares no target part: U_t's features stay out too
])
def test_standardizer_is_fitted_on_declared_training_parts_only(synthetic_home, method, parts) -> None:
    req = RunRequest(method=method, target="italian", encoder="opensmile-egemaps", n_labeled=25, seeds=(0,),
                     data="synthetic", show_progress=False)
    p = prepare(req)
    task, truth = build_task(p.source, p.target, classes=p.classes, n_labeled=p.n_labeled, seed=0,
                             selection="paper", needs=p.method_cls.needs)
    shas = list(truth.by_key)
    inputs, frames = fake_inputs(shas, 88)
    st = backbone_spec(p).factory(inputs, task)().standardizer
    train = [k for part in parts for k in getattr(task, part).keys]
    assert len(train) == len(set(train)) > 0
    x = np.stack([frames[k][0] for k in train]).astype(np.float64)
    np.testing.assert_allclose(st.mean.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(st.std.numpy(), x.std(0), rtol=1e-5)
    # validation and test features changed beyond recognition: the statistics do not move
    held_out = {k for s in task.validation for k in s.keys} | set(truth.target_test.keys) | set(truth.source_test.keys)
    assert held_out and not held_out & set(train)
    shifted, _ = fake_inputs(shas, 88, scale=dict.fromkeys(held_out, 1e4))
    st2 = backbone_spec(p).factory(shifted, task)().standardizer
    assert torch.equal(st.mean, st2.mean) and torch.equal(st.std, st2.std)
    # ...while one training utterance changed does move them (the check can fail)
    moved, _ = fake_inputs(shas, 88, scale={train[0]: 1e4})
    assert not torch.equal(backbone_spec(p).factory(moved, task)().standardizer.mean, st.mean)


def test_standardize_and_head_options_shape_the_backbone(synthetic_home) -> None:
    def backbone(encoder: str, **sets):
        req = RunRequest(method="crosslingual", target="italian", encoder=encoder, seeds=(0,), data="synthetic",
                         overrides=tuple(sets.items()), show_progress=False)
        p = prepare(req)
        task, truth = build_task(p.source, p.target, classes=p.classes, n_labeled=0, seed=0, selection="paper",
                                 needs=p.method_cls.needs)
        inputs, _ = fake_inputs(list(truth.by_key), p.encoder.info().dim)
        return backbone_spec(p).factory(inputs, task)(), run_identity(req, p, 0)[0]

    plain, plain_id = backbone("opensmile-egemaps")
    assert plain.standardizer is not None and isinstance(plain.head, nn.Linear)  # auto: on for openSMILE
    mlp, mlp_id = backbone("opensmile-egemaps", head_type="mlp", head_hidden=32, head_dropout=0.1)
    assert [type(m) for m in mlp.head] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (mlp.head[0].in_features, mlp.head[0].out_features, mlp.head[3].out_features) == (88, 32, 5)
    assert mlp.head[2].p == 0.1 and mlp_id != plain_id
    off, off_id = backbone("opensmile-egemaps", standardize="off")
    assert off.standardizer is None and off_id != plain_id
    assert backbone("logmel-stats")[0].standardizer is None  # auto: off for the paper's encoders
    assert backbone("logmel-stats", standardize="on")[0].standardizer is not None


def test_mlp_head_run_records_and_refusals(synthetic_home, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")
    base = dict(method="crosslingual", target="italian", encoder="logmel-stats", seeds=(0,), data="synthetic",
                results=tmp_path / "res", show_progress=False)
    (lin,) = execute(RunRequest(**base, overrides=(("epochs", 2),)))
    (mlp,) = execute(RunRequest(**base, overrides=(("epochs", 2), ("head_type", "mlp"))))
    assert mlp.run_id != lin.run_id
    assert read_record(mlp.path).method.config["head_type"] == "mlp"
    assert lin.record.method.config["head_type"] == "linear"
    # methods that build their own head refuse the option instead of ignoring it
    with pytest.raises(ConfigError, match="head_type=mlp does not apply"):
        execute(RunRequest(**{**base, "method": "dann"}, overrides=(("epochs", 1), ("head_type", "mlp"))))
    with pytest.raises(ConfigError, match="frozen features only"):
        execute(RunRequest(**base, finetune=True, overrides=(("epochs", 1), ("standardize", "on"))))


# -- through the command line ----------------------------------------------------------------------


@pytest.mark.slow
def test_encoders_work_through_run_extract_grid_and_reproduce(small_home, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")
    cli = CliRunner()
    res = cli.invoke(main, ["features", "extract", "--encoder", "opensmile-compare", "--corpus", "synth_it"])
    assert res.exit_code == 0, res.output
    assert "one 6373-d frame per utterance" in res.output and "synth_it" in res.output
    results = tmp_path / "records"
    res = cli.invoke(main, ["run", "--method", "crosslingual", "--target", "italian", "--encoder", "opensmile-compare",
                            "--seeds", "0", "--set", "epochs=2", "--data", "synthetic", "--results", str(results)])
    assert res.exit_code == 0, res.output
    (path,) = results.glob("crosslingual/*.json")
    rec = read_record(path)
    assert rec.encoder.name == "opensmile-compare" and rec.encoder.dim == 6373
    assert rec.encoder.revision == f"opensmile {opensmile.__version__}" and rec.method.config["standardize"] == "auto"
    res = cli.invoke(main, ["grid", "--methods", "crosslingual", "--targets", "italian", "--seeds", "0",
                            "--encoder", "opensmile-compare", "--set", "epochs=2", "--set", "head_type=mlp",
                            "--data", "synthetic", "--results", str(results)])
    assert res.exit_code == 0, res.output
    configs = [read_record(p).method.config["head_type"] for p in results.glob("crosslingual/*.json")]
    assert sorted(configs) == ["linear", "mlp"]
    res = cli.invoke(main, ["reproduce", "table4", "--encoder", "opensmile-compare", "--targets", "italian",
                            "--seeds", "0", "--set", "epochs=2", "--data", "synthetic", "--results", str(results),
                            "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    (page,) = (tmp_path / "out").glob("table4-*.md")
    assert "opensmile-compare" in page.read_text() and "| Italian " in page.read_text()
