"""The NUTS engine (jaxcoh.sampling) on Gaussians with known answers: recovery, exact resume, ArviZ output."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Skip, not fail, without the optional "sample" extra (blackjax, arviz).  Import arviz only through our module:
# it silences arviz 0.23's once-a-day FutureWarning on import, which filterwarnings=error would make a failure.
nuts = pytest.importorskip("jaxcoh.sampling.nuts")
posterior = pytest.importorskip("jaxcoh.sampling.posterior")
az = posterior.az

pytestmark = pytest.mark.xdist_group("sampling_engine")  # one worker: its tests share one sampling run

G = 4
GALAXIES = [f"G{i:03d}" for i in range(G)]
N_CHAINS, N_WARMUP, N_DRAWS, CHUNK = 4, 300, 400, 100

# x = [mu, log_tau, a_0..a_3]: shared block strongly correlated, each a_i weakly tied to mu.
MEAN = np.array([1.0, -0.5, 0.3, -1.2, 2.0, 0.0])
SD = np.array([0.5, 2.0, 1.0, 0.3, 1.5, 0.8])
CORR = np.eye(6)
CORR[0, 1] = CORR[1, 0] = 0.85
CORR[0, 2:] = CORR[2:, 0] = 0.15
COV = CORR * np.outer(SD, SD)
PRECISION = np.linalg.inv(COV)


def flat(p):
    return jnp.concatenate([jnp.stack([p["shared"]["mu"], p["shared"]["log_tau"]]), p["local"]["a"]])


def logdensity(p):
    r = flat(p) - MEAN
    return -0.5 * r @ (PRECISION @ r)


POSITION0 = {"shared": {"mu": jnp.asarray(0.9), "log_tau": jnp.asarray(-0.4)}, "local": {"a": jnp.asarray(MEAN[2:])}}


@pytest.fixture(scope="module")
def diagonal_run(tmp_path_factory):
    """One full run; the state after every chunk is saved to disk as a caller would."""
    folder = tmp_path_factory.mktemp("nuts")
    saved = []

    def on_chunk(draws, stats, state):
        saved.append(nuts.save_state(folder / f"state_{int(state.n_done)}.npz", state))

    result = nuts.run_nuts(
        logdensity, POSITION0, seed=7, n_chains=N_CHAINS, n_warmup=N_WARMUP, n_draws=N_DRAWS,
        chunk_size=CHUNK, mass_matrix="diagonal", on_chunk=on_chunk,
    )
    return result, saved


@pytest.fixture(scope="module")
def idata(diagonal_run):
    result, _ = diagonal_run
    return posterior.to_inference_data(result.draws, result.stats, galaxy_names=GALAXIES)


def marginals(idata):
    """(estimated means, sds, mcse of each) in the order of MEAN."""
    post = idata.posterior
    stacked = lambda ds: np.concatenate([[float(ds["mu"]), float(ds["log_tau"])], np.asarray(ds["a"])])
    return (stacked(post.mean(("chain", "draw"))), stacked(post.std(("chain", "draw"))),
            stacked(az.mcse(idata, method="mean")), stacked(az.mcse(idata, method="sd")))


def test_shapes_and_stats(diagonal_run):
    result, saved = diagonal_run
    assert result.draws["local"]["a"].shape == (N_CHAINS, N_DRAWS, G)
    assert result.draws["shared"]["mu"].shape == (N_CHAINS, N_DRAWS)
    assert set(result.stats._fields) == set(posterior.SAMPLE_STATS)
    for field in result.stats:
        assert field.shape == (N_CHAINS, N_DRAWS)
    assert int(result.state.n_done) == N_DRAWS and len(saved) == N_DRAWS // CHUNK
    assert not result.stats.diverging.any()
    assert np.all(result.stats.n_steps <= 2 ** result.stats.tree_depth)
    assert 0.6 < result.stats.acceptance_rate.mean() < 0.98
    # one step size per chain, the adapted one, on every draw
    per_chain = np.broadcast_to(result.state.step_size[:, None], (N_CHAINS, N_DRAWS))
    np.testing.assert_array_equal(result.stats.step_size, per_chain)


def test_recovers_known_gaussian(idata):
    mean, sd, mcse_mean, mcse_sd = marginals(idata)
    assert np.all(np.abs(mean - MEAN) < 5 * mcse_mean), (mean, MEAN, mcse_mean)
    assert np.all(np.abs(sd - SD) < 5 * mcse_sd), (sd, SD, mcse_sd)


def test_resume_from_saved_state_gives_identical_draws(diagonal_run):
    result, saved = diagonal_run
    state = nuts.load_state(saved[1], POSITION0)  # as if killed after the second chunk
    assert int(state.n_done) == 2 * CHUNK
    resumed = nuts.run_nuts(logdensity, POSITION0, n_draws=N_DRAWS, chunk_size=CHUNK, resume_state=state)
    tail = jax.tree.map(lambda x: x[:, 2 * CHUNK:], (result.draws, result.stats))
    jax.tree.map(np.testing.assert_array_equal, (resumed.draws, resumed.stats), tail)
    jax.tree.map(np.testing.assert_array_equal, resumed.state, result.state)


def test_structured_mass_matrix_is_dense_on_shared_block(tmp_path):
    idx = nuts.shared_indices(POSITION0)
    # blackjax ravels dicts in key order: "local" (a_0..a_3) then "shared" (log_tau, mu)
    np.testing.assert_array_equal(idx, [4, 5])
    result = nuts.run_nuts(
        logdensity, POSITION0, seed=3, n_chains=2, n_warmup=N_WARMUP, n_draws=CHUNK, chunk_size=CHUNK,
        mass_matrix="structured",
    )
    imm = result.state.inverse_mass_matrix
    sigma, u, lam = (np.asarray(x[0]) for x in imm)
    dense = sigma[:, None] * (np.eye(6) + (u * (lam - 1)) @ u.T) * sigma[None, :]
    shared, rest = dense[np.ix_(idx, idx)], np.delete(np.delete(dense, idx, 0), idx, 1)
    np.testing.assert_allclose(dense[np.ix_(idx, [0, 1, 2, 3])], 0.0, atol=1e-12)  # no shared-local terms
    np.testing.assert_allclose(rest, np.diag(np.diag(rest)), atol=1e-12)  # diagonal elsewhere
    # the shared block is the adapted covariance of (log_tau, mu): correlation 0.85, sds (2, 0.5)
    assert abs(shared[0, 1] / np.sqrt(shared[0, 0] * shared[1, 1]) - 0.85) < 0.1
    np.testing.assert_allclose(np.sqrt(np.diag(shared)), [2.0, 0.5], rtol=0.35)
    np.testing.assert_allclose(np.sqrt(np.diag(rest)), SD[2:], rtol=0.35)
    assert not result.stats.diverging.any()
    mean = np.concatenate([[result.draws["shared"]["mu"].mean(), result.draws["shared"]["log_tau"].mean()],
                           result.draws["local"]["a"].mean((0, 1))])
    assert np.all(np.abs(mean - MEAN) < 0.5 * SD)  # 200 draws: a coarse check; recovery is tested above

    # a structured state survives save/load exactly
    back = nuts.load_state(nuts.save_state(tmp_path / "state.npz", result.state), POSITION0)
    assert isinstance(back.inverse_mass_matrix, type(imm))
    jax.tree.map(np.testing.assert_array_equal, back, result.state)


def test_netcdf_round_trip(diagonal_run, tmp_path):
    result, _ = diagonal_run
    idata = posterior.to_inference_data(result.draws, result.stats, galaxy_names=GALAXIES,
                                        attrs={"sampler": "blackjax.nuts", "mass_matrix": "diagonal"})
    path = posterior.write_netcdf(idata, tmp_path / "posterior.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.nc"]  # no temporary file left behind
    back = az.from_netcdf(path)
    assert back.posterior["a"].dims == ("chain", "draw", "galaxy")
    assert list(back.posterior["galaxy"].values) == GALAXIES
    assert back.posterior["mu"].dims == ("chain", "draw")
    assert set(back.sample_stats.data_vars) == set(posterior.SAMPLE_STATS)
    assert back.sample_stats["diverging"].dtype == bool
    assert back.posterior.attrs["sampler"] == "blackjax.nuts" and back.posterior.attrs["mass_matrix"] == "diagonal"
    np.testing.assert_array_equal(back.posterior["a"].values, idata.posterior["a"].values)
    posterior.write_netcdf(idata, path)  # replacing an existing file works too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.nc"]


def test_summary_table_columns(idata):
    table = posterior.summary_table(idata)
    assert list(table.columns) == ["parameter", "mean", "sd", "hdi_3%", "hdi_97%", "mcse_mean", "ess_bulk",
                                   "ess_tail", "r_hat"]
    assert list(table["parameter"]) == ["log_tau", "mu", *[f"a[{g}]" for g in GALAXIES]]
    assert posterior.convergence_warnings(idata, table) == []


def test_warnings_fire_on_a_bad_run(diagonal_run):
    result, _ = diagonal_run
    short = jax.tree.map(lambda x: np.asarray(x)[:1, :10], (result.draws, result.stats))  # 1 chain, 10 draws
    bad = posterior.to_inference_data(*short, galaxy_names=GALAXIES)
    messages = posterior.convergence_warnings(bad)
    # one chain: ArviZ cannot compute r_hat (NaN), which counts as a failure
    assert messages[0].startswith("r_hat > 1.01 for 6 of 6 parameters (6 undefined)"), messages
    assert messages[1].startswith("ess_bulk < 400 for 6 of 6 parameters"), messages
    assert len(messages) == 2
    # two chains of 5 draws: r_hat defined, and far from 1
    split = jax.tree.map(lambda x: np.asarray(x)[:1, :10].reshape(2, 5, *np.shape(x)[2:]), (result.draws, result.stats))
    messages = posterior.convergence_warnings(posterior.to_inference_data(*split, galaxy_names=GALAXIES))
    assert "undefined" not in messages[0] and messages[0].startswith("r_hat > 1.01"), messages

    diverging = np.zeros((N_CHAINS, N_DRAWS), bool)
    diverging[0, :20] = True  # 1.25% of the draws
    stats = result.stats._replace(diverging=diverging)
    divergent = posterior.to_inference_data(result.draws, stats, galaxy_names=GALAXIES)
    messages = posterior.convergence_warnings(divergent)
    assert messages == [f"20 divergent transitions in {N_CHAINS * N_DRAWS} draws (1.2% > 1%)"], messages


def test_seed_forms_init_scale_and_vectorized_chains(diagonal_run):
    """Reuses the compiled warm-up and chunk programs (same static settings); compiles the sequential and vectorized
    chunks, which the default (chains in threads, one compiled single-chain program) must agree with."""
    kw = dict(n_chains=N_CHAINS, n_warmup=N_WARMUP, mass_matrix="diagonal")
    by_int = nuts.warmup(logdensity, POSITION0, seed=7, **kw)
    by_key = nuts.warmup(logdensity, POSITION0, seed=jax.random.key(7), **kw)
    jax.tree.map(np.testing.assert_array_equal, by_int, by_key)
    scales = jax.tree.map(lambda x: 0.0 * x, POSITION0)  # pytree of per-coordinate scales: here no jitter at all
    assert int(nuts.warmup(logdensity, POSITION0, seed=7, init_scale=scales, **kw).n_done) == 0

    result, _ = diagonal_run
    start = result.state._replace(n_done=jnp.asarray(0, jnp.int32))
    assert nuts.DEFAULT_CHAIN_METHOD == "threads"
    _, threads, _ = nuts.sample_chunk(logdensity, start, CHUNK)  # the fixture's program
    _, seq, _ = nuts.sample_chunk(logdensity, start, CHUNK, chain_method="sequential")
    _, vec, vec_stats = nuts.sample_chunk(logdensity, start, CHUNK, chain_method="vectorized")
    # same keys, same arithmetic up to round-off: the first draw agrees (later ones may part ways, NUTS is chaotic)
    for other in (seq, vec):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-9, atol=1e-9), threads, other)
    assert vec_stats.lp.shape == (N_CHAINS, CHUNK) and np.isfinite(vec_stats.lp).all()


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="mass_matrix"):
        nuts.run_nuts(logdensity, POSITION0, mass_matrix="full")
    with pytest.raises(ValueError, match="chain_method"):
        nuts.run_nuts(logdensity, POSITION0, chain_method="pmap")
    with pytest.raises(ValueError, match="shared"):
        nuts.shared_indices({"local": {"a": jnp.zeros(3)}})
    with pytest.raises(ValueError, match="unique"):
        posterior.to_inference_data({"shared": {"a": np.zeros((1, 5))}, "local": {"a": np.zeros((1, 5, 2))}})


def test_arrowhead_metric_matches_its_dense_matrix():
    """The arrowhead inverse mass matrix C = L L^T against the same C built densely: kinetic energy p^T C p / 2,
    momenta ~ N(0, C^-1), and the warm-up's estimator recovering C's arrowhead blocks from Gaussian draws."""
    from jax.flatten_util import ravel_pytree

    from jaxcoh.sampling import arrowhead as ah

    rng = np.random.default_rng(0)
    g, m, k = 3, 2, 2
    pos = {"shared": {"a": jnp.zeros(()), "b": jnp.zeros(())}, "local": {"x": jnp.zeros(g)},
           "nuisance": {"u": jnp.zeros(g)}}
    si, li = ah.arrowhead_indices(pos)
    np.testing.assert_array_equal(si, [6, 7])  # ravel order: local, nuisance, shared
    np.testing.assert_array_equal(li, [[0, 3], [1, 4], [2, 5]])  # galaxy j: x_j, u_j
    d = k + g * m
    Ls = np.tril(rng.normal(size=(k, k))) + 3 * np.eye(k)
    A = rng.normal(size=(g, m, k))
    Ll = np.tril(rng.normal(size=(g, m, m))) + 2 * np.eye(m)
    imm = ah.ArrowheadInverseMassMatrix(jnp.asarray(Ls), jnp.asarray(A), jnp.asarray(Ll), jnp.asarray(si),
                                        jnp.asarray(li))

    def dense(Ls, A, Ll):
        L = np.zeros((d, d))
        L[np.ix_(si, si)] = Ls
        for j in range(g):
            L[np.ix_(li[j], si)] = A[j] @ Ls
            L[np.ix_(li[j], li[j])] = Ll[j]
        return L @ L.T

    C = dense(Ls, A, Ll)
    metric = ah.arrowhead_metric(imm)
    _, unravel = ravel_pytree(pos)
    p = rng.normal(size=d)
    np.testing.assert_allclose(float(metric.kinetic_energy(unravel(jnp.asarray(p)))), 0.5 * p @ C @ p, rtol=1e-12)
    keys = jax.random.split(jax.random.key(1), 20000)
    moms = np.asarray(jax.jit(jax.vmap(lambda key: ravel_pytree(metric.sample_momentum(key, pos))[0]))(keys))
    np.testing.assert_allclose(np.cov(moms.T), np.linalg.inv(C), atol=0.1)  # |C^-1| entries up to ~4

    xs = jnp.asarray(rng.multivariate_normal(np.zeros(d), C, size=20000))
    @jax.jit
    def estimate(xs):
        w, _ = jax.lax.scan(lambda w, x: (ah._welford_update(w, x[si], x[li]), None),
                            ah._welford_init(k, g, m, jnp.float64), xs)
        return ah._welford_final(w, ah.identity(si, li, jnp.float64))

    est = estimate(xs)
    Ce = dense(*(np.asarray(x) for x in (est.L_shared, est.A, est.L_local)))
    blocks = np.zeros((d, d), bool)
    blocks[np.ix_(si, si)] = True
    for j in range(g):
        blocks[np.ix_(li[j], si)] = blocks[np.ix_(si, li[j])] = blocks[np.ix_(li[j], li[j])] = True
    np.testing.assert_allclose(Ce[blocks], C[blocks], atol=0.05 * np.abs(C).max())

    # From a Laplace start the window's co-moments are pooled with n0 draws' worth of the starting metric:
    # (M2 + n0 C0) / (n - 1 + n0), on the arrowhead blocks (20 draws of C around a prior C0 = I here).
    few = xs[:20]
    pooled = jax.jit(lambda xs: ah._welford_final(jax.lax.scan(
        lambda w, x: (ah._welford_update(w, x[si], x[li]), None), ah._welford_init(k, g, m, jnp.float64), xs)[0],
        imm, ah.identity(si, li, jnp.float64), 30.0))(few)
    Cp = dense(*(np.asarray(x) for x in (pooled.L_shared, pooled.A, pooled.L_local)))
    centred = np.asarray(few) - np.asarray(few).mean(axis=0)
    want = (centred.T @ centred + 30.0 * np.eye(d)) / (19 + 30.0)
    np.testing.assert_allclose(Cp[blocks], want[blocks], rtol=1e-10, atol=1e-12)


def test_warmup_pools_with_the_laplace_metric_by_the_weight_given():
    """With an overwhelming weight the adapted arrowhead metric is the Laplace one at the start (this target is
    Gaussian: its exact covariance), so the weight reaches every window's estimate (``jaxcoh sample`` passes 0 for
    starts away from the MAP; the pooling itself is checked against numpy above)."""
    from jaxcoh.sampling import arrowhead as ah

    si, li = ah.arrowhead_indices(POSITION0)
    # the program warmup() computes its start with, so that it is compiled once
    lap = nuts._laplace_program(logdensity, tuple(si.tolist()), tuple(map(tuple, li.tolist())))(POSITION0)
    heavy = nuts.warmup(logdensity, POSITION0, seed=2, n_chains=1, n_warmup=N_WARMUP, mass_matrix="arrowhead",
                        prior_draws=1e12).inverse_mass_matrix
    for a, b in zip(heavy[:3], lap[:3], strict=True):
        np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b), rtol=1e-6, atol=1e-9)


def test_arrowhead_mass_matrix_adapts_and_survives_save_load(tmp_path):
    result = nuts.run_nuts(
        logdensity, POSITION0, seed=5, n_chains=2, n_warmup=N_WARMUP, n_draws=CHUNK, chunk_size=CHUNK,
        mass_matrix="arrowhead",
    )
    imm = result.state.inverse_mass_matrix
    assert imm.L_shared.shape == (2, 2, 2) and imm.A.shape == (2, G, 1, 2) and imm.L_local.shape == (2, G, 1, 1)
    # the adapted C = L L^T: its shared block is the covariance of (log_tau, mu) (correlation 0.85, sds 2 and 0.5)
    Ls = np.asarray(imm.L_shared[0])
    shared = Ls @ Ls.T
    assert abs(shared[0, 1] / np.sqrt(shared[0, 0] * shared[1, 1]) - 0.85) < 0.1
    np.testing.assert_allclose(np.sqrt(np.diag(shared)), [2.0, 0.5], rtol=0.35)
    local_var = (np.asarray(imm.A[0]) @ shared @ np.swapaxes(np.asarray(imm.A[0]), 1, 2)
                 + np.asarray(imm.L_local[0]) ** 2)[:, 0, 0]
    np.testing.assert_allclose(np.sqrt(local_var), SD[2:], rtol=0.35)
    assert result.stats.diverging.mean() < 0.01
    mean = np.concatenate([[result.draws["shared"]["mu"].mean(), result.draws["shared"]["log_tau"].mean()],
                           result.draws["local"]["a"].mean((0, 1))])
    assert np.all(np.abs(mean - MEAN) < 0.5 * SD)
    back = nuts.load_state(nuts.save_state(tmp_path / "state.npz", result.state), POSITION0)
    assert isinstance(back.inverse_mass_matrix, type(imm))
    jax.tree.map(np.testing.assert_array_equal, back, result.state)


def test_laplace_start_is_the_inverse_hessian_and_falls_back_to_identity():
    """On a Gaussian whose precision P is an arrowhead, the Laplace metric's C = L L^T is P^-1 exactly (built from
    k + m Hessian-vector products); a galaxy whose block of -Hessian is not positive definite gets the identity."""
    from jax.flatten_util import ravel_pytree

    from jaxcoh.sampling import arrowhead as ah

    rng = np.random.default_rng(3)
    g, m, k = 4, 3, 2
    pos = {"shared": {"a": jnp.zeros(()), "b": jnp.zeros(())}, "nuisance": {n: jnp.zeros(g) for n in "uvw"}}
    si, li = ah.arrowhead_indices(pos)
    d = k + g * m
    P = np.zeros((d, d))
    for j in range(g):
        B = rng.normal(size=(m, m))
        P[np.ix_(li[j], li[j])] = B @ B.T + m * np.eye(m)
        P[np.ix_(li[j], si)] = rng.normal(size=(m, k))
        P[np.ix_(si, li[j])] = P[np.ix_(li[j], si)].T
    P[np.ix_(si, si)] = 20 * np.eye(k)
    assert np.all(np.linalg.eigvalsh(P) > 0)
    _, unravel = ravel_pytree(pos)
    mean = rng.normal(size=d)

    def logdensity(P):
        return lambda z: -0.5 * (ravel_pytree(z)[0] - mean) @ jnp.asarray(P) @ (ravel_pytree(z)[0] - mean)

    def dense_C(imm):
        velocity = jax.vmap(lambda e: ravel_pytree(ah.arrowhead_metric(imm).scale(
            pos, ah.arrowhead_metric(imm).scale(pos, unravel(e), inv=True, trans=True), inv=True, trans=False))[0])
        return np.asarray(velocity(jnp.eye(d))).T  # L (L^T e_i), column by column

    imm = jax.jit(lambda p: ah.laplace(logdensity(P), p, si, li))(unravel(jnp.asarray(rng.normal(size=d))))
    np.testing.assert_allclose(dense_C(imm), np.linalg.inv(P), rtol=1e-10, atol=1e-12)

    bad = P.copy()
    bad[li[1][0], li[1][0]] = -5.0  # galaxy 1: its block of -Hessian has a negative pivot
    imm = ah.laplace(logdensity(bad), pos, si, li)
    np.testing.assert_array_equal(np.asarray(imm.L_local[1]), np.eye(m))
    np.testing.assert_array_equal(np.asarray(imm.A[1]), np.zeros((m, k)))
    assert np.all(np.isfinite(np.asarray(imm.L_shared))) and np.all(np.isfinite(np.asarray(imm.L_local)))
    with pytest.raises(ValueError, match="arrowhead mass matrix"):
        nuts.warmup(logdensity(P), pos, mass_matrix="diagonal", initial_metric="laplace")
