"""Classification metrics: UA, WA, macro-F1, per-class recall, confusion matrices.

Every metric is computed from (batches of) confusion matrices, so that the bootstrap
(:mod:`xlbench.stats.bootstrap`) and the permutation test (:mod:`xlbench.stats.paired`) reuse
the same definitions on resampled counts.

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
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike

from xlbench.stats.arrays import FloatArray, IntArray, aligned_labels, check_n_classes


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


def recall_from_confusion(cm: FloatArray) -> FloatArray:
    """Per-class recall of confusion matrices (..., C, C) -> (..., C); NaN for a class with no true item."""
    support = cm.sum(axis=-1)
    present = support > 0
    return np.where(present, _diag(cm) / np.where(present, support, 1), np.nan)


def ua_from_confusion(cm: FloatArray) -> FloatArray:
    """UA of confusion matrices (..., C, C) -> (...): mean recall over the classes present."""
    support = cm.sum(axis=-1)
    present = support > 0
    recall = np.where(present, _diag(cm) / np.where(present, support, 1), 0.0)
    n_present = present.sum(axis=-1)
    return np.where(n_present > 0, recall.sum(axis=-1) / np.maximum(n_present, 1), np.nan)


def wa_from_confusion(cm: FloatArray) -> FloatArray:
    """WA (overall accuracy) of confusion matrices (..., C, C) -> (...)."""
    total = cm.sum(axis=(-2, -1))
    return np.where(total > 0, _diag(cm).sum(axis=-1) / np.where(total > 0, total, 1), np.nan)


def f1_from_confusion(cm: FloatArray) -> FloatArray:
    """Macro-F1 of confusion matrices (..., C, C) -> (...), over classes true or predicted."""
    # 2TP / (2TP + FP + FN) = 2TP / (true count + predicted count).
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)
    used = denom > 0
    f1 = np.where(used, 2.0 * _diag(cm) / np.where(used, denom, 1), 0.0)
    n_used = used.sum(axis=-1)
    return np.where(n_used > 0, f1.sum(axis=-1) / np.maximum(n_used, 1), np.nan)


_FROM_CONFUSION: dict[Metric, ConfusionMetric] = {
    Metric.UA: ua_from_confusion,
    Metric.WA: wa_from_confusion,
    Metric.MACRO_F1: f1_from_confusion,
}


def resolve_metric(metric: Metric | str | ConfusionMetric) -> tuple[str, ConfusionMetric]:
    """The name and the confusion-matrix function of a metric given by name, enum or callable."""
    if callable(metric):
        return getattr(metric, "__name__", "custom"), metric
    try:
        key = Metric(metric)
    except ValueError:
        known = ", ".join(m.value for m in Metric)
        raise ValueError(f"unknown metric {metric!r}; known: {known}, or a callable") from None
    return key.value, _FROM_CONFUSION[key]


def confusion_counts(y_true: IntArray, y_pred: IntArray, n_classes: int) -> IntArray:
    """Confusion counts of already-checked label arrays (see :func:`confusion_matrix`)."""
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> IntArray:
    """Counts ``C[i, j]`` of utterances with true class ``i`` predicted as ``j``; shape (C, C)."""
    n_classes = check_n_classes(n_classes)
    yt, yp = aligned_labels(n_classes, y_true=y_true, y_pred=y_pred)
    return confusion_counts(yt, yp, n_classes)


def per_class_recall(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> FloatArray:
    """Recall of every class, shape (C,); NaN for a class that never occurs in ``y_true``."""
    return recall_from_confusion(confusion_matrix(y_true, y_pred, n_classes).astype(np.float64))


def unweighted_accuracy(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """UA = mean per-class recall (balanced accuracy), the primary metric.

    Classes absent from ``y_true`` are excluded from the mean (their recall is undefined), so on a
    test set holding 4 of 5 classes UA is the mean of 4 recalls. This matches scikit-learn's
    ``balanced_accuracy_score``.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    return float(ua_from_confusion(cm))


def weighted_accuracy(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """WA = overall accuracy (fraction of utterances predicted correctly)."""
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    return float(wa_from_confusion(cm))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Mean per-class F1 over the classes occurring in ``y_true`` or ``y_pred``.

    A class predicted but never true has F1 = 0 and counts; a class in neither is excluded (its F1
    is 0/0). This matches scikit-learn's ``f1_score(average="macro")`` with its default labels.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    return float(f1_from_confusion(cm))


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
    recall = recall_from_confusion(cmf)
    return ClassificationMetrics(
        ua=float(ua_from_confusion(cmf)),
        wa=float(wa_from_confusion(cmf)),
        macro_f1=float(f1_from_confusion(cmf)),
        per_class_recall=recall,
        confusion=cm,
        n_utterances=int(cm.sum()),
        n_classes=cm.shape[0],
        absent_classes=tuple(int(c) for c in np.flatnonzero(np.isnan(recall))),
    )

