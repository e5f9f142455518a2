"""How numbers read in the generated markdown: percentages, p-values, signed differences, N_k.

Shared by the renderers (:mod:`xlbench.report.markdown`, :mod:`xlbench.report.paper_pages`,
:mod:`xlbench.report.figures`). A missing or non-finite number prints as a dash (or ``n/a`` for
a p-value), never as ``nan``.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "—"


def pct(x: float | None, digits: int = 2) -> str:
    """A proportion in percent: ``0.4967 -> "49.67"``."""
    return DASH if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    """A p-value with three significant digits, so that 0.0499 and 0.05 never print alike."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def signed_points(d: float | None, digits: int = 2) -> str:
    """A difference of proportions in signed percentage points: ``0.0433 -> "+4.33"``."""
    if d is None or not math.isfinite(d):
        return DASH
    points = round(100 * d, digits)
    return f"{points + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0: no "-0.00" for a tie


def fmt_delta(d: float | None) -> str:
    """ΔUA in signed points with two decimals."""
    return signed_points(d, 2)


def fmt_interval(low: float, high: float, signed: bool = False) -> str:
    """A confidence interval in percent (points when ``signed``), one decimal: ``[28.7, 70.7]``."""
    if signed:
        return f"[{signed_points(low, 1)}, {signed_points(high, 1)}]"
    return f"[{pct(low, 1)}, {pct(high, 1)}]"


def paper_number(x: float | None) -> str:
    """A published number (already in percent) as printed: two decimals."""
    return DASH if x is None else f"{x:.2f}"


def title(name: str) -> str:
    """``italian -> Italian``."""
    return name[:1].upper() + name[1:]


def nk_text(n: Any) -> str:
    """N_k as it reads in a heading: a number, or ``all``."""
    return "all" if n == "all" else str(n)
