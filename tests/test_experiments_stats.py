"""Paired statistics: a hand-computed example, scipy, the bootstrap and the precision warning."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from promotwin.experiments.stats import compare, paired, precision_warnings, replications_needed

# Four replications; baseline x, policy y, differences d = y - x = [-2, -1, 0, -3].
X = [10.0, 12.0, 9.0, 11.0]
Y = [8.0, 11.0, 9.0, 8.0]


def test_hand_computed_example() -> None:
    """mean(d) = -1.5; sd(d) = sqrt(5/3) = 1.290994; se = 0.645497; t(0.975, 3) = 3.182446;
    half-width = 2.054260. Relative: R = 9 / 10.5 = 0.857143, e = y - R x =
    [-0.571429, 0.714286, 1.285714, -1.428571], sd(e) = 1.228904, se = sd(e) / (2 * 10.5) =
    0.058519, half-width = 0.186234, relative change -0.142857."""
    p = paired(Y, X)
    assert p.n == 4
    assert p.mean_baseline == 10.5 and p.mean_policy == 9.0
    assert p.mean_diff == pytest.approx(-1.5)
    assert p.sd_diff == pytest.approx(1.290994, abs=1e-6)
    assert p.half_width == pytest.approx(2.054260, abs=1e-5)
    assert (p.ci_low, p.ci_high) == pytest.approx((-3.554260, 0.554260), abs=1e-5)
    assert p.relative == pytest.approx(-0.142857, abs=1e-6)
    assert (p.rel_ci_low, p.rel_ci_high) == pytest.approx((-0.329090, 0.043376), abs=1e-5)
    # The CI includes 0 and is wider than the effect: imprecise. Needed n: smallest n with
    # t(n-1) * 1.290994 / sqrt(n) <= 0.25 * 1.5 = 0.375: t(46) * 1.290994 / sqrt(47) = 0.3791,
    # t(47) * 1.290994 / sqrt(48) = 0.3749, so n = 48.
    assert not p.precise
    assert p.replications_needed == 48


def test_matches_scipy_paired_t() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(100, 10, size=12)
    y = x + rng.normal(-4, 3, size=12)
    p = paired(y, x, confidence=0.9)
    ref = stats.ttest_rel(y, x)
    ci = ref.confidence_interval(0.9)
    assert p.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (p.ci_low, p.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    one = stats.ttest_1samp(y - x, 0.0)
    assert p.p_value == pytest.approx(one.pvalue, rel=1e-9)


def test_replications_needed_reaches_the_target() -> None:
    """The suggested n gives a half-width within the share; n - 1 does not."""
    for sd, effect, share in [(3.0, 2.0, 0.25), (10.0, 1.0, 0.1), (0.5, 4.0, 0.5)]:
        n = int(replications_needed(sd, effect, share, 0.95))

        def half(k: int, sd: float = sd) -> float:
            return float(stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k))

        assert half(n) <= share * effect
        assert n == 2 or half(n - 1) > share * effect
    assert math.isnan(replications_needed(1.0, 0.0, 0.25, 0.95))
    assert replications_needed(0.0, 0.0, 0.25, 0.95) == 2


def test_identical_inputs_give_exact_zero() -> None:
    p = paired([3.0, 5.0, 7.0], [3.0, 5.0, 7.0], bootstrap=200)
    assert (p.mean_diff, p.sd_diff, p.ci_low, p.ci_high) == (0.0, 0.0, 0.0, 0.0)
    assert (p.relative, p.rel_ci_low, p.rel_ci_high) == (0.0, 0.0, 0.0)
    assert (p.boot_ci_low, p.boot_ci_high) == (0.0, 0.0)
    assert p.precise and p.p_value == 1.0


def test_bootstrap_agrees_with_t_on_normal_data() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(50, 5, size=60)
    y = x + rng.normal(2, 2, size=60)
    p = paired(y, x, bootstrap=4000, seed=1)
    assert p.boot_ci_low == pytest.approx(p.ci_low, abs=0.2)
    assert p.boot_ci_high == pytest.approx(p.ci_high, abs=0.2)
    assert p.boot_rel_ci_low == pytest.approx(p.rel_ci_low, abs=0.005)
    assert p.boot_rel_ci_high == pytest.approx(p.rel_ci_high, abs=0.005)
    assert p.boot_ci_low < p.mean_diff < p.boot_ci_high


def test_pairing_uses_replication_not_row_order() -> None:
    """Rows arrive in any order; pairs are matched on replication."""
    rows = []
    for r, (x, y) in enumerate(zip(X, Y, strict=True)):
        rows.append(("s", "base", "a", r, "k", x))
        rows.append(("s", "base", "b", r, "k", y))
    frame = pd.DataFrame(
        rows, columns=["scenario", "variation", "policy", "replication", "kpi", "value"]
    )
    shuffled = frame.sample(frac=1.0, random_state=0)
    table = compare(shuffled, baseline="a")
    assert len(table) == 1
    assert table.loc[0, "mean_diff"] == pytest.approx(-1.5)
    assert table.loc[0, "half_width"] == pytest.approx(2.054260, abs=1e-5)
    warnings = precision_warnings(table, 0.25, ["k"])
    assert len(warnings) == 1 and "about 48 replications" in warnings[0]
