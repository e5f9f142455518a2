"""Multiple comparisons: Holm's step-down adjustment over one family (one leaderboard table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.multitest import multipletests

from xlbench.stats.arrays import BoolArray, FloatArray


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

