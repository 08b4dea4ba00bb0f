"""Property-based tests (hypothesis) of every kernel and model: finite values and finite gradients over the whole
bounded parameter space and on edge inputs, jit equal to eager, vmap equal to a loop.

Shapes are fixed ([4, 8] derivation batches, [8] model inputs, an [8, 8] edge catalog) and every function under test
is jitted once, at module level: hypothesis draws values, never shapes, so nothing recompiles while it searches.
``derandomize=True`` makes every run test the same examples (reproducible in CI); the database is off so that no run
depends on, or writes, local state.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxcoh
import strategies as S
from jaxcoh.coherence import (Hyperparameters, Reason, baryonic_acceleration, baryonic_density, burr_xii_window,
                              coherence_rate, derive_curves, derive_galaxy, empirical_amplitude, exposure_period,
                              geometric_coherence_time, noise_coherence_time, orbital_period, potential_contrast,
                              required_enhancement, roughness_amplitude)
from jaxcoh import curves
from jaxcoh.curves import NUISANCE, Likelihood, curve_data
from jaxcoh.curves import starts as curve_starts
from jaxcoh.curves.likelihood import LOSSES, robust_rho
from jaxcoh.curves.objective import objective
from jaxcoh.fmissing import ModelInputs, get_model, list_models
from jaxcoh.properties import galaxy_properties

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)
# The costlier properties (eager runs, joint objectives of every model x nuisance): 12 examples each (with 25 the file
# took 48.5 s on 2 workers, with 12 37.8 s; the edge rows of every catalog are in every example).
FEW = settings(PROPERTY, max_examples=12)

def f64(x):
    return jnp.asarray(x, dtype=jnp.float64)


def hyper(h: Hyperparameters) -> Hyperparameters:
    return Hyperparameters(*(f64(v) for v in h))


def batch_args(b: dict) -> tuple:
    return f64(b["R"]), f64(b["V_obs"]), f64(b["V_bar"]), jnp.asarray(b["mask"]), f64(b["sigma_v"])


def assert_all_finite(tree, what: str):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        a = np.asarray(leaf)
        assert np.all(np.isfinite(a)), f"{what}{jax.tree_util.keystr(path)} not finite: {a}"


def defined(d, b: dict) -> dict[str, np.ndarray]:
    """Where each field of the derivation ``d`` of batch ``b`` must be defined: everywhere but skipped galaxies, and
    for the ratios only where a real point has ``K_req > 0`` (step 11 on the data; the reason alone cannot say it of a
    galaxy without baryons, whose reason is NO_BARYONS with an excess or without)."""
    reason = np.asarray(d.reason)
    skipped = reason == Reason.TOO_FEW_POINTS
    with np.errstate(divide="ignore", invalid="ignore"):
        k_req = (np.asarray(b["V_obs"]) / np.maximum(np.asarray(b["V_bar"]), 1e-6)) ** 2 - 1.0
    excess = ~skipped & np.any(np.asarray(b["mask"]) & (k_req > 0), axis=1)
    assert np.all(excess[reason == Reason.NO_EXCESS] == 0)
    return dict(Xi_mean=~skipped, K_rough=~skipped, C_mean=~skipped, K_req_mean=excess, A_emp=excess,
                F_missing=reason == Reason.OK)


# ---- the step functions (SEED_PIPELINE.md section 2) --------------------------------------------------------------
def _steps(h, R, V_bar, V_obs, sigma_v, Xi_mean, C_mean, K_req_mean):
    """Every step, elementwise on ``[P]`` points (and on ``[P]`` per-galaxy means for steps 9 and 12)."""
    g_bar = baryonic_acceleration(V_bar, R)
    rho = baryonic_density(g_bar, R)
    dphi = potential_contrast(rho, h.delta_R)
    T_orb = orbital_period(g_bar, R, 1e-6)
    tau_geom = geometric_coherence_time(dphi, T_orb, h.alpha_geom)
    tau_noise = noise_coherence_time(R, sigma_v, h.beta_sigma)
    tau_coh = 1.0 / coherence_rate(1.0 / tau_geom, tau_noise)
    return dict(g_bar=g_bar, rho=rho, dphi=dphi, T_orb=T_orb, tau_geom=tau_geom, tau_noise=tau_noise,
                tau_coh=tau_coh, Xi=tau_coh / exposure_period(g_bar, R),
                C=burr_xii_window(R, h.ell0, h.p, h.n_coh), K_req=required_enhancement(V_obs, V_bar),
                K_rough=roughness_amplitude(Xi_mean, h.A0, h.gamma_rough),
                A_emp=empirical_amplitude(K_req_mean, C_mean))


@jax.jit
def _steps_and_gradient(*args):
    """The steps' values, and the gradient of the sum of every step's outputs in every input: a NaN or inf in any
    step's gradient survives the sum, for the cost of one backward pass."""
    def total(*a):
        return sum(jnp.sum(v) for v in _steps(*a).values())

    return _steps(*args), jax.grad(total, argnums=tuple(range(len(args))))(*args)


