"""The statistics behind every published number: each rule written once, asked by every layer.

A ground module: it imports nothing of mlpbench (SciPy for the t and noncentral-t
distributions), so the cell, the campaign, the results and the report all may use it.

The rules:

- **Warm epochs.** Epoch 1 is cold (first-call costs such as tracing land there); epochs
  ``COLD_EPOCHS + 1``.. are warm. A result's timed sample is its warm epochs, or — when it ran a
  single epoch — epoch 1 alone, labelled so (``timed_sample``); only warm samples are compared.
- **A round's speed** is the median of its warm epochs (``round_median``): a round is one
  process and one seed, and the round — never a warm epoch — is the unit of replication, since
  epochs of one process share its start-up, memory layout and neighbours.
- **Means** over rounds or seeds carry a Student-t interval (``mean_ci``): a handful of values is
  too few for a normal approximation or a bootstrap.
- **The tie rule.** Values whose standard deviation is below ``TIE`` relative to their size are
  equal: what is left is float rounding. An interval of zero width says nothing about the
  spread (``spread_known`` is False), so it supports no verdict and has no power.
- **Ratios** of times are paired by round (same seed = same work, run interleaved): the
  geometric mean of the per-round ratios with a t interval on the log scale (``paired_ratio``).
  Only where the rounds cannot be paired are the two sides' log medians compared unpaired, with
  Welch's t (``unpaired_ratio``); ``ratio`` picks between them. Where two backends trained their
  epochs in turn (lockstep), the pairs are epochs, seconds apart, nested in rounds
  (``lockstep_ratio``): each round's value is the Hodges–Lehmann location of its per-epoch log
  ratios (``round_log_ratio``), and the interval is over rounds, so the process level counts as
  the random effect it is; ``Levels`` says which level dominates.
- **The reference row** a speed is compared with (``reference_of``): NumPy; for a tuned row,
  NumPy's tuned row where the results hold one (it ran in the same interleaved run, so the
  drift between two runs does not enter the ratio), else shipped NumPy.
- **The gate's rule** (``gate_verdict``): a ratio NEW/BASE is "slower" when its whole interval
  lies above ``factor``, "faster" when it lies below 1/``factor``; a change the data cannot
  separate from ``factor`` is not called one, and a ratio without a known spread is not testable.
- **Power and sample size** (``power``, ``rounds_for_power``): the probability that a gate
  calling "slower" when the whole interval lies above ``factor`` catches a true slowdown, from
  the noncentral t at the measured spread.
- **Multiplicity** (``familywise``): when one decision picks among k comparisons, each interval
  is taken at the Bonferroni confidence 1 − (1 − confidence)/k, so the chance that any of the k
  shows a difference that is not there stays below 1 − confidence.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

#: The test accuracy a scenario's time to accuracy is measured to, unless it sets its own: the
#: target of AlgoPerf's MNIST workload (784-128-10), which every seed of the catalogue's Adam
#: and RMSprop recipes at batch 32 reaches (results/README.md).
TARGET_ACCURACY = 0.97

CONFIDENCE = 0.95
#: Values whose standard deviation is below this, relative to their size, are equal: what is
#: left is float rounding (differences of accuracies computed from different pairs).
TIE = 1e-9
#: Epochs at the start of every run that are cold (first-call costs), never compared.
COLD_EPOCHS = 1
#: The label of a timed sample that holds the cold epoch alone.
COLD_ONLY = "epoch 1 only (cold; no warm epoch was run)"
#: The backend every speed is compared with ("vs numpy").
REFERENCE = "numpy"
#: How a tuned row's backend is named in the report, and NumPy's tuned row.
TUNED = " (tuned)"
TUNED_REFERENCE = f"{REFERENCE}{TUNED}"
#: The reference rule in words, stated once: the tables, the verdicts, the page's charts and the
#: README quote this text (``reference_of`` and ``speed_ratio`` are the rule in code).
REFERENCE_RULE = (
    "vs numpy: the reference row's time / this row's (×2.00 = twice as fast), with its 95 % "
    "interval. The reference is NumPy of the same division: shipped NumPy for a shipped row, "
    "`numpy (tuned)` for a tuned row, measured in the same interleaved rounds (each framework "
    "at its best against NumPy at its best; where the tuned run holds no NumPy row, shipped "
    "NumPy from the other run, the drift between the runs included). Paired within rounds: "
    "where both trained in lockstep in one run, epoch by epoch (each round's Hodges–Lehmann "
    "location of its per-epoch log ratios), else each round's median warm epoch; the geometric "
    "mean over rounds with a Student-t interval over rounds (with a single round, over its "
    "epochs: the spread between processes is then not measured, and no verdict is drawn)."
)
#: The gates' defaults (``mlpbench compare`` and ``mlpbench ab``): "slower" when the whole
#: interval of NEW/BASE, at confidence 1 − GATE_ALPHA, lies above GATE_FACTOR.
GATE_FACTOR = 1.05
GATE_ALPHA = 0.05
#: The slowdown whose detection probability a gate states, and the power it aims for.
SLOWDOWN = 1.10
TARGET_POWER = 0.8


# --- warm epochs and a round's speed -------------------------------------------------------


def warm_epochs(epoch_seconds: Sequence[float]) -> list[float]:
    """The warm epochs of a run's per-epoch seconds, in order (empty when it ran one epoch)."""
    return [float(s) for s in epoch_seconds[COLD_EPOCHS:]]


