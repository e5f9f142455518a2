"""The statistics of a leaderboard table: what each system's numbers can and cannot say.

The fourth step of the report: a :class:`~xlbench.report.tables.Table` -> a :class:`ScoredTable`.
Every number comes from :mod:`xlbench.stats`; this module only decides what is compared with what
(docs/statistics.md, "What a leaderboard table computes"):

- per system, the speaker-bootstrap 95% interval of its seed-pooled UA;
- the **pre-specified** comparison of every system with the table's lower bound (``crosslingual``,
  same setting), on their common seeds: ΔUA pooled over seeds, the speaker-bootstrap 95% interval
  of ΔUA, the paired permutation test of ΔUA and McNemar's test on accuracy;
- Holm's adjustment of the permutation p-values within the table. The family is every system but
  the lower bound itself and the upper bound, which is a reference (its interval is shown, it is
  not tested);
- the minimum detectable difference of the table's test set.

Nothing is compared with the best system: it is chosen on the same test data, so such a
comparison would be post hoc (docs/statistics.md says why it was dropped).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from xlbench.report.tables import System, Table
from xlbench.stats import (
    SeedRecord,
    cluster_bootstrap_ci,
    compare_systems,
    detectability_note,
    holm_correction,
    pool_predictions,
)

ALPHA = 0.05
N_PERMUTATIONS = 10_000
N_BOOTSTRAP = 2_000
CI_LEVEL = 0.95
STAT_SEED = 0  # fixed: the same records always give the same markdown


@dataclass(frozen=True)
class VersusLower:
    """A system against the table's lower bound, on the (seed, utterance) pairs of their common seeds."""

    delta: float  # ΔUA = UA(system) - UA(lower), predictions pooled over the common seeds
    ci_low: float  # speaker-bootstrap percentile interval of ΔUA (CI_LEVEL)
    ci_high: float
    p_raw: float  # paired permutation test of ΔUA, an utterance's seed replicates swapped together
    mcnemar_p: float  # McNemar's test on accuracy over the pooled pairs, unadjusted
    seeds: tuple[int, ...]  # the common seeds
    tested: bool  # in the table's Holm family (False for the upper bound: a reference)
    p_holm: float | None = None  # Holm-adjusted within the table; None when not tested


@dataclass(frozen=True)
class RowStats:
    """The statistics of one system in one table."""

    system: System
    ua_ci: tuple[float, float] | None  # speaker-bootstrap interval of the seed-pooled UA; None: 1 speaker
    delta_lower: float | None  # mean UA minus the lower bound's mean UA (over each one's seeds)
    gap_closed: float | None  # (UA - lower) / (upper - lower), means over seeds
    versus_lower: VersusLower | None  # None for the lower bound itself, or when it cannot be compared
    note: str = ""  # why a comparison was not made, or made on fewer seeds


@dataclass(frozen=True)
class TargetTestSet:
    """The table's target test set and the smallest UA difference it can resolve."""

    n_utterances: int
    n_speakers: int
    class_counts: tuple[int, ...]
    baseline_ua: float  # the UA the detectability is evaluated at
    at_lower_bound: bool  # the baseline is the lower bound's UA (else the best system's)
    detectability: str  # stats.detectability_note


@dataclass(frozen=True)
class ScoredTable:
    """A table with its statistics; ``rows`` follow ``table.systems``."""

    table: Table
    rows: list[RowStats]
    family_size: int  # comparisons with the lower bound in the Holm family
    test_set: TargetTestSet


def score_tables(tables: Iterable[Table]) -> list[ScoredTable]:
    """The statistics of every table."""
    # statsmodels' Holm runs gc.collect() on every call, which walks every object of the records
    # held here (~0.5 s per table); freezing them out of the collector makes that cheap.
    gc.collect()
    gc.freeze()
    try:
        return [score_table(t) for t in tables]
    finally:
        gc.unfreeze()