P = 16
_step_points = st.fixed_dictionaries(dict(
    R=hnp.arrays(np.float64, P, elements=S.log_uniform(1e-4, 1e3)),
    V_bar=hnp.arrays(np.float64, P, elements=st.one_of(st.just(0.0), S.log_uniform(1e-3, 1e3))),
    V_obs=hnp.arrays(np.float64, P, elements=st.one_of(st.just(0.0), S.log_uniform(1e-2, 1e3))),
    sigma_v=hnp.arrays(np.float64, P, elements=S.log_uniform(1e-3, 1e4)),
    Xi_mean=hnp.arrays(np.float64, P, elements=st.one_of(st.just(0.0), S.log_uniform(1e-20, 1e10))),
    C_mean=hnp.arrays(np.float64, P, elements=st.one_of(st.just(0.0), S.log_uniform(1e-12, 1.0))),
    K_req_mean=hnp.arrays(np.float64, P, elements=st.one_of(st.just(0.0), S.log_uniform(1e-12, 1e20))),
))


@PROPERTY
@given(h=S.hyperparameters(), pts=_step_points)
def test_step_functions_are_finite_bounded_and_differentiable(h, pts):
    h = hyper(h)
    args = (h, *(f64(pts[k]) for k in ("R", "V_bar", "V_obs", "sigma_v", "Xi_mean", "C_mean", "K_req_mean")))
    out, grad = _steps_and_gradient(*args)
    out = {k: np.asarray(v) for k, v in out.items()}
    assert_all_finite(out, "step ")
    assert_all_finite(grad, "d steps/d input ")
    for k in ("tau_geom", "tau_noise"):  # the seed's clip of both times
        assert np.all((out[k] >= 1e6) & (out[k] <= 1e20)), k
    shorter = np.minimum(out["tau_geom"], out["tau_noise"])
    assert np.all((out["tau_coh"] <= shorter * (1 + 1e-12)) & (out["tau_coh"] >= 0.5 * shorter * (1 - 1e-12)))
    assert np.all(out["dphi"] >= 1e-10) and np.all(out["T_orb"] > 0) and np.all(out["Xi"] > 0)
    assert np.all((out["C"] >= 0) & (out["C"] <= 1)) and np.all(out["K_req"] >= 0) and np.all(out["K_rough"] >= 0)
    # The window grows with radius; the roughness with exposure (gamma_rough >= 0).
    order = np.argsort(pts["R"])
    assert np.all(np.diff(out["C"][order]) >= -1e-15)
    order = np.argsort(pts["Xi_mean"])
    assert np.all(np.diff(out["K_rough"][order]) >= -1e-12 * np.abs(out["K_rough"][order][1:]))


# ---- the derivation, one galaxy and a batch -----------------------------------------------------------------------
_derive = jax.jit(derive_curves)
_derive_one = jax.jit(derive_galaxy)


