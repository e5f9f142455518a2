"""Weights on first use, against a Hub file API served on 127.0.0.1 by the test (HF_ENDPOINT).

conftest sets HF_HUB_OFFLINE=1 before huggingface_hub is imported, so the library's import-time
copy of the switch says offline for the whole session; the tests that go online unset it in the
environment only, which is what xlbench.hub reads (and exactly the stale-constant situation it
handles).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from tests.loopback import LoopbackServer, git_blob_id
from xlbench import hub
from xlbench.cli import main
from xlbench.encoders import build_encoder
from xlbench.encoders import byols as byols_module
from xlbench.encoders.byols import BYOLSScratch
from xlbench.encoders.hf import HUBERT_ID
from xlbench.encoders.tiny import tiny_hubert
from xlbench.errors import MissingWeightsError
from xlbench.features import encoder_key
from xlbench.records import iter_records

REPO = "org/tiny-hubert"


def one_line_error(res: Result, *fragments: str) -> str:
    """The CLI failed with exit 2 and one line that starts with 'error:' and holds every fragment."""
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, res.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tiny_hubert(tmp_path_factory.mktemp("tiny") / "hubert")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    files["pytorch_model.bin"] = b"\0" * 4096  # a second copy of the weights: never downloaded
    files["README.md"] = b"# tiny\n"
    return files


@pytest.fixture
def server(tiny_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Hub on 127.0.0.1 holding the tiny HuBERT; the environment points at it and is online."""
    with LoopbackServer() as srv:
        srv.add_commit(REPO, tiny_files)
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XLBENCH_OFFLINE"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setenv("XLBENCH_MLFLOW", "0")
        yield srv


def run_args(encoder: str, seed: int, *extra: str) -> list[str]:
    """A short crosslingual run (2 epochs, one seed, no bounds) with ``encoder``."""
    return ["run", "--method", "crosslingual", "--target", "italian", "--encoder", encoder, "--seeds", str(seed),
            "--set", "epochs=2", "--no-bounds", *extra]


def readme_run(seed: int) -> list[str]:
    """README's "Real corpora" run, shortened (4 epochs, pseudo-labels after epochs 2 and 4, one seed)."""
    return ["run", "--method", "pseudolabel", "--target", "german", "--encoder", "hubert", "--seeds", str(seed),
            "--set", "epochs=4", "--set", "every=2", "--no-bounds"]


