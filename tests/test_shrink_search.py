"""The search primitives behind every shrink pass (moefuzz.shrinking.search) and pass naming."""

import pytest

from moefuzz.shrinking.passes import ShrinkPass
from moefuzz.shrinking.search import find_least, smaller_sizes


def probed(threshold):
    """A predicate failing from ``threshold`` up, and the values it was asked about."""
    calls = []

    def fails(n):
        calls.append(n)
        return n >= threshold

    return fails, calls


def test_find_least_finds_the_threshold_of_a_monotone_predicate_by_bisection():
    fails, calls = probed(37)
    assert find_least(fails, 1000, lowest=1) == 37
    assert calls[:3] == [500, 250, 125]
    assert len(calls) <= 11 and len(set(calls)) == len(calls)


def test_find_least_tries_its_probes_first_and_stops_at_the_first_that_fails():
    fails, calls = probed(1)
    assert find_least(fails, 1000, lowest=1, probes=(1,)) == 1
    assert calls == [1]
    fails, calls = probed(4)
    assert find_least(fails, 64, lowest=3, probes=(3, 4)) == 4
    assert calls == [3, 4]


def test_find_least_skips_probes_outside_the_interval_and_returns_high_when_nothing_lower_fails():
    fails, calls = probed(10)
    assert find_least(fails, 10, lowest=2, probes=(0, 1, 12)) == 10
    assert all(2 <= n < 10 for n in calls)


def test_find_least_stops_when_told_and_keeps_the_best_value_so_far():
    fails, calls = probed(3)
    assert find_least(fails, 100, lowest=1, stop=lambda: len(calls) >= 2) == 25
    assert calls == [50, 25]


def test_smaller_sizes_are_the_powers_of_two_below_and_one_less_smallest_first():
    assert smaller_sizes(16) == [1, 2, 4, 8, 15]
    assert smaller_sizes(6) == [1, 2, 4, 5]
    assert smaller_sizes(1) == []


def test_a_pass_is_named_for_its_function_and_a_lambda_must_be_named():
    def drop_everything(shrinker):
        pass

    assert ShrinkPass(drop_everything).name == "drop_everything"
    assert ShrinkPass(lambda s: None, "keep_half").name == "keep_half"
    with pytest.raises(ValueError, match="needs a name"):
        ShrinkPass(lambda s: None)
