"""Helpers that install fake plugin distributions on sys.path, so tests exercise real entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path


def install_fake_distribution(
    root: Path, dist: str, version: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> Path:
    """Write ``<dist>-<version>.dist-info`` with entry points, plus module files, under ``root``
    and put ``root`` on sys.path. importlib.metadata then finds it like an installed package."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in eps.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    for name, code in modules.items():
        path = root / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def uninstall(root: Path, modules: list[str]) -> None:
    while str(root) in sys.path:
        sys.path.remove(str(root))
    for name in modules:
        sys.modules.pop(name, None)
