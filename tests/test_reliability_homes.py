"""Issue 13, point 6: a read-only data home serves what is there and fails in one line only when
it must write; the files xlbench writes honour the umask (a group can share a cache).

Root ignores permission bits, so as root a folder is made read-only with a read-only bind mount
(where this process may mount); as another user with ``chmod -R a-w``. Where neither works the
read-only tests skip and say why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.corpus_fixtures import make_shemo
from tests.test_reliability_errors import leftovers, one_line_error
from xlbench.cli import main

SHEMO = ["F01A01", "F01N01", "F01S01", "M01A01", "M01N01", "M01S01"]


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(paths: list[Path]) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in paths}


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_manifests_and_feature_packs_honour_the_umask(mask: int, mode: int, tmp_path: Path,
                                                      private_home: Path) -> None:
    root = make_shemo(tmp_path / "shemo", SHEMO, seconds=0.3)
    cli = CliRunner()
    with umask(mask):
        assert cli.invoke(main, ["data", "prepare", "--corpus", "shemo", "--root", str(root)]).exit_code == 0
        res = cli.invoke(main, ["features", "extract", "--encoder", "logmel-stats", "-c", "shemo"])
        assert res.exit_code == 0, res.output
    written = [private_home / "manifests" / "shemo.json", *private_home.glob("features/*/*.npy"),
               *private_home.glob("features/*/*.json")]
    assert len(written) >= 3 and any(p.suffix == ".npy" for p in written)
    assert modes(written) == {mode}


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_records_honour_the_umask(mask: int, mode: int, tmp_path: Path) -> None:
    from tests.data.fake_records import make_record
    from xlbench.records import write_record

    with umask(mask):
        path = write_record(make_record("crosslingual"), tmp_path / "results")
    assert modes([path]) == {mode}


# -- read-only ----------------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(*folders: Path) -> Iterator[None]:
    """``folders`` cannot be written while inside (a read-only bind mount as root, else chmod)."""
    if os.geteuid() != 0:
        for f in folders:
            subprocess.run(["chmod", "-R", "a-w", str(f)], check=True)
        try:
            yield
        finally:
            for f in folders:
                subprocess.run(["chmod", "-R", "u+w", str(f)], check=True)
        return
    mounted: list[Path] = []
    try:
        for f in folders:
            for args in (["mount", "--bind", str(f), str(f)], ["mount", "-o", "remount,ro,bind", str(f)]):
                try:
                    subprocess.run(args, check=True, capture_output=True, timeout=10)
                except (OSError, subprocess.SubprocessError):
                    pytest.skip("running as root without the right to mount: permissions cannot make a folder "
                                "read-only here")
                if args[1] == "--bind":
                    mounted.append(f)
        yield
    finally:
        for f in reversed(mounted):
            subprocess.run(["umount", str(f)], check=False, capture_output=True, timeout=10)


RUN = ["run", "--method", "crosslingual", "--target", "italian", "--no-bounds", "--encoder", "logmel-stats",
       "--set", "epochs=2"]


@pytest.mark.slow
def test_read_only_home_serves_what_is_there(synthetic_home: Path, tmp_path: Path, no_mlflow,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A hard-linked copy of the shared home: made read-only, it must not take the shared one (other
    # pytest-xdist workers write there) with it.
    home = tmp_path / "home"
    shutil.copytree(synthetic_home, home, copy_function=os.link, ignore=shutil.ignore_patterns("*.lock", "tmp"))
    monkeypatch.setenv("XLBENCH_HOME", str(home))
    synthetic_home = home
    results = tmp_path / "results"
    cli = CliRunner()
    res = cli.invoke(main, [*RUN, "--seeds", "0", "--results", str(results)])  # writes features, audit, record
    assert res.exit_code == 0, res.output
    record = next(results.glob("crosslingual/*.json"))
    before = record.read_bytes()
    with read_only(synthetic_home, results):
        res = cli.invoke(main, [*RUN, "--seeds", "0", "--results", str(results)])
        assert res.exit_code == 0, res.output  # the corpus, its manifests, the features, the audit, the record
        assert "1 reused from existing records" in res.output
        for argv in (["runs", "list", "--results", str(results)], ["data", "status"],
                     ["leaderboard", "validate", "--records", str(results), "--min-seeds", "1"]):
            res = cli.invoke(main, argv)
            assert res.exit_code == 0 and "Traceback" not in res.output, (argv, res.output)
        # a new seed must write its record: one line naming where, before any training
        def no_training(*_args, **_kwargs):
            raise AssertionError("trained although the record cannot be written")

        monkeypatch.setattr("xlbench.runner.run_one", no_training)
        res = cli.invoke(main, [*RUN, "--seeds", "1", "--results", str(results)])
        line = one_line_error(res, f"cannot write run records in {results / 'crosslingual'}")
        assert "Read-only file system" in line or "Permission denied" in line
    assert record.read_bytes() == before and len(list(results.glob("*/*.json"))) == 1
    assert leftovers(results) == []


@pytest.mark.slow
def test_read_only_home_without_the_corpus_fails_in_one_line(tmp_path: Path, private_home: Path,
                                                              no_mlflow) -> None:
    private_home.mkdir(parents=True)
    with read_only(private_home):
        res = CliRunner().invoke(main, [*RUN, "--seeds", "0", "--results", str(tmp_path / "results")])
    line = one_line_error(res, str(private_home))
    assert "Read-only file system" in line or "Permission denied" in line
