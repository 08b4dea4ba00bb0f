"""``jaxcoh sample`` end to end on a tiny RAR mock with a known truth (g_dagger = 1.2e-10, 0.05 dex scatter): the
files and their schema, the posterior against the truth, warnings, resume without re-sampling, an interrupted run
resumed, the plots. One short run (2 chains x 120 draws) shared by every test: its compiled programs are reused by
the re-runs (same data, same settings)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("blackjax")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=FutureWarning)
    import arviz as az

from conftest import full_optimization
from jaxcoh.cli import COMMANDS, main
from jaxcoh.cli.common import likelihood
from jaxcoh.sampling.posterior import SUMMARY_COLUMNS

# One worker for the module: its tests share the module's sampling run (a fixture each worker would make again).
pytestmark = pytest.mark.xdist_group("sample_run")

TRUTH = {"g_dagger": 1.2e-10, "sigma_int": 0.05}
N_GAL, CHAINS, DRAWS, CHUNK = 5, 2, 120, 40
ARGS = ["sample", "--mock-galaxies", str(N_GAL), "--mock-seed", "1", "--mock-kernel", "rar", "--mock-scatter",
        str(TRUTH["sigma_int"]), "--cuts", "none", "--intrinsic-scatter", "--chains", str(CHAINS), "--warmup", "150",
        "--draws", str(DRAWS), "--chunk-size", str(CHUNK), "--start", "prior"]  # no MAP fit: its compilation would triple the time
NUISANCE = ("upsilon_disk", "upsilon_bulge", "distance", "inclination")


def run_cli(out, *extra) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), full_optimization():  # the log handler is made inside main(), on this stream
        rc = main([*ARGS, "--out", str(out), *extra])
    return rc, err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    rc, err = run_cli(out)
    assert rc == 0, err
    return out, err


def draws_of(path) -> dict[str, np.ndarray]:
    post = az.from_netcdf(str(path)).posterior
    return {k: np.asarray(v) for k, v in post.data_vars.items()}


def test_files_and_their_schema(run):
    out, _ = run
    for f in ("posterior.nc", "summary.csv", "per_galaxy_summary.csv", "posterior_curves.csv", "sample.json",
              "config.toml", "provenance.json"):
        assert (out / f).is_file(), f
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["parameter", *SUMMARY_COLUMNS]
    assert list(summary["parameter"]) == ["g_dagger", "sigma_int"]
    per_galaxy = pd.read_csv(out / "per_galaxy_summary.csv")
    assert list(per_galaxy.columns) == ["parameter", *SUMMARY_COLUMNS]
    assert len(per_galaxy) == len(NUISANCE) * N_GAL
    assert {p.split("[")[0] for p in per_galaxy["parameter"]} == set(NUISANCE)
    info = json.loads((out / "sample.json").read_text())
    assert info["n_draws_total"] == CHAINS * DRAWS and info["n_chains"] == CHAINS and info["n_draws"] == DRAWS
    assert isinstance(info["divergences"], int) and 0 <= info["divergences"] <= CHAINS * DRAWS
    assert len(info["step_size"]) == CHAINS and all(s > 0 for s in info["step_size"])
    assert 1 <= info["tree_depth"]["mean"] <= info["tree_depth"]["max"] <= 10
    wall = info["wall_s"]
    assert 0 < wall["compile"] < wall["total"] and wall["total_excluding_compile"] > 0
    assert info["config"]["likelihood"]["intrinsic_scatter"] is True
    assert info["n_dims"] == 2 + len(NUISANCE) * N_GAL and info["chunks_resumed"] == 0
    curves = pd.read_csv(out / "posterior_curves.csv")
    assert curves["galaxy"].nunique() == N_GAL and len(curves) == info["n_points"]
    q = curves[[c for c in curves.columns if c.startswith("V_model_q")]].to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0)  # quantiles in order
    assert 'intrinsic_scatter = true' in (out / "config.toml").read_text()
    from jaxcoh.tables import posterior_table

    table = posterior_table(summary, latex=False)  # the summary as a table for a paper (jaxcoh table)
    assert table["Parameter"].tolist() == ["g_dagger [m s-2]", "sigma_int [dex]"]
    assert table["R-hat"].tolist() == [f"{r:.3f}" for r in summary["r_hat"]]


def test_netcdf_round_trip_in_natural_units(run):
    out, _ = run
    idata = az.from_netcdf(str(out / "posterior.nc"))
    post = idata.posterior
    assert post["g_dagger"].dims == ("chain", "draw") and post["g_dagger"].shape == (CHAINS, DRAWS)
    assert post["distance"].dims == ("chain", "draw", "galaxy")
    assert list(post["galaxy"].values) == [f"MOCK{i:07d}" for i in range(N_GAL)]
    g = np.asarray(post["g_dagger"])
    assert np.all((g > 1e-12) & (g < 1e-8))  # values, not the sampler's unconstrained coordinates
    assert np.all(np.asarray(post["inclination"]) > 0) and np.all(np.asarray(post["upsilon_disk"]) > 0)
    for stat in ("diverging", "tree_depth", "n_steps", "acceptance_rate", "energy", "step_size", "lp"):
        assert idata.sample_stats[stat].shape == (CHAINS, DRAWS)
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert math.isclose(summary.loc["g_dagger", "mean"], g.mean(), rel_tol=1e-9)


def test_posterior_covers_the_truth(run):
    out, _ = run
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    for name, truth in TRUTH.items():
        mean, sd = summary.loc[name, ["mean", "sd"]]
        assert abs(mean - truth) < 4 * sd, (name, mean, sd)
    assert summary.loc["g_dagger", "sd"] < 0.5 * TRUTH["g_dagger"]  # the data constrain it


def test_short_run_warns(run):
    out, err = run
    info = json.loads((out / "sample.json").read_text())
    assert any("ess_bulk < 400" in w for w in info["warnings"])  # 240 draws cannot give 400 effective ones
    assert "ess_bulk < 400" in err


def test_rerun_resumes_without_sampling(run, monkeypatch, tmp_path):
    out, _ = run
    before = draws_of(out / "posterior.nc")

    def fail(*a, **k):
        raise AssertionError("a complete run was sampled again")

    monkeypatch.setattr("jaxcoh.sampling.nuts.sample_chunk", fail)
    monkeypatch.setattr("jaxcoh.sampling.nuts.warmup", fail)
    monkeypatch.setattr("jaxcoh.curves.sampling.fit", fail)
    rc, err = run_cli(out)
    assert rc == 0, err
    after = draws_of(out / "posterior.nc")
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert json.loads((out / "sample.json").read_text())["chunks_resumed"] == DRAWS // CHUNK


def test_interrupted_run_resumes_with_identical_draws(run, monkeypatch, tmp_path):
    out, _ = run
    from jaxcoh.curves.sampling import _Store

    save = _Store.save_chunk

    def interrupt_at_second_chunk(self, k, *a, **kw):
        if k == 1:
            raise KeyboardInterrupt
        return save(self, k, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(_Store, "save_chunk", interrupt_at_second_chunk)
        rc, _ = run_cli(tmp_path)
    assert rc == 130 and not (tmp_path / "posterior.nc").exists()

    def fail(*a, **k):
        raise AssertionError("the warm-up or the MAP was redone on resume")

    monkeypatch.setattr("jaxcoh.sampling.nuts.warmup", fail)
    monkeypatch.setattr("jaxcoh.curves.sampling.fit", fail)
    rc, err = run_cli(tmp_path)
    assert rc == 0, err
    assert json.loads((tmp_path / "sample.json").read_text())["chunks_resumed"] == 1
    expected, got = draws_of(out / "posterior.nc"), draws_of(tmp_path / "posterior.nc")
    for k in expected:
        np.testing.assert_array_equal(expected[k], got[k])


def test_plots_of_a_sample_dir(run, tmp_path):
    pytest.importorskip("matplotlib")
    from jaxcoh.plots import available_plots, plot_result_dir

    out, _ = run
    avail = available_plots(out)
    assert all(avail[n] is None for n in ("posterior_traces", "posterior_corner", "posterior_curves"))
    written = plot_result_dir(out, tmp_path, formats=("png",), galaxies=3)
    assert set(written) == {"posterior_traces", "posterior_corner", "posterior_curves"}
    assert all(p.stat().st_size > 1000 for ps in written.values() for p in ps)


def test_chains_start_at_the_map_in_its_coordinates(monkeypatch):
    """The MAP's values go into the sampler's coordinates and come back as the same values."""
    from types import SimpleNamespace

    from jaxcoh.curves import Likelihood, get_model
    from jaxcoh.curves.likelihood import likelihood_model
    from jaxcoh.curves.sampling import map_position, to_natural

    model = likelihood_model(get_model("rar"), Likelihood(intrinsic_scatter=True))
    nuisance = {"upsilon_disk": np.array([0.4, 0.6]), "upsilon_bulge": np.array([0.7, 0.8]),
                "distance": np.array([3.0, 40.0]), "inclination": np.array([35.0, 80.0])}
    fitted = SimpleNamespace(params={"g_dagger": 1.1e-10, "sigma_int": 0.04}, local={}, nuisance=nuisance,
                             likelihood=Likelihood(intrinsic_scatter=True))
    z = map_position(model, fitted, np.float64)
    back = to_natural(model, jax.tree.map(lambda a: a[None, None], z))
    for k, v in fitted.params.items():
        np.testing.assert_allclose(back["shared"][k][0, 0], v, rtol=1e-12)
    for k, v in nuisance.items():
        np.testing.assert_allclose(back["nuisance"][k][0, 0], v, rtol=1e-10)


def test_intrinsic_scatter_option_for_every_curve_command():
    for name in ("fit", "compare", "sample"):
        assert "intrinsic_scatter" in {o.name for o in COMMANDS[name].options}, name
    values = {"nuisance": "full", "loss": "chi2", "error_floor": 0.0, "recipe": "sparc"}
    assert likelihood({**values, "intrinsic_scatter": True}).intrinsic_scatter
    assert not likelihood(values).intrinsic_scatter


def test_likelihood_with_scatter_is_the_documented_gaussian():
    """-ln L = sum (V_obs - V)^2 / (2 sigma^2) + ln(sigma / e), sigma^2 = e^2 + (ln 10 / 2 sigma_int V)^2."""
    from jaxcoh.curves import Likelihood, curve_data, evaluate, get_model, prepare
    from jaxcoh.curves.likelihood import likelihood_model
    from jaxcoh.mock import mock_catalog

    cat = mock_catalog(3, seed=2, kernel="rar", n_max=8, dtype=jnp.float64)
    opts = Likelihood(nuisance=False, intrinsic_scatter=True)
    model = likelihood_model(get_model("rar"), opts)
    data = prepare(curve_data(cat), opts)
    values = {"g_dagger": 1.1e-10, "sigma_int": 0.07}
    z = {"shared": model.shared.to_unconstrained({k: jnp.asarray(v) for k, v in values.items()}), "local": {}}
    ev = jax.jit(evaluate, static_argnums=(0, 3))(model, z, data, opts)
    m = np.asarray(ev.mask)
    V, V_obs, e = (np.asarray(x)[m] for x in (ev.V_model, ev.V_obs, data.fixed.inv_err))
    e = 1.0 / e
    sigma2 = e**2 + (math.log(10) / 2 * values["sigma_int"] * np.abs(V)) ** 2
    expected = np.sum((V_obs - V) ** 2 / (2 * sigma2) + 0.5 * np.log(sigma2 / e**2))
    np.testing.assert_allclose(float(np.sum(ev.objective_terms)), expected, rtol=1e-10)


@pytest.mark.parametrize(("model", "mass_matrix", "local"), [("nfw", "diagonal", {"V200", "c200"}),
                                                              ("per_galaxy_amplitude", "arrowhead", {"amplitude"})])
def test_other_model_structures_sample(model, mass_matrix, local, tmp_path):
    """The command beyond the RAR: a halo without shared parameters (the arrowhead default falls back to the
    diagonal) and a model with shared and per-galaxy parameters besides the nuisance (arrowhead blocks of 5)."""
    args = ["sample", "--mock-galaxies", "4", "--mock-seed", "2", "--mock-kernel", model, "--cuts", "none",
            "--model", model, "--chains", "1", "--warmup", "40", "--draws", "20", "--chunk-size", "20",
            "--start", "prior", "--out", str(tmp_path)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(args) == 0, err.getvalue()
    info = json.loads((tmp_path / "sample.json").read_text())
    assert info["mass_matrix"] == mass_matrix and info["n_draws_total"] == 20
    draws = draws_of(tmp_path / "posterior.nc")
    assert local <= set(draws) and set(NUISANCE) <= set(draws)
    assert all(np.all(np.isfinite(v)) for v in draws.values())
    per_galaxy = pd.read_csv(tmp_path / "per_galaxy_summary.csv")
    assert {p.split("[")[0] for p in per_galaxy["parameter"]} == local | set(NUISANCE)


def test_command_defaults_are_the_api_defaults():
    """`jaxcoh sample` keeps its own literals (its module does not import jax); they must be SampleSettings'."""
    from jaxcoh.curves.sampling import SampleSettings

    defaults = {o.name: o.default for o in COMMANDS["sample"].options}
    api = SampleSettings()
    for cli_name, field in (("chains", "n_chains"), ("warmup", "n_warmup"), ("draws", "n_draws"),
                            ("chunk_size", "chunk_size"), ("mass_matrix", "mass_matrix"),
                            ("target_accept", "target_accept"), ("max_tree_depth", "max_tree_depth"),
                            ("seed", "seed"), ("start", "start")):
        assert defaults[cli_name] == getattr(api, field), cli_name


def test_the_chains_start_at_the_joint_maximum_whatever_the_marginal_of_the_fit(monkeypatch):
    """The sampler starts at the mode of the posterior it samples, the joint one: `marginal="auto"` (Laplace steps
    beyond 1000 galaxies) is resolved to the joint MAP before the start's fit; an explicit "laplace" is kept."""
    import jaxcoh
    from jaxcoh.curves import sampling
    from jaxcoh.curves.fitting import CurveSettings

    class Stop(Exception):
        pass

    seen = []

    def fit(model, cat, settings):
        seen.append(settings.marginal)
        raise Stop

    monkeypatch.setattr(sampling, "fit", fit)
    cat = jaxcoh.mock_catalog(3, seed=1, n_max=8)
    for marginal in ("auto", "laplace"):
        with pytest.raises(Stop):
            sampling.sample_curves("rar", cat, sampling.SampleSettings(n_chains=1, n_warmup=1, n_draws=1),
                                   CurveSettings(errors=False, marginal=marginal))
    assert seen == ["joint", "laplace"]
