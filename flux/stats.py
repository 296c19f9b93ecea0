"""Intervals and verdicts for claims measured on a test set: is an effect there, and which way does it go?

A paper claim compares two measurements on the same test items (two models on the same videos, plain and dual-
softmax retrieval on the same captions, one model at two inputs). Per-item outcomes are 0/1 (a video's top-1 hit, a
caption's R@K hit) or, averaged over several settings, fractions. Intervals at the 95% level:
- one measurement (an accuracy, a recall; against chance): binary outcomes get the Wilson score interval, which stays
  honest at 0 or n hits of a few dozen items (a bootstrap of 32 misses is the point [0, 0]); fractions get the
  percentile bootstrap;
- the difference of two measurements on the same items: binary outcomes get Newcombe's paired score interval
  (method 10, from the two Wilson intervals and the pairs' correlation; it is near a sign test when few pairs
  differ, where a bootstrap is overconfident); fractions get the paired percentile bootstrap (the same resampled
  items on both sides, so what the items share cancels).
- either, where a side was trained with several seeds (seed replicas: a run repeated with only its seed changed):
  the two-level bootstrap, which resamples the test items (the same draw for every run) and, per side, the seeds,
  so the interval holds the training noise as well as the test set's.
Resampling is seeded: an interval is a function of its inputs, like every other number of a build.

The verdict is computed, never written by hand: the interval of the difference in the claimed direction
(positive: "A beats B") either excludes zero on the claimed side (reproduced), excludes it on the other side
(contradicted), or holds zero (inconclusive).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flux.errors import FluxError

RESAMPLES = 2000
LEVEL = 0.95
VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """An estimate with its (level) percentile-bootstrap interval, in the units of the values."""

    estimate: float
    low: float
    high: float
    items: int

    def scaled(self, factor: float) -> Interval:
        return Interval(self.estimate * factor, self.low * factor, self.high * factor, self.items)


def hits(outcomes: str) -> np.ndarray:
    """A `top1_hits` string of flux.eval.classification ("1"/"0" per video) as a float array."""
    if set(outcomes) - {"0", "1"}:
        raise FluxError(f"per-item outcomes must be a string of 0 and 1, got {outcomes[:20]!r}")
    return np.frombuffer(outcomes.encode(), dtype=np.uint8).astype(np.float64) - ord("0")


def hit_string(outcomes: Sequence[bool] | np.ndarray) -> str:
    """Per-item 0/1 outcomes as a `top1_hits` string (the inverse of `hits`)."""
    return "".join("1" if value else "0" for value in np.asarray(outcomes).tolist())


def _resampled_means(columns: Sequence[np.ndarray], resamples: int, seed: int) -> list[np.ndarray]:
    """Means of each column over the same `resamples` draws of item indices (with replacement)."""
    count = len(columns[0])
    if count == 0:
        raise FluxError("no items to bootstrap over")
    if any(len(column) != count for column in columns):
        raise FluxError(f"paired measurements need the same items; got {[len(column) for column in columns]}")
    draws = np.random.default_rng(seed).integers(0, count, size=(resamples, count))
    return [column[draws].mean(axis=1) for column in columns]


def _interval(estimate: float, means: np.ndarray, count: int, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), count)


def bootstrap_interval(values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The mean of per-item values and its percentile-bootstrap interval."""
    column = np.asarray(values, dtype=np.float64)
    (means,) = _resampled_means([column], resamples, seed)
    return _interval(column.mean(), means, len(column), level)


