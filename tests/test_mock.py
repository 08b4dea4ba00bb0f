"""jaxcoh's mock catalogs: deterministic, SPARC-like baryons (negative Vgas included) and a known truth."""

from __future__ import annotations

import numpy as np
import pytest

import jaxcoh
from jaxcoh import mock
from jaxcoh.constants import G_NEWTON


def test_gas_with_a_central_hole_pulls_outward_and_keeps_its_mass():
    """A disk with a central hole: negative V^2 inside the hole, and far outside the Keplerian speed of the whole gas
    mass (V^2 is linear in the surface density, so the hole's subtraction must leave the total mass as asked)."""
    rng = np.random.default_rng(0)
    mass, scale = np.full(400, 3e9), np.full(400, 2.0)
    R = np.array([[0.05, 0.2, 500.0]])
    V = mock._gas_speed(rng, mass, scale, np.broadcast_to(R, (400, 3)))
    holes = V[:, 0] < 0
    assert 0.6 < holes.mean() < 0.95  # HOLE_FRACTION of the disks, within sampling error
    np.testing.assert_allclose(V[:, 2] ** 2 * 500.0 / G_NEWTON, mass, rtol=2e-3)  # Keplerian far out: M(<inf)
    assert np.all(V[~holes, :2] > 0)


def test_the_mock_has_negative_vgas_like_sparc():
    """SPARC tabulates negative Vgas at 361 of 3391 points (10.6%); the mock has a similar share, so the signed gas
    term V_gas |V_gas| is exercised everywhere the mock is used, and F_missing is still derived for every galaxy."""
    cat = jaxcoh.mock_catalog(400, seed=2)
    m = np.asarray(cat.mask)
    share = np.mean(np.asarray(cat.V_gas)[m] < 0)
    assert 0.05 < share < 0.2
    fm = jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc")
    assert int(fm.in_sample.sum()) >= 395


def test_mock_is_deterministic_and_a_prefix_of_larger_ones():
    a = jaxcoh.mock_catalog(30, seed=4, n_max=16)
    b = jaxcoh.mock_catalog(50, seed=4, n_max=16)
    for f in ("R", "V_obs", "V_gas", "distance"):
        np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f))[:30])
    with pytest.raises(ValueError, match="n_galaxies must be positive"):
        jaxcoh.mock_catalog(0)


def test_fit_recovers_the_truth_of_a_rar_mock(tmp_path, monkeypatch):
    """`jaxcoh fit --model rar --mock-kernel rar`: curves made by the RAR at g_dagger = 1.2e-10 with every nuisance
    value drawn from the fit's own priors; the fit recovers g_dagger within 3 of its stated standard errors."""
    import json

    from jaxcoh.cli import main

    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "fit"
    args = ["fit", "--model", "rar", "--mock-kernel", "rar", "--mock-galaxies", "150", "--mock-seed", "5",
            "--cuts", "none", "--n-starts", "1", "--galaxy-starts", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    fit = json.loads((out / "fit.json").read_text())
    g, e = fit["params"]["g_dagger"], fit["stderr"]["g_dagger"]
    assert fit["status"] == "CONVERGED" and 0 < e < 0.05 * g
    assert abs(g - 1.2e-10) < 3 * e
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["data"]["kernel"] == "rar"
    assert main([*args[:-2], "--mock-kernel", "multiplicative", "--mock-scatter", "0.05", "--out",
                 str(tmp_path / "x")]) == 2  # a scatter needs a curve-model truth
