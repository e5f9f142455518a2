"""The leaderboard: run records -> significance -> markdown, plus `validate` and `check`.

One table per setting (target × N_k × emotion set, within a corpus kind, encoder, mode and
selection policy). Rows are systems (method configurations) with the bounds of the same target
beside them; each row shows UA mean ± std over seeds, the speaker-bootstrap 95% interval of the
seed-pooled UA, Δ against the lower bound, the share of the transfer gap closed, and a paired
permutation test against the best system, Holm-adjusted within the table. Every statistic comes
from :mod:`xlbench.stats`; this module only selects, pairs and formats.

The markdown is a pure function of the records: no dates, seeded resampling, sorted output, so
``xlbench leaderboard check`` can re-render it in memory and compare byte for byte. The first
line of a generated file is a marker comment holding what is needed to re-render it.
"""

from __future__ import annotations

import gc
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tabulate import tabulate

from xlbench.aggregate import (
    MIN_SEEDS,
    TARGET_ORDER,
    Loaded,
    config_hash,
    config_labels,
    encoder_label,
    n_labeled_order,
    seed_flag,
    split_prefix,
)
from xlbench.errors import DataError
from xlbench.paper import ENCODER_TITLES, TABLE8_CAPTION_NOTE, TABLE8_MATCH_NOTE, PaperResult, paper_results
from xlbench.records import SCHEMA_VERSION, RunRecord, recompute_run_id
from xlbench.stats import (
    cluster_bootstrap_ci,
    compare_systems,
    detectability_note,
    holm_correction,
    mean_std_over_seeds,
    pool_predictions,
)

MARKER = "<!-- xlbench:generated "
LOWER, UPPER = "crosslingual", "multilingual"
ALPHA = 0.05
N_PERMUTATIONS = 10_000
N_BOOTSTRAP = 2_000
STAT_SEED = 0  # fixed: the same records always give the same markdown
PAPER_ENCODERS = {"hubert": "hubert", "byols": "byols", "byols-scratch": None, "emotioncnn": "emotioncnn"}
SYNTHETIC_WARNING = (
    "**Synthetic corpus.** These runs use the generated espeak-ng corpus (PROTOCOL.md §9): the numbers "
    "show that the machinery works and how the methods behave relative to each other on it, and say "
    "nothing about recognising emotions in real speech. No paper numbers are shown beside them."
)
DASH = "—"


# -- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defect:
    path: str
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.message}"


_TEST_NAMES = ("test",)


def _looks_like_test(name: str) -> bool:
    return any(t in name.lower() for t in _TEST_NAMES)


def _raw_checks(path: Path, raw: dict[str, Any]) -> list[str]:
    """Checks on the raw JSON, so that the reason is named even when the schema also fails."""
    out = []
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        out.append(f"wrong schema: schema_version {version!r}, this xlbench reads {SCHEMA_VERSION}")
    sel = raw.get("selection") if isinstance(raw.get("selection"), dict) else {}
    task = raw.get("task") if isinstance(raw.get("task"), dict) else {}
    policy = sel.get("policy")
    if policy not in (None, "paper", "strict"):
        out.append(f"test-set selection: selection policy {policy!r} (only paper and strict are allowed)")
    if task.get("selection") not in (None, "paper", "strict"):
        out.append(f"test-set selection: task selection {task.get('selection')!r} (only paper and strict)")
    sets = sel.get("sets") or []
    test_sets = [s for s in sets if isinstance(s, str) and _looks_like_test(s)]
    if test_sets:
        out.append(f"test-set selection: model selected on {', '.join(test_sets)}")
    sizes = raw.get("sizes") if isinstance(raw.get("sizes"), dict) else {}
    val_test = [k for k in sizes if k.startswith("val_") and _looks_like_test(k)]
    if val_test:
        out.append(f"test-set selection: a validation set is named like a test set ({', '.join(val_test)})")
    return out


