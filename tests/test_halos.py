"""The halo models of Li et al. (2020) as curve models: their speeds against quadrature of the published densities,
the LCDM priors at known points, truths recovered from mock curves, and the catalogue (API, command, plots) on a
few real galaxies."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import io
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

import jaxcoh
from jaxcoh import curves
from jaxcoh.bench.b6_halos import SUMMARY_FIELDS
from jaxcoh.cli import main
from jaxcoh.curves import halos as H
from jaxcoh.curves.convergence import STATIONARITY_TOL
from jaxcoh.curves.halo_catalog import HALO_SETTINGS, catalog_model, stack_catalog
from jaxcoh.curves.inputs import bulge_luminosity, curve_inputs

G = 4.30091e-6  # kpc (km/s)^2 / Msun
H0 = 0.073  # km/s/kpc
NAMES = H.halo_model_names()
FLAT = [n for n in NAMES if n.endswith("_flat")]


def _dc14_abg(X):
    X = min(max(X, -4.1), -1.3)
    return (2.94 - math.log10((10 ** (X + 2.33)) ** -1.08 + (10 ** (X + 2.33)) ** 2.29), 4.23 + 1.34 * X + 0.26 * X**2,
            -0.06 + math.log10((10 ** (X + 2.56)) ** -0.68 + 10 ** (X + 2.56)))


def _nfw_m(t):
    return t * t / 2 - 2 * t**3 / 3 + 3 * t**4 / 4 if t < 1e-4 else math.log1p(t) - t / (1 + t)


# rho(x)/rho_s as the papers print them, with the galaxy-dependent shape passed in.
DENSITY = {
    "pISO": lambda t, s: 1 / (1 + t * t),
    "Burkert": lambda t, s: 1 / ((1 + t) * (1 + t * t)),
    "NFW": lambda t, s: 1 / (t * (1 + t) ** 2),
    "Lucky13": lambda t, s: (1 + t) ** -3,
    "Einasto": lambda t, s: math.exp(-(2 / s) * (t**s - 1)),
    "DC14": lambda t, s: t ** -s[2] * (1 + t ** s[0]) ** (-(s[1] - s[2]) / s[0]),
    "coreNFW": lambda t, s: (math.tanh(t / s[0]) ** s[1] / (t * (1 + t) ** 2) + s[1] * math.tanh(t / s[0]) ** (s[1] - 1)
                             * (1 - math.tanh(t / s[0]) ** 2) * _nfw_m(t) / (s[0] * t * t)),
}


def _mass(profile, shape, x):
    f = lambda u: math.exp(3 * u) * DENSITY[profile](math.exp(u), shape)  # noqa: E731  (in ln t)
    top = math.log(x)
    edges = np.append(np.arange(min(top, 0.0) - 40.0, top, 1.0), top)  # below: < e^-80 of the total
    return sum(quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200)[0] for a, b in zip(edges[:-1], edges[1:]))


def _reference_v2(profile, R, V200, C200, alpha, M_star, R_eff):
    """Halo V^2 from the density by quadrature, the shape worked out here from Li+20's conventions."""
    R200 = V200 / (10 * H0)
    M200 = V200**3 / (10 * H0 * G)
    rs = R200 / C200
    shape = alpha
    if profile == "DC14":
        shape = _dc14_abg(math.log10(M_star / M200))
    if profile == "coreNFW":
        m_rs = M200 * (math.log(2) - 0.5) / _nfw_m(C200)
        t_dyn = 2 * math.pi * math.sqrt(rs**3 / (G * m_rs)) * 3.0856775814913673e16 / 3.15576e16  # Gyr
        shape = (1.75 * R_eff / rs, math.tanh(0.04 * 14.0 / t_dyn))
    return V200**2 * R200 / R * _mass(profile, shape, R / rs) / _mass(profile, shape, C200)


