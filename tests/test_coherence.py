"""The F_missing derivation against an independent numpy reference, and its transformations and gradients."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference as ref
from jaxcoh import Catalog, Hyperparameters, Reason, derive_f_missing, mock_catalog
from jaxcoh.coherence import derive_curves, derive_galaxy
from jaxcoh.properties import galaxy_properties

FIELDS = ("Xi_mean", "K_rough", "C_mean", "K_req_mean", "A_emp", "F_missing")
OTHER_HYPER = dict(ell0=3.0, p=0.9, n_coh=0.7, A0=0.6, gamma_rough=0.2, beta_sigma=1.2, delta_R=0.3, alpha_geom=2.0)


def assert_matches_reference(fm, cat, recipe, hyper):
    """Every galaxy's derivation equals the reference to 1e-10 relative (NaN where the reference is undefined)."""
    d = fm.derivation
    mask = np.asarray(cat.mask)
    got = {f: np.asarray(getattr(d, f)) for f in (*FIELDS, "sigma_v")}
    g = cat.to_pandas("galaxies")
    checked = 0
    for i in range(cat.n_galaxies):
        n = mask[i].sum()
        R, Vobs, Vgas, Vdisk, Vbul = (np.asarray(getattr(cat, f))[i, :n] for f in ("R", "V_obs", "V_gas", "V_disk", "V_bul"))
        if recipe == "legacy":
            props = ref.legacy_properties(R, Vobs, Vgas, Vdisk, Vbul)
        else:
            props = ref.sparc_properties(R, Vobs, Vgas, Vdisk, Vbul, g.L36[i], g.M_HI[i], g.R_disk[i], g.V_flat[i])
        want = ref.derive(R, Vobs, props["V_bar"], props["sigma_v"], **hyper)
        if want is None:
            assert int(d.reason[i]) == Reason.TOO_FEW_POINTS and np.isnan(got["F_missing"][i])
            continue
        for f in (*FIELDS, "sigma_v"):
            if np.isnan(want[f]):
                assert np.isnan(got[f][i]), (cat.names[i], f)
            else:
                np.testing.assert_allclose(got[f][i], want[f], rtol=1e-10, err_msg=f"{cat.names[i]} {f}")
        checked += 1
    return checked


@pytest.mark.parametrize("hyper", [ref.DEFAULT_HYPER, OTHER_HYPER], ids=["seed", "other"])
def test_legacy_derivation_matches_reference_on_sparc(sparc_catalog, hyper):
    fm = derive_f_missing(Hyperparameters(**hyper), sparc_catalog, "legacy")
    assert assert_matches_reference(fm, sparc_catalog, "legacy", hyper) == 175
    if hyper is ref.DEFAULT_HYPER:
        assert int(fm.in_sample.sum()) == 158  # the seed's fit sample (section 3)


def test_sparc_recipe_matches_reference_on_sparc(sparc_catalog):
    fm = derive_f_missing(Hyperparameters(), sparc_catalog, "sparc")
    assert assert_matches_reference(fm, sparc_catalog, "sparc", ref.DEFAULT_HYPER) == 175
    assert fm.properties.recipe == "sparc"
    assert int(np.sum(np.asarray(fm.properties.v_flat_from_curve))) == 40  # Vflat = 0 in table1


@pytest.fixture(scope="module")
def mock():
    return mock_catalog(48, seed=11)


@pytest.mark.parametrize("recipe", ["legacy", "sparc"])
def test_derivation_matches_reference_on_mock(mock, recipe):
    fm = derive_f_missing(Hyperparameters(**OTHER_HYPER), mock, recipe)
    assert assert_matches_reference(fm, mock, recipe, OTHER_HYPER) == 48


def test_jit_equals_eager_and_vmap_equals_loop(mock):
    h = Hyperparameters()
    props = galaxy_properties(mock, "sparc")
    args = (mock.R, mock.V_obs, props.V_bar, mock.mask, props.sigma_v)
    with jax.disable_jit():
        eager = derive_curves(h, *args)
    jitted = jax.jit(derive_curves)(h, *args)
    loop = [derive_galaxy(h, *(a[i] for a in args)) for i in range(8)]
    for f in FIELDS:
        np.testing.assert_allclose(getattr(jitted, f), getattr(eager, f), rtol=1e-13)
        np.testing.assert_allclose(np.asarray(getattr(jitted, f))[:8], [getattr(x, f) for x in loop], rtol=1e-13)


def _total_f(h_vec, cat):
    h = Hyperparameters(*h_vec)
    fm = derive_f_missing(h, cat, "sparc")
    return jnp.sum(jnp.where(fm.in_sample, fm.derivation.F_missing, 0.0))


