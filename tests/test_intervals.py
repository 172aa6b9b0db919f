"""The t interval and the verdict rule, on cases computed by hand."""

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from occ.report.intervals import VERDICTS, by_seed, paired_comparison, t_interval

# Two-sided 95% Student t quantiles t_{0.975, df}, from tables (checked against scipy below).
T_DF1 = 12.706204736174707
T_DF2 = 4.302652729749464


def test_quantiles_are_the_tabulated_ones():
    assert scipy_stats.t.ppf(0.975, 1) == pytest.approx(T_DF1, rel=1e-12)
    assert scipy_stats.t.ppf(0.975, 2) == pytest.approx(T_DF2, rel=1e-12)


def test_t_interval_by_hand():
    # 1, 2, 3: mean 2, s = 1, sem = 1 / sqrt(3)
    iv = t_interval([1.0, 2.0, 3.0])
    half = T_DF2 / math.sqrt(3)
    assert iv.n == 3 and iv.mean == pytest.approx(2.0)
    assert iv.half_width == pytest.approx(half)
    assert (iv.low, iv.high) == pytest.approx((2.0 - half, 2.0 + half))
    # 90 % uses t_{0.95, 2} = 2.919985580...
    assert t_interval([1.0, 2.0, 3.0], confidence=0.9).half_width == pytest.approx(2.919985580355516 / math.sqrt(3))


def test_t_interval_small_samples_are_nan_not_errors():
    one = t_interval([5.0])
    assert one.n == 1 and one.mean == 5.0
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.half_width)
    empty = t_interval([])
    assert empty.n == 0 and math.isnan(empty.mean)
    # NaN values are dropped before counting
    assert t_interval([4.0, float("nan")]).n == 1
    # no spread: a zero-width interval at the mean
    flat = t_interval([3.0, 3.0, 3.0])
    assert (flat.low, flat.high, flat.half_width) == (3.0, 3.0, 0.0)
    with pytest.raises(ValueError):
        t_interval([1.0, 2.0], confidence=1.0)


def test_clear_win_is_reproduced():
    # a - b = -10, -9, -9: mean -28/3, s = sqrt(1/3), sem = 1/3
    a = {0: 10.0, 1: 11.0, 2: 12.0}
    b = {0: 20.0, 1: 20.0, 2: 21.0}
    p = paired_comparison(a, b, paper_side="less")
    assert p.n == 3 and p.seeds == (0, 1, 2) and p.differences == (-10.0, -9.0, -9.0)
    assert p.mean == pytest.approx(-28 / 3)
    assert p.half_width == pytest.approx(T_DF2 / 3)
    assert p.high == pytest.approx(-28 / 3 + T_DF2 / 3)  # -7.899...
    assert p.verdict == "reproduced"


def test_clear_loss_is_contradicted():
    a = {0: 20.0, 1: 20.0, 2: 21.0}
    b = {0: 10.0, 1: 11.0, 2: 12.0}
    p = paired_comparison(a, b, paper_side="less")
    assert p.mean == pytest.approx(28 / 3) and p.low == pytest.approx(28 / 3 - T_DF2 / 3)
    assert p.verdict == "contradicted"
    # the same numbers where the paper claims a > b
    assert paired_comparison(a, b, paper_side="greater").verdict == "reproduced"
    assert paired_comparison(b, a, paper_side="greater").verdict == "contradicted"


def test_tie_is_not_established():
    # differences -1, 1, 0: mean 0, s = 1, half-width t * 1 / sqrt(3) = 2.484
    p = paired_comparison({0: 9.0, 1: 11.0, 2: 10.0}, {0: 10.0, 1: 10.0, 2: 10.0})
    assert p.mean == pytest.approx(0.0)
    assert p.half_width == pytest.approx(T_DF2 / math.sqrt(3))
    assert p.verdict == "not established"


def test_two_seeds_vs_three():
    # the same mean difference -3; with two seeds t_{0.975,1} = 12.71 makes the interval contain 0,
    # with three seeds t_{0.975,2} = 4.30 does not.
    b = {0: 0.0, 1: 0.0, 2: 0.0}
    two = paired_comparison({0: -2.0, 1: -4.0}, b)  # s = sqrt(2), sem = 1
    assert two.n == 2 and two.seeds == (0, 1)
    assert two.mean == pytest.approx(-3.0) and two.half_width == pytest.approx(T_DF1)
    assert (two.low, two.high) == pytest.approx((-3.0 - T_DF1, -3.0 + T_DF1))  # [-15.71, 9.71]
    assert two.verdict == "not established"
    three = paired_comparison({0: -2.0, 1: -4.0, 2: -3.0}, b)  # s = 1, sem = 1 / sqrt(3)
    assert three.half_width == pytest.approx(T_DF2 / math.sqrt(3))  # 2.484
    assert (three.low, three.high) == pytest.approx((-3.0 - 2.4841377, -3.0 + 2.4841377))
    assert three.verdict == "reproduced"


def test_pairing_uses_common_seeds_only():
    # seed 2 only in a, seed 3 only in b, seed 4 NaN in b: two pairs (seeds 0, 1)
    a = pd.Series({0: 1.0, 1: 2.0, 2: 100.0, 4: 7.0})
    b = pd.Series({0: 2.0, 1: 4.0, 3: -100.0, 4: float("nan")})
    p = paired_comparison(a, b)
    assert p.seeds == (0, 1) and p.differences == (-1.0, -2.0)
    assert p.mean == pytest.approx(-1.5) and p.half_width == pytest.approx(T_DF1 * 0.5)


def test_one_seed_is_never_a_verdict():
    p = paired_comparison({0: 1.0}, {0: 100.0})
    assert p.n == 1 and p.mean == -99.0 and math.isnan(p.low)
    assert p.verdict == "not established"
    assert paired_comparison({}, {}).verdict == "not established"


def test_interval_touching_zero_is_not_established():
    # differences 0 and 0: a zero-width interval at 0 lies on neither side
    assert paired_comparison({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}).verdict == "not established"
    assert paired_comparison({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}).verdict in VERDICTS
    with pytest.raises(ValueError):
        paired_comparison({0: 1.0}, {0: 1.0}, paper_side="lower")


def test_by_seed_picks_one_key():
    per_seed = {0: {"fad_mean": 3.0}, 1: {"fad_mean": 4.0, "x": 1}, 2: {"x": 2}, 3: {"fad_mean": None},
                4: {"fad_mean": float("nan")}, 5: pd.Series({"fad_mean": 6.0})}
    assert by_seed(per_seed, "fad_mean") == {0: 3.0, 1: 4.0, 5: 6.0}
    assert by_seed(per_seed, "missing") == {}
