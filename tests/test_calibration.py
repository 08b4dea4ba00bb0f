"""Simulation-based calibration (jaxcoh.curves.calibration), small: 10 replicates of 3 mock RAR galaxies with
nuisance and sigma_int, one short NUTS chain each. The full run (>= 50 replicates) is scripts/calibrate_sampler.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

calibration = pytest.importorskip("jaxcoh.curves.calibration")  # needs the "sample" extra (blackjax)
stats = pytest.importorskip("scipy.stats")

pytestmark = pytest.mark.xdist_group("calibration")  # one worker: its tests share one SBC run

SETTINGS = calibration.SBCSettings(n_replicates=10, n_galaxies=3, n_max=12, n_warmup=150, n_draws=200, thin=4,
                                   seed=3)


@pytest.fixture(scope="module")
def sbc():
    return calibration.run_sbc(SETTINGS)


def binomial_consistent(result, truths=None, p_min=1e-3) -> dict:
    """``{(param, level): bool}``: is the number of replicates whose interval covers the truth a plausible
    Binomial(R, level) count (two-sided tail probability above ``2 p_min``)? Loose on purpose: 10 replicates."""
    R = result.settings.n_replicates
    out = {}
    for level in calibration.LEVELS:
        for name, cov in result.covered(level, truths).items():
            k = int(cov.sum())
            out[(name, level)] = bool(stats.binom.cdf(k, R, level) > p_min and stats.binom.sf(k - 1, R, level) > p_min)
    return out


def test_coverage_is_nominal_within_binomial_error(sbc):
    assert all(binomial_consistent(sbc).values()), binomial_consistent(sbc)
    table = calibration.coverage_table(sbc)
    assert table["divergent_fraction"] < 0.02
    assert [(r["param"], r["level"]) for r in table["rows"]] == [(p, lv) for lv in calibration.LEVELS
                                                                 for p in calibration.PARAMS]


def test_draws_and_ranks_are_well_formed(sbc):
    R, n = SETTINGS.n_replicates, SETTINGS.n_draws
    L = n // SETTINGS.thin
    for name in calibration.PARAMS:
        d = sbc.draws[name]
        assert d.shape == (R, n) and np.all(np.isfinite(d)) and np.all(d > 0)
        assert np.all(np.ptp(d, axis=1) > 0)  # every chain moved
        rk = sbc.ranks()[name]
        assert rk.shape == (R,) and rk.dtype.kind == "i" and np.all((rk >= 0) & (rk <= L))
    # Truths come from the calibration prior, deterministically in the seed.
    again = SETTINGS.prior.draw(R, SETTINGS.seed)
    for name in calibration.PARAMS:
        np.testing.assert_array_equal(sbc.truths[name], again[name])
    # A truth outside the range of a replicate's draws is never covered.
    cov = sbc.covered(0.95)
    for name in calibration.PARAMS:
        d, t = sbc.draws[name], sbc.truths[name]
        assert not np.any(cov[name] & ((t < d.min(axis=1)) | (t > d.max(axis=1))))


def test_wrong_truths_fail_the_coverage_check(sbc):
    """The same check, against truths 0.5 dex (5 prior sds) off: the intervals must miss them."""
    wrong = {k: v * 10**0.5 for k, v in sbc.truths.items()}
    ok = binomial_consistent(sbc, wrong)
    assert not ok[("g_dagger", 0.95)] and not ok[("sigma_int", 0.95)], ok
    table = calibration.coverage_table(sbc, truths=wrong)
    assert not table["all_within"]


def test_binomial_band():
    lo, hi = calibration.binomial_band(0.95, 50)
    assert math.isclose(hi - 0.95, 2 * math.sqrt(0.95 * 0.05 / 50)) and math.isclose(0.95 - lo, hi - 0.95)
