"""Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788) of the joint posterior that
``jaxcoh.curves.posterior.log_density`` gives a sampler: the RAR with per-galaxy nuisance (Upsilon, D, i) and the
shared intrinsic scatter ``sigma_int``, sampled by blackjax's NUTS after Stan's window adaptation.

Each replicate ``r`` draws a truth ``(g_dagger, sigma_int)`` from the calibration prior :class:`SBCPrior`, makes a
mock from the RAR at that truth (:func:`jaxcoh.mock_catalog`: every nuisance value drawn from the fit's own priors,
scatter log-normal in V^2), and samples the posterior whose prior is that same calibration prior. Then the truth is a
draw from the posterior given the data, so the truth's rank among (thinned) draws is uniform and every central
credible interval covers it at its nominal rate, exactly, if likelihood, priors, Jacobians and sampler are right.

Why truths from a prior, not fixed truths: at a fixed truth a Bayesian interval has no guaranteed coverage (only
asymptotically, and the log-uniform prior of ``sigma_int`` down to 1e-4 dex pulls small-data posteriors toward zero
scatter), so a miss would not say whether the sampler is wrong. The fit's own priors on ``g_dagger`` and
``sigma_int`` (flat in log between wide bounds) cannot be drawn from usefully: a truth of 1 dex of scatter is far from
any galaxy sample, and there the likelihood's first-order scatter term (:mod:`.likelihood`) no longer describes the
mock's log-normal one. So the calibration posterior is the fit's posterior times a proper log-normal prior (the
bounds lie > 10 sd away and do not matter), centred on the published values (g_dagger 1.2e-10 m/s^2, McGaugh et al.
2016; sigma_int 0.05 dex, between Li et al. 2018 and Desmond 2023) and wider than what the data determine. Known
mismatches between mock and likelihood, both small in this range: the likelihood's scatter is Gaussian in V with sd
``ln(10) sigma_int V / 2`` (the mock's is log-normal in V^2: a mean bias of ``(ln(10) sigma_int / 2)^2 / 2``, 0.2% of V
at 0.05 dex), and the mock clips true inclinations at 89.9 deg where the prior reflects them (sin i differs < 1%).

Replicates run one after another through one compiled program (the data an argument of the same shape for every
replicate, so it is compiled once), not vmapped. Measured (jax 0.10.2 CPU, blackjax 1.7.1, float64, the 2-core CPU
shared with other jobs, load ~7-9; 8 replicates of 8 galaxies x <= 16 points, one chain of 200 warm-up + 200 draws
each, ``/tmp`` script equivalent to ``scripts/calibrate_sampler.py --compare-methods``): sequential 7.4 s for the 8
replicates (32 gradients per draw) and 37 s of compilation; ``vmap`` over replicates 39.0 s (36 gradients per draw)
and 88 s of compilation. The batched ``while_loop`` of a vmapped NUTS runs each step's trajectory as long as the
longest of the batch and selects between replicates at every leapfrog step, as for chains (:mod:`jaxcoh.sampling.nuts`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.base import get_filter_adapt_info_fn
from jax import Array

from .baselines import RAR
from .likelihood import CurveData, Likelihood, curve_data, likelihood_model
from .nuisance import NUISANCE, table_nuisance
from .posterior import log_density

PARAMS = ("g_dagger", "sigma_int")
LEVELS = (0.68, 0.95)
METHODS = ("sequential", "vectorized")  # sequential measured faster on CPU: see the module docstring


class SBCPrior(NamedTuple):
    """The calibration prior: ``log10 g_dagger ~ N(mean, sd)``, ``log10 sigma_int ~ N(mean, sd)`` (truths are drawn
    from it and the sampled posterior includes it)."""

    log10_g_dagger: tuple[float, float] = (math.log10(1.2e-10), 0.1)
    log10_sigma_int: tuple[float, float] = (math.log10(0.05), 0.15)

    def draw(self, n: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 15]))
        return {name: 10 ** (m + s * rng.standard_normal(n))
                for name, (m, s) in zip(PARAMS, (self.log10_g_dagger, self.log10_sigma_int))}

    def log_density(self, shared: dict) -> Array:
        """``log p`` (up to a constant) in the coordinates ``log g_dagger``, ``log sigma_int``: those in which the
        fit's prior is flat, so this term is simply added to :func:`~jaxcoh.curves.posterior.log_density`."""
        total = jnp.zeros(())
        for name, (m, s) in zip(PARAMS, (self.log10_g_dagger, self.log10_sigma_int)):
            total = total - 0.5 * ((jnp.log10(shared[name]) - m) / s) ** 2
        return total