def test_gradients_match_finite_differences(mock):
    x0 = jnp.array(Hyperparameters(), dtype=jnp.float64)
    grad = np.asarray(jax.grad(_total_f)(x0, mock))
    assert np.all(np.isfinite(grad))
    for k in range(len(x0)):
        h = 1e-6 * max(abs(float(x0[k])), 1e-3)
        fd = (_total_f(x0.at[k].add(h), mock) - _total_f(x0.at[k].add(-h), mock)) / (2 * h)
        np.testing.assert_allclose(grad[k], fd, rtol=2e-5, atol=1e-8, err_msg=Hyperparameters._fields[k])
    # ell0, p, n_coh, A0 and gamma_rough all move F_missing.
    assert np.all(np.abs(grad[:5]) > 0)


def test_gradients_finite_for_every_galaxy(sparc_catalog):
    def per_galaxy(h_vec):
        return derive_f_missing(Hyperparameters(*h_vec), sparc_catalog, "legacy").derivation.F_missing

    x0 = jnp.array(Hyperparameters(), dtype=jnp.float64)
    J = np.asarray(jax.jacfwd(per_galaxy)(x0))
    assert np.all(np.isfinite(J))
    rev = np.asarray(jax.jacrev(per_galaxy)(x0))
    assert np.all(np.isfinite(rev))
    undefined = np.isnan(np.asarray(per_galaxy(x0)))
    assert undefined.sum() == 8 and np.all(J[undefined] == 0)


def _catalog(curves):
    return Catalog.from_ragged(curves, {}, [f"c{i}" for i in range(len(curves))])


def test_undefined_cases_are_nan_with_reasons_and_finite_gradients():
    R = np.linspace(0.5, 8, 12)
    good = dict(R=R, V_obs=np.full(12, 120.0), e_V_obs=np.ones(12), V_gas=np.full(12, 20.0),
                V_disk=np.full(12, 60.0), V_bul=np.zeros(12))
    short = {k: v[:3] for k, v in good.items()}
    no_excess = dict(good, V_obs=np.full(12, 30.0))
    no_baryons = dict(good, V_gas=np.zeros(12), V_disk=np.zeros(12))  # V_bar = 0 everywhere
    cat = _catalog([good, short, no_excess, no_baryons])
    fm = derive_f_missing(Hyperparameters(), cat, "legacy")
    reasons = [Reason(int(r)) for r in fm.derivation.reason]
    # Without baryons K_req is (V_obs / floor)^2: F_missing would be ~5e17, a number of nothing.
    assert reasons == [Reason.OK, Reason.TOO_FEW_POINTS, Reason.NO_EXCESS, Reason.NO_BARYONS]
    F = np.asarray(fm.derivation.F_missing)
    assert np.isfinite(F[0]) and np.all(np.isnan(F[1:]))
    assert list(np.asarray(fm.in_sample)) == [True, False, False, False]
    grads = jax.jacrev(lambda h: derive_f_missing(Hyperparameters(*h), cat, "legacy").derivation.F_missing)(
        jnp.array(Hyperparameters(), dtype=jnp.float64))
    assert np.all(np.isfinite(np.asarray(grads)))


def test_all_padding_rows_are_harmless(mock):
    padded = mock.pad_galaxies(64)
    fm = derive_f_missing(Hyperparameters(), padded, "sparc")
    assert np.all(np.asarray(fm.derivation.reason)[48:] == Reason.TOO_FEW_POINTS)
    assert not np.asarray(fm.in_sample)[48:].any()
    base = derive_f_missing(Hyperparameters(), mock, "sparc")
    np.testing.assert_allclose(fm.derivation.F_missing[:48], base.derivation.F_missing, rtol=1e-13)


def test_float32_catalog_stays_float32_and_agrees(mock):
    fm64 = derive_f_missing(Hyperparameters(), mock, "sparc")
    fm32 = derive_f_missing(Hyperparameters(), mock.astype("float32"), "sparc")
    assert fm32.derivation.F_missing.dtype == jnp.float32
    ok = np.asarray(fm64.in_sample)
    # float32 carries ~7 digits; the clipped times and means keep the derivation within 1e-4 relative.
    np.testing.assert_allclose(np.asarray(fm32.derivation.F_missing)[ok], np.asarray(fm64.derivation.F_missing)[ok],
                               rtol=1e-4)


def test_derivation_compiles_once_per_shape(mock):
    derive_f_missing(Hyperparameters(), mock, "sparc")
    before = derive_f_missing._cache_size()
    derive_f_missing(Hyperparameters(ell0=4.0), dataclasses.replace(mock, V_obs=mock.V_obs * 1.01), "sparc")
    assert derive_f_missing._cache_size() == before
