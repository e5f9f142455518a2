"""Which leaderboard tables the records make, and which systems (and published rows) each shows.

The third step of the report: records -> tables of systems, with no statistic beyond the mean
± std over seeds (from :func:`xlbench.report.frame.summarize`). One table per setting
(:func:`xlbench.report.identity.setting_key`). The bounds run at their own N_k (the lower bound
``crosslingual`` at 0, the upper bound ``multilingual`` with every label) and are repeated in every
N_k table of an otherwise equal setting as its references. :mod:`xlbench.report.significance`
adds the tests; the figures draw the confusion matrices of the same tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from xlbench.errors import DataError
from xlbench.paper import PaperResult, paper_results
from xlbench.report.frame import records_frame, seed_flag, summarize
from xlbench.report.identity import Setting, n_labeled_order, setting_key
from xlbench.report.validate import Loaded

#: The method names of the bounds (baselines/xlbench_baselines/bounds.py).
LOWER, UPPER = "crosslingual", "multilingual"
#: Our encoder names -> the paper's encoder whose published numbers apply (None: the paper has none).
PAPER_ENCODERS: dict[str, str | None] = {
    "hubert": "hubert", "byols": "byols", "byols-scratch": None, "emotioncnn": "emotioncnn",
}

Role = Literal["method", "lower", "upper"]


@dataclass
class System:
    """One method configuration's runs in one setting, sorted by seed, with mean ± std over seeds."""

    method: str
    version: str
    config_hash: str
    label: str  # e.g. "pseudolabel mode=hard"; names only the options that vary in these records
    role: Role
    setting: Setting
    records: list[Loaded]
    ua_mean: float  # target UA, mean over seeds (a proportion)
    ua_std: float  # sample std (ddof = 1); NaN with one seed
    ua_text: str  # "58.02 ± 1.23" (percent), or "58.02 (1 seed)"
    source_text: str  # the same for the source (English) test set

    @property
    def seeds(self) -> list[int]:
        return [r.task.seed for _, r in self.records]

    @property
    def n_labeled(self) -> Any:
        return self.setting.n_labeled


@dataclass
class Table:
    """One leaderboard table: the systems of one setting (best mean UA first) and its references."""

    setting: Setting  # with the table's N_k
    systems: list[System]
    lower: System | None  # the reference lower bound (None: no crosslingual run in this setting)
    upper: System | None  # the reference upper bound
    paper: list[PaperResult] = field(default_factory=list)  # published rows; real corpora only

    @property
    def synthetic(self) -> bool:
        return self.setting.synthetic

    @property
    def encoder(self) -> str:
        return self.setting.encoder

    @property
    def mode(self) -> str:
        return self.setting.mode

    @property
    def selection(self) -> str:
        return self.setting.selection

    @property
    def emotions(self) -> int:
        return self.setting.emotions

    @property
    def target(self) -> str:
        return self.setting.target

    @property
    def n_labeled(self) -> Any:
        return self.setting.n_labeled

    @property
    def section(self) -> tuple:
        """What a group of tables shares on the page: corpus kind, source, encoder, mode, selection."""
        return (self.synthetic, self.setting.source, self.setting.encoder_text, self.mode, self.selection)

    @property
    def best(self) -> System | None:
        """The highest mean UA; the upper bound (an oracle with every target label) is not a contender."""
        return next((s for s in self.systems if s.role != "upper"), None)

    @property
    def seeds_differ(self) -> bool:
        return len({tuple(s.seeds) for s in self.systems}) > 1

    def seed_flag(self, system: System) -> str:
        """Too few seeds, or not the same seeds as the other systems of this table."""
        return seed_flag(system.seeds, self.seeds_differ)