def score_table(table: Table) -> ScoredTable:
    """The statistics of one table (module docstring); seeded, so the same records give the same numbers."""
    n_classes = table.emotions
    lower, upper = table.lower, table.upper
    compared: dict[int, tuple[VersusLower | None, str]] = {}
    if lower is not None:
        for s in table.systems:
            if s is not lower:
                compared[id(s)] = versus_lower(s, lower, n_classes, tested=s.role != "upper")
    family = {k: vs for k, (vs, _) in compared.items() if vs is not None and vs.tested}
    if family:
        holm = holm_correction([vs.p_raw for vs in family.values()], alpha=ALPHA)
        for (k, vs), adjusted in zip(family.items(), holm.adjusted, strict=True):
            compared[k] = (replace(vs, p_holm=float(adjusted)), compared[k][1])
    rows = []
    for s in table.systems:
        vs, note = compared.get(id(s), (None, ""))
        delta = gap = None
        if lower is not None:
            delta = s.ua_mean - lower.ua_mean
            if upper is not None and upper.ua_mean - lower.ua_mean > 1e-12:
                gap = delta / (upper.ua_mean - lower.ua_mean)
        rows.append(RowStats(s, ua_interval(s, n_classes), delta, gap, vs, note))
    return ScoredTable(table, rows, len(family), measure_test_set(table))


def seed_records(system: System, seeds: Iterable[int]) -> Iterator[SeedRecord]:
    """The system's target predictions under the given seeds, as :func:`xlbench.stats.pool_predictions` reads them."""
    keep = set(seeds)
    for _, rec in system.records:
        if rec.task.seed in keep:
            preds = rec.predictions["target"]
            yield (rec.task.seed, [p.id for p in preds], np.array([p.true for p in preds]),
                   np.array([p.pred for p in preds]))


def ua_interval(system: System, n_classes: int) -> tuple[float, float] | None:
    """Speaker-bootstrap interval of the UA of the system's predictions pooled over its seeds."""
    yt, yp, spk = [], [], []
    for _, rec in system.records:
        for p in rec.predictions["target"]:
            yt.append(p.true)
            yp.append(p.pred)
            spk.append(p.speaker)
    try:
        b = cluster_bootstrap_ci(np.array(yt, dtype=np.int64), np.array(yp, dtype=np.int64), spk, n_classes,
                                 metric="ua", n_resamples=N_BOOTSTRAP, level=CI_LEVEL, seed=STAT_SEED)
    except ValueError:  # one speaker: nothing to resample
        return None
    return (b.low, b.high)


def versus_lower(system: System, lower: System, n_classes: int, tested: bool) -> tuple[VersusLower | None, str]:
    """The system against the lower bound on their common seeds, and a note when something is amiss."""
    common = sorted(set(system.seeds) & set(lower.seeds))
    if not common:
        return None, "no seed in common with the lower bound: not compared"
    try:
        pooled = pool_predictions(seed_records(system, common), seed_records(lower, common))
        speakers = {p.id: p.speaker for _, rec in system.records for p in rec.predictions["target"]}
        cmp = compare_systems(
            pooled, n_classes, speakers=speakers, permutation_unit="utterance",
            n_permutations=N_PERMUTATIONS, n_bootstrap=N_BOOTSTRAP, level=CI_LEVEL, seed=STAT_SEED,
        )
    except ValueError as exc:  # different test sets, or a single test speaker
        return None, f"not compared with the lower bound: {exc}"
    note = ""
    if len(common) < max(len(system.seeds), len(lower.seeds)):
        note = f"compared with the lower bound on the common seeds {','.join(map(str, common))} only"
    vs = VersusLower(delta=cmp.delta_ua, ci_low=cmp.ci_low, ci_high=cmp.ci_high, p_raw=cmp.permutation_p,
                     mcnemar_p=cmp.mcnemar_p, seeds=tuple(common), tested=tested)
    return vs, note


def measure_test_set(table: Table) -> TargetTestSet:
    """Size of the target test set (the same for every run of a setting) and what it can resolve."""
    rec = table.systems[0].records[0][1]
    counts = tuple(sum(row) for row in rec.metrics["target"].confusion)
    n_speakers = len({p.speaker for p in rec.predictions["target"]})
    reference = table.lower if table.lower is not None else table.systems[0]
    # The MDD needs an accuracy strictly between 0 and 1.
    baseline = min(max(reference.ua_mean, 0.01), 0.99)
    return TargetTestSet(
        n_utterances=sum(counts), n_speakers=n_speakers, class_counts=counts, baseline_ua=baseline,
        at_lower_bound=table.lower is not None, detectability=detectability_note(list(counts), baseline),
    )

