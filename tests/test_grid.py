"""Grids: planning (bounds once, sweeps, scoped options), a small real grid on the synthetic corpus
(resumable, valid, renderable), the Slurm path through submitit's in-process "debug" executor,
and the one-line errors."""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xlbench.cli import main
from xlbench.errors import ConfigError, TrainingError
from xlbench.grid import GridJob, SlurmOptions, plan_grid, run_grid, with_results
from xlbench.method import METHODS, FitReport, Method, MethodConfig
from xlbench.method_options import ALL


class FakeConfig(MethodConfig):
    bias: int = 0
    fail: bool = False


class FakeConst(Method):
    """Predicts a class from a hash of the key: instant, deterministic, needs nothing."""

    name = "fakeconst"
    version = "1"
    Config = FakeConfig
    needs = frozenset({"source_train", "target_labeled"})

    def fit(self, task, ctx) -> FitReport:
        if self.config.fail:
            raise TrainingError("the fake method was told to fail")
        self.n = ctx.n_classes
        return FitReport(selected_epoch=1, history=[{"epoch": 1.0, "loss": 1.0}])

    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        out = np.full((len(keys), self.n), 0.1)
        for i, k in enumerate(keys):
            out[i, (zlib.crc32(k.encode()) + self.config.bias) % self.n] = 1.0
        return out / out.sum(axis=1, keepdims=True)


@pytest.fixture
def fake_method():
    METHODS.register("fakeconst", FakeConst, distribution="tests")
    yield "fakeconst"
    METHODS.unregister("fakeconst")


@pytest.fixture
def no_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")


def test_plan_runs_bounds_once_and_sweeps_configs() -> None:
    jobs = plan_grid(["crosslingual", "multilingual", "pseudolabel"], ["italian", "de"], [0, 25, 50], [0, 1, 2],
                     sets={"epochs": 3, "pseudolabel.tau": 0.65}, sweeps={"mode": ["hard", "soft"]})
    labels = [j.label for j in jobs]
    cross = [j for j in jobs if j.method == "crosslingual"]
    multi = [j for j in jobs if j.method == "multilingual"]
    pseudo = [j for j in jobs if j.method == "pseudolabel"]
    assert len(cross) == 2 and {j.n_labeled for j in cross} == {0}  # the lower bound needs no K_t
    assert len(multi) == 2 and {j.n_labeled for j in multi} == {ALL}  # the upper bound takes every label
    assert len(pseudo) == 2 * 2 * 3  # mode × target × N_k
    assert {dict(j.overrides)["mode"] for j in pseudo} == {"hard", "soft"}
    assert all(dict(j.overrides) == {"epochs": 3} for j in cross + multi)  # tau/mode only where they exist
    assert all(dict(j.overrides)["tau"] == 0.65 and dict(j.overrides)["epochs"] == 3 for j in pseudo)
    assert {j.target for j in jobs} == {"italian", "german"}
    assert len(set(labels)) == len(labels) and "N_k all" in multi[0].label
    assert all(j.seeds == (0, 1, 2) for j in jobs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "nosuch"], "unknown method 'nosuch'"),
        (["--methods", "crosslingual", "--set", "mode=soft"], "none of crosslingual has an option 'mode'"),
        (["--methods", "pseudolabel", "--set", "mode=sideways"], "pseudolabel option mode"),
        (["--methods", "pseudolabel", "--set", "epochs"], "--set expects key=value"),
        (["--methods", "crosslingual", "--set", "dann.epochs=3"], "'dann' is not one of --methods"),
        (["--methods", "crosslingual", "--targets", "english"], "source language"),
        (["--methods", "crosslingual", "--seeds", "0,0"], "distinct"),
    ],
)
def test_grid_user_errors_are_one_line(args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["grid", *args, "--dry-run"])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1


