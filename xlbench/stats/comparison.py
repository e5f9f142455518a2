"""One call for one comparison of two systems: ΔUA, its tests and its speaker-bootstrap interval."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal

from xlbench.stats.arrays import check_n_classes, examples_text
from xlbench.stats.bootstrap import cluster_bootstrap_diff_ci
from xlbench.stats.metrics import UA, weighted_accuracy
from xlbench.stats.paired import mcnemar_test, paired_permutation_test
from xlbench.stats.pooling import PooledPredictions


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
    n_classes = check_n_classes(n_classes)
    ids = pooled.utterance_ids.tolist()
    speaker_of_item: list[Hashable] | None = None
    if speakers is not None:
        missing = {u for u in ids if u not in speakers}
        if missing:
            raise ValueError(f"no speaker for {len(missing)} utterances (e.g. [{examples_text(missing)}])")
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
