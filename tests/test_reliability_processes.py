"""Killed processes leave nothing behind (docs/concurrency.md), through the real CLI.

No worker outlives a killed parent (grid pool workers, audio readers, the method's worker, fork
servers); temporaries of writers that are gone are removed on the next start while a live
writer's are kept; a pack whose index is damaged is removed with it and warned about once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from xlbench.cli import main

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="parent-death signals are Linux's")

RUN = ["run", "--method", "crosslingual", "--target", "italian", "--encoder", "logmel-stats",
       "--no-bounds", "--data", "synthetic", "--no-audit"]


def start(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "XLBENCH_HOME": str(home), "XLBENCH_RESULTS": str(home / "results"),
           "XLBENCH_PROGRESS": "0", "XLBENCH_MLFLOW": "0"}
    return subprocess.Popen([sys.executable, "-m", "xlbench.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still alive (a zombie waiting for its new parent to reap it is not)."""
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def kill_and_check_descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    """SIGKILL ``proc``; return its descendants (seen just before) still running 5 s later."""
    family = psutil.Process(proc.pid).children(recursive=True)
    assert family, "the command had started no process yet"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while running(family) and time.time() < deadline:
        time.sleep(0.1)
    left = running(family)
    for p in left:  # do not leave them to the rest of the suite
        p.kill()
    return left


