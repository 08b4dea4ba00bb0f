"""The padded Catalog pytree: structure, transformations, masked reductions, and selection."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxcoh import Catalog, mock_catalog
from jaxcoh.catalog import GALAXY_FIELDS, POINT_FIELDS, GalaxyNames
from jaxcoh.numerics import at_least, clip, masked_mean, masked_sum
from jaxcoh.properties import window_median


def ragged(lengths, seed=0):
    """Curves with the given lengths (increasing radii) and per-galaxy fields, as plain numpy."""
    rng = np.random.default_rng(seed)
    curves = []
    for n in lengths:
        c = {f: rng.uniform(1, 100, n) for f in ("V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul")}
        c["R"] = np.cumsum(rng.uniform(0.1, 1.0, n))
        c["V_gas"] = c["V_gas"] * rng.choice([-1, 1], n)
        curves.append(c)
    gal = {"distance": rng.uniform(1, 50, len(lengths)), "quality": rng.integers(1, 4, len(lengths)),
           "inclination": rng.uniform(20, 90, len(lengths))}
    return curves, gal


@pytest.fixture(scope="module")
def small():
    curves, gal = ragged([3, 10, 17, 1, 40, 5])
    return Catalog.from_ragged(curves, gal, [f"g{i}" for i in range(6)], source="test"), curves, gal


def test_shapes_counts_and_summary(small):
    cat, curves, _ = small
    assert cat.n_galaxies == 6 and cat.n_max == 40 and cat.n_points == 76
    np.testing.assert_array_equal(cat.points_per_galaxy, [3, 10, 17, 1, 40, 5])
    assert cat.names[4] == "g4" and list(cat.names) == [f"g{i}" for i in range(6)]
    s = str(cat)
    # The device the arrays live on, whatever the backend (the suite runs unchanged on a GPU).
    assert "6 galaxies" in s and "76 points" in s and "float64" in s and f"on {jax.devices()[0]}" in s
    assert f"{1 - 76 / 240:.1%}" in s
    cat.validate()
    for f in ("R", "V_obs", "V_gas"):
        got = np.asarray(getattr(cat, f))
        for i, c in enumerate(curves):
            np.testing.assert_array_equal(got[i, : len(c[f])], c[f])
    assert cat.SB_disk is None  # optional fields stay absent


def test_padding_holds_safe_values(small):
    cat = small[0]
    pad = ~np.asarray(cat.mask)
    assert np.all(np.asarray(cat.R)[pad] > 0) and np.all(np.asarray(cat.e_V_obs)[pad] > 0)


def test_pytree_roundtrip_jit_and_vmap(small):
    cat = small[0]
    leaves, treedef = jax.tree_util.tree_flatten(cat)
    assert len(leaves) == len(POINT_FIELDS) - 2 + 1 + len(GALAXY_FIELDS)  # SB_* are None here
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert back.names == cat.names and back.source == cat.source
    for f in ("R", "mask", "quality"):
        np.testing.assert_array_equal(getattr(back, f), getattr(cat, f))

    @jax.jit
    def real_sum(c):
        return masked_sum(c.V_obs, c.mask, axis=1)

    per_gal = jax.vmap(lambda c: masked_sum(c.V_obs, c.mask))(cat)  # vmap over galaxies of a whole Catalog
    np.testing.assert_allclose(real_sum(cat), per_gal, rtol=1e-14)
    # jit returns a Catalog too, with static names preserved
    out = jax.jit(lambda c: dataclasses.replace(c, V_obs=c.V_obs * 2))(cat)
    assert isinstance(out, Catalog) and out.names == cat.names
    np.testing.assert_allclose(out.V_obs, 2 * np.asarray(cat.V_obs))


def test_masked_reductions_ignore_padding_against_unpadded_numpy(small):
    cat, curves, _ = small
    # Poison the padding: masked reductions must not see it.
    poisoned = dataclasses.replace(cat, V_obs=jnp.where(cat.mask, cat.V_obs, jnp.nan))
    means = np.asarray(jax.jit(lambda c: masked_mean(c.V_obs, c.mask, axis=1))(poisoned))
    np.testing.assert_allclose(means, [np.mean(c["V_obs"]) for c in curves], rtol=1e-14)
    total = float(masked_sum(poisoned.V_gas ** 2, poisoned.mask))
    assert total == pytest.approx(sum(np.sum(c["V_gas"] ** 2) for c in curves), rel=1e-14)
    # ... and their gradient is finite (zero) on the padding.
    g = jax.grad(lambda v: masked_mean(v, cat.mask, axis=1).sum())(poisoned.V_obs)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~np.asarray(cat.mask)] == 0)


_window_median = jax.jit(window_median)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(values=hnp.arrays(np.float64, (6, 10), elements=st.sampled_from([0.0, 1.5, 2.0, 2.0, 7.25, -3.0, 40.0])),
       n_valid=hnp.arrays(np.int64, (6,), elements=st.integers(0, 10)))
def test_window_median_is_numpys_median_of_the_valid_entries(values, n_valid):
    """The rank-based median against numpy on the valid entries (few distinct values: ties everywhere), NaN for a row
    with none; its gradient picks the middle entries."""
    valid = np.arange(10)[None, :] >= (10 - n_valid)[:, None]
    got = np.asarray(_window_median(jnp.asarray(values), jnp.asarray(valid)))
    want = [np.median(v[m]) if m.any() else np.nan for v, m in zip(values, valid, strict=True)]
    np.testing.assert_array_equal(got, want)
    g = np.asarray(jax.grad(lambda v: jnp.nansum(window_median(v, jnp.asarray(valid))))(jnp.asarray(values)))
    assert np.all(np.isfinite(g)) and np.all(g[~valid] == 0)
    np.testing.assert_allclose(g.sum(axis=1), np.where(n_valid > 0, 1.0, 0.0))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(x=hnp.arrays(np.float64, (16,), elements=st.floats(-1e3, 1e3, allow_subnormal=False)  # (XLA flushes those)
                    | st.sampled_from([-1.0, 2.0, np.inf, -np.inf, np.nan])))
def test_clip_and_at_least_are_jnp_values_with_select_derivatives(x):
    """Same values as jnp.clip / jnp.maximum (NaN and infinities included); derivative 1 inside, 0 outside."""
    x = jnp.asarray(x)
    np.testing.assert_array_equal(clip(x, -1.0, 2.0), jnp.clip(x, -1.0, 2.0))
    np.testing.assert_array_equal(at_least(x, -1.0), jnp.maximum(x, -1.0))
    finite = np.isfinite(np.asarray(x))
    d_clip = np.asarray(jax.vmap(jax.grad(lambda v: clip(v, -1.0, 2.0)))(x))
    d_floor = np.asarray(jax.vmap(jax.grad(lambda v: at_least(v, -1.0)))(x))
    xs = np.asarray(x)
    np.testing.assert_array_equal(d_clip[finite], ((xs >= -1) & (xs <= 2)).astype(float)[finite])
    np.testing.assert_array_equal(d_floor[finite], (xs >= -1).astype(float)[finite])


def test_select_by_names_mask_and_cuts(small):
    cat, curves, gal = small
    sub = cat.select(names=["g4", "g1"])
    assert list(sub.names) == ["g1", "g4"] and sub.n_max == 40  # catalog order, re-padded to its longest curve
    np.testing.assert_array_equal(np.asarray(sub.V_obs)[0, :10], curves[1]["V_obs"])
    assert cat.select(min_points=10).n_galaxies == 3
    assert cat.select(min_points=5).n_max == 40 and cat.select(names=["g0", "g5"]).n_max == 5
    keep = np.asarray(gal["quality"]) <= 2
    assert list(cat.select(quality_max=2).names) == [n for n, k in zip(cat.names, keep, strict=True) if k]
    incl = np.asarray(gal["inclination"]) >= 30
    assert cat.select(inclination_min=30).n_galaxies == int(incl.sum())
    with pytest.raises(KeyError, match="nope"):
        cat.select(names=["nope"])
    with pytest.raises(ValueError, match="shape"):
        cat.select(mask=[True])


def test_select_points_compacts_curves(small):
    cat, curves, _ = small
    keep = np.asarray(cat.V_obs) > 50
    sp = cat.select_points(keep)
    sp.validate()
    for i, c in enumerate(curves):
        want = c["V_obs"][c["V_obs"] > 50]
        np.testing.assert_array_equal(np.asarray(sp.V_obs)[i, : want.size], want)
        assert int(sp.points_per_galaxy[i]) == want.size


def test_pad_galaxies_adds_empty_rows(small):
    cat = small[0]
    p = cat.pad_galaxies(4)
    assert p.n_galaxies == 8 and p.n_points == cat.n_points
    assert not np.asarray(p.galaxy_mask)[6:].any() and p.names[7] == "<pad1>"
    assert cat.pad_galaxies(3) is cat


def test_to_pandas(small):
    cat, curves, gal = small
    pts = cat.to_pandas()
    assert len(pts) == cat.n_points and list(pts.galaxy[:3]) == ["g0"] * 3
    np.testing.assert_array_equal(pts.V_gas[pts.galaxy == "g2"], curves[2]["V_gas"])
    g = cat.to_pandas("galaxies")
    assert list(g.n_points) == [3, 10, 17, 1, 40, 5]
    np.testing.assert_allclose(g.distance, gal["distance"])


def test_galaxy_names_hash_once_and_compare():
    a, b = GalaxyNames(["x", "y"]), GalaxyNames(["x", "y"])
    assert a == b and hash(a) == hash(b) and a != GalaxyNames(["y", "x"])
    m = GalaxyNames.numbered("MOCK", 3)
    assert list(m) == ["MOCK0000000", "MOCK0000001", "MOCK0000002"] and m[-1] == "MOCK0000002"
    assert m == GalaxyNames(list(m))


def test_astype_float32(small):
    c32 = small[0].astype("float32")
    assert c32.dtype == np.float32 and c32.quality.dtype == jnp.int32 and c32.mask.dtype == bool


def test_mock_is_deterministic_and_prefix_stable():
    a = mock_catalog(30, seed=7)
    b = mock_catalog(30, seed=7)
    c = mock_catalog(30, seed=8)
    for f in ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "distance", "quality"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.V_obs, c.V_obs)
    small_one = mock_catalog(10, seed=7)
    np.testing.assert_array_equal(small_one.V_obs, np.asarray(a.V_obs)[:10])
    a.validate()


def test_mock_is_physically_plausible():
    cat, truth = mock_catalog(400, seed=2, return_truth=True)
    df = cat.to_pandas("galaxies")
    assert df.n_points.min() >= 6 and df.n_points.max() <= 64
    assert 0.01 < df.L36.min() and df.L36.max() < 1000  # SPARC spans 0.01-490 1e9 Lsun
    assert 0.1 < df.R_disk.min() and df.R_disk.max() < 40
    assert 10 < df.V_flat.median() < 300
    pts = cat.to_pandas()
    assert (pts.e_V_obs > 0).all() and (pts.V_obs > 0).all()
    # Observed speeds exceed the baryonic ones on average, as the truth kernel says they should.
    vbar = np.sqrt(pts.V_gas**2 + 0.5 * pts.V_disk**2 + 0.7 * pts.V_bul**2)
    assert (pts.V_obs / vbar).median() > 1.2
    # Nuisance truths scatter as declared: Upsilon_disk 0.1 dex around 0.5.
    assert np.std(np.log10(truth.upsilon_disk)) == pytest.approx(0.1, rel=0.2)
    assert np.median(truth.upsilon_disk) == pytest.approx(0.5, rel=0.05)


def test_mock_float32_is_the_float64_catalog_rounded():
    a = mock_catalog(12, seed=4)
    b = mock_catalog(12, seed=4, dtype="float32")
    assert b.dtype == np.float32
    np.testing.assert_allclose(b.V_obs, np.asarray(a.V_obs).astype(np.float32), rtol=0)