def paired_difference(
    a: Sequence[float], b: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """mean(a) - mean(b) over the same items, and its paired percentile-bootstrap interval."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    means_a, means_b = _resampled_means([first, second], resamples, seed)
    return _interval(first.mean() - second.mean(), means_a - means_b, len(first), level)


def verdict(difference: Interval, direction: int = 1) -> str:
    """`direction` +1: the claim says the difference is positive; -1: negative."""
    if direction not in (1, -1):
        raise FluxError(f"a claim's direction is +1 or -1, got {direction}")
    low, high = sorted((direction * difference.low, direction * difference.high))
    if low > 0:
        return "reproduced"
    if high < 0:
        return "contradicted"
    return "inconclusive"


def _binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def _z(level: float) -> float:
    return statistics.NormalDist().inv_cdf(1 - (1 - level) / 2)


def wilson_interval(successes: int, count: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval of a proportion."""
    if count <= 0:
        raise FluxError("no items to estimate a proportion from")
    z, p = _z(level), successes / count
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_interval(values: Sequence[float], level: float = LEVEL, seed: int = 0) -> Interval:
    """The mean of per-item outcomes and its interval: Wilson's for 0/1 outcomes, else the percentile bootstrap."""
    column = np.asarray(values, dtype=np.float64)
    if len(column) and _binary(column):
        low, high = wilson_interval(int(column.sum()), len(column), level)
        return Interval(float(column.mean()), low, high, len(column))
    return bootstrap_interval(column, level, seed=seed)


def newcombe_paired_difference(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """mean(a) - mean(b) of paired 0/1 outcomes with Newcombe's score interval (1998, method 10)."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    count = len(first)
    if count == 0 or len(second) != count:
        raise FluxError(f"paired measurements need the same items; got {len(first)} and {len(second)}")
    both = int(((first == 1) & (second == 1)).sum())
    only_a = int(((first == 1) & (second == 0)).sum())
    only_b = int(((first == 0) & (second == 1)).sum())
    neither = count - both - only_a - only_b
    p1, p2 = (both + only_a) / count, (both + only_b) / count
    (l1, u1), (l2, u2) = wilson_interval(both + only_a, count, level), wilson_interval(both + only_b, count, level)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    below = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    difference = p1 - p2
    return Interval(difference, difference - below, difference + above, count)


def difference_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL, seed: int = 0) -> Interval:
    """mean(a) - mean(b) over the same items: Newcombe's interval for 0/1 outcomes, else the paired bootstrap."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(first) and len(first) == len(second) and _binary(first) and _binary(second):
        return newcombe_paired_difference(first, second, level)
    return paired_difference(first, second, level, seed=seed)


def relative_reduction(
    reference: Sequence[float], treated: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """How much lower `treated` is than `reference` on average, as a fraction of the reference's mean, over paired
    points of a series (two training runs' gradient norms, step by step), with a moving-block bootstrap interval:
    neighbouring steps are not independent, so blocks of about n^(1/3) consecutive pairs are resampled together."""
    first, second = np.asarray(reference, dtype=np.float64), np.asarray(treated, dtype=np.float64)
    count = len(first)
    if count == 0 or len(second) != count:
        raise FluxError(f"paired series need the same points; got {len(first)} and {len(second)}")
    if first.mean() <= 0:
        raise FluxError("the reference series' mean must be positive to measure a relative reduction")
    block = max(1, round(count ** (1 / 3)))
    blocks = math.ceil(count / block)
    starts = np.random.default_rng(seed).integers(0, count - block + 1, size=(resamples, blocks))
    draws = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :count]
    estimates = 1 - second[draws].mean(axis=1) / first[draws].mean(axis=1)
    return _interval(1 - second.mean() / first.mean(), estimates, count, level)


def replicated_difference(
    better: np.ndarray,
    against: np.ndarray | None,
    offset: float = 0.0,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """mean(better) - mean(against) (or - `offset`, e.g. chance, without `against`) for sides given as (seeds, items)
    outcome matrices over the same items, with a two-level percentile-bootstrap interval: each resample draws the
    items once for every row (the same draw as `paired_difference`, which this equals when every side has one seed)
    and then each side's seeds, with replacement."""
    sides = [np.atleast_2d(np.asarray(side, dtype=np.float64)) for side in (better, against) if side is not None]
    item_means = _resampled_means([row for side in sides for row in side], resamples, seed)  # one per row: (resamples,)
    rng = np.random.default_rng([seed, 1])
    side_means, start = [], 0
    for side in sides:
        rows = np.stack(item_means[start : start + len(side)])  # (seeds, resamples)
        start += len(side)
        picks = rng.integers(0, len(side), size=(len(side), resamples))
        side_means.append(np.take_along_axis(rows, picks, axis=0).mean(axis=0))
    estimate = sides[0].mean() - (sides[1].mean() if len(sides) == 2 else offset)
    means = side_means[0] - (side_means[1] if len(sides) == 2 else offset)
    return _interval(estimate, means, sides[0].shape[1], level)