def test_slurm_without_submitit_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    res = CliRunner().invoke(main, ["grid", "--methods", "crosslingual", "--executor", "slurm"])
    assert res.exit_code == 2 and "pip install 'xlbench[slurm]'" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_small_real_grid_is_resumable_valid_and_renders(small_home, no_mlflow, tmp_path: Path) -> None:
    results = tmp_path / "records"
    args = ["grid", "--methods", "crosslingual,multilingual,pseudolabel", "--targets", "italian",
            "--n-labeled", "0,25", "--seeds", "0,1,2", "--set", "epochs=3", "--data", "synthetic",
            "--encoder", "logmel-stats", "--results", str(results)]
    cli = CliRunner()
    res = cli.invoke(main, args)
    assert res.exit_code == 0, res.output
    progress = [ln for ln in res.output.splitlines() if ln.startswith("[")]
    assert len(progress) == 4 and all("3 done" in ln for ln in progress)  # one line per job
    assert "grid: 4 job(s), 12 run(s) done, 0 reused" in res.output
    # run again: everything is reused
    res = cli.invoke(main, args)
    assert res.exit_code == 0 and "0 run(s) done, 12 reused" in res.output
    assert len(list(results.glob("*/*.json"))) == 12
    # the records pass validation and make a leaderboard that `check` accepts
    res = cli.invoke(main, ["leaderboard", "validate", "--records", str(results)])
    assert res.exit_code == 0, res.output
    board = tmp_path / "board"
    res = cli.invoke(main, ["leaderboard", "render", "--records", str(results), "--out", str(board), "--no-plots"])
    assert res.exit_code == 0, res.output
    md = (board / "README.md").read_text()
    assert "### Italian · N_k = 25 · 5 emotions (synthetic corpus" in md
    assert "pseudolabel" in md and "(lower bound)" in md and "(upper bound)" in md
    res = cli.invoke(main, ["leaderboard", "check", "--dir", str(board)])
    assert res.exit_code == 0, res.output


def test_slurm_path_through_submitit_debug_executor(synthetic_home, no_mlflow, fake_method, tmp_path) -> None:
    pytest.importorskip("submitit")
    jobs = with_results(plan_grid([fake_method], ["italian"], [0, 25], [0, 1], data="synthetic",
                                  encoder="logmel-stats"), tmp_path / "r")
    lines: list[str] = []
    summary = run_grid(jobs, executor="slurm", slurm=SlurmOptions(cluster="debug", folder=tmp_path / "submitit",
                                                                  partition="gpu", gpus_per_node=1),
                       emit=lines.append)
    assert not summary.failed, [r.error for r in summary.results]
    assert sum(r.done for r in summary.results) == 4
    assert any(ln.startswith("submitted 2 job(s) to debug") for ln in lines)
    assert sum(ln.startswith("[") for ln in lines) == 2
    assert len(list((tmp_path / "r" / fake_method).glob("*.json"))) == 4


def test_failed_jobs_are_reported_and_the_rest_kept(synthetic_home, no_mlflow, fake_method, tmp_path) -> None:
    jobs = plan_grid([fake_method], ["italian"], [0], [0], sweeps={"fail": [False, True]}, data="synthetic",
                     encoder="logmel-stats")
    jobs = with_results(jobs, tmp_path / "r")
    lines: list[str] = []
    summary = run_grid(jobs, emit=lines.append)
    assert len(summary.failed) == 1 and "told to fail" in summary.failed[0].error
    assert any("FAILED" in ln for ln in lines)
    assert "1 job(s) failed" in summary.line()
    assert len(list((tmp_path / "r" / fake_method).glob("*.json"))) == 1


def test_grid_cli_failure_exits_non_zero(synthetic_home, no_mlflow, fake_method, tmp_path) -> None:
    res = CliRunner().invoke(main, ["grid", "--methods", fake_method, "--targets", "italian", "--seeds", "0",
                                    "--set", "fail=true", "--data", "synthetic", "--encoder", "logmel-stats",
                                    "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "1 of 1 grid job(s) failed" in res.output


def test_job_request_carries_every_option() -> None:
    job = GridJob("pseudolabel", "italian", 25, (0, 1), (("mode", "soft"),), encoder="logmel-stats",
                  emotions="4", selection="strict", data="synthetic", results=Path("/tmp/x"))
    req = job.request()
    assert req.method == "pseudolabel" and req.n_labeled == 25 and req.seeds == (0, 1)
    assert req.overrides == (("mode", "soft"),) and req.emotions == "4" and req.selection == "strict"
    assert req.results == Path("/tmp/x") and req.show_progress is False
    with pytest.raises(ConfigError):
        plan_grid([], ["italian"], [0], [0])


@pytest.mark.slow
def test_local_process_pool(small_home, no_mlflow, tmp_path: Path) -> None:
    jobs = with_results(plan_grid(["multilingual", "crosslingual"], ["italian"], [0], [0], sets={"epochs": 1},
                                  data="synthetic", encoder="logmel-stats"), tmp_path / "r")
    lines: list[str] = []
    summary = run_grid(jobs, workers=2, emit=lines.append)
    assert not summary.failed, [r.error for r in summary.results]
    assert [r.job.method for r in summary.results] == ["multilingual", "crosslingual"]  # in plan order
    assert sum(ln.startswith("[") for ln in lines) == 2
    assert len(list((tmp_path / "r").glob("*/*.json"))) == 2