def _galaxy_objective(h, R, V_obs, V_bar, mask, sigma_v):
    """``[G]``: every field of each galaxy summed where it is defined (the masked sum a fit would take)."""
    d = derive_curves(h, R, V_obs, V_bar, mask, sigma_v)
    skipped = d.reason == Reason.TOO_FEW_POINTS
    excess = ~skipped & (d.reason != Reason.NO_EXCESS)
    ok = d.reason == Reason.OK
    terms = [(d.Xi_mean, ~skipped), (d.K_rough, ~skipped), (d.C_mean, ~skipped), (d.K_req_mean, excess),
             (d.A_emp, excess), (d.F_missing, ok)]
    return sum(jnp.where(m, x, 0.0) for x, m in terms)


_derive_jacobian = jax.jit(jax.jacrev(_galaxy_objective, argnums=(0, 1, 2, 3, 5)))
_f_missing_jacobian = jax.jit(jax.jacrev(lambda h, *a: derive_curves(h, *a).F_missing))


_ONE_CURVE = np.arange(32).reshape(4, 8) // 4 == 6  # a batch of four whose last galaxy has 4 points
# Found by hypothesis in a suite run: a galaxy without baryons and without an excess (V_obs = V_bar = 0).
_NO_BARYONS_NO_EXCESS = dict(R=np.where(_ONE_CURVE, 1.0, 0.0), V_obs=np.zeros((4, 8)), V_bar=np.zeros((4, 8)),
                             mask=_ONE_CURVE, sigma_v=np.ones(4))


@PROPERTY
@given(h=S.hyperparameters(), b=S.batches())
@example(h=Hyperparameters(1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0), b=_NO_BARYONS_NO_EXCESS)
def test_derivation_is_finite_or_nan_with_its_reason(h, b):
    d = _derive(hyper(h), *batch_args(b))
    reason = np.asarray(d.reason)
    n = np.asarray(b["mask"]).sum(axis=1)
    np.testing.assert_array_equal(np.asarray(d.n_points), n)
    assert set(reason) <= set(Reason)
    assert np.all((reason == Reason.TOO_FEW_POINTS) == (n < 4))
    for f, ok in defined(d, b).items():
        x = np.asarray(getattr(d, f))
        assert np.all(np.isfinite(x[ok])), (f, x, reason)
        assert np.all(np.isnan(x[~ok])), (f, x, reason)  # undefined is NaN, never inf or a number
    ok = defined(d, b)
    assert np.all(np.asarray(d.Xi_mean)[ok["Xi_mean"]] > 0)
    assert np.all((np.asarray(d.C_mean)[ok["C_mean"]] >= 0) & (np.asarray(d.C_mean)[ok["C_mean"]] <= 1))
    assert np.all(np.asarray(d.K_req_mean)[ok["K_req_mean"]] > 0)
    assert np.all(np.asarray(d.F_missing)[ok["F_missing"]] > 0)
    assert np.all(np.asarray(d.K_rough)[ok["F_missing"]] > 1e-6)


@PROPERTY
@given(h=S.hyperparameters(), b=S.batches())
def test_derivation_gradients_are_finite_for_every_galaxy(h, b):
    h = hyper(h)
    args = batch_args(b)
    dh, dR, dV_obs, dV_bar, dsigma = _derive_jacobian(h, *args)
    assert_all_finite((dh, dR, dV_obs, dV_bar, dsigma), "d galaxy objective/d ")
    mask = np.asarray(b["mask"])
    for name, d in (("R", dR), ("V_obs", dV_obs), ("V_bar", dV_bar)):  # [G out, G, N]
        d = np.asarray(d)
        own = np.eye(S.G, dtype=bool)[:, :, None] & mask[None]
        assert np.all(d[~own] == 0), f"galaxy objective depends on padding or on another galaxy's {name}"
    assert np.all(np.asarray(dsigma)[~np.eye(S.G, dtype=bool)] == 0)
    # Undefined F_missing: NaN in value, exactly zero in gradient (it cannot leak into a masked sum).
    J = _f_missing_jacobian(h, *args)
    assert_all_finite(J, "dF_missing/dh ")
    undefined = np.isnan(np.asarray(_derive(h, *args).F_missing))
    for leaf in J:
        assert np.all(np.asarray(leaf)[undefined] == 0)