@pytest.fixture(scope="module")
def mock():
    """Three mock galaxies (a bulge among them) at the table's Upsilon, D and i; ``(catalog, inputs, locals)``."""
    cat = jaxcoh.mock_catalog(3, seed=3, n_max=12, min_points=8, nuisance=False, noise=False).take(np.arange(3))
    x = curve_inputs(cat, 0.5, 0.7, "sparc", (jnp.asarray(15.0), jnp.asarray(3.0)))
    local = {"V200": jnp.asarray([60.0, 120.0, 210.0]), "C200": jnp.asarray([14.0, 7.0, 25.0]),
             "alpha": jnp.asarray([0.17, 0.5, 1.2])}
    return cat, x, local


def test_bulge_luminosity_is_the_enclosed_mass_of_a_spherical_bulge():
    R = np.array([[1.0, 2.0, 4.0, 1.0], [1.0, 3.0, 1.0, 1.0]])
    L_bul = 2.0  # 1e9 Lsun in a point-like bulge: V^2 = G M / R beyond it
    V_bul = np.sqrt(G * L_bul * 1e9 / R) * np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    cat = jaxcoh.Catalog.from_ragged(
        [{"R": R[0, :3], "V_obs": [50.0] * 3, "e_V_obs": [1.0] * 3, "V_gas": [1.0] * 3, "V_disk": [30.0] * 3,
          "V_bul": V_bul[0, :3]},
         {"R": R[1, :2], "V_obs": [50.0] * 2, "e_V_obs": [1.0] * 2, "V_gas": [1.0] * 2, "V_disk": [30.0] * 2,
          "V_bul": [0.0, 0.0]}], {"L36": np.array([10.0, 1.5])}, ["A", "B"])
    np.testing.assert_allclose(np.asarray(bulge_luminosity(cat)), [L_bul, 0.0], rtol=1e-12)
    from jaxcoh.curves.inputs import stellar_mass
    np.testing.assert_allclose(np.asarray(stellar_mass(cat, 0.5, 0.7)), [1e9 * (0.5 * 8.0 + 0.7 * 2.0), 0.75e9])


def test_every_halo_model_against_quadrature_of_its_density(mock):
    cat, x, local = mock
    models = [curves.get_model(n) for n in NAMES]
    stack = H.make_halo_stack(NAMES, np.asarray(cat.mask))
    big = stack_catalog(cat, len(NAMES))
    x_big = curve_inputs(big, 0.5, 0.7, "sparc", (jnp.asarray(15.0), jnp.asarray(3.0)))
    tile = lambda v: jnp.tile(v, len(NAMES))  # noqa: E731

    @jax.jit
    def speeds(x, x_big):
        own = [m.speed2({}, {k: local[k] for k in m.local.names}, x) for m in models]
        return own, stack.speed2({}, {k: tile(v) for k, v in local.items()}, x_big)

    own, stacked = speeds(x, x_big)
    mask = np.asarray(cat.mask)
    V_bar2 = np.asarray(x.V_bar2)
    M_star, R_eff, R = np.asarray(x.M_star), np.asarray(x.R_eff), np.asarray(x.R)
    for i, name in enumerate(NAMES):
        profile, _ = H.profile_and_prior(name)
        got = np.asarray(own[i]) - V_bar2
        for j in range(3):
            pts = np.nonzero(mask[j])[0][::3]  # a few points per galaxy: quadrature is slow
            want = [_reference_v2(profile, R[j, k], *(float(local[p][j]) for p in ("V200", "C200", "alpha")),
                                  M_star[j], R_eff[j]) for k in pts]
            np.testing.assert_allclose(got[j, pts], want, rtol=1e-9, err_msg=f"{name}, galaxy {j}")
        rows = slice(i * 3, (i + 1) * 3)  # the stack evaluates the same model on its rows (real points only)
        np.testing.assert_allclose(np.asarray(stacked)[rows][mask], np.asarray(own[i])[mask], rtol=1e-12)
    assert M_star[np.asarray(bulge_luminosity(cat)) > 0].size > 0  # the bulge term of M_star is exercised


