"""Statistics for the leaderboard: metrics, paired tests, speaker-cluster bootstrap, Holm, detectability.

This module is pure: it depends on numpy, scipy and statsmodels only, never on the rest of
xlbench, so that every number the leaderboard prints can be checked in isolation.

Labels are integer class indices ``0 .. n_classes-1``. A *pair* (or *item*) is one (seed, test
utterance) evaluated by two systems; predictions from several seeds are pooled by concatenating
their pairs (see :func:`pool_predictions`). Three seeds make tests across seeds powerless, so the
unit of evidence is the test utterance; ``docs/statistics.md`` explains the choices made here.

Conventions
-----------
- UA (unweighted accuracy, the primary metric) is the mean per-class recall over the classes that
  occur in ``y_true`` (balanced accuracy). A class absent from the test labels has no recall and
  is left out of the mean rather than counted as 0 or 1.
- WA (weighted accuracy) is the overall accuracy.
- Macro-F1 averages the per-class F1 over the classes that occur in ``y_true`` *or* ``y_pred``:
  a class that is predicted but never true scores F1 = 0 (it is a real error); a class in neither
  is left out (its F1 is 0/0).
- Confusion matrices have true classes on rows and predicted classes on columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

__all__ = [
    "MACRO_F1",
    "MCNEMAR_EXACT_BELOW",
    "UA",
    "WA",
    "BootstrapCI",
    "ClassificationMetrics",
    "HolmResult",
    "McNemarResult",
    "Metric",
    "PermutationTestResult",
    "PooledPredictions",
    "SeedRecord",
    "SeedSummary",
    "SystemComparison",
    "classification_metrics",
    "cluster_bootstrap_ci",
    "cluster_bootstrap_diff_ci",
    "compare_systems",
    "confusion_matrix",
    "detectability_note",
    "holm_correction",
    "macro_f1",
    "mcnemar_test",
    "mdd_ua_points",
    "mean_std_over_seeds",
    "minimum_detectable_difference",
    "paired_permutation_test",
    "per_class_recall",
    "pool_predictions",
    "unweighted_accuracy",
    "weighted_accuracy",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: McNemar uses the exact binomial test when fewer than this many pairs are discordant.
MCNEMAR_EXACT_BELOW = 25

# Work arrays (resamples x units) are processed in chunks of about this many elements (~4 MB of bool).
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------------


def _check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    return int(n_classes)


def _labels(values: ArrayLike, name: str, n_classes: int | None = None) -> IntArray:
    """A 1-D int64 array of class indices, checked against ``n_classes`` when given."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Refuse floats and bools: a float label usually means probabilities were passed by mistake.
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if n_classes is not None:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds class {bad}, outside 0..{n_classes - 1} (n_classes={n_classes})")
    return arr


def _aligned(n_classes: int, **arrays: ArrayLike) -> list[IntArray]:
    """Check label arrays for shape, range and equal length; refuse empty input."""
    out = [_labels(v, k, n_classes) for k, v in arrays.items()]
    lengths = {k: len(a) for k, a in zip(arrays, out, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have the same length, got {lengths}")
    if not out[0].size:
        raise ValueError("no utterances: the metric is undefined on an empty test set")
    return out


def _codes(labels: ArrayLike | Sequence[Hashable], name: str, n: int) -> tuple[IntArray, int]:
    """Integer codes 0..G-1 (in order of first appearance) for arbitrary hashable labels."""
    seq = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)  # type: ignore[arg-type]
    if len(seq) != n:
        raise ValueError(f"{name} must have one entry per utterance ({n}), got {len(seq)}")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(x, len(index)) for x in seq), dtype=np.int64, count=n)
    return codes, len(index)


# --------------------------------------------------------------------------------------------------
# Metrics, all computed from (batches of) confusion matrices so that the bootstrap can reuse them
# --------------------------------------------------------------------------------------------------


class Metric(StrEnum):
    """A metric the bootstrap can resample. Plain strings ("ua", "wa", "macro_f1") work too."""

    UA = "ua"
    WA = "wa"
    MACRO_F1 = "macro_f1"


UA = Metric.UA
WA = Metric.WA
MACRO_F1 = Metric.MACRO_F1

