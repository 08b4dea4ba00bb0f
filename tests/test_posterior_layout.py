"""The sampler's log density over length buckets (``jaxcoh.curves.posterior``): the buckets are the optimal
grouping, and the bucketed density is the padded one, value and gradient."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcoh.curves import Likelihood, curve_data, get_model
from jaxcoh.curves.likelihood import likelihood_model
from jaxcoh.curves.nuisance import NUISANCE, nuisance_at_scores
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


@pytest.mark.parametrize("name", ["rar", "nfw_lcdm"])
def test_bucketed_density_equals_padded(name):
    """Same value and gradient on a ragged mock (5 to 40 points per curve) with two empty padding galaxies: with
    nuisance and intrinsic scatter for the RAR, the LCDM priors (per-galaxy stellar masses) for the halo."""
    cat = mock_catalog(14, seed=4, kernel="rar", n_max=40, min_points=5, dtype=jnp.float64).pad_galaxies(8)
    assert not bool(np.all(np.asarray(cat.galaxy_mask)))
    opts = Likelihood(nuisance=True, intrinsic_scatter=name == "rar")
    model, data = get_model(name), curve_data(cat)
    z = _z_near_truth(likelihood_model(model, opts), cat, seed=5)
    value_and_grad = {layout: jax.jit(jax.value_and_grad(log_density(model, data, opts, layout)))
                      for layout in ("padded", "bucketed")}
    (v0, g0), (v1, g1) = (f(z) for f in value_and_grad.values())
    assert np.isfinite(float(v0))
    np.testing.assert_allclose(float(v1), float(v0), rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-9 * float(np.max(np.abs(b))))


def test_layouts_named_and_traced_catalogs_stay_padded():
    cat = mock_catalog(6, seed=1, kernel="rar", n_max=12, dtype=jnp.float64)
    model, opts = get_model("rar"), Likelihood(nuisance=True)
    with pytest.raises(ValueError, match="layout must be one of"):
        log_density(model, curve_data(cat), opts, "flat")

    def traced(c):
        return log_density(model, curve_data(c), opts, "bucketed")(_z_near_truth(model, cat, 0))

    with pytest.raises(ValueError, match="concrete catalog"):
        jax.jit(traced)(cat)
    auto = jax.jit(lambda c: log_density(model, curve_data(c), opts)(_z_near_truth(model, cat, 0)))(cat)
    np.testing.assert_allclose(float(auto), float(log_density(model, curve_data(cat), opts, "padded")(
        _z_near_truth(model, cat, 0))), rtol=1e-12)