def test_lcdm_priors_at_known_points(mock):
    cat, x, _ = mock
    h = 0.73
    V200 = (1e12 / h * 10 * H0 * G) ** (1 / 3)  # M200 = 1e12/h Msun: log c = A exactly
    lm = 12 - math.log10(h)
    M1, N, beta, gamma = 10**11.59, 0.0351, 1.376, 0.608
    mstar = 10**lm * 2 * N / ((10**lm / M1) ** -beta + (10**lm / M1) ** gamma)
    x1 = x._replace(M_star=jnp.full(3, mstar * np.array([1.0, 10**0.15, 10**-0.3])))
    nu = 10 ** (-0.11 + 0.146 * 0 + 0.0138 * 0 + 0.00123 * 0)  # peak height at 1e12/h Msun
    alpha = 0.0095 * nu**2 + 0.155
    local = {"V200": jnp.full(3, V200), "C200": jnp.asarray([10**0.905, 10 ** (0.905 + 0.11), 10**0.977]),
             "alpha": jnp.asarray([alpha, alpha * 10**0.16, alpha])}
    nfw = np.asarray(curves.get_model("nfw_lcdm").prior_residuals({}, local, x1))
    np.testing.assert_allclose(nfw, [[0.0, 0.0], [1.0, 1.0], [0.072 / 0.11, -2.0]], atol=1e-9)
    ein = np.asarray(curves.get_model("einasto_lcdm").prior_residuals({}, local, x1))
    np.testing.assert_allclose(ein[:, 0], [(0.905 - 0.977) / 0.11, (1.015 - 0.977) / 0.11, 0.0], atol=1e-9)
    np.testing.assert_allclose(ein[:, 2], [0.0, 1.0, 0.0], atol=1e-9)
    for name in NAMES:  # Flat: no prior terms; the others' (c-M, SHMR) as NFW-LCDM's but for Einasto's relation
        m = curves.get_model(name)
        assert (m.prior_residuals is None) == name.endswith("_flat")
        if name.endswith("_lcdm") and name != "einasto_lcdm":
            np.testing.assert_allclose(np.asarray(m.prior_residuals({}, local, x1)), nfw, atol=1e-12)
    stack = H.make_halo_stack(["nfw_flat", "nfw_lcdm", "einasto_lcdm"], np.asarray(cat.mask))
    z = np.asarray(stack.prior_residuals({}, {k: jnp.tile(v, 3) for k, v in local.items()},
                                         x1._replace(M_star=jnp.tile(x1.M_star, 3))))
    np.testing.assert_allclose(z[:3], np.c_[np.zeros((3, 2)), (np.asarray(local["alpha"]) - 0.5)], atol=1e-12)
    np.testing.assert_allclose(z[3:6, :2], nfw, atol=1e-12)
    np.testing.assert_allclose(z[6:], ein, atol=1e-12)


