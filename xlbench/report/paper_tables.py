"""The paper's tables as grids of cells, and the exact method config each cell expects.

A :class:`Cell` is one method configuration at an N_k and emotion set, run on every target. The
same definitions drive the runs (:mod:`xlbench.reproduce` plans its grid from them) and the pages
(:mod:`xlbench.report.paper_pages` matches records to cells by :func:`expected_configs`), so a
page always shows exactly what its command ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xlbench.errors import ConfigError, unknown_name
from xlbench.method import get_method, make_config
from xlbench.method_options import ALL, split_overrides

TAUS = (0.5, 0.65, 0.85)
FIG3_NK = (0, 25, 50, 100)


@dataclass(frozen=True)
class Cell:
    """One method configuration a table needs, on every target."""

    method: str
    options: tuple[tuple[str, Any], ...]
    n_labeled: int
    emotions: str = "5"
    column: str = ""  # the column or row it fills


TABLES: dict[str, tuple[str, tuple[Cell, ...]]] = {
    "table4": ("Table 4: cross-lingual (train on English only), per target", (Cell("crosslingual", (), 0),)),
    "table5": (
        "Table 5: multi-lingual (English + all labelled target data), source and target UA",
        (Cell("multilingual", (), ALL), Cell("crosslingual", (), 0, column="English alone")),
    ),
    "table6": (
        "Table 6: 4 emotions (fear dropped), N_k = 0",
        (
            Cell("dann", (), 0, "4", "DANN"),
            Cell("nnpm", (), 0, "4", "NNPM"),
            Cell("pseudolabel", (("mode", "hard"),), 0, "4", "pseudolabel (hard)"),
            Cell("crosslingual", (), 0, "4", "crosslingual (lower bound)"),
        ),
    ),
    "table7": (
        "Table 7: N_k = 100, hard pseudo-labels, τ = 0.50 / 0.65 / 0.85",
        tuple(Cell("pseudolabel", (("mode", "hard"), ("tau", t)), 100, column=f"τ = {t:g}") for t in TAUS),
    ),
    "table8": (
        "Table 8: N_k = 100, hard pseudo-labels (τ = 0.5), without / with rebalancing",
        tuple(
            Cell("pseudolabel", (("mode", "hard"), ("tau", 0.5), ("rebalance", r)), 100,
                 column="with rebalancing" if r else "w/o rebalancing")
            for r in (False, True)
        ),
    ),
    "fig3": (
        "Fig. 3: pseudolabel, hard and soft, by N_k (numbers behind the figure)",
        tuple(Cell("pseudolabel", (("mode", m),), nk, column=f"{m}|{nk}") for m in ("hard", "soft") for nk in FIG3_NK),
    ),
}
ORDER = ("table4", "table5", "table6", "table7", "table8", "fig3")


def table_names(name: str) -> list[str]:
    """The tables ``name`` stands for (``all``: every one); an unknown name is a one-line error."""
    if name == "all":
        return list(ORDER)
    if name not in TABLES:
        raise unknown_name("table", name, [*ORDER, "all"])
    return [name]


def spread_sets(cells: Sequence[Cell], sets: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``--set`` values per available method of the cells, and the methods that are unavailable (why)."""
    classes: dict[str, type] = {}
    missing: dict[str, str] = {}
    for m in dict.fromkeys(c.method for c in cells):
        try:
            classes[m] = get_method(m)
        except ConfigError as exc:  # not installed, or a plugin that fails to import
            missing[m] = str(exc)
    if not sets or not classes:
        return {m: {} for m in classes}, missing
    fields = {m: set(c.Config.model_fields) for m, c in classes.items()}
    return split_overrides(dict(sets), list(classes), fields), missing


def expected_configs(
    cells: Iterable[Cell], sets: Mapping[str, Any]
) -> tuple[dict[Cell, dict[str, Any]], dict[str, str]]:
    """The exact config each cell runs with (``--set`` values plus the cell's own options), and the
    methods that are unavailable."""
    cells = list(cells)
    spread, missing = spread_sets(cells, sets)
    out: dict[Cell, dict[str, Any]] = {}
    for cell in cells:
        if cell.method in missing:
            continue
        clash = [k for k, _ in cell.options if k in spread[cell.method]]
        if clash:
            raise ConfigError(f"--set {', '.join(clash)}: this table sets {', '.join(clash)} itself")
        cfg = make_config(get_method(cell.method), {**spread[cell.method], **dict(cell.options)})
        out[cell] = cfg.model_dump(mode="json")
    return out, missing