@PROPERTY
@given(h=S.hyperparameters(), b=S.curve_batches(), junk=st.sampled_from(S.GARBAGE))
def test_padding_values_never_matter(h, b, junk):
    h = hyper(h)
    base = _derive(h, *batch_args(b))
    m = b["mask"]
    other = dict(b, **{k: np.where(m, b[k], junk) for k in ("R", "V_obs", "V_bar")})
    for f, x, y in zip(base._fields, base, _derive(h, *batch_args(other)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f)


@FEW
@given(h=S.hyperparameters(), b=S.batches())
def test_derivation_jit_equals_eager_and_vmap_equals_loop(h, b):
    h = hyper(h)
    args = batch_args(b)
    jitted = _derive(h, *args)
    with jax.disable_jit():
        eager = derive_curves(h, *args)
    loop = [_derive_one(h, *(a[i] for a in args)) for i in range(S.G)]
    for k, f in enumerate(jitted._fields):
        x = np.asarray(getattr(jitted, f))
        np.testing.assert_allclose(x, np.asarray(getattr(eager, f)), rtol=1e-12, atol=0, err_msg=f"eager {f}")
        np.testing.assert_allclose(x, np.stack([np.asarray(o[k]) for o in loop]), rtol=1e-12, atol=0,
                                   err_msg=f"loop {f}")


# ---- galaxy properties feeding the derivation, on a catalog with edge rows and garbage padding -----------------------
@pytest.fixture(scope="module")
def mock():
    return jaxcoh.mock_catalog(4, seed=7, n_max=S.N, min_points=4)


@pytest.fixture(scope="module")
def edge_cat(mock):
    """The tiny mock (4 galaxies, 8 points) plus the four edge rows of :func:`strategies.edge_catalog`: ``[8, 8]``."""
    cat = S.edge_catalog(mock)
    assert cat.mask.shape == (NE, S.N)
    return cat


NE = 8  # galaxies in the edge catalog
CATALOG_POINT_FIELDS = ("R", *S.POINT_SPEEDS)


@functools.partial(jax.jit, static_argnames="recipe")
def _properties_and_gradients(points, upsilon, cat, recipe):
    """Properties and F_missing of ``cat`` with point fields ``points`` and per-galaxy Upsilon ``(disk, bulge)``, and
    the gradient of the masked F_missing sum in both."""
    def total(points, upsilon):
        c = dataclasses.replace(cat, **points)
        kw = dict(upsilon_disk=upsilon[0], upsilon_bulge=upsilon[1]) if recipe == "sparc" else {}
        props = galaxy_properties(c, recipe, **kw)
        d = derive_curves(Hyperparameters().astype(c.dtype), c.R, c.V_obs, props.V_bar, c.mask, props.sigma_v)
        return jnp.sum(jnp.where(d.reason == Reason.OK, d.F_missing, 0.0)), props

    (_, props), grads = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(points, upsilon)
    return props, grads


@PROPERTY
@pytest.mark.parametrize("recipe", ["legacy", "sparc"])
@given(junk=st.sampled_from(S.GARBAGE), upsilon=hnp.arrays(np.float64, (2, NE), elements=S.log_uniform(0.05, 5.0)))
def test_properties_finite_with_finite_gradients_whatever_the_padding(edge_cat, recipe, junk, upsilon):
    mask = np.asarray(edge_cat.mask)
    points = {f: f64(np.where(mask, np.asarray(getattr(edge_cat, f)), junk)) for f in CATALOG_POINT_FIELDS}
    props, (d_points, d_upsilon) = _properties_and_gradients(points, f64(upsilon), edge_cat, recipe)
    has = np.asarray(props.has_properties)
    V_bar = np.asarray(props.V_bar)[mask]
    assert np.all(np.isfinite(V_bar) & (V_bar >= 0))
    for f in ("M_b", "R_d", "v_flat", "sigma_v"):
        x = np.asarray(getattr(props, f))[has]
        assert np.all(np.isfinite(x) & (x > 0)), f
    assert np.all(np.isfinite(np.asarray(props.sigma_v)) & (np.asarray(props.sigma_v) > 0))
    assert_all_finite((d_points, d_upsilon), "d F_missing/d ")
    for f, d in d_points.items():
        assert np.all(np.asarray(d)[~mask] == 0), f"padding of {f} moves F_missing"


# ---- F_missing models ---------------------------------------------------------------------------------------------
MODELS = list_models()
NG = 8


@functools.partial(jax.jit, static_argnames="name")
def _predict(name, params, x):
    return get_model(name).predict(params, x)


@functools.partial(jax.jit, static_argnames="name")
def _predict_jacobian(name, params, x):
    """d F_pred [g] / d (params, inputs)."""
    return jax.jacrev(lambda p, xx: get_model(name).predict(p, xx), argnums=(0, 1))(params, x)


@functools.partial(jax.jit, static_argnames="name")
def _predict_vmapped(name, params, x):
    return jax.vmap(get_model(name).predict, in_axes=(0, None))(params, x)


def _galaxies(lo, hi, zero=False):
    el = S.log_uniform(lo, hi)
    return hnp.arrays(np.float64, NG, elements=st.one_of(st.just(0.0), el) if zero else el)


_model_inputs = st.builds(
    ModelInputs,
    M_b=_galaxies(1e3, 1e13, zero=True),  # Msun; 0: no baryons at all
    R_d=_galaxies(1e-3, 1e3),  # kpc
    v_flat=_galaxies(1e-1, 1e4, zero=True),  # km/s
    sigma_v=_galaxies(1e-3, 1e4),  # km/s
    sigma_ref=S.log_uniform(1e-3, 1e4),
    R_ref=S.log_uniform(1e-3, 1e3),
)


def _inputs(x: ModelInputs) -> ModelInputs:
    return ModelInputs(*(f64(v) for v in x))


@PROPERTY
@pytest.mark.parametrize("name", MODELS)
@given(data=st.data(), x=_model_inputs)
def test_model_predictions_and_gradients_are_finite(name, data, x):
    model = get_model(name)
    params = {k: f64(v) for k, v in data.draw(S.parameter_values(model.parameters), label="params").items()}
    x = _inputs(x)
    F = np.asarray(_predict(name, params, x))
    assert F.shape == (NG,) and np.all(np.isfinite(F)) and np.all(F >= 0)
    d_params, d_x = _predict_jacobian(name, params, x)
    assert_all_finite((d_params, d_x), f"{name}: dF/d ")
    for f in ("M_b", "R_d", "v_flat", "sigma_v"):  # galaxy i's prediction depends on galaxy i alone
        d = np.asarray(getattr(d_x, f))
        assert np.all(d[~np.eye(NG, dtype=bool)] == 0), f


@FEW
@pytest.mark.parametrize("name", MODELS)
@given(data=st.data(), x=_model_inputs)
def test_model_jit_equals_eager_and_vmap_equals_loop(name, data, x):
    model = get_model(name)
    draws = [data.draw(S.parameter_values(model.parameters), label=f"params{i}") for i in range(4)]
    x = _inputs(x)
    stacked = {k: f64([p[k] for p in draws]) for k in model.parameters.names}
    batched = np.asarray(_predict_vmapped(name, stacked, x))
    for i, p in enumerate(draws):
        p = {k: f64(v) for k, v in p.items()}
        jitted = np.asarray(_predict(name, p, x))
        with jax.disable_jit():
            eager = np.asarray(model.predict(p, x))
        np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=0)
        np.testing.assert_allclose(batched[i], jitted, rtol=1e-12, atol=0)


