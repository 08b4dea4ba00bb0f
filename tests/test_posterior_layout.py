"""The sampler's log density over length buckets and folded rows (``jaxcoh.curves.posterior``): the buckets are the
optimal grouping, the rows hold every point once, and both densities are the padded one, value and gradient; every
model that claims to be pointwise gives the same density on folded rows."""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcoh.catalog import POINT_FIELDS
from jaxcoh.curves import Likelihood, curve_data, get_model, list_models
from jaxcoh.curves.likelihood import likelihood_model
from jaxcoh.curves.nuisance import NUISANCE, nuisance_at_scores
from jaxcoh.curves.folding import folded_rows
from jaxcoh.curves.posterior import length_buckets, log_density
from jaxcoh.mock import mock_catalog


def brute_force_cost(lengths: np.ndarray, k_max: int, bucket_slots: int) -> int:
    """The fewest slots + bucket_slots per bucket over every split of the sorted distinct lengths into runs."""
    u = np.unique(lengths[lengths > 0])
    count = {v: int(np.sum(lengths == v)) for v in u}
    best = None
    for k in range(1, min(k_max, u.size) + 1):
        for cuts in itertools.combinations(range(1, u.size), k - 1):
            runs = np.split(u, cuts)
            cost = sum(sum(count[v] for v in r) * int(r[-1]) + bucket_slots for r in runs)
            best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 40), min_size=1, max_size=30), k_max=st.integers(1, 4),
       bucket_slots=st.sampled_from([0, 7, 50]))
def test_length_buckets_are_optimal_and_a_partition(lengths, k_max, bucket_slots):
    lengths = np.asarray(lengths)
    buckets = length_buckets(lengths, k_max, bucket_slots)
    members = np.sort(np.concatenate(buckets)) if buckets else np.array([], int)
    np.testing.assert_array_equal(members, np.nonzero(lengths > 0)[0])  # every galaxy with points, once
    assert len(buckets) <= k_max
    if buckets:
        cost = sum(len(b) * int(lengths[b].max()) + bucket_slots for b in buckets)
        assert cost == brute_force_cost(lengths, k_max, bucket_slots)


def _z_near_truth(model, cat, seed):
    rng = np.random.default_rng(seed)
    shared = {p.name: p.to_unconstrained(jnp.asarray(p.init, cat.dtype)) for p in model.shared}
    local = {p.name: p.to_unconstrained(p.start_value(jnp.asarray(rng.uniform(0.2, 0.8, cat.n_galaxies))))
             for p in model.local}
    nu = {p.name: p.to_unconstrained(nuisance_at_scores(p.name, jnp.asarray(rng.normal(0, 1, cat.n_galaxies)), cat))
          for p in NUISANCE}
    return {"shared": shared, "local": local, "nuisance": nu}


def _ragged():
    """A ragged mock (5 to 40 points per curve) with two empty padding galaxies."""
    cat = mock_catalog(14, seed=4, kernel="rar", n_max=40, min_points=5, dtype=jnp.float64).pad_galaxies(8)
    assert not bool(np.all(np.asarray(cat.galaxy_mask)))
    return cat


@pytest.mark.parametrize("name", ["rar", "nfw_lcdm"])
def test_bucketed_and_folded_densities_equal_padded(name):
    """Same value and gradient, every layout in one program: with nuisance and intrinsic scatter for the RAR
    (per-point normalisation terms; folded rows repeat each galaxy's nuisance priors, counted once), the LCDM priors
    (per-galaxy stellar masses: not pointwise, so not folded) for the halo."""
    cat = _ragged()
    opts = Likelihood(nuisance=True, intrinsic_scatter=name == "rar")
    model, data = get_model(name), curve_data(cat)
    z = _z_near_truth(likelihood_model(model, opts), cat, seed=5)
    layouts = ("padded", "bucketed", "folded") if model.pointwise else ("padded", "bucketed")
    densities = [log_density(model, data, opts, lay) for lay in layouts]
    (v0, g0), *others = jax.jit(lambda z: [jax.value_and_grad(f)(z) for f in densities])(z)
    assert np.isfinite(float(v0)) and len(others) == len(layouts) - 1
    for v1, g1 in others:
        np.testing.assert_allclose(float(v1), float(v0), rtol=1e-12)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-9 * float(np.max(np.abs(b))))


