"""Bootstrap, grids, profiles and multi-start: values against independent computations, and resumable chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import jaxcoh
from jaxcoh.fmissing import FitSettings, fit, fit_data
from jaxcoh.fmissing.sweeps import (bootstrap, bootstrap_weights, grid_points, hyperparameter_grid, multistart, profile,
                           run_chunked)


@pytest.fixture(scope="module")
def mock_fm():
    cat = jaxcoh.mock_catalog(40, seed=4, n_max=16)
    return cat, jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc")


def test_bootstrap_weights_are_resampling_counts(mock_fm):
    _, fm = mock_fm
    w = np.asarray(bootstrap_weights(fm.in_sample, np.arange(50), seed=3))
    n = int(np.sum(fm.in_sample))
    assert np.all(w.sum(axis=1) == n)
    assert np.all(w[:, ~np.asarray(fm.in_sample)] == 0)
    # Replicate b does not depend on which other replicates are drawn with it (chunks, devices).
    np.testing.assert_array_equal(np.asarray(bootstrap_weights(fm.in_sample, np.arange(7, 9), seed=3)), w[7:9])
    # Counts follow Binomial(n, 1/n): mean 1, variance (1 - 1/n).
    live = w[:, np.asarray(fm.in_sample)]
    assert abs(live.mean() - 1) < 1e-12 and abs(live.var() - (1 - 1 / n)) < 0.15


def test_bootstrap_replicates_equal_individual_weighted_fits(mock_fm, tmp_path):
    _, fm = mock_fm
    table, summary = bootstrap("mass_coherence", fm, n_boot=6, settings=FitSettings(n_starts=4), chunk_size=4, out=tmp_path)
    assert len(table) == 6 and summary["kind"] == "bootstrap" and summary["axes"] == []
    data = fit_data(fm)
    w = np.asarray(bootstrap_weights(fm.in_sample, np.arange(6), seed=0))
    for b in (0, 5):  # a replicate equals a plain weighted global fit with the same counts
        one = fit("mass_coherence", data, FitSettings(n_starts=64), weights=w[b])
        assert table.loc[b, "rms"] == pytest.approx(one.metrics["rms"], rel=1e-6)
    assert summary["params"] == ["K_max", "Psi0", "gamma", "f_R"]
    q = summary["intervals"]["gamma"]
    assert q["interval_95"][0] <= q["interval_68"][0] <= q["median"] <= q["interval_68"][1] <= q["interval_95"][1]


def test_resume_loads_finished_chunks_and_never_mixes_arguments(tmp_path):
    calls = []

    def compute(lo, hi):
        calls.append((lo, hi))
        return pd.DataFrame({"i": np.arange(lo, hi), "x": np.arange(lo, hi) ** 0.5})

    first = run_chunked(10, 4, compute, out=tmp_path, key="aaa")
    assert calls == [(0, 4), (4, 8), (8, 10)]
    (tmp_path / "chunks" / "aaa-00001.csv").unlink()  # as if interrupted before the second chunk was written
    calls.clear()
    again = run_chunked(10, 4, compute, out=tmp_path, key="aaa")
    assert calls == [(4, 8)]
    pd.testing.assert_frame_equal(first, again)  # floats round-trip exactly
    calls.clear()
    run_chunked(10, 4, compute, out=tmp_path, key="bbb")
    assert len(calls) == 3 and not list((tmp_path / "chunks").glob("aaa-*"))
    assert not list((tmp_path / "chunks").glob("*.tmp"))


def test_grid_point_equals_fresh_derivation_and_fit(mock_fm):
    cat, _ = mock_fm
    axes = {"ell0": [3.0, 5.0], "A0": [0.774, 1.5]}
    pts = grid_points(axes)
    assert list(zip(pts["ell0"], pts["A0"], strict=True)) == [(3, 0.774), (3, 1.5), (5, 0.774), (5, 1.5)]
    table, summary = hyperparameter_grid("power_law_sigma", cat, axes, recipe="sparc", settings=FitSettings(n_starts=8),
                                         chunk_size=3)
    assert summary["axes"] == ["ell0", "A0"] and len(table) == 4
    for i in (1, 2):
        h = jaxcoh.Hyperparameters(ell0=float(table.ell0[i]), A0=float(table.A0[i]))
        one = fit("power_law_sigma", jaxcoh.derive_f_missing(h, cat, "sparc"), FitSettings(n_starts=64))
        assert table.loc[i, "rms"] == pytest.approx(one.metrics["rms"], rel=1e-6)
        assert table.loc[i, "n"] == one.metrics["n"]
    with pytest.raises(KeyError, match="unknown grid axes"):
        grid_points({"ell": [1.0]})


def test_profile_minimum_is_the_global_fit(mock_fm):
    _, fm = mock_fm
    best = fit("power_law", fm, FitSettings(n_starts=64))
    beta = best.params["beta"]  # interior on this mock (alpha sits at its bound)
    values = np.linspace(beta * 0.5, beta * 1.5, 11)  # the middle value is the best fit's beta
    table, summary = profile("power_law", fm, "beta", values, settings=FitSettings(n_starts=8))
    assert table["loss"].idxmin() == 5
    assert table.loc[5, "loss"] == pytest.approx(best.loss, rel=1e-8)
    assert np.all(np.diff(table["loss"][:6]) < 0) and np.all(np.diff(table["loss"][5:]) > 0)
    lo, hi = summary["interval_68_on_grid"]
    assert lo <= beta <= hi


def test_multistart_rows_are_every_start(mock_fm):
    _, fm = mock_fm
    table, summary = multistart("power_law_sigma", fm, FitSettings(n_starts=16))
    assert len(table) == 16 and "A_start" in table.columns
    assert summary["n_at_best"] >= 1
    assert table["loss"].min() == pytest.approx(fit("power_law_sigma", fm, FitSettings(n_starts=16)).loss, rel=1e-10)


def test_phases_continue_only_unconverged_rows_with_the_remaining_budget():
    """_in_phases with several starts: every row first (the short phase that picks the best start), then the rows
    still at MAX_ITER from their own states, once per phase."""
    from jaxcoh.solvers import SolverOptions, SolverResult, Status
    from jaxcoh.fmissing.sweeps import _in_phases

    need = np.array([3, 30, 8, 150, 1000])  # iterations each row needs to converge
    calls = []

    def run(rows, start_iter, budget, z):
        done = np.minimum(need[rows] - start_iter, budget)
        status = np.where(start_iter + done >= need[rows], Status.CONVERGED, Status.MAX_ITER)
        best = SolverResult({"a": z["a"] + done}, loss=-(z["a"] + done), grad_norm=np.zeros(len(rows)),
                            n_iter=done, status=status, change=np.zeros(len(rows)))
        return {"a": z["a"] + done}, best, {"rms": np.full(len(rows), 1.0 * budget)}

    def first_call(o):
        calls.append(("first", o.max_iter, 5))
        return run(np.arange(5), 0, o.max_iter, {"a": np.zeros(5)})

    def continue_call(o, idx, z):
        calls.append(("continue", o.max_iter, len(idx)))
        return run(idx, np.asarray(z["a"]), o.max_iter, {"a": np.asarray(z["a"])})

    values, best, metrics = _in_phases(first_call, continue_call, SolverOptions(max_iter=200), n_starts=4)
    # 10 iterations for all, then rows 1, 3, 4 (padded to 4) for 40 more, then rows 3, 4 (padded to 2) for 150 more
    assert calls == [("first", 10, 5), ("continue", 40, 4), ("continue", 150, 2)]
    np.testing.assert_array_equal(best.n_iter, [3, 30, 8, 150, 200])
    np.testing.assert_array_equal(values["a"], [3, 30, 8, 150, 200])
    np.testing.assert_array_equal(best.status, [Status.CONVERGED] * 4 + [Status.MAX_ITER])
    np.testing.assert_array_equal(metrics["rms"], [10, 40, 10, 150, 150])
