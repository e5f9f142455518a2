"""xlbench.report.check and xlbench.report.board: `leaderboard render` writes, `check` renders every
generated file again and catches stale markdown; the committed boards are up to date; the CLI's
user errors are one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.report_utils import golden_board
from xlbench.cli import main
from xlbench.report.board import render
from xlbench.report.check import check
from xlbench.report.validate import validate_records


def test_check_catches_stale_markdown(tmp_path: Path) -> None:
    board, records = golden_board(tmp_path)
    path = render(records, board, plots=False)
    root = board.parent
    assert [r.status for r in check(root)] == ["ok"]
    cli = CliRunner()
    res = cli.invoke(main, ["leaderboard", "check", "--dir", str(root)])
    assert res.exit_code == 0, res.output
    # hand-edited markdown
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("pseudolabel mode=hard", "pseudolabel mode=HARD", 1), encoding="utf-8")
    (result,) = check(root)
    assert result.status == "stale" and "differs" in result.detail
    res = cli.invoke(main, ["leaderboard", "check", "--dir", str(root)])
    assert res.exit_code != 0 and "stale" in res.output
    # records changed after rendering
    path.write_text(original, encoding="utf-8")
    next(records.glob("dann/*.json")).unlink()
    assert check(root)[0].status == "stale"
    # records gone: cannot be verified
    shutil.rmtree(records)
    assert check(root)[0].status == "error"


@pytest.mark.slow
def test_committed_boards_are_valid_and_up_to_date() -> None:
    """The boards in leaderboards/ validate and match their records (what CI guards)."""
    repo = Path(__file__).resolve().parents[1]
    records = repo / "leaderboards" / "synthetic" / "records"
    _good, defects = validate_records(records)
    assert not defects
    stale = [r for r in check(repo / "leaderboards") if r.status != "ok"]
    assert not stale, [(str(r.path), r.status) for r in stale]


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    cli = CliRunner()
    res = cli.invoke(main, ["reproduce", "table9"])
    assert res.exit_code == 2 and "unknown table 'table9'" in res.output and len(res.output.strip().splitlines()) == 1
    res = cli.invoke(main, ["leaderboard", "validate", "--records", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and res.output.startswith("error: no records folder")
    res = cli.invoke(main, ["reproduce", "table4", "--set", "nokey=1", "--dry-run"])
    assert res.exit_code == 2 and "nokey" in res.output and len(res.output.strip().splitlines()) == 1
