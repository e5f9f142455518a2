"""Speaker-cluster bootstrap: percentile intervals of a metric or of a paired difference.

Whole clusters (test speakers) are drawn with replacement, so the dependence between the
utterances of one speaker, and between an utterance's seed replicates, stays inside each resample.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from xlbench.stats.arrays import CHUNK_ELEMENTS, FloatArray, IntArray, aligned_labels, check_n_classes, group_codes
from xlbench.stats.metrics import UA, ConfusionMetric, Metric, resolve_metric


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
    step = max(1, CHUNK_ELEMENTS // n_clusters)
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
    codes, n_clusters = group_codes(clusters, "clusters", n)
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
    n_classes = check_n_classes(n_classes)
    _check_bootstrap_args(n_resamples, level)
    name, fn = resolve_metric(metric)
    yt, yp = aligned_labels(n_classes, y_true=y_true, y_pred=y_pred)
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
    n_classes = check_n_classes(n_classes)
    _check_bootstrap_args(n_resamples, level)
    name, fn = resolve_metric(metric)
    yt, pa, pb = aligned_labels(n_classes, y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    codes, n_clusters = _cluster_codes(clusters, len(yt))
    per_a = _cluster_confusions(codes, n_clusters, yt, pa, n_classes)
    per_b = _cluster_confusions(codes, n_clusters, yt, pb, n_classes)
    full = [fn(p.sum(axis=0).reshape(n_classes, n_classes)) for p in (per_a, per_b)]
    boot = _bootstrap([per_a, per_b], fn, n_classes, n_resamples, seed)
    return _interval(boot, float(full[0] - full[1]), level, n_clusters, name, difference=True)

