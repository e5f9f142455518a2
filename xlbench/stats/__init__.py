"""Statistics for the leaderboard, one module per concept.

=========================  ==================================================================
module                     what it computes
=========================  ==================================================================
:mod:`.metrics`            UA, WA, macro-F1, per-class recall, confusion matrices
:mod:`.pooling`            mean ± std over seeds; two systems' predictions aligned and pooled
:mod:`.paired`             paired permutation test on ΔUA; McNemar's test on accuracy
:mod:`.bootstrap`          speaker-cluster bootstrap intervals of a metric or a difference
:mod:`.multiplicity`       Holm's adjustment over one table's family of comparisons
:mod:`.detectability`      the minimum detectable difference of a test set
:mod:`.comparison`         one call for one comparison (ΔUA, both tests, the interval of ΔUA)
:mod:`.arrays`             checked label arrays shared by all of them
=========================  ==================================================================

The package is pure: it depends on numpy, scipy and statsmodels only, never on the rest of
xlbench, so that every number the leaderboard prints can be checked in isolation. The modules
import one another downward only (arrays → metrics → paired, bootstrap, pooling → comparison);
this file re-exports their public names, so ``from xlbench.stats import unweighted_accuracy``
and ``xlbench.stats.compare_systems`` work. ``docs/statistics.md`` explains every choice.
"""

from xlbench.stats.bootstrap import BootstrapCI, cluster_bootstrap_ci, cluster_bootstrap_diff_ci
from xlbench.stats.comparison import SystemComparison, compare_systems
from xlbench.stats.detectability import (
    detectability_note,
    mdd_ua_points,
    minimum_detectable_difference,
)
from xlbench.stats.metrics import (
    MACRO_F1,
    UA,
    WA,
    ClassificationMetrics,
    Metric,
    classification_metrics,
    confusion_matrix,
    macro_f1,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)
from xlbench.stats.multiplicity import HolmResult, holm_correction
from xlbench.stats.paired import (
    MCNEMAR_EXACT_BELOW,
    McNemarResult,
    PermutationTestResult,
    mcnemar_test,
    paired_permutation_test,
)
from xlbench.stats.pooling import (
    PooledPredictions,
    SeedRecord,
    SeedSummary,
    mean_std_over_seeds,
    pool_predictions,
)

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