SPECS = {**{f"model:{m}": get_model(m).parameters for m in MODELS},
         **{f"curve:{m}:{part}": getattr(c, part) for m, c in ((m, curves.get_model(m)) for m in curves.list_models()) for part in ("shared", "local")
            if len(getattr(c, part))},
         "nuisance": NUISANCE}


@functools.cache
def _bijection(spec_name):
    """One jitted program per spec: ``values -> (z, values back)`` and ``z -> {name: (value, d value / dz, z back)}``
    (hypothesis draws values, never shapes: nothing recompiles; op by op the 23 specs took 9 s)."""
    spec = SPECS[spec_name]

    @jax.jit
    def round_trip(values):
        z = spec.to_unconstrained(values)
        return z, spec.to_values(z)

    @jax.jit
    def from_z(zs):
        out = {}
        for p in spec:
            v, dv = jax.value_and_grad(p.to_value)(zs[p.name])
            out[p.name] = (v, dv, p.to_unconstrained(v))
        return out

    return round_trip, from_z


@PROPERTY
@pytest.mark.parametrize("spec_name", list(SPECS))
@given(data=st.data())
def test_parameter_bijection_round_trips(spec_name, data):
    spec = SPECS[spec_name]
    round_trip, from_z = _bijection(spec_name)
    values = data.draw(S.parameter_values(spec), label="values")
    z, back = round_trip({k: f64(v) for k, v in values.items()})
    assert_all_finite(z, "z ")
    for p in spec:
        # Values within bounds come back to themselves; near a bound of 0 within 1e-13 of the span (the clipped
        # sigmoid keeps the end points 1e-15 of the span inside).
        span = (p.upper - p.lower) if (p.bounded and p.scale == "linear") else 0.0
        np.testing.assert_allclose(float(back[p.name]), values[p.name], rtol=1e-10, atol=1e-13 * span,
                                   err_msg=p.name)
    # Any unconstrained value maps inside the bounds, with a finite derivative; moderate ones map back to themselves.
    # (+-50 for half-bounded ones: exp(z) itself overflows past 709.)
    zs = data.draw(st.fixed_dictionaries({p.name: st.floats(-1e3, 1e3) if p.bounded else st.floats(-50.0, 50.0)
                                          for p in spec}), label="z")
    mapped = from_z({k: f64(v) for k, v in zs.items()})
    for p in spec:
        v, dv, z_back = (float(a) for a in mapped[p.name])
        assert math.isfinite(v) and math.isfinite(dv) and dv >= 0, p.name
        assert p.lower <= v <= p.upper, (p.name, v)
        if abs(zs[p.name]) <= 8 and p.bounded:
            assert z_back == pytest.approx(zs[p.name], abs=1e-8), p.name