class SBCSettings(NamedTuple):
    """What one calibration runs: ``n_replicates`` mocks of ``n_galaxies`` (curves of 6..``n_max`` points), each
    sampled by one NUTS chain of ``n_warmup`` + ``n_draws``; ranks among every ``thin``-th draw."""

    n_replicates: int = 50
    n_galaxies: int = 20
    n_max: int = 24
    n_warmup: int = 500
    n_draws: int = 1000
    thin: int = 10
    seed: int = 0
    method: str = "sequential"
    target_accept: float = 0.8
    max_tree_depth: int = 8
    prior: SBCPrior = SBCPrior()


OPTS = Likelihood(nuisance=True, intrinsic_scatter=True)
MODEL = likelihood_model(RAR, OPTS)


def replicate_data(settings: SBCSettings, truths: dict[str, np.ndarray], dtype=None) -> CurveData:
    """The ``R`` mocks stacked on a leading axis (every leaf ``[R, ...]``): RAR curves at each replicate's truth,
    mock seed ``1000 * settings.seed + r``."""
    from ..mock import mock_catalog  # mock imports curves: import on use

    cats = []
    for r in range(settings.n_replicates):
        cat = mock_catalog(settings.n_galaxies, seed=1000 * settings.seed + r, kernel="rar", n_max=settings.n_max,
                           params={"g_dagger": float(truths["g_dagger"][r])},
                           scatter_dex=float(truths["sigma_int"][r]), dtype=dtype)
        cats.append(dataclasses.replace(cat, source="sbc"))  # static metadata equal, so the leaves stack
    data = [curve_data(c) for c in cats]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *data)


def start_position(data: CurveData, prior: SBCPrior) -> dict:
    """``z`` at the prior's centre and the table's nuisance values (the priors' centres), never at the truth."""
    cat = data.cat
    shared = MODEL.shared.to_unconstrained({"g_dagger": jnp.asarray(10 ** prior.log10_g_dagger[0], cat.dtype),
                                            "sigma_int": jnp.asarray(10 ** prior.log10_sigma_int[0], cat.dtype)})
    return {"shared": shared, "local": {}, "nuisance": NUISANCE.to_unconstrained(table_nuisance(cat)._asdict())}


class ReplicateOut(NamedTuple):
    """One replicate's output: the draws of each calibrated parameter ``[n_draws]`` and sampler statistics."""

    g_dagger: Array
    sigma_int: Array
    divergent: Array  # [] count
    grad_evals: Array  # [] total leapfrog steps (warm-up excluded)
    acceptance: Array  # [] mean acceptance rate of the draws
    step_size: Array


def _one_replicate(settings: SBCSettings) -> Callable[[Array, CurveData], ReplicateOut]:
    prior = settings.prior

    def run(key: Array, data: CurveData) -> ReplicateOut:
        base = log_density(RAR, data, OPTS)

        def logdensity(z):
            return base(z) + prior.log_density(MODEL.shared.to_values(z["shared"]))

        k_init, k_warm, k_draw = jax.random.split(key, 3)
        z0 = start_position(data, prior)
        leaves, tree = jax.tree.flatten(z0)  # jittered start, as jaxcoh.sampling.nuts.warmup does
        z0 = tree.unflatten([x + 0.1 * jax.random.normal(k, x.shape, x.dtype)
                             for x, k in zip(leaves, jax.random.split(k_init, len(leaves)))])
        adaptation = blackjax.window_adaptation(
            blackjax.nuts, logdensity, is_mass_matrix_diagonal=True, target_acceptance_rate=settings.target_accept,
            adaptation_info_fn=get_filter_adapt_info_fn(), max_num_doublings=settings.max_tree_depth)
        (state, params), _ = adaptation.run(k_warm, z0, settings.n_warmup)
        kernel = blackjax.nuts.build_kernel()

        def step(state, k):
            state, info = kernel(k, state, logdensity, params["step_size"], params["inverse_mass_matrix"],
                                 settings.max_tree_depth)
            v = MODEL.shared.to_values(state.position["shared"])
            return state, (v["g_dagger"], v["sigma_int"], info.is_divergent, info.num_integration_steps,
                           info.acceptance_rate)

        _, (g, s, div, steps, acc) = jax.lax.scan(step, state, jax.random.split(k_draw, settings.n_draws))
        return ReplicateOut(g, s, jnp.sum(div), jnp.sum(steps), jnp.mean(acc), params["step_size"])

    return run


def _stack(rows: list) -> ReplicateOut:
    return jax.tree.map(lambda *xs: np.stack(xs), *rows)


