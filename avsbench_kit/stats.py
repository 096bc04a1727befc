"""Mean, sd and confidence interval of a few values: the one place every summary computes them.

The interval is Student's t for n values (n = 3 seeds: 4.30 sd/sqrt(n), not the normal 1.96), so
a handful of seeds is not read as more certain than it is.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable


def usable(values: Iterable[float | None]) -> list[float]:
    """The values that are numbers (None and NaN dropped)."""
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def mean_sd(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """(mean, sample sd); sd is None for one value, both None for none."""
    kept = usable(values)
    if not kept:
        return None, None
    return statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else None


def t_quantile(n: int, level: float = 0.95) -> float:
    """The two-sided Student-t quantile for the mean of ``n`` values (n - 1 degrees of freedom)."""
    from scipy.stats import t  # here, not at import: the GPU benchmark's machine has no scipy

    return float(t.ppf(0.5 + level / 2, n - 1))


def mean_ci(values: Iterable[float | None], level: float = 0.95) -> dict:
    """``{"mean", "ci95": [low, high], "n"}`` with the t interval; the bounds are None below 2 values."""
    kept = usable(values)
    mean, sd = mean_sd(kept)
    if sd is None:
        return {"mean": mean, "ci95": [None, None], "n": len(kept)}
    half = t_quantile(len(kept), level) * sd / math.sqrt(len(kept))
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": len(kept)}


def difference_ci(a: Iterable[float | None], b: Iterable[float | None], level: float = 0.95) -> dict:
    """mean(a) - mean(b) with Welch's t interval (unequal variances, Welch-Satterthwaite degrees of
    freedom); the bounds are None unless both sides have 2 values or more."""
    a, b = usable(a), usable(b)
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    if ma is None or mb is None:
        return {"diff": None, "ci95": [None, None]}
    diff = ma - mb
    if sa is None or sb is None:
        return {"diff": diff, "ci95": [None, None]}
    va, vb = sa * sa / len(a), sb * sb / len(b)
    if va + vb == 0:
        return {"diff": diff, "ci95": [diff, diff]}
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, df)) * math.sqrt(va + vb)
    return {"diff": diff, "ci95": [diff - half, diff + half]}