@FEW
@given(i_table=st.floats(15.0, 90.0))
def test_inclination_bijection_is_alive_at_every_table_inclination(i_table):
    p = NUISANCE["inclination"]
    z0 = p.to_unconstrained(f64(i_table))
    assert float(jax.grad(p.to_value)(z0)) > 1e-3  # deg per unit z: an optimiser can move it


# ---- curve models and the joint objective -------------------------------------------------------------------------
@PROPERTY
@pytest.mark.parametrize("loss", LOSSES)
@given(r=st.floats(-1e150, 1e150))
def test_every_loss_is_dominated_by_chi2(loss, r):
    """``rho(r) <= c r^2 / 2`` and ``|rho'(r)| <= c |r|`` (``c = (nu + 1) / nu`` for Student's t, 1 otherwise): where
    the chi^2 objective and its gradient are finite, so are every loss's (each depends on the parameters only through
    the residuals), which is why the joint objective's properties below are checked with chi^2 alone."""
    opts = Likelihood(loss=loss)
    c = (opts.student_nu + 1) / opts.student_nu if loss == "student_t" else 1.0
    rho, psi = jax.value_and_grad(lambda x: robust_rho(x, opts))(f64(r))
    assert 0.0 <= float(rho) <= c * 0.5 * r * r * (1 + 1e-12)
    assert abs(float(psi)) <= c * abs(r) * (1 + 1e-12)