@dataclasses.dataclass(frozen=True)
class SBCResult:
    """Truths ``{name: [R]}``, draws ``{name: [R, n_draws]}``, per-replicate sampler statistics, timings."""

    settings: SBCSettings
    truths: dict[str, np.ndarray]
    draws: dict[str, np.ndarray]
    divergent: np.ndarray  # [R]
    grad_evals: np.ndarray  # [R]
    acceptance: np.ndarray  # [R]
    compile_s: float
    sample_s: float  # every replicate's warm-up and draws, compile excluded
    mock_s: float

    def covered(self, level: float, truths: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """``{name: [R] bool}``: does the central ``level`` interval of each replicate's draws hold its truth?"""
        truths = self.truths if truths is None else truths
        out = {}
        for name in PARAMS:
            lo, hi = np.quantile(self.draws[name], [(1 - level) / 2, (1 + level) / 2], axis=1)
            out[name] = (lo <= truths[name]) & (truths[name] <= hi)
        return out

    def ranks(self) -> dict[str, np.ndarray]:
        """``{name: [R] int}`` in ``0..L``: how many of the ``L = n_draws // thin`` thinned draws lie below the
        truth (uniform under a calibrated posterior when the thinned draws are nearly independent)."""
        t = self.settings.thin
        return {name: np.sum(self.draws[name][:, t - 1::t] < self.truths[name][:, None], axis=1) for name in PARAMS}


def run_sbc(settings: SBCSettings | None = None, progress: Callable[[int], None] | None = None) -> SBCResult:
    """Draw truths, make the mocks, sample every replicate's posterior; see the module docstring.

    ``settings.method``: ``"sequential"`` (one jitted replicate program called per replicate, the faster on CPU) or
    ``"vectorized"`` (one ``vmap`` over all replicates). ``progress(r)`` is called after each sequential replicate.
    """
    settings = SBCSettings() if settings is None else settings
    if settings.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {settings.method!r}")
    if settings.n_draws < settings.thin:
        raise ValueError("need n_draws >= thin")
    truths = settings.prior.draw(settings.n_replicates, settings.seed)
    t0 = time.perf_counter()
    data = replicate_data(settings, truths)
    mock_s = time.perf_counter() - t0
    keys = jax.random.split(jax.random.key(settings.seed), settings.n_replicates)
    one = _one_replicate(settings)
    if settings.method == "vectorized":
        program = jax.jit(jax.vmap(one)).lower(keys, data).compile()
        compile_s = time.perf_counter() - t0 - mock_s
        t1 = time.perf_counter()
        out = jax.device_get(jax.block_until_ready(program(keys, data)))
    else:
        first = jax.tree.map(lambda a: a[0], data)
        program = jax.jit(one).lower(keys[0], first).compile()
        compile_s = time.perf_counter() - t0 - mock_s
        t1 = time.perf_counter()
        rows = []
        for r in range(settings.n_replicates):
            rows.append(jax.device_get(program(keys[r], jax.tree.map(lambda a, r=r: a[r], data))))
            if progress is not None:
                progress(r)
        out = _stack(rows)
    sample_s = time.perf_counter() - t1
    return SBCResult(settings, truths, {"g_dagger": np.asarray(out.g_dagger), "sigma_int": np.asarray(out.sigma_int)},
                     np.asarray(out.divergent), np.asarray(out.grad_evals), np.asarray(out.acceptance), compile_s,
                     sample_s, mock_s)


def binomial_band(level: float, n: int, n_sigma: float = 2.0) -> tuple[float, float]:
    """``level +- n_sigma sqrt(level (1 - level) / n)``: where a calibrated coverage fraction of ``n`` replicates
    falls ~95% of the time (``n_sigma = 2``)."""
    half = n_sigma * math.sqrt(level * (1 - level) / n)
    return level - half, level + half


def coverage_table(result: SBCResult, n_sigma: float = 2.0, truths: dict[str, np.ndarray] | None = None,
                   n_bins: int = 5) -> dict:
    """Coverage of each interval with its binomial band and whether it lies inside; the ranks' chi-square
    uniformity test over ``n_bins`` equal bins (p-value); sampler statistics."""
    from scipy import stats  # scipy is a core dependency; imported on use

    R = result.settings.n_replicates
    rows = []
    for level in LEVELS:
        cov = result.covered(level, truths)
        lo, hi = binomial_band(level, R, n_sigma)
        for name in PARAMS:
            k = int(cov[name].sum())
            rows.append({"param": name, "level": level, "covered": k, "n": R, "coverage": k / R,
                         "band": [lo, hi], "within": bool(lo <= k / R <= hi)})
    L = result.settings.n_draws // result.settings.thin
    ranks = {}
    for name, rk in result.ranks().items():
        bins = np.arange(L + 1) * n_bins // (L + 1)  # the bin of each possible rank 0..L
        counts = np.bincount(bins[rk], minlength=n_bins)
        expected = R * np.bincount(bins, minlength=n_bins) / (L + 1)
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        ranks[name] = {"counts": counts.tolist(), "chi2": chi2, "p_value": float(stats.chi2.sf(chi2, n_bins - 1))}
    return {"rows": rows, "all_within": all(r["within"] for r in rows), "n_sigma": n_sigma, "ranks": ranks,
            "n_ranks": L, "divergent_fraction": float(result.divergent.sum() / (R * result.settings.n_draws)),
            "mean_acceptance": float(np.mean(result.acceptance)),
            "grad_evals_per_draw": float(result.grad_evals.sum() / (R * result.settings.n_draws))}