def has_warm_epochs(epochs_run: int) -> bool:
    """Whether a run of ``epochs_run`` epochs has a warm epoch to compare."""
    return epochs_run > COLD_EPOCHS


def timed_sample(epoch_seconds: Sequence[float]) -> tuple[list[float], str]:
    """The epoch seconds a result's statistics are over, and their label: the warm epochs
    ("warm epochs 2..N"), or the cold epoch alone (``COLD_ONLY``) when no warm epoch ran."""
    warm = warm_epochs(epoch_seconds)
    if warm:
        return warm, f"warm epochs {COLD_EPOCHS + 1}..{len(epoch_seconds)}"
    return [float(s) for s in epoch_seconds], COLD_ONLY


def is_warm_sample(label: str | None) -> bool:
    """Whether a timed sample's label (``timed_sample``'s) names warm epochs."""
    return bool(label) and not str(label).startswith(COLD_ONLY.split(" (")[0])


def round_median(warm: Sequence[float]) -> float:
    """A round's speed: the median of its warm-epoch seconds (NaN without any)."""
    return float(statistics.median(warm)) if len(warm) else math.nan


# --- estimates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with its interval [low, high] (NaN when n < 2) and the values'
    standard deviation ``sd`` (NaN when n < 2; 0 when they tie)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float = math.nan

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


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The mean of ``values`` (NaNs dropped) and its Student-t interval at ``confidence``."""
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
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, sd)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
    """Mean of b[key] − a[key] over the keys (seeds) both have, with its t interval (paired t)."""
    common = sorted(set(a) & set(b))
    return mean_ci([b[k] - a[k] for k in common])


def relative_half_width(estimate: Estimate | Ratio) -> float:
    """The interval's half-width as a fraction of the estimate (inf without an interval)."""
    if isinstance(estimate, Ratio):
        return estimate.half_width / estimate.value if estimate.testable else math.inf
    if not estimate.spread_known or not estimate.mean:
        return math.inf
    return estimate.half_width / abs(estimate.mean)


