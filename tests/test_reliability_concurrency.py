"""Several xlbench processes on one data home (docs/concurrency.md), through the real CLI.

Each test starts real `xlbench` processes on a fresh data home (the generated corpus and
nothing else) and checks what is on disk and in a real SQLite MLflow store afterwards: every
utterance extracted once, every run id trained once, every record in MLflow exactly once.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from xlbench.cli import main
from xlbench.records import iter_records

RUN = ["run", "--method", "crosslingual", "--target", "italian", "--encoder", "logmel-stats",
       "--set", "epochs=4", "--no-bounds", "--data", "synthetic"]


def xlbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "xlbench.cli", *args]


def start(home: Path, *args: str, **env: str) -> subprocess.Popen:
    full = {**os.environ, "XLBENCH_HOME": str(home), "XLBENCH_RESULTS": str(home / "results"),
            "XLBENCH_PROGRESS": "0", **env}
    return subprocess.Popen(xlbench(*args), env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[str]:
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, out
        outs.append(out)
    return outs


def extracted_entries(home: Path) -> Counter:
    """How many times each utterance's frames were written, over every pack index of every encoder."""
    counts: Counter = Counter()
    for index in (home / "features").glob("*/pack-*.json"):
        counts.update(list(json.loads(index.read_text())["entries"]))
    return counts


def mlflow_copies(home: Path) -> Counter:
    """Active MLflow runs per xlbench run id in the home's SQLite store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("xlbench")
    if exp is None:
        return Counter()
    runs = client.search_runs([exp.experiment_id], max_results=10_000)
    return Counter(r.data.tags["xlbench.run_id"] for r in runs)


def run_ids(home: Path) -> set[str]:
    records = [r for _, r in iter_records(home / "results")]
    assert all(not isinstance(r, Exception) for r in records)
    return {r.run_id for r in records}


def leftovers(*folders: Path) -> list[Path]:
    """Temporaries and pending MLflow copies anywhere under the folders (links not followed)."""
    found = []
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            found += [Path(dirpath, f) for f in files if f.endswith((".tmp", ".pending"))]
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("processes", "audit"), [(2, True), (4, False)])
def test_concurrent_identical_runs_extract_once_train_once_track_once(small_home: Path, processes: int,
                                                                      audit: bool) -> None:
    seeds = "0,1,2" if processes == 2 else "0,1,2,3"
    args = [*RUN, "--seeds", seeds] + ([] if audit else ["--no-audit"])
    outs = finish([start(small_home, *args) for _ in range(processes)])
    ids = run_ids(small_home)
    assert len(ids) == len(seeds.split(","))
    # one training per run id: the processes' "N run(s) done" add up to the number of run ids
    done = [int(re.search(r"crosslingual: (\d+) run\(s\) done", o)[1]) for o in outs]
    assert sum(done) == len(ids), outs
    # one extraction per (encoder, corpus): no utterance's frames were written twice
    entries = extracted_entries(small_home)
    assert entries and max(entries.values()) == 1, entries.most_common(3)
    if audit:  # one audit: one process audited, the others waited for its verdict
        assert sum("auditing crosslingual:" in o for o in outs) == 1, outs
        assert len(list((small_home / "audits").glob("*.json"))) == 1
    # every record in MLflow exactly once
    copies = mlflow_copies(small_home)
    assert set(copies) == ids and set(copies.values()) == {1}, copies
    assert not any("MLflow tracking failed" in o for o in outs), outs
    assert leftovers(small_home) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: a connection is refused


@pytest.mark.slow
def test_unreachable_tracking_server_warns_fast_and_the_next_run_backfills(small_home: Path) -> None:
    """The record is written whatever MLflow does; an unreachable server costs seconds, not
    minutes of retries; the copy it missed is made by the next run (against the store then)."""
    cli = CliRunner()
    t0 = time.perf_counter()
    res = cli.invoke(main, [*RUN, "--seeds", "0", "--no-audit"],
                     env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_closed_port()}"})
    seconds = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    assert "warning: MLflow tracking failed" in res.output and "unreachable" in res.output, res.output
    assert seconds < 60, f"{seconds:.0f} s: the run waited for the tracking server"
    (rid,) = run_ids(small_home)
    pending = list((small_home / "results" / ".mlflow-pending").glob("*.pending"))
    assert [p.stem for p in pending] == [rid]
    # the next run (another seed) copies the record the first one could not
    res = cli.invoke(main, [*RUN, "--seeds", "1", "--no-audit"])
    assert res.exit_code == 0, res.output
    assert "MLflow: copied 1 record(s) an earlier run had not copied" in res.output, res.output
    copies = mlflow_copies(small_home)
    assert set(copies) == run_ids(small_home) and set(copies.values()) == {1}, copies
    assert leftovers(small_home) == []


@pytest.mark.slow
def test_sync_mlflow_copies_missing_records_once(small_home: Path) -> None:
    """Records made with tracking off, and a copy cut short by a kill (an unfinished MLflow run):
    `runs sync-mlflow` leaves exactly one complete copy of each; a second sync copies nothing."""
    cli = CliRunner()
    res = cli.invoke(main, [*RUN, "--seeds", "0,1", "--no-audit"], env={"XLBENCH_MLFLOW": "0"})
    assert res.exit_code == 0, res.output
    ids = run_ids(small_home)
    assert mlflow_copies(small_home) == Counter()
    # a copy of the first record that a killed process started and never finished
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{small_home / 'mlflow.db'}")
    exp_id = client.create_experiment("xlbench")
    first = sorted(ids)[0]
    cut = client.create_run(exp_id, tags={"xlbench.run_id": first}).info.run_id
    res = cli.invoke(main, ["runs", "sync-mlflow"])
    assert res.exit_code == 0, res.output
    assert "2 record(s) copied, 0 already there" in res.output
    copies = mlflow_copies(small_home)
    assert set(copies) == ids and set(copies.values()) == {1}, copies
    assert client.get_run(cut).info.lifecycle_stage == "deleted"
    res = cli.invoke(main, ["runs", "sync-mlflow"])
    assert res.exit_code == 0 and "0 record(s) copied, 2 already there" in res.output, res.output
    assert mlflow_copies(small_home) == copies
