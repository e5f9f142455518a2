"""The audit verdicts shipped for the built-in methods (xlbench/audit_verdicts.json): current,
made by the audit itself, used by a fresh home's runs, and never above a verdict made here."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from xlbench import __version__
from xlbench.audit import SHIPPED_VERDICTS, audits_dir, cached_verdict, fingerprint, run_audit, shipped_verdicts
from xlbench.method import get_method
from xlbench.runner import RunRequest, execute

ROOT = Path(__file__).resolve().parent.parent
STALE = "stale: run `python tools/ship_audit_verdicts.py` after changing a built-in method or the version"


def builtin_names() -> list[str]:
    """The built-ins as pyproject.toml declares them (not as the code under test lists them)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return sorted(pyproject["project"]["entry-points"]["xlbench.methods"])


def shipped_entries() -> dict[str, dict]:
    return json.loads(SHIPPED_VERDICTS.read_text())["verdicts"]


def default_config(name: str) -> dict:
    return get_method(name).Config().model_dump(mode="json")


def test_every_builtin_ships_a_pass_for_its_current_code_and_default_config() -> None:
    entries = shipped_entries()
    assert sorted(e["method"] for e in entries.values()) == builtin_names(), STALE
    for name in builtin_names():
        fp = fingerprint(get_method(name), default_config(name), "frozen")
        assert fp in entries, f"{name}: {STALE}"
        entry = entries[fp]
        assert (entry["method"], entry["mode"], entry["config"]) == (name, "frozen", default_config(name))
        stamp = shipped_verdicts()[fp]
        assert (stamp.verdict, stamp.fingerprint, stamp.xlbench_version) == ("pass", fp, __version__)
        assert stamp.detail.endswith(f"verdict shipped with xlbench {__version__} (the same audit, run on this code "
                                     "by its developers)")


@pytest.mark.slow
def test_the_shipped_verdicts_are_what_the_audit_gives_now(synthetic_home) -> None:
    for name in builtin_names():
        cls = get_method(name)
        res = run_audit(cls, default_config(name), mode="frozen")
        shipped = shipped_verdicts()[res.fingerprint]
        assert res.verdict == shipped.verdict == "pass", name
        assert shipped.detail.startswith(res.detail + "; "), name


def test_a_fresh_home_runs_a_builtin_on_its_shipped_verdict(fresh_home: Path, no_mlflow, one_torch_thread) -> None:
    notes: list[str] = []
    req = RunRequest(method="pseudolabel", target="italian", encoder="logmel-stats", seeds=(0,), data="synthetic",
                     show_progress=False)
    record = execute(req, on_note=notes.append)[0].record
    fp = fingerprint(get_method("pseudolabel"), default_config("pseudolabel"), "frozen")
    assert record.audit == shipped_verdicts()[fp]
    assert not [n for n in notes if "audit" in n]  # no audit ran
    assert not list(audits_dir().glob("*.json"))  # and nothing was cached here


def test_a_verdict_made_in_this_home_comes_before_the_shipped_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XLBENCH_HOME", str(tmp_path))
    fp = fingerprint(get_method("dann"), default_config("dann"), "frozen")
    assert cached_verdict(fp) == shipped_verdicts()[fp]
    local = shipped_verdicts()[fp].model_copy(update={"verdict": "nondeterministic", "detail": "here"})
    audits_dir().mkdir(parents=True)
    (audits_dir() / f"{fp}.json").write_text(json.dumps({"stamp": local.model_dump()}))
    assert cached_verdict(fp) == local
    other = fingerprint(get_method("dann"), {**default_config("dann"), "epochs": 7}, "frozen")
    assert cached_verdict(other) is None  # another config is not covered: it is audited on its first run


def test_an_unreadable_shipped_file_ships_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "audit_verdicts.json"
    broken.write_text('{"verdicts": {"abc": {"stamp": {"verdict": "pass"}}')
    assert shipped_verdicts(broken) == {}
    assert shipped_verdicts(tmp_path / "missing.json") == {}
