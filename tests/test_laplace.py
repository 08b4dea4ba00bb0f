"""The Laplace marginal of the shared parameters (``CurveSettings(marginal="laplace")``) against an independent
evaluation of the same approximation: the profile ``P(t) = min_q h(t, q) + 1/2 sum_g ln det H_g`` computed by scipy,
galaxy blocks in the priors' own coordinates (log10 Upsilon, D, i: no Jacobian algebra), Newton inner solves and a
bounded scalar search for its minimum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

import jaxcoh
from jaxcoh import curves
from jaxcoh.curves.likelihood import Likelihood, curve_data, prepare
from jaxcoh.curves.nuisance import NUISANCE
from jaxcoh.curves.objective import objective

pytestmark = pytest.mark.xdist_group("laplace")


@pytest.fixture(scope="module")
def rar_mock():
    return jaxcoh.mock_catalog(10, seed=3, n_max=16, min_points=5, kernel="rar", return_truth=True)[0]


def _reference_profiles(cat, t0: float, sigma_t: float, Q0: np.ndarray) -> tuple[float, float]:
    """``(argmin of the Laplace profile, argmin of the plain profile)`` over ``t = ln g_dagger``."""
    model = curves.get_model("rar")
    opts = Likelihood()
    data = prepare(curve_data(cat), opts)
    n = cat.n_galaxies

    def h(t, flat):
        Q = flat.reshape(n, 4)
        values = dict(upsilon_disk=10 ** Q[:, 0], upsilon_bulge=10 ** Q[:, 1], distance=Q[:, 2], inclination=Q[:, 3])
        z = {"shared": model.shared.to_unconstrained({"g_dagger": jnp.exp(t)}), "local": {},
             "nuisance": NUISANCE.to_unconstrained(values)}
        return objective(z, model, data, opts)

    f = jax.jit(h)
    grad = jax.jit(jax.grad(h, argnums=1))
    hess = jax.jit(jax.hessian(h, argnums=1))
    start = {"Q": Q0.ravel()}

    def inner(t):  # the conditional modes at t, by Newton (trust region) to machine precision
        res = minimize(lambda x: float(f(t, x)), start["Q"], jac=lambda x: np.asarray(grad(t, x)),
                       hess=lambda x: np.asarray(hess(t, x)), method="trust-exact", options={"gtol": 1e-10})
        start["Q"] = res.x
        H = np.asarray(hess(t, res.x)).reshape(n, 4, n, 4)
        blocks = np.stack([H[g, :, g, :] for g in range(n)])
        return float(res.fun), float(np.sum(np.linalg.slogdet(blocks)[1]))

    def laplace(t):
        value, log_det = inner(t)
        return value + 0.5 * log_det

    bounds = (t0 - 4 * sigma_t, t0 + 4 * sigma_t)
    tol = 1e-4 * sigma_t
    t_laplace = minimize_scalar(laplace, bounds=bounds, method="bounded", options={"xatol": tol}).x
    t_plain = minimize_scalar(lambda t: inner(t)[0], bounds=bounds, method="bounded", options={"xatol": tol}).x
    return float(t_laplace), float(t_plain)


def test_laplace_marginal_matches_an_independent_profile(rar_mock):
    fit = curves.fit("rar", rar_mock, curves.CurveSettings(n_starts=1, galaxy_starts=1, solver="block_lm",
                                                          marginal="laplace"))
    assert fit.status == "CONVERGED" and fit.laplace.converged and fit.laplace.galaxies_without_term == 0
    g, se = fit.params["g_dagger"], fit.stderr["g_dagger"]
    sigma_t = se / g  # the standard error of ln g_dagger
    nu = fit.nuisance
    Q0 = np.stack([np.log10(nu["upsilon_disk"]), np.log10(nu["upsilon_bulge"]), nu["distance"], nu["inclination"]], 1)
    t_laplace, t_plain = _reference_profiles(rar_mock, float(np.log(g)), sigma_t, Q0)
    # The two profiles' optima are apart (so the comparison can tell them apart), and jaxcoh's is the Laplace one.
    assert abs(t_laplace - t_plain) > 0.05 * sigma_t  # measured: 0.13
    assert abs(np.log(g) - t_laplace) < 0.005 * sigma_t  # measured: 1e-4
    shift = fit.laplace.shift_in_stderr["g_dagger"]
    assert shift == pytest.approx((t_laplace - t_plain) / sigma_t, rel=0.05, abs=0.01)


def test_auto_takes_the_laplace_marginal_beyond_its_galaxy_count(rar_mock, monkeypatch):
    """``marginal="auto"`` (the default) is the joint MAP up to LAPLACE_AUTO_GALAXIES galaxies with points and the
    Laplace marginal beyond: with the threshold lowered under the mock's 10 galaxies, the default fit is the Laplace
    fit of the test above (its compiled programs), and at the threshold it is the joint MAP."""
    import sys

    from jaxcoh.curves.laplace import LAPLACE_AUTO_GALAXIES, choose_marginal

    assert choose_marginal("auto", LAPLACE_AUTO_GALAXIES) == "joint"
    assert choose_marginal("auto", LAPLACE_AUTO_GALAXIES + 1) == "laplace"
    assert choose_marginal("joint", 10**6) == "joint" and choose_marginal("laplace", 1) == "laplace"
    with pytest.raises(ValueError, match="marginal must be one of"):
        choose_marginal("profile", 10)
    settings = curves.CurveSettings(n_starts=1, galaxy_starts=1, solver="block_lm")
    assert settings.marginal == "auto"
    laplace = sys.modules["jaxcoh.curves.laplace"]
    monkeypatch.setattr(laplace, "LAPLACE_AUTO_GALAXIES", rar_mock.n_galaxies - 1)
    auto = curves.fit("rar", rar_mock, settings)
    lap = curves.fit("rar", rar_mock, settings._replace(marginal="laplace"))
    assert auto.laplace is not None and auto.params == lap.params
    monkeypatch.setattr(laplace, "LAPLACE_AUTO_GALAXIES", rar_mock.n_galaxies)
    joint = curves.fit("rar", rar_mock, settings)
    assert joint.laplace is None and joint.params == curves.fit("rar", rar_mock, settings._replace(
        marginal="joint")).params != lap.params
    # compare ranks models by statistics of the likelihood's maximum, and the sampler starts at the joint mode: both
    # resolve "auto" to the joint MAP at any size (an explicit "laplace" is kept).
    from jaxcoh.curves.fitting import at_joint_maximum

    assert at_joint_maximum(settings).marginal == "joint"
    assert at_joint_maximum(settings._replace(marginal="laplace")).marginal == "laplace"
    monkeypatch.setattr(laplace, "LAPLACE_AUTO_GALAXIES", 1)
    summary, _, _ = curves.compare(rar_mock, ["rar"], settings)
    assert "laplace" not in summary["models"]["rar"] and summary["models"]["rar"]["params"] == joint.params


def test_a_step_that_raises_the_profile_is_halved(rar_mock, monkeypatch, caplog):
    """The first Newton step made 6 times too long overshoots the profile's optimum so that P rises: it is halved
    (twice: 6 -> 3 -> 1.5 Newton steps, where P first falls), and the steps then reach the same optimum as without the
    overshoot."""
    import logging
    import sys

    settings = curves.CurveSettings(n_starts=1, galaxy_starts=1, solver="block_lm", marginal="laplace")
    want = curves.fit("rar", rar_mock, settings)
    laplace = sys.modules["jaxcoh.curves.laplace"]
    plain, calls = laplace.newton_direction, []

    def overshoot(*args, **kwargs):
        step, stderr, degenerate = plain(*args, **kwargs)
        calls.append(1)
        return (6.0 * step if len(calls) == 1 else step), stderr, degenerate

    monkeypatch.setattr(laplace, "newton_direction", overshoot)
    with caplog.at_level(logging.DEBUG, logger="jaxcoh"):
        got = curves.fit("rar", rar_mock, settings)
    assert sum("P rose; half the step" in r.getMessage() for r in caplog.records) == 2
    assert got.laplace.converged and got.status == "CONVERGED"
    se = want.stderr["g_dagger"]
    assert abs(got.params["g_dagger"] - want.params["g_dagger"]) < 0.01 * se
    # Both stop within the 0.01-standard-error stationarity tolerance: P agrees to (0.01)^2 / 2 = 5e-5.
    assert got.laplace.marginal_objective == pytest.approx(want.laplace.marginal_objective, abs=5e-5)


def test_newton_step_block_by_block_equals_the_whole_catalog(rar_mock):
    """The step's third derivatives run ``BLOCK`` galaxies at a time, the catalog padded to a multiple of it: blocks
    of 4 (10 galaxies padded to 12) give the pieces and the step of one block of 10."""
    from jaxcoh.curves.laplace import _moved, _padded, newton_direction, profile_pieces

    model, opts = curves.get_model("rar"), Likelihood()
    data = prepare(curve_data(rar_mock), opts)
    z = curves.starts(model, data, opts, 1, 0)
    z = jax.tree_util.tree_map(lambda a: a[0], z)

    def step(zz, dd, block):
        value, grad, S, W, ok, free = profile_pieces(model, opts, zz, dd, block)
        d, stderr, _ = newton_direction(np.asarray(grad), np.asarray(S), np.asarray(free))
        return value, grad, S, W, ok, d / stderr, _moved(model, opts, zz, W, jnp.asarray(d, W.dtype))

    whole = step(z, data, 10)
    zp, dp = _padded(model, opts, z, data, 4)
    assert dp.cat.n_galaxies == 12
    blocked = step(zp, dp, 4)
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-12)  # the profile's value
    np.testing.assert_allclose(blocked[1], whole[1], rtol=1e-10)  # its gradient
    np.testing.assert_allclose(blocked[2], whole[2], rtol=1e-10)  # the Schur complement
    np.testing.assert_allclose(np.asarray(blocked[3])[:10], whole[3], rtol=1e-10, atol=1e-14)  # dq*/dt
    np.testing.assert_array_equal(np.asarray(blocked[4])[:10], np.asarray(whole[4]))
    np.testing.assert_allclose(blocked[5], whole[5], rtol=1e-10)  # the step in standard errors
    for k, v in whole[6]["nuisance"].items():
        np.testing.assert_allclose(blocked[6]["nuisance"][k][:10], v, rtol=1e-10, atol=1e-12)
    # A shared parameter at a bound (g_dagger's bijection saturated) is held there: no step, the rest finite.
    at_bound = {**z, "shared": {"g_dagger": jnp.asarray(40.0, z["shared"]["g_dagger"].dtype)}}
    _, _, _, _, _, step_se, moved = step(at_bound, data, 10)
    assert float(step_se[0]) == 0.0 and float(moved["shared"]["g_dagger"]) == 40.0
    assert all(np.isfinite(np.asarray(v)).all() for v in moved["nuisance"].values())


def test_newton_direction_leaves_undetermined_and_bound_parameters_alone():
    """The shared step is ``-S^+ grad``: a flat direction of ``S`` (what the data do not determine) is not moved, a
    parameter at a bound is held and the others' step is conditional on it; non-finite input gives NaN."""
    from jaxcoh.curves.laplace import newton_direction

    S = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])  # flat along (0, 1, -1)
    grad = np.array([2.0, 1.0, 1.0])
    step, stderr, degenerate = newton_direction(grad, S, np.array([True, True, True]))
    np.testing.assert_allclose(step, [-1.0, -0.5, -0.5])
    assert degenerate and np.all(np.isfinite(stderr))
    step, stderr, degenerate = newton_direction(grad, S, np.array([True, True, False]))
    np.testing.assert_allclose(step, [-1.0, -1.0, 0.0])
    np.testing.assert_allclose(stderr, [np.sqrt(0.5), 1.0, 1.0])
    assert not degenerate
    assert np.isnan(newton_direction(np.array([np.nan, 0.0, 0.0]), S, np.ones(3, bool))[0]).all()


