"""Checked label arrays, shared by every statistic of :mod:`xlbench.stats`.

Labels are integer class indices ``0 .. n_classes-1``. Every public function of the package
checks its input here, so a float array of probabilities or two arrays of different length fail
with a ValueError that names the argument instead of producing a wrong number.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Work arrays (resamples x units) are processed in chunks of about this many elements (~4 MB of bool).
CHUNK_ELEMENTS = 1 << 22


def check_n_classes(n_classes: int) -> int:
    """``n_classes`` as an int, refusing anything but a positive integer."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    return int(n_classes)


def as_labels(values: ArrayLike, name: str, n_classes: int | None = None) -> IntArray:
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


def aligned_labels(n_classes: int, **arrays: ArrayLike) -> list[IntArray]:
    """Check label arrays for shape, range and equal length; refuse empty input."""
    out = [as_labels(v, k, n_classes) for k, v in arrays.items()]
    lengths = {k: len(a) for k, a in zip(arrays, out, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have the same length, got {lengths}")
    if not out[0].size:
        raise ValueError("no utterances: the metric is undefined on an empty test set")
    return out


def group_codes(labels: ArrayLike | Sequence[Hashable], name: str, n: int) -> tuple[IntArray, int]:
    """Integer codes 0..G-1 (in order of first appearance) for arbitrary hashable labels."""
    seq = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)  # type: ignore[arg-type]
    if len(seq) != n:
        raise ValueError(f"{name} must have one entry per utterance ({n}), got {len(seq)}")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(x, len(index)) for x in seq), dtype=np.int64, count=n)
    return codes, len(index)


def examples_text(keys: Iterable[Hashable], k: int = 3) -> str:
    """Up to ``k`` of ``keys`` for an error message, in a stable order."""
    return ", ".join(repr(x) for x in sorted(keys, key=str)[:k])
