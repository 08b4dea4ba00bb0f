"""The benchmark baselines (plain numpy + scipy, no jaxcoh) compute the same numbers as jaxcoh.

Independent implementations must agree: the kernel loss and the joint objective to rounding, the derivation to
1e-10, the fits to the seed's published table.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcoh import Hyperparameters, derive_f_missing, mock_catalog
from jaxcoh.bench.baselines import bootstrap, grid, joint_map, kernel, seed_pipeline
from jaxcoh.curves import NUISANCE, CurveSettings, Likelihood, curve_data, fit
from jaxcoh.curves.baselines import RAR
from jaxcoh.curves.objective import objective
from jaxcoh.curves.unified import UNIFIED_MULTIPLICATIVE
from jaxcoh.seed import SEED_FITS, SEED_R_REF, SEED_SIGMA_REF

SMALL_DE = dict(maxiter=20, popsize=5)  # where the seed's numbers are not being checked


def as_arrays(cat, fields):
    return {f: np.asarray(getattr(cat, f)) for f in fields}


def perturbed(values: dict, seed: int, scale: float = 0.07) -> dict:
    rng = np.random.default_rng(seed)
    return {k: v * (1 + scale * rng.uniform(-1, 1, np.shape(v))) for k, v in values.items()}


# ---- B4: the unified kernel's loss -----------------------------------------------------------------------------------
def kernel_losses(cat, values):
    """(jaxcoh objective, numpy vectorised, numpy loop) at the shared parameter ``values``."""
    model = UNIFIED_MULTIPLICATIVE
    z = {"shared": model.shared.to_unconstrained({k: jnp.asarray(v) for k, v in values.items()}), "local": {}}
    exact = {k: float(v) for k, v in model.shared.to_values(z["shared"]).items()}  # the values jaxcoh sees
    want = float(objective(z, model, curve_data(cat, "sparc"), Likelihood(nuisance=False, loss="chi2",
                                                                            recipe="sparc")))
    arrays = as_arrays(cat, kernel.KERNEL_FIELDS)
    return want, kernel.unified_loss_numpy(exact, arrays), kernel.unified_loss_loop(exact, arrays)


def test_kernel_parameter_names_are_jaxcohs():
    assert kernel.SHARED == UNIFIED_MULTIPLICATIVE.shared.names


@pytest.mark.parametrize("perturb", [False, True])
def test_unified_loss_matches_jaxcoh_on_mock(perturb):
    init = {p.name: p.init for p in UNIFIED_MULTIPLICATIVE.shared}
    values = perturbed(init, seed=1) if perturb else init
    want, vec, loop = kernel_losses(mock_catalog(12, seed=3), values)
    assert want > 0
    assert vec == pytest.approx(want, rel=1e-10)
    assert loop == pytest.approx(want, rel=1e-10)


def test_unified_loss_matches_jaxcoh_on_sparc(sparc_catalog):
    """Real data add what mocks lack: negative Vgas, V_flat = 0 (speed from the curve), 4-point curves."""
    values = perturbed({p.name: p.init for p in UNIFIED_MULTIPLICATIVE.shared}, seed=2)
    want, vec, loop = kernel_losses(sparc_catalog, values)
    assert vec == pytest.approx(want, rel=1e-10)
    assert loop == pytest.approx(want, rel=1e-10)


def test_loop_gradient_matches_jax_grad():
    """The baseline's finite-difference gradient (what B4's value+gradient loop times) against jax.grad."""
    import jax

    model = UNIFIED_MULTIPLICATIVE
    cat = mock_catalog(12, seed=3)
    values = perturbed({p.name: p.init for p in model.shared}, seed=4)
    data, opts = curve_data(cat, "sparc"), Likelihood(nuisance=False, loss="chi2", recipe="sparc")

    def loss(v):
        return objective({"shared": model.shared.to_unconstrained(v), "local": {}}, model, data, opts)

    v = {k: jnp.asarray(x) for k, x in values.items()}
    want = jax.grad(loss)(v)
    exact = {k: float(x) for k, x in model.shared.to_values(model.shared.to_unconstrained(v)).items()}
    value, grad = kernel.unified_loss_loop_value_and_grad(exact, as_arrays(cat, kernel.KERNEL_FIELDS))
    assert value == pytest.approx(float(loss(v)), rel=1e-10)
    scale = max(abs(float(g)) for g in want.values())
    for k in kernel.SHARED:
        assert grad[k] == pytest.approx(float(want[k]), rel=1e-4, abs=1e-6 * scale), k


# ---- B5: the joint MAP fit of the RAR with nuisance ------------------------------------------------------------------
def jaxcoh_joint_objective(cat, g_dagger, nuisance):
    z = {"shared": RAR.shared.to_unconstrained({"g_dagger": jnp.asarray(g_dagger)}), "local": {},
         "nuisance": NUISANCE.to_unconstrained({k: jnp.asarray(v) for k, v in nuisance.items()})}
    g = float(RAR.shared.to_values(z["shared"])["g_dagger"])
    nu = {k: np.asarray(v) for k, v in NUISANCE.to_values(z["nuisance"]).items()}  # after jaxcoh's bijections
    return float(objective(z, RAR, curve_data(cat, "sparc"), Likelihood(nuisance=True))), g, nu


@pytest.mark.parametrize("perturb", [False, True])
def test_joint_cost_matches_jaxcoh_objective(perturb):
    cat = mock_catalog(12, seed=3)
    arrays = as_arrays(cat, joint_map.JOINT_FIELDS)
    nu0 = joint_map.table_nuisance(arrays)
    g0 = joint_map.G_DAGGER_INIT * (1.3 if perturb else 1.0)
    if perturb:
        nu0 = perturbed(nu0, seed=4, scale=0.1)
    want, g, nu = jaxcoh_joint_objective(cat, g0, nu0)
    got = joint_map.rar_cost(g, nu, arrays)
    assert got == pytest.approx(want, rel=1e-10)
    assert joint_map.rar_residuals(g, nu, arrays).size == cat.n_points + 4 * cat.n_galaxies


def test_joint_map_fit_reaches_jaxcohs_optimum():
    cat = mock_catalog(12, seed=3).take(np.arange(4))
    want = fit("rar", cat, CurveSettings(n_starts=1, errors=False, solver="block_lm", galaxy_starts=1))
    got = joint_map.joint_map_rar(as_arrays(cat, joint_map.JOINT_FIELDS))
    # Both report 0.5 sum(res^2) over the same residuals (no constants in either).
    assert got["cost"] == pytest.approx(want.objective, rel=1e-3)
    assert got["g_dagger"] == pytest.approx(want.params["g_dagger"], rel=1e-2)
    assert got["nfev"] > 1 and got["n_params"] == 1 + 4 * 4
    sparse = joint_map.joint_map_rar(as_arrays(cat, joint_map.JOINT_FIELDS), sparse_jacobian=True)
    assert sparse["cost"] == pytest.approx(want.objective, rel=1e-3)


def test_joint_jacobian_sparsity_covers_every_dependency():
    arrays = as_arrays(mock_catalog(12, seed=3).take(np.arange(3)), joint_map.JOINT_FIELDS)
    mask = arrays["mask"].astype(bool)
    S = joint_map.jacobian_sparsity(mask).toarray()
    start = joint_map.table_nuisance(arrays)
    x0 = joint_map.pack(1.2e-10, start, mask.any(axis=1))

    def fun(x):
        return joint_map.rar_residuals(*joint_map.unpack(x, start, mask.any(axis=1)), arrays)

    J = np.stack([(fun(x0 + 1e-6 * e) - fun(x0 - 1e-6 * e)) / 2e-6 for e in np.eye(x0.size)], axis=1)
    assert S.shape == J.shape
    assert not np.any((np.abs(J) > 0) & (S == 0))


# ---- B1: the seed's pipeline on real SPARC ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def galaxies(sparc_dir):
    return seed_pipeline.load_sparc_loop(sparc_dir)


@pytest.fixture(scope="module")
def seed_sample(galaxies):
    return seed_pipeline.fit_sample(seed_pipeline.derive_f_missing_loop(galaxies))


def test_loader_matches_jaxcoh(galaxies, sparc_catalog):
    cat = sparc_catalog
    assert [g["name"] for g in galaxies] == list(cat.names)
    mask = np.asarray(cat.mask)
    for key, field in [("R", "R"), ("Vobs", "V_obs"), ("errV", "e_V_obs"), ("Vgas", "V_gas"), ("Vdisk", "V_disk"),
                       ("Vbul", "V_bul")]:
        np.testing.assert_array_equal(np.concatenate([g[key] for g in galaxies]), np.asarray(getattr(cat, field))[mask])
    for key, field in [("D", "distance"), ("e_D", "e_distance"), ("Inc", "inclination"), ("e_Inc", "e_inclination"),
                       ("L36", "L36"), ("MHI", "M_HI"), ("Rdisk", "R_disk"), ("Vflat", "V_flat"), ("Q", "quality")]:
        np.testing.assert_array_equal([g[key] for g in galaxies], np.asarray(getattr(cat, field)))


@pytest.mark.parametrize("hyper", [{}, dict(ell0=3.0, A0=0.6, gamma_rough=0.2, beta_sigma=1.2, p=0.9, delta_R=0.3)])
def test_derivation_matches_jaxcoh(galaxies, sparc_catalog, hyper):
    table = seed_pipeline.derive_f_missing_loop(galaxies, hyper)
    fm = derive_f_missing(Hyperparameters(**hyper), sparc_catalog, "legacy")
    np.testing.assert_array_equal(table["in_sample"].to_numpy(), np.asarray(fm.in_sample))
    for col in ("F_missing", "Xi_mean", "K_rough", "C_mean", "A_emp", "sigma_v"):
        np.testing.assert_allclose(table[col].to_numpy(float), np.asarray(getattr(fm.derivation, col)), rtol=1e-10,
                                   atol=0, equal_nan=True, err_msg=col)
    for col in ("M_b", "R_d", "v_flat"):
        np.testing.assert_allclose(table[col].to_numpy(float), np.asarray(getattr(fm.properties, col)), rtol=1e-12,
                                   equal_nan=True, err_msg=col)
    if not hyper:
        assert int(table["in_sample"].sum()) == 158


def test_seed_table_reproduces_the_seed(sparc_dir, seed_sample):
    out = seed_pipeline.seed_table(sparc_dir)  # the seed's settings: DE maxiter 100, popsize 10, seed 42, polish
    assert out["sample_size"] == 158
    assert round(out["references"]["sigma_ref"], 3) == SEED_SIGMA_REF
    assert round(out["references"]["R_ref"], 2) == SEED_R_REF
    F, props = seed_sample
    for name, seed in SEED_FITS.items():
        at_seed = seed_pipeline.evaluate_seed_model(name, seed["params"], F, props)
        assert round(at_seed["rms"], 2) == seed["rms"], name
        assert round(at_seed["r"], 3) == seed["r"], name
        fit = out["models"][name]
        assert fit["rms"] <= at_seed["rms"] + 1e-3, name
        for k, (lo, hi) in seed_pipeline.BOUNDS[name].items():
            assert lo <= fit["params"][k] <= hi, (name, k)


# ---- B2, B3 ----------------------------------------------------------------------------------------------------------
def assert_mass_coherence_params_ok(params: np.ndarray):
    lo, hi = np.array(list(seed_pipeline.BOUNDS["mass_coherence"].values())).T
    assert np.all(np.isfinite(params))
    assert np.all((params >= lo) & (params <= hi))


def test_bootstrap_replicates(seed_sample):
    F, props = seed_sample
    params = bootstrap.bootstrap_de(F, props, n_boot=3, seed=0, **SMALL_DE)
    assert params.shape == (3, 4)
    assert_mass_coherence_params_ok(params)
    idx = bootstrap.bootstrap_indices(len(F), 3, seed=0)
    np.testing.assert_array_equal(bootstrap.bootstrap_de(F, props, indices=idx, **SMALL_DE), params)
    weights = bootstrap.indices_to_weights(idx, len(F))
    assert np.all(weights.sum(axis=1) == len(F))
    # A replicate of all ones is the plain fit; its loss is the resampled list's RMS.
    ones = bootstrap.bootstrap_de(F, props, weights=np.ones((1, len(F))), **SMALL_DE)[0]
    plain = seed_pipeline.fit_seed_model_de("mass_coherence", F, props, **SMALL_DE)
    np.testing.assert_allclose(ones, [plain["params"][k] for k in bootstrap.PARAMS], rtol=1e-12)
    w = weights[0]
    rep = np.repeat(np.arange(len(F)), w.astype(int))
    at = dict(zip(bootstrap.PARAMS, params[0], strict=True))
    weighted = seed_pipeline.evaluate_seed_model("mass_coherence", at, F, props, w)
    resampled = seed_pipeline.evaluate_seed_model("mass_coherence", at, F[rep], {k: v[rep] for k, v in props.items()})
    assert weighted["rms"] == pytest.approx(resampled["rms"], rel=1e-12)
    assert weighted["r"] == pytest.approx(resampled["r"], rel=1e-10)


def test_grid_points(galaxies, sparc_catalog):
    points = grid.product_grid(ell0=[4.0, 6.0], A0=[0.774])
    table = grid.grid_de(galaxies, points, **SMALL_DE)
    assert list(table["ell0"]) == [4.0, 6.0] and len(table) == 2
    assert_mass_coherence_params_ok(table[list(bootstrap.PARAMS)].to_numpy())
    assert np.all(np.isfinite(table["rms"])) and np.all(table["sample_size"] > 100)
    fm = derive_f_missing(Hyperparameters(ell0=6.0), sparc_catalog, "legacy")
    assert table["sample_size"].iloc[1] == int(np.asarray(fm.in_sample).sum())
    with pytest.raises(ValueError):
        grid.grid_de(galaxies, [{"n_coh": 0.4}])