def test_secant_scale_speeds_the_steps_where_s_misses_curvature():
    """On a quadratic profile whose curvature is ``1.8 S`` (the part ``S`` leaves out, as the log-determinant
    term's, along it), steps scaled by the secant estimate reach the minimum in 3 steps; with ``S`` alone they
    converge linearly (rate 0.8) and take more than 15. A scale outside its range is clipped."""
    from jaxcoh.curves.laplace import SECANT_RANGE, newton_direction, secant_scale

    S = np.array([[4.0, 1.0], [1.0, 0.5]])
    free = np.ones(2, bool)

    def steps_to_converge(use_secant: bool) -> int:
        t, scale, previous = np.array([1.0, -2.0]), 1.0, None
        for k in range(1, 60):
            grad = 1.8 * S @ t  # the profile's gradient, minimum at 0
            if previous is not None and use_secant:
                scale = secant_scale(t - previous[0], grad - previous[1], S)
            step, stderr, _ = newton_direction(grad, S, free, scale)
            if np.max(np.abs(step / stderr)) <= 1e-2:
                return k
            previous, t = (t, grad), t + step
        return 60

    assert steps_to_converge(True) <= 3 and steps_to_converge(False) > 15
    assert secant_scale(np.array([1.0, 0.0]), np.array([100.0, 0.0]), S) == SECANT_RANGE[1]