#: A metric computed from a batch of confusion matrices of shape (..., C, C) to shape (...).
ConfusionMetric = Callable[[FloatArray], FloatArray]


def _diag(cm: FloatArray) -> FloatArray:
    return np.diagonal(cm, axis1=-2, axis2=-1)


def _recall_from_confusion(cm: FloatArray) -> FloatArray:
    support = cm.sum(axis=-1)
    present = support > 0
    return np.where(present, _diag(cm) / np.where(present, support, 1), np.nan)


def _ua_from_confusion(cm: FloatArray) -> FloatArray:
    support = cm.sum(axis=-1)
    present = support > 0
    recall = np.where(present, _diag(cm) / np.where(present, support, 1), 0.0)
    n_present = present.sum(axis=-1)
    return np.where(n_present > 0, recall.sum(axis=-1) / np.maximum(n_present, 1), np.nan)


def _wa_from_confusion(cm: FloatArray) -> FloatArray:
    total = cm.sum(axis=(-2, -1))
    return np.where(total > 0, _diag(cm).sum(axis=-1) / np.where(total > 0, total, 1), np.nan)


def _f1_from_confusion(cm: FloatArray) -> FloatArray:
    # 2TP / (2TP + FP + FN) = 2TP / (true count + predicted count).
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)
    used = denom > 0
    f1 = np.where(used, 2.0 * _diag(cm) / np.where(used, denom, 1), 0.0)
    n_used = used.sum(axis=-1)
    return np.where(n_used > 0, f1.sum(axis=-1) / np.maximum(n_used, 1), np.nan)


_FROM_CONFUSION: dict[Metric, ConfusionMetric] = {
    Metric.UA: _ua_from_confusion,
    Metric.WA: _wa_from_confusion,
    Metric.MACRO_F1: _f1_from_confusion,
}


def _resolve_metric(metric: Metric | str | ConfusionMetric) -> tuple[str, ConfusionMetric]:
    if callable(metric):
        return getattr(metric, "__name__", "custom"), metric
    try:
        key = Metric(metric)
    except ValueError:
        known = ", ".join(m.value for m in Metric)
        raise ValueError(f"unknown metric {metric!r}; known: {known}, or a callable") from None
    return key.value, _FROM_CONFUSION[key]


def _confusion(y_true: IntArray, y_pred: IntArray, n_classes: int) -> IntArray:
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> IntArray:
    """Counts ``C[i, j]`` of utterances with true class ``i`` predicted as ``j``; shape (C, C)."""
    n_classes = _check_n_classes(n_classes)
    yt, yp = _aligned(n_classes, y_true=y_true, y_pred=y_pred)
    return _confusion(yt, yp, n_classes)


