"""Generated markdown files: the marker line that makes them re-renderable, and their banner.

The first line of a generated file is a marker comment holding what is needed to render it again
(its kind, where its records are, and the options of the command that wrote it); the banner under
the title says how to regenerate and verify it. :mod:`xlbench.report.check` reads the marker back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MARKER = "<!-- xlbench:generated "
SYNTHETIC_WARNING = (
    "**Synthetic corpus.** These runs use the generated espeak-ng corpus (PROTOCOL.md §9): the numbers "
    "show that the machinery works and how the methods behave relative to each other on it, and say "
    "nothing about recognising emotions in real speech. No paper numbers are shown beside them."
)


def marker(meta: dict[str, Any]) -> str:
    """The first line of a generated file: ``meta`` as canonical JSON inside a comment."""
    return MARKER + json.dumps(meta, sort_keys=True, separators=(",", ":")) + " -->"


def read_marker(text: str) -> dict[str, Any] | None:
    """The marker's ``meta`` of a generated file's text; None for a file xlbench did not write."""
    first = text.split("\n", 1)[0]
    if not first.startswith(MARKER) or not first.endswith("-->"):
        return None
    try:
        meta = json.loads(first[len(MARKER):-3].strip())
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def banner(command: str, what: str) -> str:
    """The do-not-edit banner: which command wrote the file from what, and how to verify it."""
    return (
        f"> **Generated file: do not edit.** Written by `xlbench {command.split()[0]} {command.split()[1]}` "
        f"from {what}.\n> Regenerate: `xlbench {command}`. Verify: `xlbench leaderboard check`."
    )


def project_relative(path: Path, anchor: Path) -> str:
    """``path`` relative to the project that holds ``anchor`` (a folder with pyproject.toml or .git)."""
    path = path.resolve()
    for parent in [anchor.resolve(), *anchor.resolve().parents]:
        if (parent / "pyproject.toml").exists() or (parent / ".git").exists():
            try:
                return path.relative_to(parent).as_posix()
            except ValueError:
                break
    return path.as_posix()


def relative_to(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (with ``..`` up to three levels), else absolute."""
    path, base = Path(path).resolve(), Path(base).resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        rel = os.path.relpath(path, base)
        return Path(rel).as_posix() if not rel.startswith("..") or rel.count("..") <= 3 else path.as_posix()