def test_an_excluded_galaxy_cannot_poison_the_log_determinant_term(rar_mock):
    """A galaxy whose Hessian block is not finite is left out of the log-determinant term before the arithmetic: with
    NaN parameters for galaxy 0, excluded, the term and its gradient are finite and equal those of the catalog
    without it. At the starts (not a mode) some blocks are not positive definite: they are left out too, and the
    gradient stays finite (their Cholesky factor's NaN made it NaN)."""
    from jaxcoh.curves.convergence import pack_z
    from jaxcoh.curves.laplace import _log_det_term

    model, opts = curves.get_model("rar"), Likelihood()
    data = prepare(curve_data(rar_mock), opts)
    z = jax.tree_util.tree_map(lambda a: a[0], curves.starts(model, data, opts, 1, 0))
    s, L = pack_z(model, opts, z, data.cat.n_galaxies, data.cat.dtype)
    term = jax.jit(jax.value_and_grad(lambda ss, LL, inc: _log_det_term(model, opts, ss, LL, data, inc)[0],
                                      argnums=(0, 1)))
    include = data.cat.galaxy_mask.at[0].set(False)
    (D, (d_s, d_l)) = term(s, L.at[0].set(jnp.nan), include)
    (D_ref, (d_s_ref, d_l_ref)) = term(s, L, include)
    assert np.isfinite(float(D)) and np.all(np.isfinite(d_s)) and np.all(np.isfinite(d_l))
    np.testing.assert_allclose(float(D), float(D_ref), rtol=1e-12)
    np.testing.assert_allclose(d_s, d_s_ref, rtol=1e-10)
    assert np.all(np.asarray(d_l)[0] == 0)
    _, ok = jax.jit(lambda ss, LL: _log_det_term(model, opts, ss, LL, data, include))(s, L)
    assert 0 < int(np.sum(ok)) < 9  # some blocks left out for not being positive definite, not all
