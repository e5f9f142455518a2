"""Helpers shared by the report tests: records as the report reads them, table cells, pooled
predictions built by hand, Holm by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.fake_records import table_scenario, write


def loaded(records):
    """(path, record) pairs, as xlbench.report.validate returns them."""
    return [(Path(f"{r.method.name}/{r.run_id}.json"), r) for r in records]


def cells(markdown: str, label: str) -> list[str]:
    """The cells of the first table row whose method cell starts with ``label``."""
    for line in markdown.splitlines():
        if line.startswith("|"):
            parts = [c.strip() for c in line.strip().strip("|").split("|")]
            if parts[0].startswith(label):
                return parts
    raise AssertionError(f"no row {label!r}")


def header(markdown: str) -> list[str]:
    """The column names of the first table of the page."""
    for line in markdown.splitlines():
        if line.startswith("| method"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise AssertionError("no table")


def pooled(records, seeds=(0, 1, 2)):
    """Pooled (seed, utterance) arrays built by hand: sorted by seed, then utterance id."""
    yt, yp, spk, ids = [], [], [], []
    for r in sorted(records, key=lambda r: r.task.seed):
        if r.task.seed not in seeds:
            continue
        for p in sorted(r.predictions["target"], key=lambda p: p.id):
            yt.append(p.true)
            yp.append(p.pred)
            spk.append(p.speaker)
            ids.append(p.id)
    return np.array(yt), np.array(yp), spk, ids


def hand_holm(p: list[float]) -> list[float]:
    """Holm's step-down adjustment written out: sorted p_(i) times (m - i + 1), made monotone, capped at 1."""
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()


def scenario_groups(records) -> dict[str, list]:
    """The systems of ``table_scenario``, by the label the page gives them (role suffix included)."""
    return {
        "crosslingual (lower bound)": [r for r in records if r.method.name == "crosslingual"],
        "multilingual (upper bound)": [r for r in records if r.method.name == "multilingual"],
        "pseudolabel mode=hard": [r for r in records if r.method.config.get("mode") == "hard"],
        "pseudolabel mode=soft": [r for r in records if r.method.config.get("mode") == "soft"],
        "dann": [r for r in records if r.method.name == "dann"],
    }


def golden_board(tmp_path: Path) -> tuple[Path, Path]:
    """A board folder inside a project (banner paths are project-relative) with the golden scenario's
    records: Italian synthetic N_k = 0 and French real (hubert) N_k = 100."""
    project = tmp_path / "project"
    (project / "leaderboards" / "golden").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    board = project / "leaderboards" / "golden"
    records = board / "records"
    write(table_scenario() + table_scenario("french", False, 100, "hubert"), records)
    return board, records