@functools.partial(jax.jit, static_argnames=("model", "nuisance"))
def _joint_values_and_gradient(z, data, model, nuisance):
    """The chi^2 ``objective`` and its gradient (the other losses follow: test_every_loss_is_dominated_by_chi2); one
    compilation per model and nuisance setting (three losses in one program took 1.7x the compilation)."""
    return jax.value_and_grad(objective)(z, model, data, Likelihood(nuisance=nuisance, loss="chi2"))


def _start(model, data, nuisance):
    z0 = curve_starts(model, data, Likelihood(nuisance=nuisance), 1, 0)
    return jax.tree_util.tree_map(lambda a: a[0], z0)


def _perturbed(data_draw, z0):
    """``z0`` plus a hypothesis-drawn perturbation in [-1, 1] on every unconstrained value."""
    def perturb(path, a):
        dz = data_draw(hnp.arrays(np.float64, a.shape, elements=st.floats(-1.0, 1.0)), label=jax.tree_util.keystr(path))
        return a + dz

    return jax.tree_util.tree_map_with_path(perturb, z0)


def _check_joint(z, data, model, nuisance, cat):
    value, grad = _joint_values_and_gradient(z, data, model, nuisance)
    assert math.isfinite(float(value)) and float(value) >= 0, (model.name, float(value))
    assert_all_finite(grad, f"{model.name}, gradient of the chi2 objective in z")
    empty = ~np.asarray(cat.galaxy_mask)  # the all-padding row: no term, so no gradient
    for group in ("local", "nuisance"):
        for k, g in grad.get(group, {}).items():
            assert np.all(np.asarray(g)[empty] == 0), (model.name, k)


JOINT_CASES = [(m, nu) for m in curves.list_models() for nu in (True, False)]


# The joint-objective properties in one xdist group: the padding variants below run the [8, 8] programs compiled for
# these cases (nuisance on) instead of compiling every model again on the other worker (8 s of the suite).
JOINT_GROUP = pytest.mark.xdist_group("joint_properties")


@FEW
@JOINT_GROUP
@pytest.mark.parametrize(("model_name", "nuisance"), JOINT_CASES)
@given(data=st.data())
def test_joint_objective_and_gradient_are_finite(edge_cat, model_name, nuisance, data):
    model = curves.get_model(model_name)
    jd = curve_data(edge_cat)
    z = _perturbed(data.draw, _start(model, jd, nuisance))
    _check_joint(z, jd, model, nuisance, edge_cat)


@FEW
@JOINT_GROUP
@pytest.mark.parametrize("model_name", curves.list_models())
@given(data=st.data())
def test_joint_gradient_is_finite_with_zero_padding(mock, model_name, data):
    """Zeros are what a user-built catalog most often leaves in its padding (the catalog promises garbage is safe)."""
    model = curves.get_model(model_name)
    cat = S.edge_catalog(mock, pad=0.0)
    jd = curve_data(cat)
    _check_joint(_perturbed(data.draw, _start(model, jd, True)), jd, model, True, cat)


@FEW
@JOINT_GROUP
@given(data=st.data())
def test_joint_gradient_is_finite_with_nan_padding(mock, data):
    model = curves.get_model("per_galaxy_amplitude")
    cat = S.edge_catalog(mock, pad=math.nan)
    jd = curve_data(cat)
    _check_joint(_perturbed(data.draw, _start(model, jd, True)), jd, model, True, cat)