def test_einasto_is_differentiable_twice():
    from jaxcoh.halo_profiles import mu_einasto as reference

    @jax.jit
    def derivatives(x, a):
        h = 1e-4 * a
        d_ref = jax.vmap(jax.grad(reference, (0, 1)))
        fd2 = (d_ref(x, a + h)[1] - d_ref(x, a - h)[1]) / (2 * h)  # JAX's gammainc has no second derivative in a
        return (H.mu_einasto(x, a), reference(x, a), jax.vmap(jax.grad(H.mu_einasto, (0, 1)))(x, a), d_ref(x, a),
                jax.vmap(jax.hessian(H.mu_einasto, 1))(x, a), fd2)

    mu, mu_ref, ours, theirs, d2, fd2 = derivatives(jnp.asarray([1e-3, 0.3, 2.0, 40.0]),
                                                    jnp.asarray([0.1, 0.17, 0.8, 2.0]))
    np.testing.assert_allclose(np.asarray(mu), np.asarray(mu_ref), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(ours[0]), np.asarray(theirs[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(theirs[1]), rtol=1e-7)
    np.testing.assert_allclose(np.asarray(d2), np.asarray(fd2), rtol=1e-5)


def _halo_mock(truth, seed):
    """Mock curves from the halo models themselves: a baryonic mock, ``V^2 = V_bar^2 + V_halo^2(truth)`` at the
    table's Upsilon, D and i (every galaxy under every model of ``truth``, stacked), 2% + 1 km/s errors."""
    base = jaxcoh.mock_catalog(2, seed=seed, n_max=16, min_points=14, nuisance=False, noise=False).take([0, 1])
    cat = stack_catalog(base, len(truth))
    x = curve_inputs(cat, 0.5, 0.7, "sparc", (jnp.asarray(15.0), jnp.asarray(3.0)))
    V2 = H.make_halo_stack(list(truth), np.asarray(base.mask)).speed2(
        {}, {k: jnp.concatenate([jnp.asarray(t.get(k, [0.5, 0.5])) for t in truth.values()])
             for k in ("V200", "C200", "alpha")}, x)
    V = np.sqrt(np.asarray(V2))
    e = 0.02 * V + 1.0
    obs = V + e * np.random.default_rng(seed).normal(size=V.shape)
    mask = np.asarray(cat.mask)
    return dataclasses.replace(cat, V_obs=jnp.where(mask, obs, cat.V_obs), e_V_obs=jnp.where(mask, e, cat.e_V_obs))


# Scale radii (6.4 and 15 kpc) inside the curves (to 17 and 40 kpc): V200 and C200 are then both determined.
TRUTH = {name: {"V200": [70.0, 160.0], "C200": [15.0, 15.0], **({"alpha": [0.3, 0.9]} if "einasto" in name else {})}
         for name in FLAT}
FAST = curves.CurveSettings(likelihood=curves.Likelihood(nuisance=False), n_starts=1, solver="block_lm",
                            galaxy_starts=1, errors=False)


def test_every_profile_recovers_its_truth():
    cat = _halo_mock(TRUTH, seed=7)  # the seven profiles on the same two galaxies, fitted in one stacked fit
    model = H.make_halo_stack(FLAT, np.asarray(cat.mask[:2]))
    fitted = curves.fit(model, cat, FAST)
    for m, name in enumerate(FLAT):
        rows = slice(2 * m, 2 * m + 2)
        for k, want in TRUTH[name].items():
            np.testing.assert_allclose(fitted.local[k][rows], want, rtol=0.1 if k == "V200" else 0.2,
                                       err_msg=f"{name} {k}")
        assert np.all(fitted.per_galaxy_chi2[rows] < 2.0 * fitted.per_galaxy_points[rows]), name


def test_a_registered_model_recovers_its_truth_by_name():
    truth = {"nfw_lcdm": {"V200": [90.0, 150.0], "C200": [9.0, 7.0]}}
    cat = _halo_mock(truth, seed=8)
    fitted = curves.fit("nfw_lcdm", cat, FAST)
    np.testing.assert_allclose(fitted.local["V200"], truth["nfw_lcdm"]["V200"], rtol=0.15)
    np.testing.assert_allclose(fitted.local["C200"], truth["nfw_lcdm"]["C200"], rtol=0.3)  # (pulled by the prior)


def test_models_are_kept_for_the_same_catalog(mock):
    cat = mock[0]
    mask = np.asarray(cat.mask)
    a = catalog_model(("nfw_flat", "dc14_lcdm"), mask.shape, mask.tobytes())
    assert a is catalog_model(("nfw_flat", "dc14_lcdm"), mask.shape, mask.tobytes())  # compiled programs reused
    assert a.family == "halo" and H.display_name("dc14_lcdm") == "DC14-LCDM"
    assert "nfw_flat" not in curves.default_models()  # compare does not fit halos by default


def test_the_commands_defaults_are_the_catalogues_settings():
    """`jaxcoh halos` with no options fits as `halo_catalog` does (32 starts per galaxy, 20 + 60 iterations)."""
    from jaxcoh.cli import halos as command

    got = command.settings({o.name: o.default for o in command.OPTIONS})
    assert got._replace(report=HALO_SETTINGS.report) == HALO_SETTINGS and got.galaxy_starts == 32


def test_the_help_states_the_default_starts_per_galaxy():
    """The --galaxy-starts help of `fit`, `compare` and `sample` spells out fitting's table (the CLI does not import
    the fitting code to build its help): a change of the table shows here."""
    from jaxcoh.cli import common, compare, fit, sample
    from jaxcoh.curves.fitting import DEFAULT_GALAXY_STARTS, GALAXY_STARTS

    assert set(GALAXY_STARTS) == {"halo"}  # (the help names one family besides the default)
    want = f"{GALAXY_STARTS['halo']} for the halo profiles, {DEFAULT_GALAXY_STARTS} for the other models"
    for options in (common.CURVE_OPTIONS, fit.OPTIONS, compare.OPTIONS, sample.OPTIONS):
        (opt,) = [o for o in options if o.name == "galaxy_starts"]
        assert opt.default is None and want in " ".join(opt.help.split()), opt.help


def test_command_on_sparc_writes_the_catalogue_resumes_and_plots(sparc_dir, sparc_catalog, tmp_path, monkeypatch):
    out = tmp_path / "halos"
    args = ["halos", "--sparc", str(sparc_dir), "--models", "nfw_flat,burkert_flat", "--galaxy-starts", "1",
            "--out", str(out), "--quiet"]  # (several starts per galaxy are curves.fit's, tested with it)
    assert main(args) == 0
    table = pd.read_csv(out / "halos.csv")
    assert list(table["model"].unique()) == ["NFW-Flat", "Burkert-Flat"] and len(table) == 2 * 175
    bulge = table["upsilon_bulge"].notna()
    assert bulge.sum() == 2 * 32  # the galaxies with a bulge: 6 parameters, the others 5 (Li+20's count)
    assert np.all(table.loc[bulge, "n_params"] == 6) and np.all(table.loc[~bulge, "n_params"] == 5)
    dof = table["n_points"] - table["n_params"]
    np.testing.assert_allclose(table["chi2_nu"][dof > 0], (table["chi2"] / dof)[dof > 0])
    assert table["chi2_nu"][dof <= 0].isna().all()
    # Each galaxy's own status, from the stationarity test of its parameters (every galaxy is its own problem).
    assert set(table["status"]) <= {"CONVERGED", "NOT_STATIONARY"} and (table["status"] == "CONVERGED").mean() > 0.9
    assert "improved_by_starts" in table
    np.testing.assert_allclose(table["bic"], table["chi2"] + table["n_params"] * np.log(table["n_points"]))
    np.testing.assert_allclose(table["log10_M200"], 3 * np.log10(table["V200"]) - math.log10(10 * H0 * G), rtol=1e-9)
    np.testing.assert_allclose(table["rs"], table["V200"] / (10 * H0) / table["C200"], rtol=1e-9)
    for col in ("V200_err", "C200_err", "distance_err", "inclination_err", "upsilon_disk_err"):
        assert (table[col] > 0).mean() > 0.9, col
    # DDO154: a core fits, a cusp does not (Li+20's table: Burkert-Flat chi2_nu 1.63, NFW-Flat 13.70)
    ddo = table[table["galaxy"] == "DDO154"].set_index("model")["chi2_nu"]
    assert ddo["Burkert-Flat"] < 2.0 < 8.0 < ddo["NFW-Flat"]
    summary = json.loads((out / "halos.json").read_text())
    m = summary["models"]
    assert m["Burkert-Flat"]["wins_by_bic"] + m["NFW-Flat"]["wins_by_bic"] == 175
    assert summary["pairwise_bic_preference"]["Burkert-Flat"]["NFW-Flat"] == m["Burkert-Flat"]["wins_by_bic"]
    assert m["Burkert-Flat"]["median_chi2_nu"] < m["NFW-Flat"]["median_chi2_nu"]
    assert m["NFW-Flat"]["n_galaxies_converged"] == int((table[table.model == "NFW-Flat"].status == "CONVERGED").sum())
    assert ((table.step_in_stderr <= STATIONARITY_TOL) == (table.status == "CONVERGED")).all()  # the status's figure
    assert set(SUMMARY_FIELDS) <= set(m["NFW-Flat"])  # what benchmark B6 reads (a renamed field broke it once)
    assert main(["table", str(out), "--quiet", "--format", "txt"]) == 0  # the catalogue's summary for a paper
    from jaxcoh.tables import result_tables

    assert (out / "tables" / "halos.txt").read_text() == result_tables(out, latex=False)["halos"].to_string(
        index=False) + "\n"
    rows = result_tables(out, latex=False)["halos"].set_index("Model")
    assert rows.loc["NFW-Flat", "median chi2/nu"] == f"{m['NFW-Flat']['median_chi2_nu']:.3f}"
    assert rows.loc["Burkert-Flat", "BIC wins"] == str(m["Burkert-Flat"]["wins_by_bic"])
    # The Python API on the same catalog and settings returns the command's rows and summary (its programs are
    # the ones compiled above: no compilation of its own).
    api, api_summary = curves.halo_catalog(sparc_catalog, ["nfw_flat", "burkert_flat"],
                                           HALO_SETTINGS._replace(galaxy_starts=1))
    assert list(api.columns) == list(table.columns)
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(api.to_csv(index=False))), table)
    for name, doc in m.items():
        assert {k: v for k, v in api_summary["models"][name].items() if k != "wall_s_of_its_fit"} == \
            {k: v for k, v in doc.items() if k != "wall_s_of_its_fit"}, name
    assert api_summary["settings"]["galaxy_starts"] == 1 and api_summary["n_points"] == summary["n_points"]
    module = importlib.import_module("jaxcoh.curves.halo_catalog")  # (jaxcoh.curves.halo_catalog is the function)
    monkeypatch.setattr(module, "fit", lambda *a, **k: pytest.fail("refitted a stored model"))
    assert main(args) == 0  # resumed from out/models
    pd.testing.assert_frame_equal(pd.read_csv(out / "halos.csv"), table)
    pytest.importorskip("matplotlib")
    from jaxcoh.plots import plot_result_dir
    written = plot_result_dir(out, formats=("png",), dpi=40, galaxies=["DDO154", "UGC02916"])
    assert set(written) == {"halo_chi2", "halo_wins", "halo_curves"}


