"""Folded rows in fits (``jaxcoh.curves.folding``): the block Levenberg-Marquardt on residual rows grouped by galaxy
solves the padded problem; a halo stack's residuals, normal equations and per-galaxy terms on folded rows are the
padded ones; the bulge light travels with the rows; the fit's layout is chosen as documented."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcoh
from jaxcoh.curves import Likelihood, get_model
from jaxcoh.curves import halos as H
from jaxcoh.curves.fitting import lm_data, starts
from jaxcoh.curves.fold_plan import folded_mask
from jaxcoh.curves.folding import fold, folded_rows, galaxy_objective_terms, row_residuals
from jaxcoh.curves.inputs import bulge_luminosity
from jaxcoh.curves.likelihood import curve_data, evaluate, residuals
from jaxcoh.curves.nuisance import Nuisance, apply_nuisance
from jaxcoh.solvers import SolverOptions, solve
from jaxcoh.solvers.arrowhead import kind_jvps, normal_equations


def _exponentials(n_points):
    """Curves ``y = a_j exp(-b_j t) + s t`` of ragged lengths, padded ``[g, n]`` and folded into rows of 3, with
    their truth: per-galaxy ``a, b`` and a shared slope ``s``."""
    g, n = len(n_points), max(n_points)
    mask = np.arange(n)[None, :] < np.asarray(n_points)[:, None]
    t = np.where(mask, np.linspace(0.1, 3.0, n)[None, :] * (1 + 0.1 * np.arange(g))[:, None], 1.0)
    a, b, s = 1.0 + 0.5 * np.arange(g), 0.3 + 0.2 * np.arange(g), 0.25
    y = np.where(mask, a[:, None] * np.exp(-b[:, None] * t) + s * t, 0.0)
    row_galaxy = np.repeat(np.arange(g), -(-np.asarray(n_points) // 3))
    k = np.arange(row_galaxy.size) - np.repeat(np.cumsum(-(-np.asarray(n_points) // 3)) - -(-np.asarray(n_points) // 3),
                                               -(-np.asarray(n_points) // 3))
    cols = k[:, None] * 3 + np.arange(3)
    real = cols < np.asarray(n_points)[row_galaxy][:, None]
    src = (row_galaxy[:, None], np.minimum(cols, n - 1))
    rows = {"t": np.where(real, t[src], 1.0), "y": np.where(real, y[src], 0.0), "mask": real}
    return {"t": t, "y": y, "mask": mask}, rows, row_galaxy, (a, b, s)


@pytest.mark.parametrize("shared", [False, True])
def test_block_lm_on_rows_grouped_by_galaxy_solves_the_padded_problem(shared):
    padded, rows, row_galaxy, (a, b, s) = _exponentials([7, 2, 5, 9])

    def residual_fn(z, d):
        L, slope = z["local"], (z["shared"]["s"] if shared else s)
        j = d["galaxy"]
        return jnp.where(d["mask"], L["a"][j][:, None] * jnp.exp(-L["b"][j][:, None] * d["t"]) + slope * d["t"]
                         - d["y"], 0.0)

    z0 = {"shared": {"s": jnp.asarray(0.1)} if shared else {},
          "local": {"a": jnp.ones(4), "b": jnp.full(4, 0.5)}}
    opts = SolverOptions(max_iter=200, ftol=1e-15, gtol=1e-12)
    run = jax.jit(lambda d, rg: solve("block_lm", z0, d, residual_fn=residual_fn, options=opts, row_galaxy=rg))
    on_rows = run({**{k: jnp.asarray(v) for k, v in rows.items()}, "galaxy": jnp.asarray(row_galaxy)},
                  jnp.asarray(row_galaxy, jnp.int32))
    as_padded = run({**{k: jnp.asarray(v) for k, v in padded.items()}, "galaxy": jnp.arange(4)}, None)
    for res in (on_rows, as_padded):  # noise-free curves: the truth, with every galaxy's own damping
        np.testing.assert_allclose(res.z["local"]["a"], a, rtol=1e-8)
        np.testing.assert_allclose(res.z["local"]["b"], b, rtol=1e-8)
        if shared:
            np.testing.assert_allclose(res.z["shared"]["s"], s, rtol=1e-8)
    assert int(on_rows.n_iter) == int(as_padded.n_iter)  # the same steps: the same normal equations
    with pytest.raises(ValueError, match="block LM"):
        solve("lbfgs", z0, None, residual_fn=residual_fn, row_galaxy=jnp.asarray(row_galaxy))


@pytest.fixture(scope="module")
def bulges():
    """Six mock galaxies with bulges, ragged (up to 40 points: several rows each), float64."""
    cat = jaxcoh.mock_catalog(6, seed=4, kernel="rar", n_max=40, min_points=5, dtype=jnp.float64)
    return dataclasses.replace(cat, V_bul=jnp.where(cat.mask, 0.4 * cat.V_disk, 0.0))


def test_halo_stack_on_folded_rows_gives_the_padded_residuals_and_normal_equations(bulges):
    """A stack of two halo models (the LCDM priors take M_star, Einasto's alpha is inert on the other rows) with
    nuisance, at parameters away from the starts: every galaxy's sum of squared residuals, objective terms and
    Gauss-Newton blocks are the same on folded rows as padded. (DC14's M_star: test_posterior_layout.)"""
    names = ["nfw_lcdm", "einasto_flat"]
    base = bulges.take(np.arange(bulges.n_galaxies))  # padded to its longest curve, as the stack is built for
    cat = base.take(np.tile(np.arange(base.n_galaxies), len(names)))
    model = H.make_halo_stack(names, np.asarray(base.mask))
    opts = Likelihood(nuisance=True)
    data = curve_data(cat)
    folded = fold(data, opts)
    assert folded.rows.data.cat.n_max == 16 and folded.rows.data.cat.n_galaxies > cat.n_galaxies
    z = jax.tree_util.tree_map(lambda v: v[0] + 0.07 * jnp.sin(jnp.arange(v.shape[1])),
                               starts(model, data, opts, 1, 0))
    own = {k: v for k, v in z.items() if k != "shared"}
    leaves, tree = jax.tree_util.tree_flatten(own)
    L = jnp.stack(leaves, axis=1)

    def blocks(fn, d, row_galaxy):
        def of(s, LL):
            return fn({"shared": {}, **jax.tree_util.tree_unflatten(tree, list(LL.T))}, model, d, opts)
        r, _, J = kind_jvps(of, jnp.zeros(0), L)
        neq = normal_equations(None, J, r, row_galaxy, L.shape[0])
        sq = jnp.sum(r**2, axis=1)
        per_galaxy = sq if row_galaxy is None else jax.ops.segment_sum(sq, row_galaxy, L.shape[0])
        return neq["A_ll"], neq["g_l"], per_galaxy, galaxy_objective_terms(model, z, d, opts)

    want, got = jax.jit(lambda: (blocks(residuals, data, None), blocks(row_residuals, folded, folded.rows.galaxy)))()
    for w, g, what in zip(want, got, ("J^T J", "J^T r", "sum r^2", "objective terms"), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(w))), err_msg=what)
    np.testing.assert_allclose(want[3], evaluate(model, z, data, opts).objective_terms, rtol=1e-12)
    np.testing.assert_allclose(2 * want[3], want[2], rtol=1e-10)  # objective = sum(residuals^2) / 2