def test_folded_rows_hold_every_point_once():
    cat = _ragged()
    rows, row_galaxy, first = folded_rows(cat, 16)
    n = np.asarray(cat.points_per_galaxy)
    np.testing.assert_array_equal(np.bincount(row_galaxy, minlength=cat.n_galaxies), np.maximum(1, -(-n // 16)))
    np.testing.assert_array_equal(np.nonzero(first)[0], np.searchsorted(row_galaxy, np.arange(cat.n_galaxies)))
    mask = np.asarray(rows.mask)
    for f in (f for f in POINT_FIELDS if getattr(cat, f) is not None):  # each galaxy's rows make its curve
        got = [np.asarray(getattr(rows, f))[row_galaxy == j][mask[row_galaxy == j]] for j in range(cat.n_galaxies)]
        want = [np.asarray(getattr(cat, f))[j, : n[j]] for j in range(cat.n_galaxies)]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(rows.distance), np.asarray(cat.distance)[row_galaxy])


def _folded_gap(model, cat, opts) -> float:
    """|folded - padded| / |padded| of the log density at one point (values only, both in one program)."""
    z = _z_near_truth(likelihood_model(model, opts), cat, seed=6)
    densities = [log_density(model, curve_data(cat), opts, lay) for lay in ("padded", "folded")]
    v = [float(x) for x in jax.jit(lambda z: [f(z) for f in densities])(z)]
    return abs(v[1] - v[0]) / abs(v[0])


def test_every_pointwise_model_folds_and_the_check_catches_one_that_does_not():
    """Every registered model flagged pointwise gives the padded density on folded rows (with nuisance: rescaled
    radii and speeds per row), on a mock whose galaxies have bulges: DC14's shape and the LCDM priors take M_star
    from the bulge's light at the curve's last point, which folded rows carry for their galaxy. Flagging a model that
    reads its whole curve (the unified kernel: the recipe's galaxy properties) shows that this check fails where the
    flag is wrong."""
    cat = mock_catalog(8, seed=2, kernel="rar", n_max=40, min_points=5, dtype=jnp.float64)
    cat = dataclasses.replace(cat, V_bul=jnp.where(cat.mask, 0.5 * cat.V_disk, 0.0))
    opts = Likelihood(nuisance=True)
    pointwise = [m for m in map(get_model, list_models()) if m.pointwise]
    assert {"rar", "nfw", "newtonian", "burkert_flat", "einasto_flat", "dc14_lcdm", "nfw_lcdm"} <= {
        m.name for m in pointwise}
    for model in pointwise:
        assert _folded_gap(model, cat, opts) < 1e-12, model.name
    wrong = dataclasses.replace(get_model("unified_multiplicative"), pointwise=True)
    assert _folded_gap(wrong, cat, opts) > 1e-6


def test_layouts_named_and_traced_catalogs_stay_padded():
    cat = mock_catalog(6, seed=1, kernel="rar", n_max=12, dtype=jnp.float64)
    model, opts = get_model("rar"), Likelihood(nuisance=True)
    with pytest.raises(ValueError, match="layout must be one of"):
        log_density(model, curve_data(cat), opts, "flat")
    with pytest.raises(ValueError, match="not pointwise"):
        log_density(get_model("unified_additive"), curve_data(cat), opts, "folded")

    def traced(c):
        return log_density(model, curve_data(c), opts, "bucketed")(_z_near_truth(model, cat, 0))

    with pytest.raises(ValueError, match="concrete catalog"):
        jax.jit(traced)(cat)
    auto = jax.jit(lambda c: log_density(model, curve_data(c), opts)(_z_near_truth(model, cat, 0)))(cat)
    np.testing.assert_allclose(float(auto), float(log_density(model, curve_data(cat), opts, "padded")(
        _z_near_truth(model, cat, 0))), rtol=1e-12)