def test_stack_rows_start_where_their_model_alone_would(mock):
    """Every row of a stack gets its own model's start design: Einasto's alpha, inert on the other rows, stays at its
    initial value there and takes no dimension of their design (so their nuisance starts are those of the model
    fitted alone, and a catalogue's results do not depend on how its models are grouped)."""
    from jaxcoh.curves.galaxy_starts import start_design
    from jaxcoh.curves.likelihood import curve_data

    base, opts = mock[0], curves.Likelihood(nuisance=True)
    names = ["nfw_flat", "einasto_flat"]
    stacked = start_design(H.make_halo_stack(names, np.asarray(base.mask)), curve_data(stack_catalog(base, 2)),
                           opts, 5, 0)
    g = base.n_galaxies
    for m, name in enumerate(names):
        alone = start_design(curves.get_model(name), curve_data(base), opts, 5, 0)
        for group, leaves in alone.items():
            for k, v in leaves.items():
                np.testing.assert_allclose(stacked[group][k][:, m * g:(m + 1) * g], v, rtol=1e-12,
                                           err_msg=f"{name} {k}")
    inert = H.make_halo_stack(names, np.asarray(base.mask)).local.to_values(stacked["local"])["alpha"][:, :g]
    np.testing.assert_allclose(inert, H.ALPHA_INIT, rtol=1e-12)


