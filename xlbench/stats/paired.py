"""Paired tests of two systems scored on the same (seed, utterance) pairs.

- :func:`paired_permutation_test`: the approximate-randomisation test on ΔUA, the test the
  leaderboard decides with;
- :func:`mcnemar_test`: McNemar's test on accuracy (WA), a familiar cross-check.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from xlbench.stats.arrays import (
    CHUNK_ELEMENTS,
    FloatArray,
    IntArray,
    aligned_labels,
    as_labels,
    check_n_classes,
    group_codes,
)
from xlbench.stats.metrics import confusion_counts, ua_from_confusion

#: McNemar uses the exact binomial test when fewer than this many pairs are discordant.
MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True)
class PermutationTestResult:
    """Two-sided paired permutation test of H0: systems a and b have the same UA."""

    ua_a: float
    ua_b: float
    delta: float  # UA(a) - UA(b)
    pvalue: float
    exact: bool  # True: all 2^m swaps enumerated; False: Monte Carlo with the +1 correction
    n_resamples: int  # swaps evaluated (2^m when exact)
    n_items: int  # pooled (seed, utterance) pairs
    n_units: int  # exchangeable units (items, or groups when given)
    n_informative_units: int  # units whose swap changes ΔUA (the others cancel out)


def _ua_weights(y_true: IntArray, n_classes: int) -> FloatArray:
    # UA = sum_i w_i * correct_i with w_i = 1 / (n_present_classes * n_{y_i}); y_true is fixed under
    # swapping, so UA is linear in per-utterance correctness and ΔUA is a weighted sum of signs.
    counts = np.bincount(y_true, minlength=n_classes)
    n_present = int(np.count_nonzero(counts))
    return 1.0 / (n_present * counts[y_true].astype(np.float64))


def _unit_contributions(
    y_true: IntArray, pred_a: IntArray, pred_b: IntArray, n_classes: int, groups: ArrayLike | None
) -> tuple[FloatArray, int]:
    w = _ua_weights(y_true, n_classes)
    contrib = w * ((pred_a == y_true).astype(np.float64) - (pred_b == y_true))
    if groups is None:
        return contrib, len(contrib)
    codes, n_groups = group_codes(groups, "groups", len(contrib))
    return np.bincount(codes, weights=contrib, minlength=n_groups), n_groups


def paired_permutation_test(
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    n_classes: int,
    groups: ArrayLike | Sequence[Hashable] | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    exact: bool | None = None,
) -> PermutationTestResult:
    """Paired permutation test on ΔUA = UA(a) - UA(b), two-sided.

    Under H0 the labels "a" and "b" are exchangeable for each unit, so each resample swaps the two
    predictions of every unit with probability 1/2 and recomputes ΔUA. The p-value is the fraction
    of resamples with ``|ΔUA*| >= |ΔUA|``, with the +1 correction ``(count + 1) / (n_resamples + 1)``
    for Monte Carlo, so it is never 0.

    Pooling over seeds: the inputs are concatenations of (seed, utterance) pairs aligned one to one
    (the same utterance and seed at the same position in ``pred_a`` and ``pred_b``).

    Args:
        groups: optional unit label per pair. Without it every pair is swapped independently; with
            it all pairs sharing a label are swapped together (pass utterance ids to treat an
            utterance's seed replicates as one unit, or speaker ids for a speaker-level test).
        n_resamples: Monte Carlo resamples.
        exact: enumerate all 2^m swaps of the m informative units. ``None`` (default) does so when
            ``2^m <= n_resamples``, as ``scipy.stats.permutation_test`` does; the p-value is then
            ``count / 2^m`` without correction.

    Only units whose swap changes ΔUA (discordant ones) are resampled: a concordant unit adds the
    same term to every resample, so dropping it leaves the null distribution unchanged.
    """
    n_classes = check_n_classes(n_classes)
    yt, pa, pb = aligned_labels(n_classes, y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    units, n_units = _unit_contributions(yt, pa, pb, n_classes, groups)
    scale = float(np.abs(units).sum())
    units = units[np.abs(units) > 1e-12 * max(scale, 1e-300)]  # drop units that cancel exactly
    m = len(units)
    observed = float(units.sum())
    # Ties: the resampled sums differ from the observed one by rounding only (~m * eps * scale);
    # this tolerance counts such ties as >= (the conservative direction), like scipy does.
    tol = 1e-9 * scale
    threshold = abs(observed) - tol

    if exact is None:
        exact = m < 63 and 2**m <= n_resamples
    if exact:
        if m > 24:
            raise ValueError(f"exact enumeration of 2^{m} swaps is too large; use Monte Carlo")
        total = 1 << m
        count = 0
        step = max(1, CHUNK_ELEMENTS // max(m, 1))
        bits = np.arange(m, dtype=np.int64)
        for start in range(0, total, step):
            codes = np.arange(start, min(start + step, total), dtype=np.int64)
            flips = ((codes[:, None] >> bits) & 1).astype(np.float64)
            null = observed - 2.0 * (flips @ units)
            count += int(np.count_nonzero(np.abs(null) >= threshold))
        pvalue = count / total
        used = total
    else:
        rng = np.random.default_rng(seed)
        count = 0
        step = max(1, CHUNK_ELEMENTS // max(m, 1))
        for start in range(0, n_resamples, step):
            k = min(step, n_resamples - start)
            flips = rng.integers(0, 2, size=(k, m), dtype=np.int8).astype(np.float64)
            null = observed - 2.0 * (flips @ units)
            count += int(np.count_nonzero(np.abs(null) >= threshold))
        pvalue = (count + 1) / (n_resamples + 1)
        used = n_resamples

    cm_a = confusion_counts(yt, pa, n_classes).astype(np.float64)
    cm_b = confusion_counts(yt, pb, n_classes).astype(np.float64)
    ua_a, ua_b = float(ua_from_confusion(cm_a)), float(ua_from_confusion(cm_b))
    return PermutationTestResult(
        ua_a=ua_a,
        ua_b=ua_b,
        delta=ua_a - ua_b,
        pvalue=float(min(pvalue, 1.0)),
        exact=bool(exact),
        n_resamples=used,
        n_items=len(yt),
        n_units=n_units,
        n_informative_units=m,
    )


# --------------------------------------------------------------------------------------------------
# McNemar on accuracy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class McNemarResult:
    """McNemar's test of H0: systems a and b have the same accuracy (WA) on the same pairs."""

    table: IntArray  # [[both correct, only a correct], [only b correct, both wrong]]
    statistic: float  # min(b, c) for the exact test, the corrected chi-square otherwise
    pvalue: float
    exact: bool
    n_discordant: int

    @property
    def discordance(self) -> float:
        """Fraction of pairs where exactly one system is right (ψ for the MDD)."""
        return self.n_discordant / int(self.table.sum())


def mcnemar_test(
    y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, exact: bool | None = None
) -> McNemarResult:
    """McNemar's test on per-pair correctness, through ``statsmodels``' ``mcnemar``.

    ``exact=None`` picks the exact binomial test when fewer than :data:`MCNEMAR_EXACT_BELOW`
    pairs are discordant, else the chi-square test with continuity correction. With no discordant
    pair there is nothing to test: the result is p = 1 (exact, statistic 0).
    """
    yt = as_labels(y_true, "y_true")
    pa = as_labels(pred_a, "pred_a")
    pb = as_labels(pred_b, "pred_b")
    if not (len(yt) == len(pa) == len(pb)):
        raise ValueError(f"arrays must have the same length, got {len(yt)}, {len(pa)}, {len(pb)}")
    if not len(yt):
        raise ValueError("no utterances: McNemar's test needs at least one pair")
    ca, cb = pa == yt, pb == yt
    table = np.array(
        [[np.sum(ca & cb), np.sum(ca & ~cb)], [np.sum(~ca & cb), np.sum(~ca & ~cb)]], dtype=np.int64
    )
    n_disc = int(table[0, 1] + table[1, 0])
    if n_disc == 0:
        return McNemarResult(table=table, statistic=0.0, pvalue=1.0, exact=True, n_discordant=0)
    use_exact = n_disc < MCNEMAR_EXACT_BELOW if exact is None else bool(exact)
    res = sm_mcnemar(table, exact=use_exact, correction=True)
    return McNemarResult(
        table=table,
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        exact=use_exact,
        n_discordant=n_disc,
    )