def per_class_recall(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> FloatArray:
    """Recall of every class, shape (C,); NaN for a class that never occurs in ``y_true``."""
    return _recall_from_confusion(confusion_matrix(y_true, y_pred, n_classes).astype(np.float64))


def unweighted_accuracy(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """UA = mean per-class recall (balanced accuracy), the primary metric.

    Classes absent from ``y_true`` are excluded from the mean (their recall is undefined), so on a
    test set holding 4 of 5 classes UA is the mean of 4 recalls. This matches scikit-learn's
    ``balanced_accuracy_score``.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    return float(_ua_from_confusion(cm))


def weighted_accuracy(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """WA = overall accuracy (fraction of utterances predicted correctly)."""
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    return float(_wa_from_confusion(cm))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Mean per-class F1 over the classes occurring in ``y_true`` or ``y_pred``.

    A class predicted but never true has F1 = 0 and counts; a class in neither is excluded (its F1
    is 0/0). This matches scikit-learn's ``f1_score(average="macro")`` with its default labels.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    return float(_f1_from_confusion(cm))


@dataclass(frozen=True, eq=False)
class ClassificationMetrics:
    """All the metrics the protocol reports for one set of predictions."""

    ua: float
    wa: float
    macro_f1: float
    per_class_recall: FloatArray  # (C,), NaN for classes absent from y_true
    confusion: IntArray  # (C, C), rows = true, columns = predicted
    n_utterances: int
    n_classes: int
    absent_classes: tuple[int, ...]  # classes with no test utterance: excluded from UA

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (NaN recall becomes None)."""
        return {
            "ua": self.ua,
            "wa": self.wa,
            "macro_f1": self.macro_f1,
            "per_class_recall": [None if math.isnan(r) else float(r) for r in self.per_class_recall],
            "confusion": self.confusion.tolist(),
            "n_utterances": self.n_utterances,
            "n_classes": self.n_classes,
            "absent_classes": list(self.absent_classes),
        }


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> ClassificationMetrics:
    """UA, WA, macro-F1, per-class recall and the confusion matrix in one pass."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    cmf = cm.astype(np.float64)
    recall = _recall_from_confusion(cmf)
    return ClassificationMetrics(
        ua=float(_ua_from_confusion(cmf)),
        wa=float(_wa_from_confusion(cmf)),
        macro_f1=float(_f1_from_confusion(cmf)),
        per_class_recall=recall,
        confusion=cm,
        n_utterances=int(cm.sum()),
        n_classes=cm.shape[0],
        absent_classes=tuple(int(c) for c in np.flatnonzero(np.isnan(recall))),
    )


# --------------------------------------------------------------------------------------------------
# Paired permutation (approximate randomisation) test on the UA difference
# --------------------------------------------------------------------------------------------------


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
    codes, n_groups = _codes(groups, "groups", len(contrib))
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
    n_classes = _check_n_classes(n_classes)
    yt, pa, pb = _aligned(n_classes, y_true=y_true, pred_a=pred_a, pred_b=pred_b)
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
        step = max(1, _CHUNK_ELEMENTS // max(m, 1))
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
        step = max(1, _CHUNK_ELEMENTS // max(m, 1))
        for start in range(0, n_resamples, step):
            k = min(step, n_resamples - start)
            flips = rng.integers(0, 2, size=(k, m), dtype=np.int8).astype(np.float64)
            null = observed - 2.0 * (flips @ units)
            count += int(np.count_nonzero(np.abs(null) >= threshold))
        pvalue = (count + 1) / (n_resamples + 1)
        used = n_resamples

    cm_a = _confusion(yt, pa, n_classes).astype(np.float64)
    cm_b = _confusion(yt, pb, n_classes).astype(np.float64)
    ua_a, ua_b = float(_ua_from_confusion(cm_a)), float(_ua_from_confusion(cm_b))
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
    yt = _labels(y_true, "y_true")
    pa = _labels(pred_a, "pred_a")
    pb = _labels(pred_b, "pred_b")
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
    res = _sm_mcnemar(table, exact=use_exact, correction=True)
    return McNemarResult(
        table=table,
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        exact=use_exact,
        n_discordant=n_disc,
    )


# --------------------------------------------------------------------------------------------------
# Speaker-cluster bootstrap
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile confidence interval from a bootstrap that resamples whole clusters (speakers)."""

    estimate: float  # the metric (or the difference a - b) on the original data
    low: float
    high: float
    level: float
    std_error: float  # standard deviation of the bootstrap distribution
    n_resamples: int
    n_clusters: int
    metric: str
    difference: bool  # True: the interval is for metric(a) - metric(b)
    n_undefined: int = 0  # resamples where the metric was undefined (dropped)
    method: str = "percentile"


def _cluster_confusions(
    codes: IntArray, n_clusters: int, y_true: IntArray, y_pred: IntArray, n_classes: int
) -> FloatArray:
    """Per-cluster confusion matrices flattened to (G, C*C): the sufficient statistic of a resample."""
    cc = n_classes * n_classes
    flat = np.bincount(codes * cc + y_true * n_classes + y_pred, minlength=n_clusters * cc)
    return flat.reshape(n_clusters, cc).astype(np.float64)


def _bootstrap(
    per_cluster: list[FloatArray],
    fn: ConfusionMetric,
    n_classes: int,
    n_resamples: int,
    seed: int,
) -> FloatArray:
    """Bootstrap distribution of fn(cm_0) - fn(cm_1) (or fn(cm_0) for one system)."""
    n_clusters = per_cluster[0].shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples, dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // n_clusters)
    probs = np.full(n_clusters, 1.0 / n_clusters)
    for start in range(0, n_resamples, step):
        k = min(step, n_resamples - start)
        # How many times each cluster is drawn: drawing G clusters with replacement.
        weights = rng.multinomial(n_clusters, probs, size=k).astype(np.float64)
        values = [fn((weights @ pc).reshape(k, n_classes, n_classes)) for pc in per_cluster]
        out[start : start + k] = values[0] if len(values) == 1 else values[0] - values[1]
    return out


def _check_bootstrap_args(n_resamples: int, level: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _interval(
    boot: FloatArray, estimate: float, level: float, n_clusters: int, name: str, difference: bool
) -> BootstrapCI:
    valid = boot[np.isfinite(boot)]
    if not valid.size:
        raise ValueError(f"the metric {name!r} is undefined on every bootstrap resample")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(valid, [alpha, 1.0 - alpha])  # linear interpolation, as scipy's percentile
    return BootstrapCI(
        estimate=estimate,
        low=float(low),
        high=float(high),
        level=level,
        std_error=float(np.std(valid, ddof=1)) if valid.size > 1 else math.nan,
        n_resamples=len(boot),
        n_clusters=n_clusters,
        metric=name,
        difference=difference,
        n_undefined=int(len(boot) - valid.size),
    )


def _cluster_codes(clusters: ArrayLike | Sequence[Hashable], n: int) -> tuple[IntArray, int]:
    codes, n_clusters = _codes(clusters, "clusters", n)
    if n_clusters < 2:
        raise ValueError(
            f"the cluster bootstrap needs at least 2 clusters (speakers), got {n_clusters}: "
            "with one speaker there is no between-speaker variation to resample"
        )
    return codes, n_clusters


def cluster_bootstrap_ci(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    clusters: ArrayLike | Sequence[Hashable],
    n_classes: int,
    metric: Metric | str | ConfusionMetric = UA,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap CI of a metric, resampling whole clusters (speakers) with replacement.

    Utterances of one speaker (and, after pooling, the same utterance under several seeds) are not
    independent; drawing whole speakers keeps that dependence inside each resample. With one
    utterance per cluster this is the ordinary (utterance) bootstrap.

    The interval is the plain percentile interval (no BCa): BCa's jackknife acceleration is poorly
    behaved with the handful of speakers in a test split (EMOVO has 6 in all). A resample lacking a
    class computes UA over the classes it holds, consistent with :func:`unweighted_accuracy`.

    ``metric`` is ``"ua"``, ``"wa"``, ``"macro_f1"`` or a callable mapping a batch of confusion
    matrices (..., C, C) to metric values (...).

    Raises:
        ValueError: fewer than 2 clusters (a speaker bootstrap cannot say anything), or bad input.
    """
    n_classes = _check_n_classes(n_classes)
    _check_bootstrap_args(n_resamples, level)
    name, fn = _resolve_metric(metric)
    yt, yp = _aligned(n_classes, y_true=y_true, y_pred=y_pred)
    codes, n_clusters = _cluster_codes(clusters, len(yt))
    per_cluster = _cluster_confusions(codes, n_clusters, yt, yp, n_classes)
    estimate = float(fn(per_cluster.sum(axis=0).reshape(n_classes, n_classes)))
    boot = _bootstrap([per_cluster], fn, n_classes, n_resamples, seed)
    return _interval(boot, estimate, level, n_clusters, name, difference=False)


def cluster_bootstrap_diff_ci(
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    clusters: ArrayLike | Sequence[Hashable],
    n_classes: int,
    metric: Metric | str | ConfusionMetric = UA,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Paired cluster-bootstrap percentile CI of ``metric(a) - metric(b)``.

    Both systems are evaluated on the same resampled speakers, so the interval reflects the paired
    design. Same conventions and errors as :func:`cluster_bootstrap_ci`.
    """
    n_classes = _check_n_classes(n_classes)
    _check_bootstrap_args(n_resamples, level)
    name, fn = _resolve_metric(metric)
    yt, pa, pb = _aligned(n_classes, y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    codes, n_clusters = _cluster_codes(clusters, len(yt))
    per_a = _cluster_confusions(codes, n_clusters, yt, pa, n_classes)
    per_b = _cluster_confusions(codes, n_clusters, yt, pb, n_classes)
    full = [fn(p.sum(axis=0).reshape(n_classes, n_classes)) for p in (per_a, per_b)]
    boot = _bootstrap([per_a, per_b], fn, n_classes, n_resamples, seed)
    return _interval(boot, float(full[0] - full[1]), level, n_clusters, name, difference=True)


# --------------------------------------------------------------------------------------------------
# Multiple comparisons
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HolmResult:
    """Holm step-down adjustment over one family of comparisons (one leaderboard table)."""

    pvalues: FloatArray
    adjusted: FloatArray  # NaN where the input was NaN
    reject: BoolArray  # adjusted <= alpha; False where the input was NaN
    alpha: float
    n_tests: int  # family size: the non-NaN p-values


def holm_correction(pvalues: ArrayLike, alpha: float = 0.05) -> HolmResult:
    """Holm-adjusted p-values and reject flags via ``statsmodels``' ``multipletests(method="holm")``.

    NaN p-values (comparisons that could not be made) are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    adjusted = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    if ok.any():
        rej, adj, _, _ = multipletests(p[ok], alpha=alpha, method="holm")
        adjusted[ok] = adj
        reject[ok] = rej
    return HolmResult(pvalues=p, adjusted=adjusted, reject=reject, alpha=alpha, n_tests=int(ok.sum()))


# --------------------------------------------------------------------------------------------------
# Minimum detectable difference
# --------------------------------------------------------------------------------------------------


def _z_values(alpha: float, power: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.5 <= power < 1.0:
        raise ValueError(f"power must be in [0.5, 1), got {power}")
    return float(sps.norm.ppf(1.0 - alpha / 2.0)), float(sps.norm.ppf(power))


def minimum_detectable_difference(
    n_test: float,
    baseline_accuracy: float,
    alpha: float = 0.05,
    power: float = 0.8,
    discordance: float | None = None,
    method: Literal["paired", "independent"] = "paired",
) -> float:
    """Smallest accuracy difference (a proportion) detectable between two systems on ``n_test`` items.

    ``"paired"`` (default): two systems scored on the same utterances, compared with McNemar's
    test. With ψ the discordant proportion (one system right, the other wrong) and δ the accuracy
    difference, the normal-approximation sample size (Connor 1987) is

        n = (z_{1-α/2} √ψ + z_{power} √(ψ - δ²))² / δ²,

    which solved for δ gives the closed form

        δ = √ψ (z_{1-α/2} √n + z_{power} √(n + z_{power}² - z_{1-α/2}²)) / (n + z_{power}²).

    ψ defaults to 2p(1-p) for baseline accuracy p: the discordance of two systems whose errors are
    independent. Systems trained on the same data share many errors (smaller ψ), so the default
    overstates the MDD, the conservative side; pass the observed discordance
    (:attr:`McNemarResult.discordance`) for a sharper figure. δ cannot exceed ψ; when the formula
    has no solution within it the result is ``inf`` (no difference is detectable).

    ``"independent"``: two independent samples of ``n_test`` each (statsmodels ``NormalIndPower``
    on Cohen's h, ``h = 2 asin√p2 - 2 asin√p1``), ignoring the pairing. Returns ``p2 - p1`` for an
    improvement over the baseline, ``inf`` if none reaches the power. It is close to the paired
    result at the default ψ (with independent errors pairing gains nothing) and larger than the
    paired result whenever the systems share errors.

    ``n_test`` is the number of distinct test utterances: seed replicates of the same utterance
    are highly correlated and are not counted as extra evidence here.
    """
    if not n_test > 0:
        raise ValueError(f"n_test must be positive, got {n_test}")
    if not 0.0 < baseline_accuracy < 1.0:
        raise ValueError(f"baseline_accuracy must be in (0, 1), got {baseline_accuracy}")
    z_a, z_b = _z_values(alpha, power)
    p = float(baseline_accuracy)
    n = float(n_test)
    if method == "paired":
        psi = 2.0 * p * (1.0 - p) if discordance is None else float(discordance)
        if not 0.0 < psi <= 1.0:
            raise ValueError(f"discordance must be in (0, 1], got {psi}")
        inner = n + z_b**2 - z_a**2
        if inner < 0:
            return math.inf
        delta = math.sqrt(psi) * (z_a * math.sqrt(n) + z_b * math.sqrt(inner)) / (n + z_b**2)
        return delta if delta <= psi else math.inf
    if method == "independent":
        if discordance is not None:
            raise ValueError("discordance applies to the paired method only")
        h = float(
            NormalIndPower().solve_power(
                effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
            )
        )
        angle = math.asin(math.sqrt(p)) + abs(h) / 2.0
        return math.sin(angle) ** 2 - p if angle <= math.pi / 2 else math.inf
    raise ValueError(f"unknown method {method!r}; known: paired, independent")


def _effective_n(class_counts: int | Sequence[int]) -> float:
    if isinstance(class_counts, int | np.integer):
        return float(class_counts)
    counts = np.asarray(class_counts, dtype=np.float64)
    counts = counts[counts > 0]
    if not counts.size:
        raise ValueError("class_counts holds no positive count")
    # Var(ΔUA) = (1/C²) Σ_c ψ/n_c = ψ/n_eff with n_eff = C² / Σ_c 1/n_c (= n when balanced).
    return float(counts.size**2 / np.sum(1.0 / counts))


def mdd_ua_points(
    class_counts: int | Sequence[int],
    baseline_ua: float,
    alpha: float = 0.05,
    power: float = 0.8,
    discordance: float | None = None,
) -> float:
    """Paired MDD of UA, in UA points (percent), for a target test set.

    ``class_counts`` is the per-class number of test utterances (or a total, taken as balanced).
    UA weights classes equally, so its variance is that of accuracy on an effective sample of
    ``C² / Σ_c 1/n_c`` utterances (assuming the same discordance in every class); the paired
    :func:`minimum_detectable_difference` is evaluated there and scaled by 100.
    """
    return 100.0 * minimum_detectable_difference(
        _effective_n(class_counts), baseline_ua, alpha=alpha, power=power, discordance=discordance
    )


def detectability_note(
    class_counts: int | Sequence[int],
    baseline_ua: float,
    alpha: float = 0.05,
    power: float = 0.8,
    discordance: float | None = None,
) -> str:
    """The leaderboard's sentence on what the test set can resolve."""
    points = mdd_ua_points(class_counts, baseline_ua, alpha=alpha, power=power, discordance=discordance)
    if math.isinf(points):
        return "this test set is too small to detect any UA difference"
    return (
        f"differences below {points:.1f} UA points are not detectable with this test set "
        f"(α = {alpha:g}, power {power:g})"
    )


# --------------------------------------------------------------------------------------------------
# Aggregation over seeds and pooling of predictions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sample standard deviation (ddof = 1) of a metric over seeds."""

    mean: float
    std: float  # NaN with a single seed
    n_seeds: int
    single_seed: bool  # the std is undefined: say so instead of printing ± 0

    def format(self, scale: float = 100.0, digits: int = 2) -> str:
        """E.g. ``"58.02 ± 1.23"``, or ``"58.02 (1 seed)"``."""
        if self.single_seed:
            return f"{self.mean * scale:.{digits}f} (1 seed)"
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"


def mean_std_over_seeds(values: Iterable[float]) -> SeedSummary:
    """Mean ± sample std (ddof = 1) of one metric over seeds; the std is NaN and flagged for one seed."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.ndim != 1 or not arr.size:
        raise ValueError("mean_std_over_seeds needs a non-empty sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"a seed's value is not finite: {arr.tolist()}")
    single = arr.size == 1
    return SeedSummary(
        mean=float(arr.mean()),
        std=math.nan if single else float(arr.std(ddof=1)),
        n_seeds=int(arr.size),
        single_seed=single,
    )


#: One run's predictions: (seed, utterance ids, true labels, predicted labels).
SeedRecord = tuple[int, Sequence[Hashable], ArrayLike, ArrayLike]


@dataclass(frozen=True, eq=False)
class PooledPredictions:
    """Two systems' predictions aligned by (seed, utterance id), sorted by seed then id."""

    seeds: IntArray
    utterance_ids: NDArray[np.object_]
    y_true: IntArray
    pred_a: IntArray
    pred_b: IntArray

    @property
    def n_items(self) -> int:
        """Pooled (seed, utterance) pairs."""
        return len(self.y_true)

    @property
    def n_seeds(self) -> int:
        return len(np.unique(self.seeds))

    @property
    def n_utterances(self) -> int:
        """Distinct test utterances."""
        return len(set(self.utterance_ids.tolist()))


def _examples(keys: Iterable[Hashable], k: int = 3) -> str:
    return ", ".join(repr(x) for x in sorted(keys, key=str)[:k])


def _index_system(records: Iterable[SeedRecord], name: str) -> dict[int, dict[Hashable, tuple[int, int]]]:
    out: dict[int, dict[Hashable, tuple[int, int]]] = {}
    for record in records:
        try:
            seed, ids, y_true, y_pred = record
        except (TypeError, ValueError):
            raise ValueError(
                f"system {name}: each record must be (seed, utterance_ids, y_true, y_pred)"
            ) from None
        seed = int(seed)
        if seed in out:
            raise ValueError(f"system {name}: seed {seed} appears in more than one record")
        ids = list(ids)
        yt = _labels(y_true, f"system {name} seed {seed} y_true")
        yp = _labels(y_pred, f"system {name} seed {seed} y_pred")
        if not len(ids) == len(yt) == len(yp):
            raise ValueError(
                f"system {name} seed {seed}: {len(ids)} ids, {len(yt)} labels, {len(yp)} predictions"
            )
        by_id = {uid: (int(t), int(p)) for uid, t, p in zip(ids, yt, yp, strict=True)}
        if len(by_id) != len(ids):
            raise ValueError(f"system {name} seed {seed}: duplicate utterance ids")
        out[seed] = by_id
    if not out:
        raise ValueError(f"system {name}: no records")
    return out


def pool_predictions(records_a: Iterable[SeedRecord], records_b: Iterable[SeedRecord]) -> PooledPredictions:
    """Align two systems' per-seed predictions by (seed, utterance id) and concatenate them.

    Each record is ``(seed, utterance_ids, y_true, y_pred)``. The leaderboard must never silently
    compare different test sets, so this raises ``ValueError`` when the two systems' seeds differ,
    when their utterance sets differ for any seed, when ``y_true`` disagrees between them, or when
    one utterance carries different true labels under different seeds. The output is sorted by
    seed, then by utterance id (as text), so it does not depend on record order.
    """
    a = _index_system(records_a, "A")
    b = _index_system(records_b, "B")
    if set(a) != set(b):
        raise ValueError(
            f"the two systems were run with different seeds (A: {sorted(a)}, B: {sorted(b)}): "
            "refusing to compare different sets of runs"
        )
    seeds: list[int] = []
    ids: list[Hashable] = []
    rows: list[tuple[int, int, int]] = []
    label_of: dict[Hashable, tuple[int, int]] = {}
    for seed in sorted(a):
        ia, ib = a[seed], b[seed]
        if ia.keys() != ib.keys():
            only_a, only_b = ia.keys() - ib.keys(), ib.keys() - ia.keys()
            raise ValueError(
                f"seed {seed}: the two systems were evaluated on different utterances "
                f"({len(only_a)} only in A, e.g. [{_examples(only_a)}]; "
                f"{len(only_b)} only in B, e.g. [{_examples(only_b)}]): refusing to compare "
                "different test sets"
            )
        mismatched = [u for u in ia if ia[u][0] != ib[u][0]]
        if mismatched:
            raise ValueError(
                f"seed {seed}: y_true differs between the two systems for {len(mismatched)} "
                f"utterances (e.g. [{_examples(mismatched)}]): the records disagree on the test labels"
            )
        for uid in sorted(ia, key=str):
            t = ia[uid][0]
            first = label_of.setdefault(uid, (t, seed))
            if first[0] != t:
                raise ValueError(
                    f"utterance {uid!r} has true label {first[0]} under seed {first[1]} "
                    f"but {t} under seed {seed}"
                )
            seeds.append(seed)
            ids.append(uid)
            rows.append((t, ia[uid][1], ib[uid][1]))
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    uid_arr = np.empty(len(ids), dtype=object)
    uid_arr[:] = ids
    return PooledPredictions(
        seeds=np.asarray(seeds, dtype=np.int64),
        utterance_ids=uid_arr,
        y_true=table[:, 0].copy(),
        pred_a=table[:, 1].copy(),
        pred_b=table[:, 2].copy(),
    )


# --------------------------------------------------------------------------------------------------
# One call for a leaderboard cell
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemComparison:
    """System a against system b on pooled (seed, utterance) pairs."""

    ua_a: float
    ua_b: float
    delta_ua: float  # UA(a) - UA(b), pooled over seeds
    wa_a: float
    wa_b: float
    permutation_p: float  # paired permutation test on ΔUA
    permutation_unit: str  # what was swapped as one unit: "item", "utterance" or "speaker"
    permutation_exact: bool
    mcnemar_p: float  # McNemar on accuracy over the pooled pairs
    mcnemar_exact: bool
    ci_low: float  # cluster-bootstrap percentile CI of ΔUA
    ci_high: float
    ci_level: float
    cluster_unit: str  # "speaker", or "utterance" when no speaker map was given
    n_clusters: int
    n_items: int  # pooled (seed, utterance) pairs
    n_utterances: int  # distinct test utterances
    n_seeds: int


def compare_systems(
    pooled: PooledPredictions,
    n_classes: int,
    *,
    speakers: Mapping[Hashable, Hashable] | None = None,
    permutation_unit: Literal["utterance", "item", "speaker"] = "utterance",
    n_permutations: int = 10_000,
    n_bootstrap: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> SystemComparison:
    """ΔUA, permutation p, McNemar p and the speaker-bootstrap CI of ΔUA for two pooled systems.

    Args:
        pooled: output of :func:`pool_predictions`.
        speakers: utterance id -> speaker; the bootstrap resamples speakers. Without it the
            bootstrap resamples utterances (all seeds of one utterance together) and the result
            says ``cluster_unit="utterance"``.
        permutation_unit: ``"utterance"`` (default) swaps all seed replicates of an utterance
            together, so three near-identical seeds are not counted as three times the evidence
            (with one seed it is the plain per-utterance test); ``"item"`` swaps every
            (seed, utterance) pair independently; ``"speaker"`` swaps whole speakers (needs
            ``speakers``; very conservative with few speakers).
    """
    n_classes = _check_n_classes(n_classes)
    ids = pooled.utterance_ids.tolist()
    speaker_of_item: list[Hashable] | None = None
    if speakers is not None:
        missing = {u for u in ids if u not in speakers}
        if missing:
            raise ValueError(f"no speaker for {len(missing)} utterances (e.g. [{_examples(missing)}])")
        speaker_of_item = [speakers[u] for u in ids]

    groups: list[Hashable] | None
    if permutation_unit == "item":
        groups = None
    elif permutation_unit == "utterance":
        groups = ids
    elif permutation_unit == "speaker":
        if speaker_of_item is None:
            raise ValueError('permutation_unit="speaker" needs the speakers mapping')
        groups = speaker_of_item
    else:
        raise ValueError(f"unknown permutation_unit {permutation_unit!r}; known: utterance, item, speaker")

    yt, pa, pb = pooled.y_true, pooled.pred_a, pooled.pred_b
    perm = paired_permutation_test(
        yt, pa, pb, n_classes, groups=groups, n_resamples=n_permutations, seed=seed
    )
    mc = mcnemar_test(yt, pa, pb)
    clusters = speaker_of_item if speaker_of_item is not None else ids
    ci = cluster_bootstrap_diff_ci(
        yt, pa, pb, clusters, n_classes, metric=UA, n_resamples=n_bootstrap, level=level, seed=seed
    )
    return SystemComparison(
        ua_a=perm.ua_a,
        ua_b=perm.ua_b,
        delta_ua=perm.delta,
        wa_a=weighted_accuracy(yt, pa, n_classes),
        wa_b=weighted_accuracy(yt, pb, n_classes),
        permutation_p=perm.pvalue,
        permutation_unit=permutation_unit,
        permutation_exact=perm.exact,
        mcnemar_p=mc.pvalue,
        mcnemar_exact=mc.exact,
        ci_low=ci.low,
        ci_high=ci.high,
        ci_level=level,
        cluster_unit="speaker" if speaker_of_item is not None else "utterance",
        n_clusters=ci.n_clusters,
        n_items=pooled.n_items,
        n_utterances=pooled.n_utterances,
        n_seeds=pooled.n_seeds,
    )