def test_models_are_grouped_by_cost_a_profile_kept_together():
    from jaxcoh.curves.halo_catalog import PROFILE_COST, balanced_groups, fit_groups

    groups = balanced_groups(NAMES, 2)
    assert sorted(sum(groups, [])) == sorted(NAMES) and len(groups) == 2
    profile = {m: H.profile_and_prior(m)[0] for m in NAMES}
    assert not ({profile[m] for m in groups[0]} & {profile[m] for m in groups[1]})  # a profile's models together
    cost = [sum(PROFILE_COST[profile[m]] for m in g) for g in groups]
    assert max(cost) / min(cost) < 1.2 and all(g == [m for m in NAMES if m in g] for g in groups)  # in Li's order
    assert fit_groups(NAMES, 175, None, 1) == [NAMES]
    assert fit_groups(NAMES, 175, None, 2) == groups
    assert fit_groups(NAMES, 175, 5, 2) == [NAMES[:5], NAMES[5:10], NAMES[10:]]
    assert fit_groups(NAMES, 10**5, None, 2) == [[m] for m in NAMES]  # beyond the blocked objective's size
    assert balanced_groups(["nfw_flat"], 4) == [["nfw_flat"]]


def test_groups_side_by_side_report_iterations_from_one_group(mock, monkeypatch):
    """Groups fitted in threads each get their own fit (the per-galaxy results do not depend on the grouping: see
    the start design above); only the first reports every iteration, since the groups would share one progress line.
    One thread: the groups in the calling thread, every one reporting. (The fits are replaced: this checks the
    dispatch.)"""
    import threading

    module = importlib.import_module("jaxcoh.curves.halo_catalog")
    calls = []

    def fake_fit(model, cat, settings):
        calls.append((model.name, settings.report, threading.current_thread().name))
        return model.name

    monkeypatch.setattr(module, "fit", fake_fit)
    monkeypatch.setattr(module, "model_parts", lambda fitted, cat, names, wall: {
        n: ({"name": n, "fitted_with": names}, {"rows": pd.DataFrame(), "curves": pd.DataFrame()}) for n in names})
    names = ["nfw_flat", "burkert_flat", "einasto_flat", "dc14_flat"]
    settings = HALO_SETTINGS._replace(report=True)
    parts = module.fit_halo_models(mock[0], names, settings, threads=2)
    assert list(parts) == names and len(calls) == 2
    assert sorted(r for _, r, _ in calls) == [False, True]
    assert threading.main_thread().name not in {t for _, _, t in calls}  # in the pool's threads
    calls.clear()
    module.fit_halo_models(mock[0], names, settings, threads=1)
    assert [r for _, r, _ in calls] == [True] and calls[0][2] == threading.main_thread().name
    calls.clear()
    module.fit_halo_models(mock[0], names, settings, models_per_fit=1, threads=1)
    assert [r for _, r, _ in calls] == [True] * 4


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_papers_table_is_read_in_both_forms_and_compared(tmp_path, capsys):
    """scripts/compare_li2020.py on a constructed table: VizieR's TSV (header, units, dashes, a blank chi2) and the
    whitespace form read alike; a column that repeats another is left out; the statistics are the hand-counted ones."""
    compare = _script("compare_li2020")
    chi2 = {"NFW-Flat": [2.0, 4.0, 1.0, None], "Burkert-Flat": [1.0, 2.0, 3.0, None],
            "Einasto-Flat": [2.0, 4.0, 1.0, None]}  # Einasto repeats NFW, as in the paper
    galaxies = ["A", "B", "C", "D"]
    cells = [(m, g, v) for m, vals in chi2.items() for g, v in zip(galaxies, vals)]
    rows = [f"{i + 1}\t{g:<11}\t{m:<12}\t0.50\t" + ("" if v is None else f"{v:5.2f}")
            for i, (m, g, v) in enumerate(cells)]
    tsv = tmp_path / "table1.tsv"
    tsv.write_text("#Title: J/ApJS/247/31/table1\nrecno\tName\tModel\tYdisk\tchi2\n \t \t \tMsun/Lsun\t \n"
                   "--------\t---\t---\t---\t---\n" + "\n".join(rows) + "\n")
    ws = tmp_path / "table1.txt"
    ws.write_text("# galaxy " + " ".join(chi2) + "\n" + "".join(
        g + " " + " ".join("-" if chi2[m][i] is None else str(chi2[m][i]) for m in chi2) + "\n"
        for i, g in enumerate(galaxies)))
    pd.testing.assert_frame_equal(compare.read_li2020(str(tsv)).loc[galaxies, list(chi2)],
                                  compare.read_li2020(str(ws)).loc[galaxies, list(chi2)], check_names=False)
    ours = pd.DataFrame([(g, m, v) for m, vals in {"NFW-Flat": [2.0, 4.4, 0.5, None],
                                                   "Burkert-Flat": [1.0, 2.0, 3.0, None]}.items()
                         for g, v in zip(galaxies, vals)], columns=["galaxy", "model", "chi2_nu"])
    ours.to_csv(tmp_path / "halos.csv", index=False)
    assert compare.main(["--li2020", str(tsv), "--halos", str(tmp_path / "halos.csv")]) == 0
    out = capsys.readouterr().out
    assert "Einasto-Flat chi2_nu repeats NFW-Flat's" in out
    nfw = next(line for line in out.splitlines() if line.startswith("NFW-Flat "))
    # N 3 and 3; median 2.0 and 2.0; mean 7/3 and 6.9/3; below 2: 1/3 and 1/3; median ratio of 1.0, 1.1, 0.5
    assert nfw.split() == ["NFW-Flat", "3", "3", "2.00", "2.00", "2.33", "2.30", "0.33", "0.33", "1.000"]
    assert "Burkert-Flat fits better than NFW-Flat (lower chi2_nu): paper 2 of 3, jaxcoh 2 of 3" in out
    assert "more than 5% below the paper's: 1, above: 1, of 6" in out and "  C NFW-Flat: jaxcoh 0.50, paper 1.00" in out


