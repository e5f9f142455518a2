"""Issue 13, point 1: every failure a user can cause ends in one line naming what and where, a
non-zero exit (130 for Ctrl-C) and nothing half-written, through the real CLI.

A full disk is a real one where this machine lets the test mount a 64 KiB tmpfs (root with
CAP_SYS_ADMIN), else an injected ENOSPC at the same write; the other faults are injected where
a user's machine raises them (the generator's file writes, the run's record write).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from xlbench.cli import main

#: the documented exit statuses (docs/reliability.md)
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def one_line_error(res: Result, *fragments: str, code: int = EXIT_ERROR) -> str:
    """The result is exactly one ``error:`` line holding every fragment, no traceback, exit ``code``."""
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and "Exception ignored" not in res.output, res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.exception
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, res.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str = "64k") -> Iterator[bool]:
    """A tmpfs of ``size`` mounted at ``path`` where this process may mount one; False where not."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=10)


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files and folders under ``folder``."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or ".partial-" in p.name)


# -- data generate: a fault during generation -------------------------------------------------

FAULTS = {
    "ENOSPC": (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device", EXIT_ERROR),
    "EROFS": (OSError(errno.EROFS, os.strerror(errno.EROFS)), "Read-only file system", EXIT_ERROR),
    "EACCES": (PermissionError(errno.EACCES, os.strerror(errno.EACCES)), "Permission denied", EXIT_ERROR),
    "MemoryError": (MemoryError("Unable to allocate 7.3 TiB for an array"), "out of memory", EXIT_ERROR),
}


def _fail_on_write(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """The generator's third wav write raises ``exc`` (one worker, in this process, so it is seen)."""
    from xlbench.synth import generate

    real = generate.wav_bytes
    calls = [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "default_workers", lambda: 1)
    monkeypatch.setattr(generate, "wav_bytes", failing)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_data_generate_fault_is_one_line_and_leaves_nothing(fault, monkeypatch, private_home: Path) -> None:
    exc, fragment, code = FAULTS[fault]
    _fail_on_write(monkeypatch, exc)
    res = CliRunner().invoke(main, ["data", "generate", "--language", "italian"])
    line = one_line_error(res, fragment, code=code)
    if isinstance(exc, OSError):  # where: the file being written
        assert f"cannot write {private_home / 'synthetic'}" in line and ".wav: " in line, line
    assert leftovers(private_home) == []
    assert not list((private_home / "manifests").glob("*.json")) if (private_home / "manifests").exists() else True


def test_data_generate_ctrl_c_is_130_without_a_claim_about_runs(monkeypatch, private_home: Path) -> None:
    _fail_on_write(monkeypatch, KeyboardInterrupt())
    res = CliRunner().invoke(main, ["data", "generate", "--language", "italian"])
    assert res.exit_code == EXIT_INTERRUPTED, res.output
    assert "interrupted" in res.output and "Traceback" not in res.output
    assert "runs" not in res.output  # nothing was run: no "finished runs are kept"
    assert leftovers(private_home) == []


def test_data_generate_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real full disk: the data home on a 64 KiB tmpfs (the corpus needs megabytes)."""
    home = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    with tiny_filesystem(home) as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the injected ENOSPC covers it")
        monkeypatch.setenv("XLBENCH_HOME", str(home))
        monkeypatch.setattr("xlbench.synth.generate.default_workers", lambda: 1)
        res = CliRunner().invoke(main, ["data", "generate", "--language", "italian"])
        one_line_error(res, "No space left on device", str(home))
        assert leftovers(home) == []


def test_ctrl_c_inside_the_espeak_callback_reaches_python(monkeypatch, capfd) -> None:
    """Ctrl-C while espeak-ng calls back into Python stops the synthesis and raises, instead of
    "Exception ignored on calling ctypes callback function" and a synthesis that goes on."""
    from xlbench.synth import espeak

    def interrupted(*_args):
        raise KeyboardInterrupt  # what a SIGINT raises in the callback's Python code

    with espeak.session() as engine:
        with monkeypatch.context() as m:
            m.setattr(espeak.ctypes, "string_at", interrupted)
            with pytest.raises(KeyboardInterrupt):
                engine.synthesize("hello there", "en")
        assert engine.synthesize("hello", "en").size > 0  # the engine is usable afterwards
    assert "Exception ignored" not in capfd.readouterr().err


# -- a run: the record cannot be written ------------------------------------------------------

RUN = ["run", "--method", "crosslingual", "--target", "italian", "--seeds", "0", "--no-bounds", "--no-audit",
       "--encoder", "logmel-stats",
       "--set", "epochs=2"]


@pytest.mark.slow
def test_full_disk_while_writing_a_record(synthetic_home, tmp_path: Path, monkeypatch, no_mlflow) -> None:
    """Training done, then the record's write fails: one line naming the record, no temp file, no record."""
    results = tmp_path / f"results-{uuid.uuid4().hex[:6]}"
    with tiny_filesystem(results, size="16k") as mounted:
        if not mounted:  # the same ENOSPC, raised where the record's bytes reach the disk
            results.mkdir(exist_ok=True)
            real_fsync = os.fsync

            def fsync(fd: int) -> None:
                if os.readlink(f"/proc/self/fd/{fd}").startswith(str(results)):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                real_fsync(fd)

            monkeypatch.setattr(os, "fsync", fsync)
        res = CliRunner().invoke(main, [*RUN, "--results", str(results)])
        line = one_line_error(res, "No space left on device", "cannot write", str(results / "crosslingual"))
        assert line.endswith(".json: No space left on device; free some space, or set XLBENCH_HOME / --results "
                             "to a folder on a larger disk")
        assert leftovers(results) == [] and not list(results.glob("*/*.json"))


def test_ctrl_c_during_a_run_says_how_to_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("xlbench.cli.runs.execute", interrupted)
    res = CliRunner().invoke(main, RUN)
    assert res.exit_code == EXIT_INTERRUPTED, res.output
    assert "run the same command again to resume" in res.output and "Traceback" not in res.output


# -- bad values named by the user -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--method", "crosslingual", "--target", "italian", "--seeds", "0-1000000000000"], "between 0 and"),
        (["run", "--method", "crosslingual", "--target", "italian", "--seeds", "0-4294967295"], "at most 1000 seeds"),
        (["run", "--method", "crosslingual", "--target", "italian", "--seeds=-1"], "non-negative"),
        (["run", "--method", "crosslingual", "--target", "italian", "--seeds", "5-2"], "is empty"),
        (["run", "--method", "crosslingual", "--target", "italian", "--seeds", "1,x"], "--seeds expects"),
        (["grid", "--methods", "crosslingual", "--seeds", "0-1000000000000", "--dry-run"], "between 0 and"),
        (["grid", "--methods", "crosslingual", "--seeds", "0-999999", "--dry-run"], "at most 1000 seeds"),
        (["grid", "--methods", "crosslingual", "--seeds=-1", "--dry-run"], "non-negative"),
    ],
    ids=["huge-range", "too-many", "negative", "empty-range", "not-a-number", "grid-huge", "grid-too-many",
         "grid-negative"],
)
def test_bad_seeds_are_one_line_before_any_work(argv, fragment) -> None:
    one_line_error(CliRunner().invoke(main, argv), fragment)


