"""Small-sample statistics for results over seeds: means with Student-t 95 % confidence
intervals, and paired differences (seed by seed) with theirs.

Why t intervals: cells have a handful of seeds (5 is typical), too few for a normal
approximation or a bootstrap, and the paired Wilcoxon signed-rank test cannot reach p < 0.05
with fewer than 6 pairs; for per-seed results that are roughly normal (final accuracies, epoch
medians) the t interval is the standard small-n choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
#: Values whose standard deviation is below this, relative to their size, are equal: what is
#: left is float rounding (differences of accuracies computed from different pairs).
TIE = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with its 95 % interval [low, high] (NaN when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def spread_known(self) -> bool:
        """Whether the values varied at all: with n ≥ 2 identical values (accuracies move in
        steps of one test image, so two seeds can tie) the interval has zero width, which says
        nothing about the spread."""
        return self.n >= 2 and self.high > self.low

    @property
    def excludes_zero(self) -> bool:
        return self.spread_known and (self.low > 0 or self.high < 0)


def mean_ci(values: Sequence[float]) -> Estimate:
    """The mean of ``values`` (NaNs dropped) and its Student-t 95 % confidence interval."""
    from scipy import stats

    finite = [float(v) for v in values if v == v]
    n = len(finite)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(finite) / n
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    if sd <= TIE * max(1.0, *map(abs, finite)):
        sd = 0.0  # equal up to float rounding (e.g. the same difference in accuracy on each seed)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def paired_ratio(reference: dict[int, float], other: dict[int, float]) -> Estimate:
    """The ratio reference / other of positive values paired by key (seed = round), as the
    geometric mean of the per-pair ratios with its t interval on the log scale (ratios of
    times are log-normal-ish and multiply): "× 1.82 [1.75, 1.90]". NaN interval below 2 pairs."""
    common = sorted(k for k in set(reference) & set(other) if reference[k] > 0 and other[k] > 0)
    logs = mean_ci([math.log(reference[k] / other[k]) for k in common])
    return Estimate(
        *(math.exp(v) if v == v else math.nan for v in (logs.mean, logs.low, logs.high)), logs.n
    )


def relative_half_width(estimate: Estimate) -> float:
    """The interval's half-width as a fraction of the estimate (inf without an interval)."""
    if not estimate.spread_known:  # identical values say nothing of the spread
        return math.inf
    if estimate.n < 2 or not estimate.mean or estimate.low != estimate.low:
        return math.inf
    return estimate.half_width / abs(estimate.mean)


def paired_difference(a: dict[int, float], b: dict[int, float]) -> Estimate:
    """Mean of b[seed] − a[seed] over the seeds both have, with its t interval (paired t)."""
    common = sorted(set(a) & set(b))
    return mean_ci([b[s] - a[s] for s in common])