def test_dc14_x_held_at_the_edges_of_its_range_is_reported_at_bound():
    """DC14's X = log10(M_star/M200) at or beyond an edge of [-4.1, -1.3] (within 1e-3 of the span) is flagged, and
    the table's `at_bound` names it after the parameters at their bounds; other profiles have no X."""
    import types

    from jaxcoh.curves.halo_catalog import _at_bound
    from jaxcoh.halo_profiles import m200

    X = np.array([-1.3, -1.2, -1.305, -2.0, -4.1, -4.2, -4.0])
    V200 = np.full(X.shape, 100.0)
    M_star = np.asarray(m200(jnp.asarray(V200))) * 10.0**X
    held = H.dc14_x_held("dc14_flat", {"V200": V200}, M_star)
    np.testing.assert_array_equal(held, [True, True, False, False, True, True, False])
    assert H.dc14_x_held("nfw_flat", {"V200": V200}, M_star) is None
    spec = curves.get_model("dc14_flat").local
    fitted = types.SimpleNamespace(per_galaxy_points=np.ones(3), local={"V200": np.array([500.0, 100.0, 100.0]),
                                                                        "C200": np.array([10.0, 10.0, 1.0])})
    got = _at_bound(fitted, spec, {"X": np.array([True, True, False]), "none": None})
    assert list(got) == ["V200+X", "X", "C200"]