# --- ratios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """A ratio of times, numerator / denominator: ``value`` with its interval [low, high]
    (NaN when it cannot be estimated); ``n`` pairs (paired) or the smaller side's rounds;
    ``sd_log`` the spread of the log ratios (paired) or the pooled spread of the log medians
    (unpaired); ``paired``."""

    value: float
    low: float
    high: float
    n: int
    sd_log: float
    paired: bool

    @property
    def testable(self) -> bool:
        """Whether the interval says something: n ≥ 2 and a spread that is not a tie."""
        return self.n >= 2 and self.high > self.low

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def excludes_one(self) -> bool:
        return self.testable and (self.low > 1 or self.high < 1)

    def shown(self) -> str:
        """'×1.82 [1.75, 1.90]', or '×1.82' without an interval."""
        if self.testable:
            return f"×{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"
        return f"×{self.value:.2f}"


def paired_ratio(
    numerator: Mapping[int, float],
    denominator: Mapping[int, float],
    confidence: float = CONFIDENCE,
) -> Ratio:
    """numerator / denominator of positive values paired by key (round = seed): the geometric
    mean of the per-pair ratios with its t interval on the log scale (ratios of times are
    log-normal-ish and multiply). Interval NaN below 2 pairs; zero width on a tie."""
    common = sorted(
        k for k in set(numerator) & set(denominator) if numerator[k] > 0 and denominator[k] > 0
    )
    logs = mean_ci([math.log(numerator[k] / denominator[k]) for k in common], confidence)
    value, low, high = (
        math.exp(v) if v == v else math.nan for v in (logs.mean, logs.low, logs.high)
    )
    return Ratio(value, low, high, logs.n, logs.sd, True)


def unpaired_ratio(
    numerator: Sequence[float], denominator: Sequence[float], confidence: float = CONFIDENCE
) -> Ratio:
    """The ratio of two unpaired samples' geometric means, with Welch's t interval on the log
    scale; interval NaN unless both sides have 2 values or more."""
    from scipy import stats

    a = [math.log(v) for v in denominator if v > 0]
    b = [math.log(v) for v in numerator if v > 0]
    if not a or not b:
        return Ratio(math.nan, math.nan, math.nan, 0, math.nan, False)
    mean = statistics.fmean(b) - statistics.fmean(a)
    n = min(len(a), len(b))
    if n < 2:
        return Ratio(math.exp(mean), math.nan, math.nan, n, math.nan, False)
    sa, sb = statistics.stdev(a), statistics.stdev(b)
    va, vb = sa**2 / len(a), sb**2 / len(b)
    se = math.sqrt(va + vb)
    if se <= TIE * max(1.0, abs(mean)):
        return Ratio(math.exp(mean), math.exp(mean), math.exp(mean), n, 0.0, False)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    sd = math.sqrt((sa**2 + sb**2) / 2)
    return Ratio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n, sd, False)


def ratio(
    numerator: Mapping[int, float],
    denominator: Mapping[int, float],
    confidence: float = CONFIDENCE,
) -> Ratio:
    """Paired where the two sides share two keys (rounds) or more, else unpaired."""
    if len(set(numerator) & set(denominator)) >= 2:
        return paired_ratio(numerator, denominator, confidence)
    return unpaired_ratio(list(numerator.values()), list(denominator.values()), confidence)


@dataclass(frozen=True)
class Levels:
    """Where a nested paired ratio's variation lives, on the log scale: ``within_sd`` between
    the epochs of one round (one pair of processes), ``between_sd`` between rounds beyond what
    their epochs explain (one-way random-effects ANOVA, floored at 0); ``rounds`` and ``epochs``
    (per round, the smallest)."""

    within_sd: float
    between_sd: float
    rounds: int
    epochs: int

    @property
    def dominant(self) -> str:
        """ "processes" when rounds differ more than their epochs' noise explains, else
        "epochs"; "processes (not measured)" with a single round."""
        if self.rounds < 2:
            return "processes (not measured)"
        within_of_mean = self.within_sd**2 / max(1, self.epochs)
        return "processes" if self.between_sd**2 > within_of_mean else "epochs"


def hodges_lehmann(values: Sequence[float]) -> float:
    """The Hodges–Lehmann location of ``values`` (one or more; StatisticsError on none): the
    median of all pairwise means (i ≤ j), the estimator that goes with Wilcoxon's signed-rank
    test — about as efficient as the mean for normal noise (95 %), and robust to a few wild
    values (breakdown 29 %)."""
    walsh = [(a + b) / 2 for i, a in enumerate(values) for b in values[i:]]
    return statistics.median(walsh)


def epoch_log_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """log(a / b) of the epochs paired in order (up to the shorter side; positive times only)."""
    return [
        math.log(a / b) for a, b in zip(numerator, denominator, strict=False) if a > 0 and b > 0
    ]


def round_value(logs: Sequence[float]) -> float:
    """One lockstep round's value from its per-epoch log ratios: their Hodges–Lehmann location
    (NaN without one). Chosen on this project's A/A measurements: where paired epochs share
    the machine's state (long epochs) it keeps the pairing, where they do not (short epochs)
    it averages like a mean, and a stalled epoch moves it little."""
    return hodges_lehmann(logs) if logs else math.nan


def round_log_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """``round_value`` of two sides' warm epochs, paired in order."""
    return round_value(epoch_log_ratios(numerator, denominator))