@pytest.mark.slow
def test_first_use_downloads_pins_the_revision_and_the_second_run_is_offline(
    server: LoopbackServer, tiny_files: dict[str, bytes], synthetic_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit = server.add_commit(HUBERT_ID, tiny_files)  # "HuBERT base" on the loopback Hub
    res = CliRunner().invoke(main, readme_run(0), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    fetched = sorted(p.split("/")[-1] for p in server.requests_to(f"/{HUBERT_ID}/resolve/") if p.startswith("GET"))
    assert fetched == ["config.json", "model.safetensors", "preprocessor_config.json"]  # one copy of the weights
    snapshot = tmp_path / "hub-cache" / "models--facebook--hubert-base-ls960" / "snapshots" / commit
    assert (snapshot / "model.safetensors").read_bytes() == tiny_files["model.safetensors"]
    (record,) = [r for _, r in iter_records(tmp_path / "results")]
    assert record.encoder.revision == commit and record.encoder.name == "hubert"

    # second run: offline, nothing asked of the server, the same commit recorded
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(server.log)
    res = CliRunner().invoke(main, readme_run(1), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(server.log) == before
    records = sorted((r.task.seed, r.encoder.revision) for _, r in iter_records(tmp_path / "results"))
    assert records == [(0, commit), (1, commit)]


def test_a_changed_revision_changes_the_cache_key(server: LoopbackServer, tiny_files: dict[str, bytes]) -> None:
    first = server.repos[("models", REPO)].refs["main"]
    # same weights and config, new commit (only the README changed): still a different revision
    second = server.add_commit(REPO, {**tiny_files, "README.md": b"# tiny, edited\n"})
    assert second != first
    old = build_encoder(f"hf:{REPO}", {"revision": first})
    new = build_encoder(f"hf:{REPO}", {"revision": second})
    assert (old.info().revision, new.info().revision) == (first, second)
    assert old.info().weights_sha == new.info().weights_sha
    assert encoder_key(old) != encoder_key(new)
    # the default (main) follows the branch on first use and stays pinned in the cache afterwards:
    # online, a cached model is used without asking the server anything
    assert build_encoder(f"hf:{REPO}").info().revision == second
    before = len(server.log)
    server.add_commit(REPO, {**tiny_files, "README.md": b"# third\n"})
    assert build_encoder(f"hf:{REPO}").info().revision == second and len(server.log) == before
    assert encoder_key(build_encoder(f"hf:{REPO}", {"revision": second})) == encoder_key(new)


def test_weights_fetch_and_list(server: LoopbackServer, tiny_files: dict[str, bytes]) -> None:
    res = CliRunner().invoke(main, ["weights", "fetch", f"hf:{REPO}"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    commit = server.repos[("models", REPO)].refs["main"]
    assert commit in res.output
    res = CliRunner().invoke(main, ["weights", "list"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if f"hf:{REPO}" in line)
    assert "present" in row and commit in row
    size = sum(len(tiny_files[n]) for n in ("config.json", "model.safetensors", "preprocessor_config.json"))
    assert f"{size / 1e6:,.1f} MB" in row
    assert "missing: `xlbench weights fetch hubert`" in res.output  # HuBERT base itself is not there

    # a new commit on main: `weights fetch` follows it (first use would keep the cached one)
    newer = server.add_commit(REPO, {**tiny_files, "README.md": b"v2\n"})
    res = CliRunner().invoke(main, ["weights", "fetch", f"hf:{REPO}"], catch_exceptions=False)
    assert res.exit_code == 0 and newer in res.output

    # README's `xlbench weights fetch hubert`, from the loopback Hub
    hubert = server.add_commit(HUBERT_ID, tiny_files)
    res = CliRunner().invoke(main, ["weights", "fetch", "hubert"], catch_exceptions=False)
    assert res.exit_code == 0 and f"hubert: {HUBERT_ID} at {hubert}" in res.output
    res = CliRunner().invoke(main, ["weights", "list"], catch_exceptions=False)
    row = next(line for line in res.output.splitlines() if line.startswith("| hubert "))
    assert "present" in row and hubert in row


def test_offline_never_connects(server: LoopbackServer, synthetic_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = CliRunner().invoke(main, run_args(f"hf:{REPO}", 0))
    one_line_error(res, f"{REPO} is not in the Hugging Face cache", "offline (HF_HUB_OFFLINE=1)",
                   f"`xlbench weights fetch hf:{REPO}`")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # --offline (on the command or before it) does the same, and leaves the environment as it found it
    monkeypatch.delenv("XLBENCH_OFFLINE", raising=False)
    res = CliRunner().invoke(main, ["weights", "fetch", f"hf:{REPO}", "--offline"])
    one_line_error(res, "offline (--offline)")
    res = CliRunner().invoke(main, ["--offline", *run_args("byols", 0)])
    one_line_error(res, "BYOL-S weights are not on this machine and xlbench is offline (--offline)")
    assert server.log == []


def test_auto_encoder_never_downloads(server: LoopbackServer, tiny_files: dict[str, bytes]) -> None:
    """HuBERT *is* on the (loopback) Hub and we are online: ``auto`` still makes no request, on a
    GPU (where it would use local HuBERT weights) or on a CPU (where it never considers HuBERT)."""
    from xlbench.runner import resolve_encoder

    server.add_commit(HUBERT_ID, tiny_files)
    gpu = resolve_encoder("auto", {}, torch.device("cuda"))
    assert server.log == []
    assert gpu.name == "logmel-stats" and "xlbench weights fetch hubert" in (gpu.note or "")
    cpu = resolve_encoder("auto", {}, torch.device("cpu"))
    assert server.log == [] and cpu.name == "logmel-stats" and "--encoder hubert" in (cpu.note or "")


def test_download_errors_are_one_line(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    res = CliRunner().invoke(main, ["weights", "fetch", "hf:org/nothing-here"])
    one_line_error(res, "no model 'org/nothing-here'")
    res = CliRunner().invoke(main, ["weights", "fetch", f"hf:{REPO}", "--revision", "v9"])
    one_line_error(res, f"{REPO} has no revision 'v9'")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    res = CliRunner().invoke(main, ["weights", "fetch", "hubert"])
    one_line_error(res, "cannot download model facebook/hubert-base-ls960", "ConnectError", "check the network")
    res = CliRunner().invoke(main, ["weights", "fetch", "bert"])
    one_line_error(res, "unknown weights 'bert'")


# -- BYOL-S -----------------------------------------------------------------------------------


@pytest.fixture
def byols_checkpoint(tmp_path: Path) -> bytes:
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": BYOLSScratch(dim=64).net.state_dict()}, path)
    return path.read_bytes()


def test_byols_checkpoint_is_fetched_into_the_data_home_with_its_checksum(
    server: LoopbackServer, byols_checkpoint: bytes, private_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/ckpt.pth"] = byols_checkpoint
    monkeypatch.setenv("XLBENCH_BYOLS_URL", f"{server.url}/ckpt.pth")
    target = private_home / "weights" / "byols" / byols_module.CHECKPOINT

    # the mirror's file is not the published one: refused by the pinned git blob id, nothing kept
    res = CliRunner().invoke(main, ["weights", "fetch", "byols"])
    one_line_error(res, "fails its git-blob-sha1 check", byols_module.CHECKPOINT_BLOB)
    assert not target.exists() and not target.with_name(target.name + ".part").exists()

    # with this file's blob id as the published one: an interrupted transfer, then a resumed one
    monkeypatch.setattr(byols_module, "CHECKPOINT_BLOB", git_blob_id(byols_checkpoint))
    server.cut["/ckpt.pth"] = 1000
    res = CliRunner().invoke(main, ["weights", "fetch", "byols"])
    one_line_error(res, "interrupted after 1000 of", "run the same command again to resume")
    assert not target.exists() and target.with_name(target.name + ".part").stat().st_size == 1000
    res = CliRunner().invoke(main, ["weights", "fetch", "byols"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    gets = [h.get("Range") for m, p, h in server.log if p == "/ckpt.pth" and m == "GET"]
    assert gets[-1] == "bytes=1000-"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(byols_checkpoint).hexdigest()
    enc = build_encoder("byols")
    assert enc.info().dim == 64 and enc.info().revision == f"{byols_module.REPOSITORY}@{byols_module.COMMIT}"
    res = CliRunner().invoke(main, ["weights", "list"], catch_exceptions=False)
    assert "byols" in res.output and byols_module.COMMIT in res.output


def test_local_only_blocks_byols_download(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLBENCH_BYOLS_URL", f"{server.url}/ckpt.pth")
    with hub.local_only(), pytest.raises(MissingWeightsError, match="xlbench weights fetch byols"):
        build_encoder("byols")
    assert server.log == []