def _split_checks(rec: RunRecord) -> list[str]:
    from xlbench.splits import load_split

    out = []
    for side, data in (("source", rec.source_data), ("target", rec.target_data)):
        for corpus, sha in sorted(data.split_hashes.items()):
            try:
                shipped = load_split(corpus, rec.splits_version).sha256
            except DataError as exc:
                out.append(f"split hash: {side} corpus {corpus}: {exc}")
                continue
            if sha != shipped:
                out.append(
                    f"split hash: {side} corpus {corpus} was split by {sha[:12]}…, the shipped split file "
                    f"v{rec.splits_version} is {shipped[:12]}…"
                )
    return out


def setting_key(rec: RunRecord) -> tuple:
    t = rec.task
    return (rec.synthetic, encoder_label(rec), t.mode, t.selection, len(t.emotions), t.target, str(t.n_labeled))


def system_key(rec: RunRecord) -> tuple[str, str, str]:
    return (rec.method.name, rec.method.version, config_hash(rec.method.config))


def validate_records(root: Path, min_seeds: int = MIN_SEEDS) -> tuple[list[Loaded], list[Defect]]:
    """Every record under ``root`` checked; returns the sound records and one defect per problem.

    Defects: unreadable or wrong schema, a run id that does not match the record's content
    (tampered), a file name that is not its run id, split hashes unlike the shipped split files,
    model selection on a test set, and settings with fewer than ``min_seeds`` seeds.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no records folder {root}")
    paths = sorted(root.glob("*/*.json"))
    if not paths:
        raise DataError(f"no run records under {root} (expected <method>/<run_id>.json)")
    good: list[Loaded] = []
    defects: list[Defect] = []
    for path in paths:
        rel = str(path)
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            defects.append(Defect(rel, f"wrong schema: not readable JSON ({str(exc).splitlines()[0]})"))
            continue
        if not isinstance(raw, dict):
            defects.append(Defect(rel, "wrong schema: not a JSON object"))
            continue
        problems = _raw_checks(path, raw)
        try:
            rec = RunRecord.model_validate(raw)
        except Exception as exc:
            first = str(exc).splitlines()
            detail = " ".join(first[:2]) if first else type(exc).__name__
            if not any(p.startswith("wrong schema") for p in problems):
                problems.append(f"wrong schema: {detail}")
            defects.extend(Defect(rel, p) for p in problems)
            continue
        actual = recompute_run_id(rec)
        if actual != rec.run_id:
            problems.append(f"tampered run id: the record says {rec.run_id}, its content hashes to {actual}")
        elif path.stem != rec.run_id or path.parent.name != rec.method.name:
            problems.append(f"misfiled: expected {rec.method.name}/{rec.run_id}.json")
        problems += _split_checks(rec)
        if problems:
            defects.extend(Defect(rel, p) for p in problems)
        else:
            good.append((path, rec))
    # Too few seeds is a property of a setting, reported once per (setting, system).
    groups: dict[tuple, list[Loaded]] = defaultdict(list)
    for path, rec in good:
        groups[(setting_key(rec), system_key(rec))].append((path, rec))
    for _key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        seeds = sorted({rec.task.seed for _, rec in members})
        dupes = len(members) - len(seeds)
        where = _describe(members[0][1])
        if len(seeds) < min_seeds:
            defects.append(
                Defect(str(members[0][0].parent), f"fewer than {min_seeds} seeds: {where} has seed(s) "
                       f"{','.join(map(str, seeds))}")
            )
        if dupes:
            defects.append(Defect(str(members[0][0].parent), f"duplicate seeds: {where} has {dupes} extra record(s)"))
    return good, defects


def _describe(rec: RunRecord) -> str:
    t = rec.task
    return (
        f"{rec.method.name} v{rec.method.version} config {config_hash(rec.method.config)} · {t.target} · "
        f"N_k {t.n_labeled} · {len(t.emotions)} emotions · {encoder_label(rec)} ({t.mode}) · selection {t.selection}"
    )


# -- formatting -------------------------------------------------------------------------------


def pct(x: float | None, digits: int = 2) -> str:
    return DASH if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    # three significant digits, so that 0.0499 and 0.05 never print alike
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def fmt_delta(d: float | None) -> str:
    if d is None or not math.isfinite(d):
        return DASH
    points = round(100 * d, 2)
    return f"{points + 0.0:+.2f}"  # + 0.0 turns -0.0 into 0.0: no "-0.00" for a tie


def title(name: str) -> str:
    return name[:1].upper() + name[1:]


def nk_text(n: Any) -> str:
    return "all" if n == "all" else str(n)


# -- the tables -------------------------------------------------------------------------------

Role = Literal["method", "lower", "upper"]


@dataclass
class System:
    """One method configuration's records in one table, sorted by seed."""

    method: str
    version: str
    config_hash: str
    label: str
    role: Role
    records: list[Loaded]

    @property
    def seeds(self) -> list[int]:
        return [r.task.seed for _, r in self.records]

    @property
    def n_labeled(self) -> Any:
        return self.records[0][1].task.n_labeled


