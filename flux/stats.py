"""Intervals and verdicts for claims measured on a test set: is an effect there, and which way does it go?

A paper claim compares two measurements on the same test items (two models on the same videos, plain and dual-
softmax retrieval on the same captions, one model at two budgets). The difference of their means gets a paired
percentile bootstrap interval: the same resampled items for both sides, so what the items share cancels. A
single measurement (an accuracy against chance) gets the plain percentile bootstrap. Resampling is seeded: an
interval is a function of its inputs, like every other number of a build.

The verdict is computed, never written by hand: the interval of the difference in the claimed direction
(positive: "A beats B") either excludes zero on the claimed side (reproduced), excludes it on the other side
(contradicted), or holds zero (inconclusive).
"""

from __future__ import annotations

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