def test_results_folder_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv("XLBENCH_RESULTS", str(a_file))
    one_line_error(CliRunner().invoke(main, ["runs", "list"]), f"XLBENCH_RESULTS={a_file} is not a folder")


def test_check_method_of_an_unknown_name_is_one_line() -> None:
    res = CliRunner().invoke(main, ["check-method", "pseudolabl"])
    one_line_error(res, "unknown method 'pseudolabl'", "did you mean 'pseudolabel'")
    assert "|" not in res.output  # no table of checks


def test_data_status_shows_a_garbage_manifest_as_corrupt(private_home: Path) -> None:
    (private_home / "manifests").mkdir(parents=True)
    (private_home / "manifests" / "synth_it.json").write_text("garbage{")
    res = CliRunner().invoke(main, ["data", "status"])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    row = next(ln for ln in res.output.splitlines() if ln.startswith("| synth_it"))
    assert "corrupt manifest" in row and "xlbench data generate --language italian" in row
    assert "data prepare" not in row  # a generated corpus is generated again, not prepared
    lang_row = next(ln for ln in res.output.splitlines() if "synth_it" in ln and "synthetic: corrupt" in ln)
    assert "xlbench data generate --language italian" in lang_row


@pytest.mark.parametrize(("argv", "fragment"), [
    (["run", "--method", "crosslingual", "--target", "italian", "--bogus"], "No such option '--bogus'"),
    (["run", "--target", "italian"], "Missing option '--method'"),
    (["grid", "--workers", "0", "--dry-run"], "0 is not in the range"),
    (["data", "nocmd"], "such command 'nocmd'"),
])
def test_click_usage_errors_are_one_line(argv: list[str], fragment: str) -> None:
    """A mistyped command line is one line naming the mistake and where help is, exit code 2 (click
    alone prints its usage, a hint and the error)."""
    res = CliRunner().invoke(main, argv)
    line = one_line_error(res, fragment)
    assert "--help'" in line and "Usage:" not in res.output
