"""``xlbench leaderboard check``: every generated markdown file rendered again and compared.

The top of the report: a generated file's marker (:mod:`xlbench.report.generated`) says what
rendered it; this module renders it again, in memory, from the same records, with the same
renderer (:mod:`xlbench.report.markdown` or :mod:`xlbench.report.paper_pages`), and compares
byte for byte. Hand edits, records changed after rendering, or a changed renderer all show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from xlbench.errors import DataError
from xlbench.report.generated import read_marker
from xlbench.report.markdown import render_markdown
from xlbench.report.paper_pages import page_from_marker
from xlbench.report.validate import sound_records


@dataclass
class CheckResult:
    path: Path
    status: Literal["ok", "stale", "error"]
    detail: str = ""


def rerender(path: Path, meta: dict[str, Any]) -> str:
    """Render a generated file again, in memory, from what its marker says."""
    kind = meta.get("kind")
    if kind not in ("leaderboard", "reproduce"):
        raise DataError(f"{path}: unknown generated-file kind {kind!r}")
    base = path.parent
    given = Path(meta["records"])
    records_dir = given if given.is_absolute() else (base / given).resolve()
    records = sound_records(records_dir)
    if kind == "leaderboard":
        return render_markdown(records, records_dir, base, figures=meta.get("figures", []))
    return page_from_marker(path, meta, records, records_dir)


def first_difference(old: str, new: str) -> str:
    """Where two texts first differ, for a one-line report."""
    a, b = old.splitlines(), new.splitlines()
    for i, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return f"line {i} differs: on disk {x[:80]!r}, fresh {y[:80]!r}"
    return f"on disk {len(a)} lines, fresh {len(b)} lines"


def check(root: Path) -> list[CheckResult]:
    """Every generated markdown file under ``root`` re-rendered and compared with what is on disk."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no leaderboard folder {root}")
    out = []
    for path in sorted(root.rglob("*.md")):
        if "records" in path.relative_to(root).parts:
            continue
        text = path.read_text(encoding="utf-8")
        meta = read_marker(text)
        if meta is None:
            continue
        try:
            fresh = rerender(path, meta)
        except DataError as exc:
            out.append(CheckResult(path, "error", str(exc)))
            continue
        if fresh == text:
            out.append(CheckResult(path, "ok"))
        else:
            out.append(CheckResult(path, "stale", first_difference(text, fresh)))
    return out