def lockstep_ratio(
    numerator: Mapping[int, Sequence[float]],
    denominator: Mapping[int, Sequence[float]],
    confidence: float = CONFIDENCE,
) -> tuple[Ratio, Levels]:
    """numerator / denominator of per-epoch times paired epoch by epoch within each round (key:
    round; each side's warm epochs in order, paired up to the shorter), the round a random
    effect: a round's value is ``round_value`` of its epochs' log ratios, the ratio the geometric
    mean over rounds with a t interval over rounds (``paired_ratio``). With a single round the
    value and interval are the epochs' own (their geometric mean, with a t interval over that
    round's log ratios): it leaves the process level out, which ``Levels.dominant`` says."""
    logs = {
        r: epoch_log_ratios(numerator[r], denominator[r])
        for r in sorted(set(numerator) & set(denominator))
    }
    logs = {r: v for r, v in logs.items() if v}
    levels = _levels(logs)
    if len(logs) == 1:
        (only,) = logs.values()
        ratio = paired_ratio(
            dict(enumerate(math.exp(v) for v in only)),
            dict.fromkeys(range(len(only)), 1.0),
            confidence,
        )
        return ratio, levels
    per_round = {r: math.exp(round_value(v)) for r, v in logs.items()}
    return paired_ratio(per_round, dict.fromkeys(per_round, 1.0), confidence), levels


def speed_ratio(
    reference: Mapping[int, Sequence[float]],
    other: Mapping[int, Sequence[float]],
    lockstep: bool,
    confidence: float = CONFIDENCE,
) -> tuple[Ratio, Levels | None]:
    """The one rule behind every published speed ratio: the reference's time / the other's
    (> 1: the other is faster), from each side's warm epochs in order, keyed by round (= seed).
    Both sides trained in lockstep: paired epoch by epoch within rounds (``lockstep_ratio``,
    with its variance levels); otherwise the rounds' warm medians (``round_median``) paired by
    round (``paired_ratio``; levels None). Rounds without warm epochs are left out."""
    if lockstep:
        return lockstep_ratio(reference, other, confidence)
    medians = [{r: round_median(w) for r, w in side.items() if w} for side in (reference, other)]
    return paired_ratio(*medians, confidence), None


def _levels(logs: Mapping[int, Sequence[float]]) -> Levels:
    """One-way random-effects variance components of log ratios grouped by round."""
    groups = [list(v) for v in logs.values()]
    if not groups:
        return Levels(math.nan, math.nan, 0, 0)
    epochs = min(len(g) for g in groups)
    within_ss = sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in groups)
    within_df = sum(len(g) - 1 for g in groups)
    within = within_ss / within_df if within_df else math.nan
    if len(groups) < 2:
        return Levels(math.sqrt(within) if within == within else math.nan, math.nan, 1, epochs)
    means = [statistics.fmean(g) for g in groups]
    between_means = statistics.variance(means)
    between = max(0.0, between_means - (within if within == within else 0.0) / epochs)
    return Levels(
        math.sqrt(within) if within == within else math.nan, math.sqrt(between), len(groups), epochs
    )