def test_folded_rows_carry_their_galaxys_bulge_light(bulges):
    rows, row_galaxy, first = folded_rows(bulges, 16)
    L = np.asarray(bulge_luminosity(bulges))
    assert np.all(L > 0) and np.any(np.bincount(row_galaxy) > 1)
    np.testing.assert_allclose(bulge_luminosity(rows), L[row_galaxy], rtol=1e-14)  # not each row's last point
    np.testing.assert_array_equal(np.asarray(rows.mask), folded_mask(np.asarray(bulges.mask), 16))
    d = jnp.linspace(0.8, 1.3, rows.n_galaxies)  # the nuisance distance scales it with D^2, as L[3.6]
    nu = Nuisance(0.5, 0.7, rows.distance * d, rows.inclination)
    np.testing.assert_allclose(apply_nuisance(rows, nu).L_bul, L[row_galaxy] * d**2, rtol=1e-14)
    np.testing.assert_allclose(rows.take([0, 0]).L_bul, L[[0, 0]], rtol=1e-14)
    padded = rows.pad_galaxies(rows.n_galaxies + 3)
    assert padded.L_bul.shape == (padded.n_galaxies,) and bulges.L_bul is None


def test_the_fit_layout_is_chosen_as_documented(bulges):
    opts = Likelihood(nuisance=True)
    data = curve_data(bulges)
    assert lm_data(data, get_model("nfw"), opts, "auto").rows is not None  # pointwise, curves of several rows
    assert lm_data(data, get_model("nfw"), opts, "padded").rows is None
    assert lm_data(data, get_model("unified_additive"), opts, "auto").rows is None  # reads its whole curve
    with pytest.raises(ValueError, match="not pointwise"):
        lm_data(data, get_model("unified_additive"), opts, "folded")
    with pytest.raises(ValueError, match="layout must be one of"):
        lm_data(data, get_model("nfw"), opts, "rows")
    short = jaxcoh.mock_catalog(4, seed=1, n_max=10, min_points=4)  # one row per galaxy: nothing saved
    assert lm_data(curve_data(short), get_model("nfw"), opts, "auto").rows is None
