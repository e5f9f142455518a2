"""`xlbench doctor` and `xlbench data status` on machines set up by the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests import corpus_fixtures as fx
from xlbench.cli import main
from xlbench.encoders.tiny import tiny_hubert


def table(output: str) -> dict[str, list[str]]:
    """check name -> [status, detail, fix] from the doctor's table."""
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in output.splitlines() if ln.startswith("| ")]
    return {r[0]: r[1:] for r in rows[1:] if not set(r[0]) <= {"-"}}


def test_doctor_on_a_fresh_machine(private_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    res = CliRunner().invoke(main, ["doctor"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = table(res.output)
    assert rows["data home"][:2] == ["ok", f"{private_home} (writable)"]
    assert rows["free disk (data home)"][1].endswith("GB free")
    assert "offline (HF_HUB_OFFLINE=1" in rows["Hugging Face cache"][1]  # conftest is offline
    assert rows["weights: hubert"][0] == "warning" and rows["weights: hubert"][2] == "xlbench weights fetch hubert"
    assert rows["weights: byols"][2] == "xlbench weights fetch byols"
    assert rows["MLflow"] == ["ok", f"local store {private_home / 'mlflow.db'}", ""]
    assert rows["corpus: emodb"] == ["warning", "not prepared", "xlbench data download --corpus emodb --accept-licence"]
    assert "Register.html" in rows["corpus: savee"][2]
    assert rows["espeak-ng"][0] == "ok" and rows["torch"][1].startswith("torch ")


def test_doctor_finds_what_is_there(private_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--facebook--hubert-base-ls960"
    shutil.copytree(tiny_hubert(tmp_path / "tiny"), repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")
    root = fx.make_full_emovo(tmp_path / "emovo")
    assert CliRunner().invoke(main, ["data", "prepare", "--corpus", "emovo", "--root", str(root)]).exit_code == 0
    res = CliRunner().invoke(main, ["doctor"], catch_exceptions=False)
    rows = table(res.output)
    assert rows["weights: hubert"][0] == "ok" and rows["weights: hubert"][1].startswith(commit)
    assert rows["corpus: emovo"] == ["ok", f"420 utterances from {root.resolve()}", ""]
    assert rows["MLflow"][1].startswith("tracking off")


def test_doctor_reports_an_unwritable_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XLBENCH_HOME", str(blocker / "home"))
    res = CliRunner().invoke(main, ["doctor"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    rows = table(res.output)
    assert rows["data home"][0] == "PROBLEM" and rows["data home"][2] == "set XLBENCH_HOME to a writable folder"
    assert rows["MLflow"][0] == "PROBLEM" and rows["corpora"][0] == "PROBLEM"
    assert "problem(s): data home, MLflow, corpora" in res.output


def test_data_status_says_what_each_corpus_is_and_how_to_get_it(private_home: Path, tmp_path: Path) -> None:
    # EMO-DB unpacked into the data home but not prepared (e.g. a prepare that was interrupted)
    fx.make_emodb(private_home / "corpora" / "emodb")
    res = CliRunner().invoke(main, ["data", "status"], catch_exceptions=False)
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in res.output.splitlines() if ln.startswith("| ")]
    folder = private_home / "corpora" / "emodb"
    assert ["german", "target", "synthetic (synth_de)", "emodb", "downloaded, not prepared", "",
            f"`xlbench data prepare --corpus emodb --root {folder}`"] in rows
    savee = next(r for r in rows if r[3] == "savee")
    assert savee[4] == "missing" and "Register.html" in savee[6] and "--corpus savee --root DIR" in savee[6]
    assert next(r for r in rows if r[3] == "tess")[6] == "`xlbench data download --corpus tess --accept-licence`"