def build_tables(records: Sequence[Loaded]) -> list[Table]:
    """Every leaderboard table the records allow, in display order."""
    if not records:
        raise DataError("no run records to put on a leaderboard")
    by_id = {rec.run_id: (path, rec) for path, rec in records}
    families: dict[Setting, list[System]] = defaultdict(list)
    for row in summarize(records_frame(records)).to_dict("records"):
        members = sorted((by_id[r] for r in row["run_ids"]), key=lambda pr: pr[1].task.seed)
        setting = setting_key(members[0][1])
        method = row["method"]
        role: Role = "lower" if method == LOWER else "upper" if method == UPPER else "method"
        families[setting.any_n_labeled()].append(System(
            method=method, version=row["method_version"], config_hash=row["config_hash"],
            label=row["config_label"], role=role, setting=setting, records=members,
            ua_mean=row["target_ua_mean"], ua_std=row["target_ua_std"], ua_text=row["target_ua"],
            source_text=row["source_ua"],
        ))
    tables: list[Table] = []
    for family in sorted(families, key=Setting.display_order):
        systems = families[family]
        disambiguate_versions(systems)
        bounds = [s for s in systems if s.role != "method"]
        others = [s for s in systems if s.role == "method"]
        n_ks = {s.n_labeled for s in others} | ({0} if any(s.role == "lower" for s in bounds) else set())
        if not n_ks:
            n_ks = {s.n_labeled for s in bounds}
        for nk in sorted(n_ks, key=n_labeled_order):
            members = [s for s in others if s.n_labeled == nk] + bounds
            tables.append(make_table(replace(family, n_labeled=nk), members))
    return tables


def disambiguate_versions(systems: list[System]) -> None:
    """Systems with the same label but different method versions get "(vN)" appended."""
    by_label: dict[str, list[System]] = defaultdict(list)
    for s in systems:
        by_label[s.label].append(s)
    for same in by_label.values():
        if len({s.version for s in same}) > 1:
            for s in same:
                s.label = f"{s.label} (v{s.version})"


def shared_settings(bound: System, others: Sequence[System]) -> int:
    """How many (option, value) pairs of the bound's config the other systems' configs repeat."""
    config = bound.records[0][1].method.config
    return sum(other.records[0][1].method.config.get(k, object()) == v for other in others for k, v in config.items())


def pick_reference(systems: Sequence[System], others: Sequence[System] = ()) -> System | None:
    """The bound a table refers to when several configs of it exist: the one trained most like the
    table's methods (e.g. the linear head beside linear-head methods, not an MLP variant), then most
    records, then label."""
    if not systems:
        return None
    return sorted(systems, key=lambda s: (-shared_settings(s, others), -len(s.records), s.label))[0]


def make_table(setting: Setting, systems: list[System]) -> Table:
    """One table: its systems ordered by mean UA (then label), its references and its paper rows."""
    ordered = sorted(systems, key=lambda s: (-s.ua_mean, s.label))
    methods = [s for s in ordered if s.role == "method"]
    lower = pick_reference([s for s in ordered if s.role == "lower"], methods)
    upper = pick_reference([s for s in ordered if s.role == "upper"], methods)
    table = Table(setting, ordered, lower, upper)
    if not setting.synthetic:
        table.paper = paper_rows(table)
    return table


def paper_rows(table: Table) -> list[PaperResult]:
    """The published numbers that belong beside this table (same encoder, target, N_k, emotions)."""
    paper_enc = PAPER_ENCODERS.get(table.encoder.split("(")[0])
    out = [p for p in paper_results(target=table.target, n_labeled=table.n_labeled, emotions=table.emotions)
           if p.encoder is None or p.encoder == paper_enc]
    # Bounds are reference rows of every N_k table; their paper numbers belong there too.
    if table.n_labeled != 0:
        out += [p for p in paper_results(target=table.target, n_labeled=0, emotions=table.emotions, method=LOWER)
                if p.encoder == paper_enc]
    if table.n_labeled != "all" and any(s.role == "upper" for s in table.systems):
        out += [p for p in paper_results(target=table.target, n_labeled="all", emotions=table.emotions, method=UPPER)
                if p.encoder == paper_enc]
    return out
