"""The regression gate's statistics: the speed ratio NEW/BASE of one cell over rounds, with its
interval, the verdict, and the gate's power.

The unit of replication is a round (one process, one seed), never a warm epoch: epochs of one
process share its start-up, memory layout and neighbours, so they are not independent runs. Each
round contributes the median of its warm epochs. With the same seeds on both sides the rounds are
paired (a seed's two runs train identical work; ``mlpbench run`` interleaves them) and the ratio
is the geometric mean of the per-seed ratios; otherwise the two sides' log medians are compared
unpaired (Welch). Either way the interval is Student-t on the log scale at confidence 1 − alpha.

A cell regressed when the whole interval lies above ``factor``, and improved when it lies below
1 / ``factor``: a change the data cannot separate from ``factor`` is not called one. The power is
the probability that the gate would call a true ``SLOWDOWN`` (10 %) with the sample it had, from
the noncentral t with the spread it measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SLOWER, FASTER, SAME = "slower", "faster", "no change detected"
#: The slowdown whose detection probability the gate states.
SLOWDOWN = 1.10


@dataclass(frozen=True)
class Ratio:
    """NEW/BASE: ``value`` with [low, high]; ``n`` rounds (pairs, or the smaller side);
    ``sd_log`` the spread of the log ratios (paired) or of the log medians (pooled);
    ``paired``; ``low``/``high`` NaN when it cannot be estimated."""

    value: float
    low: float
    high: float
    n: int
    sd_log: float
    paired: bool

    @property
    def testable(self) -> bool:
        return not math.isnan(self.low)

    def text(self) -> str:
        """'12.3 % ± 2.1 % slower' / '4.0 % ± 3.3 % faster' (± the interval's half-width)."""
        change = 100 * (self.value - 1)
        half = 100 * (self.high - self.low) / 2
        word = "slower" if change >= 0 else "faster"
        return f"{abs(change):.1f} % ± {half:.1f} % {word}" if self.testable else (
            f"{abs(change):.1f} % {word}"
        )  # fmt: skip


def ratio(base: dict[int, float], new: dict[int, float], alpha: float = 0.05) -> Ratio:
    """NEW/BASE of per-round medians keyed by seed (see the module's docstring)."""
    from scipy import stats

    common = sorted(set(base) & set(new))
    if len(common) >= 2:
        logs = [math.log(new[s] / base[s]) for s in common]
        n, mean, sd = len(logs), _mean(logs), _sd(logs)
        se, df = sd / math.sqrt(n), n - 1
        paired = True
    else:
        a, b = [math.log(v) for v in base.values()], [math.log(v) for v in new.values()]
        mean = _mean(b) - _mean(a) if a and b else math.nan
        if len(a) < 2 or len(b) < 2:
            value = math.exp(mean) if a and b else math.nan
            return Ratio(value, math.nan, math.nan, min(len(a), len(b)), math.nan, False)
        va, vb = _sd(a) ** 2 / len(a), _sd(b) ** 2 / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else 1.0
        n, sd, paired = min(len(a), len(b)), math.sqrt((_sd(a) ** 2 + _sd(b) ** 2) / 2), False
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return Ratio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n, sd, paired)


def verdict(r: Ratio, factor: float) -> str:
    if not r.testable:
        return f"not testable ({r.n} round{'s' if r.n != 1 else ''} per side)"
    if r.low > factor:
        return SLOWER
    if r.high < 1 / factor:
        return FASTER
    return SAME


def power(r: Ratio, factor: float, alpha: float = 0.05, slowdown: float = SLOWDOWN) -> float:
    """Probability of ``SLOWER`` for a true ``slowdown`` at ``r``'s size and spread (NaN when
    the spread is unknown). Paired: se = sd/√n, df n − 1; unpaired: se = sd·√(2/n), df 2n − 2."""
    from scipy import stats

    if not r.testable or r.n < 2:
        return math.nan
    if r.sd_log == 0:
        return 1.0 if slowdown > factor else 0.0
    se = r.sd_log / math.sqrt(r.n) if r.paired else r.sd_log * math.sqrt(2 / r.n)
    df = r.n - 1 if r.paired else 2 * r.n - 2
    shift = (math.log(slowdown) - math.log(factor)) / se
    return float(stats.nct.sf(stats.t.ppf(1 - alpha / 2, df), df, shift))


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _sd(values: list[float]) -> float:
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))
