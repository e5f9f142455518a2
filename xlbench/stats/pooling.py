"""Seeds: mean ± std of a metric over seeds, and two systems' per-seed predictions pooled.

Three seeds make tests across seeds powerless, so the unit of evidence is the test utterance: a
*pair* (or *item*) is one (seed, test utterance) evaluated by two systems, and predictions from
several seeds are pooled by concatenating their pairs (:func:`pool_predictions`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xlbench.stats.arrays import IntArray, as_labels, examples_text


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
        yt = as_labels(y_true, f"system {name} seed {seed} y_true")
        yp = as_labels(y_pred, f"system {name} seed {seed} y_pred")
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
                f"({len(only_a)} only in A, e.g. [{examples_text(only_a)}]; "
                f"{len(only_b)} only in B, e.g. [{examples_text(only_b)}]): refusing to compare "
                "different test sets"
            )
        mismatched = [u for u in ia if ia[u][0] != ib[u][0]]
        if mismatched:
            raise ValueError(
                f"seed {seed}: y_true differs between the two systems for {len(mismatched)} "
                f"utterances (e.g. [{examples_text(mismatched)}]): the records disagree on the test labels"
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