@dataclass
class Row:
    system: System
    ua_mean: float
    ua_std: float
    ua_text: str
    ci: tuple[float, float] | None
    source_text: str
    delta_lower: float | None = None
    gap_closed: float | None = None
    p_raw: float | None = None
    p_holm: float | None = None
    mcnemar_p: float | None = None
    best: bool = False
    flag: str = ""
    compare_note: str = ""

    @property
    def not_different_from_best(self) -> bool:
        return self.p_holm is not None and math.isfinite(self.p_holm) and self.p_holm >= ALPHA


@dataclass
class Table:
    synthetic: bool
    encoder: str
    mode: str
    selection: str
    emotions: int
    target: str
    n_labeled: Any
    rows: list[Row]
    paper: list[PaperResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    family_size: int = 0

    @property
    def section(self) -> tuple:
        return (self.synthetic, self.encoder, self.mode, self.selection)


def _group_key(rec: RunRecord) -> tuple:
    t = rec.task
    return (rec.synthetic, encoder_label(rec), t.mode, t.selection, len(t.emotions), t.target)


def _pick_reference(systems: Sequence[System]) -> System | None:
    """The bound a table refers to when several configs of it exist: most records, then label."""
    if not systems:
        return None
    return sorted(systems, key=lambda s: (-len(s.records), s.label))[0]


def _seed_records(system: System, seeds: Iterable[int]):
    keep = set(seeds)
    for _, rec in system.records:
        if rec.task.seed in keep:
            preds = rec.predictions["target"]
            yield (rec.task.seed, [p.id for p in preds], np.array([p.true for p in preds]),
                   np.array([p.pred for p in preds]))


def _pooled_arrays(system: System) -> tuple[np.ndarray, np.ndarray, list[str]]:
    yt, yp, spk = [], [], []
    for _, rec in system.records:
        for p in rec.predictions["target"]:
            yt.append(p.true)
            yp.append(p.pred)
            spk.append(p.speaker)
    return np.array(yt, dtype=np.int64), np.array(yp, dtype=np.int64), spk


def _row(system: System, n_classes: int) -> Row:
    recs = [r for _, r in system.records]
    s = mean_std_over_seeds(r.metrics["target"].ua for r in recs)
    src = mean_std_over_seeds(r.metrics["source"].ua for r in recs)
    yt, yp, spk = _pooled_arrays(system)
    ci: tuple[float, float] | None
    try:
        b = cluster_bootstrap_ci(yt, yp, spk, n_classes, metric="ua", n_resamples=N_BOOTSTRAP, seed=STAT_SEED)
        ci = (b.low, b.high)
    except ValueError:  # one speaker: nothing to resample
        ci = None
    return Row(system, s.mean, s.std, s.format(), ci, src.format())


def _compare(row: Row, best: Row, n_classes: int) -> None:
    """Paired permutation (ΔUA) and McNemar against the best row, on their common seeds."""
    common = sorted(set(row.system.seeds) & set(best.system.seeds))
    if not common:
        row.compare_note = "no seed in common with the best system: not compared"
        return
    try:
        pooled = pool_predictions(_seed_records(row.system, common), _seed_records(best.system, common))
    except ValueError as exc:
        row.compare_note = f"not compared: {exc}"
        return
    speakers = {p.id: p.speaker for _, rec in row.system.records for p in rec.predictions["target"]}
    cmp = compare_systems(
        pooled, n_classes, speakers=speakers, permutation_unit="utterance",
        n_permutations=N_PERMUTATIONS, n_bootstrap=N_BOOTSTRAP, seed=STAT_SEED,
    )
    row.p_raw = cmp.permutation_p
    row.mcnemar_p = cmp.mcnemar_p
    if len(common) < max(len(row.system.seeds), len(best.system.seeds)):
        row.compare_note = f"compared on the common seeds {','.join(map(str, common))} only"


def build_tables(records: Sequence[Loaded]) -> list[Table]:
    """Every leaderboard table the records allow, in display order."""
    if not records:
        raise DataError("no run records to put on a leaderboard")
    # statsmodels' Holm runs gc.collect() on every call, which walks every object of the records
    # held here (~0.5 s per table); freezing them out of the collector makes that cheap.
    gc.collect()
    gc.freeze()
    try:
        return _build_tables(records)
    finally:
        gc.unfreeze()


def _build_tables(records: Sequence[Loaded]) -> list[Table]:
    labels = config_labels((r.method.name, r.method.config) for _, r in records)
    groups: dict[tuple, dict[tuple, list[Loaded]]] = defaultdict(lambda: defaultdict(list))
    for path, rec in records:
        sk = system_key(rec)
        groups[_group_key(rec)][(*sk, str(rec.task.n_labeled))].append((path, rec))

    tables: list[Table] = []
    for gkey in sorted(groups, key=_group_order):
        systems: list[System] = []
        for (method, version, h, _nk), members in groups[gkey].items():
            role: Role = "lower" if method == LOWER else "upper" if method == UPPER else "method"
            members.sort(key=lambda pr: pr[1].task.seed)
            systems.append(System(method, version, h, labels[(method, h)], role, members))
        _disambiguate_versions(systems)
        bounds = [s for s in systems if s.role != "method"]
        others = [s for s in systems if s.role == "method"]
        settings = sorted({s.n_labeled for s in others} | ({0} if any(s.role == "lower" for s in bounds) else set()),
                          key=n_labeled_order)
        if not settings:
            settings = sorted({s.n_labeled for s in bounds}, key=n_labeled_order)
        for nk in settings:
            members = [s for s in others if s.n_labeled == nk] + bounds
            tables.append(_table(gkey, nk, members))
    return tables


def _group_order(gkey: tuple) -> tuple:
    synthetic, encoder, mode, selection, emotions, target = gkey
    t = TARGET_ORDER.index(target) if target in TARGET_ORDER else len(TARGET_ORDER)
    return (synthetic, encoder, mode, selection, -emotions, t, target)


def _disambiguate_versions(systems: list[System]) -> None:
    by_label: dict[str, list[System]] = defaultdict(list)
    for s in systems:
        by_label[s.label].append(s)
    for same in by_label.values():
        if len({s.version for s in same}) > 1:
            for s in same:
                s.label = f"{s.label} (v{s.version})"


def _table(gkey: tuple, nk: Any, systems: list[System]) -> Table:
    synthetic, encoder, mode, selection, emotions, target = gkey
    n_classes = emotions
    rows = [_row(s, n_classes) for s in systems]
    rows.sort(key=lambda r: (-r.ua_mean, r.system.label))
    table = Table(synthetic, encoder, mode, selection, emotions, target, nk, rows)
    lower = _pick_reference([r.system for r in rows if r.system.role == "lower"])
    upper = _pick_reference([r.system for r in rows if r.system.role == "upper"])
    row_of = {id(r.system): r for r in rows}
    lo = row_of[id(lower)] if lower else None
    up = row_of[id(upper)] if upper else None
    for r in rows:
        if lo is not None:
            r.delta_lower = r.ua_mean - lo.ua_mean
            if up is not None and up.ua_mean - lo.ua_mean > 1e-12:
                r.gap_closed = (r.ua_mean - lo.ua_mean) / (up.ua_mean - lo.ua_mean)
    # The best system: highest mean UA, the upper bound (an oracle with every label) excluded.
    contenders = [r for r in rows if r.system.role != "upper"]
    if contenders:
        best = contenders[0]
        best.best = True
        for r in contenders[1:]:
            _compare(r, best, n_classes)
        family = [r for r in contenders[1:] if r.p_raw is not None]
        if family:
            holm = holm_correction([r.p_raw for r in family], alpha=ALPHA)
            for r, adj in zip(family, holm.adjusted, strict=True):
                r.p_holm = float(adj)
            table.family_size = holm.n_tests
    # Seeds: too few, or not the same as the other systems' in this table.
    seed_sets = {tuple(r.system.seeds) for r in rows}
    for r in rows:
        r.flag = seed_flag(r.system.seeds, len(seed_sets) > 1)
    if not synthetic:
        table.paper = _paper_rows(table, rows)
    table.notes = _notes(table, lo)
    return table


def _paper_rows(table: Table, rows: Sequence[Row]) -> list[PaperResult]:
    enc = table.encoder.split("(")[0]
    paper_enc = PAPER_ENCODERS.get(enc)
    out = []
    for p in paper_results(target=table.target, n_labeled=table.n_labeled, emotions=table.emotions):
        if p.encoder is not None and p.encoder != paper_enc:
            continue
        out.append(p)
    # Bounds are reference rows of every N_k table; their paper numbers belong there too.
    if table.n_labeled != 0:
        out += [p for p in paper_results(target=table.target, n_labeled=0, emotions=table.emotions, method=LOWER)
                if p.encoder == paper_enc]
    if table.n_labeled != "all" and any(r.system.role == "upper" for r in rows):
        out += [p for p in paper_results(target=table.target, n_labeled="all", emotions=table.emotions, method=UPPER)
                if p.encoder == paper_enc]
    return out


def _notes(table: Table, lower: Row | None) -> list[str]:
    notes = []
    rec = table.rows[0].system.records[0][1]
    counts = [sum(row) for row in rec.metrics["target"].confusion]
    n_test = sum(counts)
    n_speakers = len({p.speaker for p in rec.predictions["target"]})
    baseline = lower.ua_mean if lower is not None else table.rows[0].ua_mean
    baseline = min(max(baseline, 0.01), 0.99)
    notes.append(
        f"Test set: {n_test} {title(table.target)} utterances from {n_speakers} speakers "
        f"(per class {', '.join(map(str, counts))}); {detectability_note(counts, baseline)}, "
        f"at the {'lower bound' if lower is not None else 'best system'}'s UA of {100 * baseline:.1f}."
    )
    if table.family_size:
        notes.append(f"Holm correction over the {table.family_size} comparison(s) with the best system in this table.")
    for r in table.rows:
        if r.compare_note:
            notes.append(f"{r.system.label}: {r.compare_note}.")
    if len({tuple(r.system.seeds) for r in table.rows}) > 1:
        notes.append("⚠ The systems in this table were not all run with the same seeds.")
    if any(p.table in ("table7", "table8") for p in table.paper):
        notes.append(f"{TABLE8_CAPTION_NOTE} {TABLE8_MATCH_NOTE}")
    if table.paper and table.mode == "frozen":
        notes.append("The paper fine-tuned its encoder; the runs here train a head on frozen features.")
    for p in table.paper:
        if p.note:
            notes.append(f"Paper row \"{p.label}\": {p.note}.")
    return notes


# -- markdown ---------------------------------------------------------------------------------

HEADERS = [
    "method", "N_k", "target UA %", "95% CI", "Δ vs lower", "gap closed", "p vs best (Holm)", "McNemar p",
    "source UA %", "seeds", "encoder", "version", "records", "target split",
]


def _row_cells(r: Row, encoder: str) -> list[str]:
    s = r.system
    name = s.label + {"lower": " (lower bound)", "upper": " (upper bound)", "method": ""}[s.role]
    ua = r.ua_text + (" †" if r.not_different_from_best else "")
    if r.best:
        ua = f"**{r.ua_text}**"
    ci = DASH if r.ci is None else f"[{pct(r.ci[0], 1)}, {pct(r.ci[1], 1)}]"
    gap = DASH if r.gap_closed is None else f"{100 * r.gap_closed:.0f}%"
    if r.best:
        p = "best"
    elif s.role == "upper":
        p = "(reference)"
    else:
        p = fmt_p(r.p_holm)
    mc = DASH if r.best or s.role == "upper" else fmt_p(r.mcnemar_p)
    seeds = str(len(s.seeds)) + (" ⚠" if r.flag else "")
    rec0 = s.records[0][1]
    version = f"v{s.version} · {rec0.method.distribution} {rec0.method.distribution_version or ''}".strip()
    return [
        name, nk_text(s.n_labeled), ua, ci, fmt_delta(r.delta_lower), gap, p, mc, r.source_text, seeds, encoder,
        version, str(len(s.records)), split_prefix(rec0.target_data.split_hashes),
    ]


def _paper_cells(p: PaperResult) -> list[str]:
    name = f"{p.row_label}: Table {p.table[-1]}, {p.label}"
    ua = DASH if p.target_ua is None else f"{p.target_ua:.2f}"
    src = DASH if p.source_ua is None else f"{p.source_ua:.2f}"
    enc = ENCODER_TITLES[p.encoder] if p.encoder else DASH
    return [name, nk_text(p.n_labeled), ua, DASH, DASH, DASH, DASH, DASH, src, DASH, enc, "published", DASH, DASH]


def table_heading(t: Table) -> str:
    kind = "synthetic corpus" if t.synthetic else "real corpora"
    return (
        f"### {title(t.target)} · N_k = {nk_text(t.n_labeled)} · {t.emotions} emotions "
        f"({kind}; {t.encoder}, {t.mode}; selection {t.selection})"
    )


def section_heading(section: tuple) -> str:
    synthetic, encoder, mode, selection = section
    kind = "synthetic corpus (generated speech)" if synthetic else "real corpora"
    return f"## {kind} · encoder {encoder} ({mode}) · selection {selection}"


def render_table(t: Table) -> str:
    body = [_row_cells(r, t.encoder) for r in t.rows] + [_paper_cells(p) for p in t.paper]
    lines = [table_heading(t), "", tabulate(body, headers=HEADERS, tablefmt="github", disable_numparse=True), ""]
    lines += [f"- {n}" for n in t.notes]
    flagged = [r for r in t.rows if r.flag]
    for r in flagged:
        lines.append(f"- ⚠ {r.system.label}: {r.flag} (seeds {','.join(map(str, r.system.seeds))}).")
    lines.append("")
    return "\n".join(lines)


LEGEND = """\
How to read a table (details: docs/leaderboard.md, statistics: docs/statistics.md):

- **target UA %**: unweighted accuracy (mean per-class recall) on the target test set, mean ± sample
  std over seeds. Bold: the best system (highest mean UA; the upper bound, which sees every target
  label, is not a contender). † = not significantly different from the best (Holm-adjusted p ≥ 0.05).
- **95% CI**: percentile bootstrap interval of the seed-pooled UA, resampling whole test speakers.
- **Δ vs lower**: UA points above the lower bound (crosslingual, English only).
- **gap closed**: (UA − lower) / (upper − lower), the share of the transfer gap the method closes
  (upper bound = multilingual, every target label).
- **p vs best (Holm)**: paired permutation test of ΔUA against the best system on per-utterance
  predictions pooled over the common seeds (an utterance's seed replicates swap together,
  10,000 resamples), Holm-adjusted over the comparisons in the table. **McNemar p**: accuracy
  (WA) on the same pairs, unadjusted, a cross-check.
- **seeds** ⚠: fewer than 3 seeds, or not the same seeds as the other systems in the table.
- **version**: method version · distribution that provided it; **target split**: split-file hash prefix.
- The bounds (crosslingual at N_k = 0, multilingual with every label) are repeated in each N_k table
  of their target as references."""


def _project_relative(path: Path, anchor: Path) -> str:
    """``path`` relative to the project that holds ``anchor`` (a folder with pyproject.toml or .git)."""
    path = path.resolve()
    for parent in [anchor.resolve(), *anchor.resolve().parents]:
        if (parent / "pyproject.toml").exists() or (parent / ".git").exists():
            try:
                return path.relative_to(parent).as_posix()
            except ValueError:
                break
    return path.as_posix()


def _marker(meta: dict[str, Any]) -> str:
    return MARKER + json.dumps(meta, sort_keys=True, separators=(",", ":")) + " -->"


def banner(command: str, what: str) -> str:
    return (
        f"> **Generated file: do not edit.** Written by `xlbench {command.split()[0]} {command.split()[1]}` "
        f"from {what}.\n> Regenerate: `xlbench {command}`. Verify: `xlbench leaderboard check`."
    )


def render_markdown(
    records: Sequence[Loaded],
    records_dir: Path,
    out_dir: Path,
    figures: Sequence[str] = (),
    title_text: str | None = None,
) -> str:
    """The whole leaderboard page for these records (a pure function of them and the paths)."""
    tables = build_tables(records)
    rel_records = _relative_to(records_dir, out_dir)
    meta: dict[str, Any] = {"kind": "leaderboard", "records": rel_records}
    if figures:
        meta["figures"] = list(figures)
    cmd = (
        f"leaderboard render --records {_project_relative(records_dir, out_dir)} "
        f"--out {_project_relative(out_dir, out_dir)}" + ("" if figures else " --no-plots")
    )
    synthetic_only = all(t.synthetic for t in tables)
    heading = title_text or ("xlbench leaderboard (synthetic corpus)" if synthetic_only else "xlbench leaderboard")
    n_records = len(records)
    lines = [
        _marker(meta),
        f"# {heading}",
        "",
        banner(cmd, f"the {n_records} run records in `{rel_records}`"),
        "",
    ]
    if synthetic_only:
        lines += [SYNTHETIC_WARNING, ""]
    elif any(t.synthetic for t in tables):
        lines += [SYNTHETIC_WARNING.replace("These runs use", "The tables headed *synthetic corpus* use"), ""]
    lines += [LEGEND, ""]
    current = None
    body: list[str] = []
    for t in tables:
        if t.section != current:
            current = t.section
            body += [section_heading(t.section), ""]
            if t.synthetic:
                body += ["Synthetic corpus: no paper numbers apply here.", ""]
        body.append(render_table(t))
    lines += body
    if figures:
        lines += ["## Figures", "", "Drawn from the same records (PNG here, SVG beside each).", ""]
        for f in figures:
            if Path(f).name.startswith("fig"):
                lines += [f"![{Path(f).stem}]({f})", ""]
        confusion = [f for f in figures if not Path(f).name.startswith("fig")]
        if confusion:
            lines += ["Confusion matrices (target test set, summed over seeds), one per table:", ""]
            lines += [f"- [{Path(f).stem}]({f})" for f in confusion]
            lines.append("")
    lines += _configurations(records)
    return "\n".join(lines).rstrip() + "\n"


def _configurations(records: Sequence[Loaded]) -> list[str]:
    labels = config_labels((r.method.name, r.method.config) for _, r in records)
    seen: dict[tuple[str, str, str], RunRecord] = {}
    for _, rec in records:
        seen.setdefault(system_key(rec), rec)
    lines = ["## Configurations", "", "Every method configuration above, in full (config hash = first 10 hex digits "
             "of the SHA-256 of its canonical JSON):", ""]
    rows = []
    for (method, version, h), rec in sorted(seen.items()):
        rows.append([labels[(method, h)], f"v{version}", rec.method.distribution, h,
                     "`" + json.dumps(rec.method.config, sort_keys=True, separators=(",", ":")) + "`"])
    lines.append(tabulate(rows, headers=["system", "version", "distribution", "config hash", "config"],
                          tablefmt="github", disable_numparse=True))
    lines.append("")
    return lines


def _relative_to(path: Path, base: Path) -> str:
    path, base = Path(path).resolve(), Path(base).resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        import os

        rel = os.path.relpath(path, base)
        return Path(rel).as_posix() if not rel.startswith("..") or rel.count("..") <= 3 else path.as_posix()


def sound_records(records_dir: Path) -> list[Loaded]:
    """The records a leaderboard may be built from: every validation defect except too few seeds
    (which the tables flag) refuses the whole folder, so nothing dubious is published silently."""
    good, defects = validate_records(records_dir, min_seeds=1)
    if defects:
        first = defects[0].line()
        raise DataError(
            f"{len(defects)} defect(s) in the records under {records_dir} (first: {first}); "
            f"see `xlbench leaderboard validate --records {records_dir}`"
        )
    return good


LEADERBOARD_FILE = "README.md"


def render(
    records_dir: Path,
    out_dir: Path,
    plots: bool = True,
    emit: Callable[[str], None] = lambda _: None,
) -> Path:
    """Write ``out_dir/README.md`` (and the figures under ``out_dir/plots``) from the records."""
    from xlbench.home import atomic_write_text

    path = Path(out_dir) / LEADERBOARD_FILE
    if path.exists() and read_marker(path.read_text(encoding="utf-8")) is None:
        raise DataError(f"{path} was not generated by xlbench; refusing to overwrite it (pick another --out)")
    records = sound_records(records_dir)
    figures: list[str] = []
    if plots:
        from xlbench.plots import leaderboard_figures

        figures = [Path(p).relative_to(out_dir.resolve()).as_posix()
                   for p in leaderboard_figures(records, out_dir.resolve() / "plots")]
        emit(f"wrote {len(figures)} figure file(s) under {out_dir / 'plots'}")
    text = render_markdown(records, records_dir, out_dir, figures=figures)
    atomic_write_text(path, text)
    return path


# -- check ------------------------------------------------------------------------------------


def read_marker(text: str) -> dict[str, Any] | None:
    first = text.split("\n", 1)[0]
    if not first.startswith(MARKER) or not first.endswith("-->"):
        return None
    try:
        meta = json.loads(first[len(MARKER):-3].strip())
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def rerender(path: Path, meta: dict[str, Any]) -> str:
    """Render a generated file again, in memory, from what its marker says."""
    kind = meta.get("kind")
    base = path.parent
    given = Path(meta["records"])
    records_dir = given if given.is_absolute() else (base / given).resolve()
    if kind == "leaderboard":
        records = sound_records(records_dir)
        return render_markdown(records, records_dir, base, figures=meta.get("figures", []))
    if kind == "reproduce":
        from xlbench.reproduce import rerender_reproduction

        return rerender_reproduction(path, meta, records_dir)
    raise DataError(f"{path}: unknown generated-file kind {kind!r}")


@dataclass
class CheckResult:
    path: Path
    status: Literal["ok", "stale", "error"]
    detail: str = ""


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
            out.append(CheckResult(path, "stale", _first_difference(text, fresh)))
    return out


def _first_difference(old: str, new: str) -> str:
    a, b = old.splitlines(), new.splitlines()
    for i, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return f"line {i} differs: on disk {x[:80]!r}, fresh {y[:80]!r}"
    return f"on disk {len(a)} lines, fresh {len(b)} lines"


__all__ = [
    "CheckResult",
    "Defect",
    "Row",
    "System",
    "Table",
    "build_tables",
    "check",
    "render",
    "render_markdown",
    "sound_records",
    "validate_records",
]