def pool_workers_busy(pid: int) -> bool:
    """Both grid pool workers started (each has started processes of its own)."""
    try:
        kids = psutil.Process(pid).children()
        return sum(bool(k.children()) for k in kids) >= 2
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
@linux_only
def test_killed_grid_leaves_no_worker_behind(fresh_home: Path) -> None:
    """`kill -9` of `xlbench grid --workers 2`: its pool workers (each running jobs, with a fork
    server and method workers of its own) are all gone within 5 s, and write nothing more."""
    proc = start(fresh_home, "grid", "--methods", "multilingual", "--targets", "italian,german,french",
                 "--seeds", "0,1,2,3,4", "--set", "epochs=200", "--workers", "2", "--data", "synthetic",
                 "--encoder", "logmel-stats")
    try:
        wait_for(lambda: pool_workers_busy(proc.pid), 180, "two busy pool workers")
        time.sleep(1.0)
        left = kill_and_check_descendants(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert left == [], [(p.pid, p.name()) for p in left]
    records = set((fresh_home / "results").glob("*/*.json"))
    time.sleep(2)
    assert set((fresh_home / "results").glob("*/*.json")) == records  # no orphan writes a record


@pytest.mark.slow
@linux_only
def test_killed_run_leaves_no_process_and_the_rerun_no_temporary(fresh_home: Path) -> None:
    """`kill -9` of `xlbench run` while it extracts features and again while it trains: every
    process it started (audio readers, fork server, method worker) is gone within 5 s; the
    rerun finishes and leaves no temporary file and no unindexed pack."""
    args = [*RUN, "--seeds", "0,1,2", "--set", "epochs=30"]
    features = fresh_home / "features"
    records = fresh_home / "results" / "crosslingual"
    moments = [
        ("extracting", lambda: any(features.glob("*/key.json"))),
        ("training", lambda: any(records.glob("*.json"))),
    ]
    for what, moment in moments:
        proc = start(fresh_home, *args)
        try:
            wait_for(lambda p=proc, m=moment: m() or p.poll() is not None, 180, what)
            assert proc.poll() is None, f"the run ended before it was {what}"
            left = kill_and_check_descendants(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert left == [], (what, [(p.pid, p.name()) for p in left])
    res = CliRunner().invoke(main, args, env={"XLBENCH_MLFLOW": "0"})
    assert res.exit_code == 0, res.output
    temporaries = [p for p in fresh_home.rglob("*.tmp") if "synthetic" not in p.parts]
    assert temporaries == []
    unindexed = [p for p in features.glob("*/pack-*.npy") if not p.with_suffix(".json").exists()]
    assert unindexed == []


def test_startup_removes_temporaries_of_dead_writers_and_keeps_a_live_writers(fresh_home: Path) -> None:
    """Leftovers planted as a killed writer leaves them (its pid in the name) are removed by the
    next run; a concurrent writer's (a live pid) and a young one without a pid are not."""
    from xlbench.encoders import build_encoder
    from xlbench.features import FeatureCache

    cache_dir = FeatureCache(build_encoder("logmel-stats", {})).dir
    cache_dir.mkdir(parents=True)
    records = fresh_home / "results" / "crosslingual"
    records.mkdir(parents=True)
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        stem = f"pack-20260101000000-{dead}-0123abcd"
        gone = [
            cache_dir / f".{stem}.npy.{dead}.k2j4h5g6.tmp",  # a pack being written
            cache_dir / f"{stem}.npy",  # a pack renamed, its index never written
            records / f".0123456789abcdef0123.json.{dead}.x1y2z3w4.tmp",  # a record being written
            fresh_home / "manifests" / f".synth_it.json.{dead}.abcdefgh.tmp",
            records / ".ffffffffffffffffffff.json.zzzzzzzz.tmp",  # no pid (older xlbench), 2 h old
        ]
        kept = [
            cache_dir / f".pack-20260101000000-{live.pid}-4567cdef.npy.{live.pid}.a1b2c3d4.tmp",
            records / f".abcdefabcdefabcdefab.json.{live.pid}.q1w2e3r4.tmp",
            records / ".eeeeeeeeeeeeeeeeeeee.json.yyyyyyyy.tmp",  # no pid, young: maybe being written
        ]
        for path in gone + kept:
            path.write_bytes(b"partial")
        old = time.time() - 7200
        os.utime(gone[-1], (old, old))
        res = CliRunner().invoke(main, [*RUN, "--seeds", "0", "--set", "epochs=2"], env={"XLBENCH_MLFLOW": "0"})
        assert res.exit_code == 0, res.output
        assert [p for p in gone if p.exists()] == []
        assert [p for p in kept if not p.exists()] == []
    finally:
        live.kill()
        live.wait()


@pytest.mark.slow
def test_truncated_pack_index_removes_the_dead_pack_and_warns_once(small_home: Path) -> None:
    cli = CliRunner()
    extract = ["features", "extract", "-e", "logmel-stats", "-c", "synth_it"]
    res = cli.invoke(main, extract)
    assert res.exit_code == 0, res.output
    (index,) = list((small_home / "features").glob("*/pack-*.json"))
    n = len(json.loads(index.read_text())["entries"])
    text = index.read_text()
    index.write_text(text[: len(text) // 2])  # a torn index
    res = cli.invoke(main, extract)
    assert res.exit_code == 0, res.output
    assert res.output.count("unreadable index") == 1 and "removed it and its pack" in res.output, res.output
    assert not index.exists() and not index.with_suffix(".npy").exists()
    (rebuilt,) = list((small_home / "features").glob("*/pack-*.json"))
    assert len(json.loads(rebuilt.read_text())["entries"]) == n  # every entry recomputed
    res = cli.invoke(main, extract)
    assert res.exit_code == 0 and "unreadable index" not in res.output, res.output


def _can_mount_a_small_shm() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@linux_only
@pytest.mark.skipif(not _can_mount_a_small_shm(), reason="needs unshare -m and mount (root or CAP_SYS_ADMIN)")
def test_a_full_shared_memory_copies_the_inputs_to_the_worker_with_the_same_results(small_home: Path) -> None:
    """A container's /dev/shm (64 MB by default) cannot hold a method's lent inputs: the run
    copies them through the pipe instead, says so once, and its records are the ones a run with
    shared memory makes (here /dev/shm is 1 MB, in a mount namespace of the command's own)."""
    args = [*RUN, "--seeds", "0,1", "--set", "epochs=3"]
    env = {**os.environ, "XLBENCH_MLFLOW": "0"}

    def records(results: Path, small_shm: bool) -> tuple[str, dict[str, dict]]:
        cmd = [sys.executable, "-m", "xlbench.cli", *args, "--results", str(results)]
        if small_shm:
            line = " ".join(f"'{a}'" for a in cmd)
            cmd = ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs /dev/shm && exec {line}"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        recs = {}
        for path in results.glob("*/*.json"):
            rec = json.loads(path.read_text())
            recs[rec["run_id"]] = {"metrics": rec["metrics"], "predictions": rec["predictions"]}
        return out.stdout + out.stderr, recs

    # first with shared memory: it also extracts the features (extraction's reader processes hand
    # batches over through shared memory too, which this test is not about)
    _, normal = records(small_home / "shm", small_shm=False)
    text, small = records(small_home / "small-shm", small_shm=True)
    assert text.count("shared memory (/dev/shm) has no room for the method's inputs") == 1, text
    assert "Traceback" not in text
    assert len(small) == 2 and small == normal


@pytest.mark.slow
@linux_only
@pytest.mark.skipif(not _can_mount_a_small_shm(), reason="needs unshare -m and mount (root or CAP_SYS_ADMIN)")
def test_extraction_reads_with_the_readers_shared_memory_holds(small_home: Path) -> None:
    """With a 1 MB /dev/shm no reader process's batches fit: extraction reads in its own process,
    says so once, and caches every utterance (it did not finish in 300 s before)."""
    line = f"'{sys.executable}' -m xlbench.cli features extract -e logmel-stats -c synth_it"
    out = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs /dev/shm && exec {line}"],
                         env={**os.environ, "XLBENCH_MLFLOW": "0"}, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    said = re.findall(r"holds the batches of 0 audio reader\(s\), not [1-9]\d*; reading with fewer", text)
    assert len(said) == 1, text
    (index,) = (small_home / "features").glob("*/pack-*.json")
    assert len(json.loads(index.read_text())["entries"]) == 80  # the Italian slice: 40 + 20 + 20