def test_dc14_kink_sides_straddle_the_edge_of_x(mock):
    """DC14's kink hook: a galaxy whose X = log10(M_star/M200) sits on an edge of [-4.1, -1.3] is on the kink; its
    two sides move V200 alone so that X is just below and just above the edge; the normal is grad X (falling with
    V200); the stack marks DC14's rows only; galaxies off the edges are not on it."""
    from jaxcoh.curves.inputs import stellar_mass
    from jaxcoh.curves.likelihood import Likelihood
    from jaxcoh.halo_profiles import DC14_X_RANGE, dc14_x, m200

    cat = mock[0]
    M_star = np.asarray(stellar_mass(cat, 0.5, 0.7))
    X = np.asarray([DC14_X_RANGE[0], -2.5, DC14_X_RANGE[1]])  # galaxy 1 off the edges
    V200 = 100.0 * (M_star / 10.0**X / float(m200(jnp.asarray(100.0)))) ** (1 / 3)
    model = H.HALO_MODELS["dc14_flat"]
    z = {"shared": {}, "local": model.local.to_unconstrained(
        {"V200": jnp.asarray(V200), "C200": jnp.full(3, 10.0)})}
    sides = model.kinks(z, cat, Likelihood(nuisance=False))
    np.testing.assert_array_equal(sides.at, [True, False, True])
    x_of = lambda zz: np.asarray(dc14_x(jnp.asarray(M_star), m200(model.local.to_values(zz["local"])["V200"])))  # noqa: E731
    np.testing.assert_allclose(x_of(sides.minus) - X, [-1e-7, 0.0, -1e-7], atol=1e-11)
    np.testing.assert_allclose(x_of(sides.plus) - X, [1e-7, 0.0, 1e-7], atol=1e-11)
    assert np.all(np.asarray(sides.normal["local"]["V200"])[[0, 2]] < 0)
    stack = H.make_halo_stack(["nfw_flat", "dc14_flat"], np.asarray(cat.mask))
    two = stack_catalog(cat, 2)
    zz = jax.tree_util.tree_map(lambda a: jnp.concatenate([a, a]), z)
    np.testing.assert_array_equal(stack.kinks(zz, two, Likelihood(nuisance=False)).at,
                                  [False, False, False, True, False, True])