# --- the reference row ----------------------------------------------------------------------


def reference_of(backend: str, present: Container[str]) -> str:
    """The row a backend's speed is compared with: NumPy; for a tuned row, NumPy's tuned row
    when ``present`` (the rows of the same run) holds one, else shipped NumPy."""
    if str(backend).endswith(TUNED) and TUNED_REFERENCE in present:
        return TUNED_REFERENCE
    return REFERENCE


# --- the gate's rule -----------------------------------------------------------------------

SLOWER, FASTER, SAME = "slower", "faster", "no change detected"


#: The smallest change a gate calls when the spread between processes was not measured (one
#: process per side): separate processes of one unchanged backend have differed by up to ~19 %
#: on the development machines (their published "rounds vary" notes), so warm epochs of one
#: process per side can show that much with nothing changed.
UNMEASURED_PROCESS_FACTOR = 1.25


def unmeasured_factor(factor: float) -> float:
    """The threshold a gate applies to a ratio over warm epochs alone (see above)."""
    return max(factor, UNMEASURED_PROCESS_FACTOR)


def gate_verdict(r: Ratio, factor: float) -> str:
    """``SLOWER``, ``FASTER``, ``SAME`` or "not testable (…)" for a ratio NEW/BASE. A tie of
    ratios that are all 1 (the same times on both sides) is ``SAME``; a tie of any other ratio
    has no known spread and is not testable."""
    if not r.testable:
        if r.n >= 2 and r.sd_log == 0:
            if abs(math.log(r.value)) <= TIE:
                return SAME
            return f"not testable (the same ratio in all {r.n} rounds: spread unknown)"
        return f"not testable ({r.n} round{'s' if r.n != 1 else ''} per side)"
    if r.low > factor:
        return SLOWER
    if r.high < 1 / factor:
        return FASTER
    return SAME


# --- power, sample size, multiplicity -------------------------------------------------------


def power(
    r: Ratio, factor: float, confidence: float = CONFIDENCE, slowdown: float = SLOWDOWN
) -> float:
    """Probability that the interval of a ratio with ``r``'s size and spread lies wholly above
    ``factor`` when the true ratio is ``slowdown`` (noncentral t); NaN when the spread is
    unknown. Paired: se = sd/√n, df n − 1; unpaired: se = sd·√(2/n), df 2n − 2."""
    from scipy import stats

    if not r.testable:
        return math.nan
    se = r.sd_log / math.sqrt(r.n) if r.paired else r.sd_log * math.sqrt(2 / r.n)
    df = r.n - 1 if r.paired else 2 * r.n - 2
    shift = (math.log(slowdown) - math.log(factor)) / se
    return float(stats.nct.sf(stats.t.ppf(0.5 + confidence / 2, df), df, shift))


def rounds_for_power(
    r: Ratio,
    factor: float,
    confidence: float = CONFIDENCE,
    target: float = TARGET_POWER,
    most: int = 200,
) -> int | None:
    """The fewest rounds per side at which ``power`` at ``r``'s measured spread reaches
    ``target``; None when the spread is unknown or no n up to ``most`` does."""
    if not r.testable:
        return None
    for n in range(2, most + 1):
        at_n = Ratio(r.value, r.low, r.high, n, r.sd_log, r.paired)
        if power(at_n, factor, confidence) >= target:
            return n
    return None


def familywise(confidence: float, comparisons: int) -> float:
    """The confidence each of ``comparisons`` intervals needs so that all hold together with
    probability ≥ ``confidence`` (Bonferroni)."""
    return 1 - (1 - confidence) / max(1, comparisons)
