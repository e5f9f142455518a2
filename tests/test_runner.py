"""The harness end to end on the generated corpus: runs, records, resuming, MLflow, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.plugin_utils import install_fake_distribution, uninstall
from xlbench.cli import main
from xlbench.errors import ConfigError, TrainingError
from xlbench.method import METHODS
from xlbench.records import RunRecord, iter_records, read_record, recompute_run_id
from xlbench.runner import RunRequest, execute

FAST = (("epochs", 4),)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")


def request(tmp_path: Path, **kw) -> RunRequest:
    base = dict(
        method="crosslingual",
        target="italian",
        encoder="logmel-stats",  # pinned: `auto` (logmel-stats on a CPU, HuBERT on a GPU) is tested apart
        seeds=(0,),
        overrides=FAST,
        results=tmp_path / "res",
        show_progress=False,
    )
    base.update(kw)
    return RunRequest(**base)


def test_crosslingual_record_is_complete(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    (out,) = execute(request(tmp_path))
    rec = out.record
    assert out.status == "done" and out.path.exists()
    assert rec.schema_version == 2 and rec.protocol_version == "1" and rec.splits_version == "1"
    assert rec.method.name == "crosslingual" and rec.method.distribution == "xlbench"
    assert rec.method.config["epochs"] == 4 and rec.method.config["lr"] == 1e-3
    assert rec.encoder.name == "logmel-stats" and rec.task.mode == "frozen"
    assert rec.task.n_labeled == 0 and rec.task.emotions == ["anger", "fear", "happiness", "neutral", "sadness"]
    assert rec.source_data.synthetic and rec.target_data.corpora == ["synth_it"]
    assert set(rec.source_data.split_hashes) == {"synth_en"} and len(rec.source_data.split_hashes["synth_en"]) == 64
    assert rec.selection.policy == "paper" and rec.selection.sets == ["source_val", "target_val"]
    assert rec.selection.scoring_calls == {"source_val": 4, "target_val": 4}  # once per epoch, observed
    assert rec.audit.verdict == "pass" and rec.isolation == "worker"
    assert 1 <= rec.selection.selected_epoch <= 4
    assert len(rec.history) == 4 and {"loss", "source_val_ua", "target_val_ua"} <= set(rec.history[0])
    m = rec.metrics["target"]
    assert m.n == len(rec.predictions["target"]) == rec.sizes["target_test"] == 100
    assert np.array(m.confusion).sum() == m.n and len(m.confusion) == 5
    # UA recomputed from the per-utterance predictions equals the stored one.
    truth = np.array([p.true for p in rec.predictions["target"]])
    pred = np.array([p.pred for p in rec.predictions["target"]])
    ua = np.mean([np.mean(pred[truth == c] == c) for c in range(5)])
    assert m.ua == pytest.approx(ua)
    assert all(abs(sum(p.probs) - 1) < 1e-4 for p in rec.predictions["target"])
    assert rec.predictions["target"][0].id.startswith("synth_it/") and rec.predictions["target"][0].speaker.startswith(
        "synth_it:"
    )
    assert rec.environment.packages["torch"] and rec.environment.device == "cpu"
    assert recompute_run_id(rec) == rec.run_id


def test_record_round_trip_and_run_id_stability(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    (a,) = execute(request(tmp_path))
    back = read_record(a.path)
    assert back == a.record
    assert RunRecord.model_validate_json(back.model_dump_json()) == back
    # The id depends on what defines the run, not on when or where it ran.
    (b,) = execute(request(tmp_path, results=tmp_path / "other"))
    assert b.run_id == a.run_id
    (c,) = execute(request(tmp_path, overrides=(("epochs", 5),)))
    (d,) = execute(request(tmp_path, seeds=(1,)))
    (e,) = execute(request(tmp_path, selection="strict"))
    assert len({a.run_id, c.run_id, d.run_id, e.run_id}) == 4


def test_same_seed_gives_an_identical_record(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    (a,) = execute(request(tmp_path, method="multilingual"))
    (b,) = execute(request(tmp_path, method="multilingual", results=tmp_path / "again"))
    da, db = a.record.model_dump(), b.record.model_dump()
    for d in (da, db):
        d.pop("created"), d.pop("timings")
    assert da == db


def test_existing_records_are_skipped_and_overwrite_reruns(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    (first,) = execute(request(tmp_path))
    (again,) = execute(request(tmp_path))
    assert again.status == "skipped" and again.record == first.record
    (forced,) = execute(request(tmp_path, overwrite=True))
    assert forced.status == "done"


def test_corrupt_record_is_reported_and_rerun(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    (first,) = execute(request(tmp_path))
    first.path.write_text(first.path.read_text()[:200])  # truncated
    notes: list[str] = []
    (again,) = execute(request(tmp_path), on_note=notes.append)
    assert again.status == "rerun"
    assert any("corrupt" in n for n in notes)
    assert read_record(first.path).run_id == first.run_id


def test_mlflow_run_is_visible_in_a_sqlite_store(synthetic_home, tmp_path: Path, monkeypatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (out,) = execute(request(tmp_path))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("xlbench")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["xlbench.run_id"] == out.run_id
    assert run.data.params["method"] == "crosslingual" and run.data.params["task.target"] == "italian"
    assert run.data.metrics["target_ua"] == pytest.approx(out.record.metrics["target"].ua)
    curve = client.get_metric_history(run.info.run_id, "source_val_ua")
    assert [m.step for m in curve] == [1, 2, 3, 4]
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert f"{out.run_id}.json" in artifacts


def test_tracking_failure_warns_and_keeps_the_record(synthetic_home, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    (out,) = execute(request(tmp_path))
    assert read_record(out.path).run_id == out.run_id
    err = " ".join(capsys.readouterr().err.split())  # rich may wrap the line
    assert "warning: MLflow tracking failed" in err and f"the record is safe at {out.path}" in err


def test_bad_options_give_one_clear_line(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="crosslingual has no option 'epoch'; its options are: epochs"):
        execute(request(tmp_path, overrides=(("epoch", 3),)))
    with pytest.raises(ConfigError, match=r"option epochs: .*got 'many'"):
        execute(request(tmp_path, overrides=(("epochs", "many"),)))
    with pytest.raises(ConfigError, match=r"unknown method 'crosslingal' \(did you mean 'crosslingual'\?\)"):
        execute(request(tmp_path, method="crosslingal"))
    with pytest.raises(ConfigError, match="unknown language 'klingon'"):
        execute(request(tmp_path, target="klingon"))
    with pytest.raises(ConfigError, match="English is the source"):
        execute(request(tmp_path, target="english"))
    with pytest.raises(ConfigError, match=r"unknown encoder 'hubret'.*did you mean 'hubert'"):
        execute(request(tmp_path, encoder="hubret"))
    with pytest.raises(ConfigError, match="larger than the target training set"):
        execute(request(tmp_path, method="pseudolabel", n_labeled=10_000))


def test_cli_errors_exit_non_zero_without_traceback(synthetic_home, no_mlflow) -> None:
    for args, text in [
        (["run", "--method", "crosslingual", "--target", "italian", "--set", "epochs"], "--set expects key=value"),
        (["run", "--method", "crosslingual", "--target", "italian", "--seeds", "a,b"], "--seeds expects integers"),
        (["run", "--method", "crosslingual", "--target", "italian", "--n-labeled", "-3"], "must be >= 0"),
        (["run", "--method", "nope", "--target", "italian"], "unknown method 'nope'"),
    ]:
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output
        assert res.output.strip().splitlines()[-1].startswith("error: ") and text in res.output


NAN_PLUGIN = {
    "nan_method": '''
import numpy as np
import torch
from xlbench.method import FitReport, Method
from xlbench.training import TrainConfig, train_loop


class Exploding(Method):
    name = "exploding"
    citation = "test"
    Config = TrainConfig
    needs = frozenset({"source_train"})

    def fit(self, task, ctx):
        model = ctx.make_backbone()
        return train_loop(ctx, model, self.config, (), lambda epoch: {"loss": float("nan")})

    def predict_proba(self, keys):
        return np.full((len(keys), 5), 0.2)


class Interrupting(Method):
    """Interrupts (like Ctrl-C) on the seed given by the XLBENCH_TEST_INTERRUPT variable."""
    name = "interrupting"
    citation = "test"
    Config = TrainConfig
    needs = frozenset({"source_train"})

    def fit(self, task, ctx):
        import os
        if str(ctx.seed) == os.environ.get("XLBENCH_TEST_INTERRUPT"):
            raise KeyboardInterrupt
        return FitReport()

    def predict_proba(self, keys):
        return np.full((len(keys), 5), 0.2)
''',
}


@pytest.fixture
def test_methods(tmp_path: Path):
    root = install_fake_distribution(
        tmp_path / "plugins",
        "xlbench-test-methods",
        "0.0.1",
        {"xlbench.methods": {"exploding": "nan_method:Exploding", "interrupting": "nan_method:Interrupting"}},
        NAN_PLUGIN,
    )
    METHODS.refresh()
    yield
    uninstall(root, ["nan_method"])
    METHODS.refresh()


def test_nan_loss_stops_with_a_clear_message_and_no_record(
    synthetic_home, no_mlflow, tmp_path: Path, test_methods
) -> None:
    with pytest.raises(TrainingError, match="the loss became nan at epoch 1; no record was written"):
        execute(request(tmp_path, method="exploding"))
    assert not list((tmp_path / "res").glob("*/*.json"))


def test_interrupted_grid_keeps_finished_runs_and_resumes(
    synthetic_home, no_mlflow, tmp_path: Path, test_methods, monkeypatch
) -> None:
    monkeypatch.setenv("XLBENCH_TEST_INTERRUPT", "1")
    with pytest.raises(KeyboardInterrupt):
        execute(request(tmp_path, method="interrupting", seeds=(0, 1, 2)))
    done = [r for _, r in iter_records(tmp_path / "res")]
    assert [r.task.seed for r in done] == [0]
    monkeypatch.delenv("XLBENCH_TEST_INTERRUPT")
    outs = execute(request(tmp_path, method="interrupting", seeds=(0, 1, 2)))
    assert [o.status for o in outs] == ["skipped", "done", "done"]


@pytest.mark.slow
def test_sigkill_mid_grid_leaves_finished_records_intact(small_home, tmp_path: Path) -> None:
    """A real process killed with SIGKILL between runs: records are whole or absent; a rerun resumes."""
    env = {**os.environ, "XLBENCH_MLFLOW": "0", "XLBENCH_RESULTS": str(tmp_path / "res")}
    cmd = [
        sys.executable,
        "-m",
        "xlbench.cli",
        "run",
        "--method",
        "multilingual",
        "--target",
        "italian",
        "--seeds",
        "0,1,2,3,4,5",
        "--set",
        "epochs=30",
        "--no-bounds",
        "--encoder",
        "logmel-stats",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "res").glob("*/*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = list((tmp_path / "res").glob("*/*.json"))
    assert 2 <= len(kept) < 6
    for path in kept:
        json.loads(path.read_text())  # every record on disk is complete
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--method",
            "multilingual",
            "--target",
            "italian",
            "--seeds",
            "0,1,2,3,4,5",
            "--set",
            "epochs=30",
            "--no-bounds",
            "--encoder",
            "logmel-stats",
        ],
        env=env,
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert f"{6 - len(kept)} run(s) done, {len(kept)} reused" in res.output


def test_check_method_on_a_builtin(synthetic_home, no_mlflow) -> None:
    from xlbench.contract import check

    result = check("crosslingual")
    assert result.ok, [(c.name, c.detail) for c in result.checks if not c.ok]
    names = [c.name for c in result.checks]
    assert names == [
        "loads",
        "metadata",
        "config",
        "fit and predict",
        "uses only its view",
        "validation scoring",
        "probabilities",
        "deterministic",
        "hidden-label audit",
    ]
    assert result.seconds < 60


def test_example_plugin_package_installs_and_runs(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    """The complete example package of docs/adding-a-method.md, found through its entry point."""
    example = ROOT / "examples" / "xlbench-example-method"
    site = tmp_path / "site"
    install_fake_distribution(
        site, "xlbench-example-method", "0.1.0", {"xlbench.methods": {"centroid": "xlbench_example:Centroid"}}, {}
    )
    sys.path.insert(0, str(example))
    METHODS.refresh()
    try:
        res = CliRunner().invoke(main, ["methods", "list"])
        assert "centroid" in res.output and "xlbench-example-method" in res.output
        res = CliRunner().invoke(main, ["check-method", "centroid"])
        assert res.exit_code == 0, res.output
        assert "9/9 checks passed" in res.output
        (out,) = execute(request(tmp_path, method="centroid", n_labeled=25, overrides=()))
        assert out.record.method.distribution == "xlbench-example-method"
        assert out.record.sizes["target_labeled"] == 25 and out.record.sizes["target_unlabeled"] == 0
        assert out.record.metrics["target"].ua > 0.2  # better than nothing on 5 classes
    finally:
        uninstall(site, ["xlbench_example"])
        sys.path.remove(str(example))
        METHODS.refresh()
