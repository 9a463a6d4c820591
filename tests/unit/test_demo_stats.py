"""The demo's statistics: the paired difference to the base model, against hand-computed values."""

import math

import pytest

from lightwire.tools.demo import mean_and_se, paired_difference


def test_paired_difference_uses_only_problems_both_scored():
    base = {"a": 0.0, "b": 1.0, "c": 0.5, "gone": 2.0}
    now = {"a": 1.0, "b": 1.0, "c": 1.0, "new": 0.0}
    # Differences 1, 0, 0.5: mean 0.5, sample std 0.5, s.e. 0.5 / sqrt(3).
    delta, se = paired_difference(base, now)
    assert delta == pytest.approx(0.5)
    assert se == pytest.approx(0.5 / math.sqrt(3))


def test_a_constant_shift_has_no_paired_error_but_the_means_do():
    base = {"a": 0.0, "b": 1.0, "c": 2.0}
    now = {k: v + 0.25 for k, v in base.items()}
    assert paired_difference(base, now) == pytest.approx((0.25, 0.0))
    assert mean_and_se(list(now.values())) == pytest.approx((1.25, 1.0 / math.sqrt(3)))
