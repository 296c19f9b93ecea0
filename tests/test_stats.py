"""flux.stats on hand-made outcomes: intervals, pairing, verdicts."""

import numpy as np
import pytest

from flux.errors import FluxError
from flux.stats import Interval, bootstrap_interval, hits, paired_difference, replicated_difference, verdict


def test_hits_reads_outcome_strings_and_refuses_anything_else():
    assert hits("1010").tolist() == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(FluxError, match="string of 0 and 1"):
        hits("10x1")


def test_constant_outcomes_have_a_point_interval():
    assert bootstrap_interval([0.7] * 10) == Interval(pytest.approx(0.7), pytest.approx(0.7), pytest.approx(0.7), 10)
    assert paired_difference([1.0] * 8, [0.0] * 8) == Interval(1.0, 1.0, 1.0, 8)
    assert paired_difference([1.0, 0.0, 1.0], [1.0, 0.0, 1.0]) == Interval(0.0, 0.0, 0.0, 3)


def test_an_accuracy_on_300_videos_is_known_to_about_six_points():
    # p = 0.5 on n = 300: the normal approximation's 95% half-width is 1.96 * sqrt(0.25 / 300) = 0.0566
    interval = bootstrap_interval([1.0, 0.0] * 150)
    assert interval.estimate == 0.5 and interval.items == 300
    assert (interval.high - interval.low) / 2 == pytest.approx(0.0566, abs=0.004)
    assert bootstrap_interval([1.0, 0.0] * 150, seed=0) == interval  # seeded: a function of its inputs


def test_pairing_cancels_what_the_items_share():
    # two models that agree on 299 of 300 videos and differ on one: the paired interval is tight around 1/300,
    # while each accuracy alone is uncertain by about six points
    shared = (np.random.default_rng(1).random(300) < 0.6).astype(float)
    better = shared.copy()
    better[np.flatnonzero(shared == 0)[0]] = 1.0
    difference = paired_difference(better, shared)
    assert difference.estimate == pytest.approx(1 / 300)
    assert 0 <= difference.low <= difference.high < 4 / 300
    alone = bootstrap_interval(shared)
    assert alone.high - alone.low > 0.09


@pytest.mark.parametrize(
    ("low", "high", "direction", "expected"),
    [
        (0.1, 0.3, 1, "reproduced"),
        (-0.3, -0.1, 1, "contradicted"),
        (-0.1, 0.2, 1, "inconclusive"),
        (0.0, 0.2, 1, "inconclusive"),  # touching zero is not excluding it
        (-0.3, -0.1, -1, "reproduced"),  # the claim says "lower"
        (0.1, 0.3, -1, "contradicted"),
    ],
)
def test_verdict_by_hand(low, high, direction, expected):
    assert verdict(Interval((low + high) / 2, low, high, 100), direction) == expected


def test_unpaired_or_empty_measurements_are_refused():
    with pytest.raises(FluxError, match="same items"):
        paired_difference([1.0, 0.0], [1.0])
    with pytest.raises(FluxError, match="no items"):
        bootstrap_interval([])
    with pytest.raises(FluxError, match=r"\+1 or -1"):
        verdict(Interval(0.0, -1.0, 1.0, 2), 0)


def test_wilson_and_newcombe_by_hand():
    from flux.stats import newcombe_paired_difference, wilson_interval

    # no hit in 32: Wilson's upper bound is z^2 / (n + z^2) = 3.8415 / 35.8415
    assert wilson_interval(0, 32) == (0.0, pytest.approx(0.107179, abs=1e-6))
    # 4 of 32: centre (0.125 + z^2/64) / (1 + z^2/32), half-width z sqrt(p q / n + z^2 / 4n^2) / (1 + z^2/32)
    assert wilson_interval(4, 32) == (pytest.approx(0.049701, abs=1e-6), pytest.approx(0.280683, abs=1e-6))
    # A right on 4 videos where B is wrong, equal elsewhere (all wrong): phi = 0 (a margin is empty), so
    # below = sqrt((0.125 - 0.049701)^2 + 0.107179^2) = 0.130985 and above = 0.280683 - 0.125
    found = newcombe_paired_difference([1.0] * 4 + [0.0] * 28, [0.0] * 32)
    assert (found.estimate, found.low, found.high) == (
        0.125,
        pytest.approx(-0.005985, abs=1e-6),
        pytest.approx(0.280683, abs=1e-6),
    )


def test_binary_outcomes_use_score_intervals_and_fractions_the_bootstrap():
    from flux.stats import difference_interval, proportion_interval

    # 0 of 32: a bootstrap would say [0, 0]; the score interval keeps the uncertainty
    assert proportion_interval([0.0] * 32).high == pytest.approx(0.107179, abs=1e-6)
    # 4 discordant pairs all one way: a sign test gives p = 0.125, and so does not exclude zero
    assert difference_interval([1.0] * 4 + [0.0] * 28, [0.0] * 32).low < 0
    fractions = [0.5, 1.0, 0.0, 0.5] * 10
    assert proportion_interval(fractions) == bootstrap_interval(fractions)
    assert difference_interval(fractions, fractions[::-1]) == paired_difference(fractions, fractions[::-1])


def test_relative_reduction_by_hand():
    from flux.stats import relative_reduction

    # treated is half the reference at every step: 50% lower, whichever blocks are drawn
    halved = relative_reduction([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert (halved.estimate, halved.low, halved.high, halved.items) == pytest.approx((0.5, 0.5, 0.5, 5))
    # means 3 and 2.5: 1/6 lower; the step-to-step noise widens the interval around it
    noisy = relative_reduction([1.0, 5.0, 2.0, 4.0, 3.0, 3.0, 1.0, 5.0], [2.0, 2.0, 3.0, 3.0, 2.0, 3.0, 2.0, 3.0])
    assert noisy.estimate == pytest.approx(1 - 2.5 / 3) and noisy.low < noisy.estimate < noisy.high
    assert relative_reduction([1.0, 2.0], [3.0, 3.0]).estimate == pytest.approx(-1.0)  # higher: a negative reduction
    with pytest.raises(FluxError, match="same points"):
        relative_reduction([1.0, 2.0], [1.0])


def test_one_seed_per_side_is_the_paired_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.random(50), rng.random(50)
    assert replicated_difference(a[None], b[None]) == paired_difference(a, b)


def test_seeds_that_disagree_widen_the_interval_by_hand():
    # better: one seed hits every item, the other none; against: every item at 0.5 under both seeds. Resampling the
    # items changes nothing (each row is constant); resampling better's two seeds gives means 1, 0.5 or 0 with
    # probabilities 1/4, 1/2, 1/4: the 95% interval of the difference is [0 - 0.5, 1 - 0.5]
    better = np.array([np.ones(40), np.zeros(40)])
    against = np.full((2, 40), 0.5)
    interval = replicated_difference(better, against)
    assert (interval.estimate, interval.low, interval.high, interval.items) == (0.0, -0.5, 0.5, 40)
    # the same outcomes with the seeds agreeing (both rows 0.5 everywhere): a point interval
    agreeing = replicated_difference(np.full((2, 40), 0.5), against)
    assert (agreeing.low, agreeing.high) == (0.0, 0.0)


def test_replicas_against_an_offset_such_as_chance():
    better = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]])  # both seeds 50 %
    interval = replicated_difference(better, None, offset=0.25)
    assert interval.estimate == pytest.approx(0.25) and interval.low < 0.25 < interval.high and interval.items == 4
