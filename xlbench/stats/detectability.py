"""What a test set can resolve: the minimum detectable difference (MDD) of accuracy and UA."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower


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
    """The leaderboard's sentence on what the test set can resolve.

    The MDD is a power statement: a smaller difference may still come out significant, but it is
    missed more often than ``1 - power``, and when it is found its size tends to be overstated.
    """
    points = mdd_ua_points(class_counts, baseline_ua, alpha=alpha, power=power, discordance=discordance)
    if math.isinf(points):
        return f"this test set is too small to detect any UA difference with power {power:g}"
    return (
        f"a UA difference must reach {points:.1f} points to be detected with power {power:g} "
        f"at α = {alpha:g} on this test set"
    )

