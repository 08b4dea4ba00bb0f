"""NUTS over any pytree log-density, with Stan-style warm-up, several chains, and draws in resumable chunks.

The engine knows nothing about galaxies: it takes ``logdensity(position) -> scalar`` on unconstrained coordinates and
a start ``position0`` (the MAP), a pytree such as ``{"shared": {name: []}, "local": {name: [g]}, ...}``.

What blackjax (1.7) does: the NUTS transition (``blackjax.nuts.build_kernel``: multinomial, iterative doubling,
divergence at an energy error of 1000) and the warm-up (``blackjax.window_adaptation``: Stan's fast/slow/fast windows,
dual averaging of the step size, regularised Welford estimates of a diagonal or dense inverse mass matrix).
What is ours: the per-chain jitter of the start, running chains side by side, the chunked ``lax.scan`` with one
RNG key per draw (``fold_in(chain_key, draw_index)``, so draws do not depend on where chunks start or stop), the
saved/resumed :class:`SamplerState`, the "structured" mass matrix (see :func:`structured_metric_core`) and the
"arrowhead" one (dense shared block, dense block per galaxy, their coupling: :mod:`.arrowhead`).

Chain parallelism, measured (jax/jaxlib 0.10.2 CPU, blackjax 1.7.1, float64, 2-core CPU; wall time of
``run_nuts`` for 4 chains x (300 warm-up + 500 draws), compiled program reused, i.e. compile time excluded; target a
Gaussian over 3 shared coordinates (correlation 0.9, sds 0.3/1/3) + 150 galaxies x 3 local ones, 453 in all):

==========  ============  ==========  ============  =====================  ======================
metric      chains        wall time   grads/draw    min ESS (of 453)       wall time / min ESS  
==========  ============  ==========  ============  =====================  ======================
diagonal    sequential    5.1 s       15            774                    6.5 ms
diagonal    vectorized    12.7 s      15            861                    14.8 ms
structured  sequential    9.9 s       15            2258                   4.4 ms
structured  vectorized    26.8 s      15            2073                   12.9 ms
==========  ============  ==========  ============  =====================  ======================

(A harder variant, every local coordinate tied to a shared one, ~60-80 gradients per draw: sequential 7.2 s,
vectorized 12.2 s, i.e. 28 vs 61 us per gradient.)  ``vmap`` makes one batched ``while_loop`` that runs until the
longest trajectory of the batch ends and selects between chains at every step; on this CPU that costs 2-2.5x, so
``"sequential"`` (``lax.map`` over chains inside one jitted program) was the default.  On a GPU, or with a costly
log-density, the batched form may win: measure there before changing :data:`DEFAULT_CHAIN_METHOD`.  Compilation is
also ~2x slower vectorized (first call 24 s vs 12 s here).  The structured metric's extra matrix-vector products
cost more per gradient than the diagonal one on this cheap target (a costlier log-density dilutes that).

``"threads"`` (:class:`_ThreadedChains`, the default): every chain a call of one compiled single-chain program, the
calls side by side in threads (XLA runs a call without the GIL), so the chains use every core where one chain uses
one.  Measured on B7's workload (SPARC's RAR with nuisance and sigma_int, arrowhead mass matrix, 2 chains x (250
warm-up + 250 draws), compiled programs reused, idle 2-core VM): 6.6-7.3 s of wall time against 13.1 and 13.3 s
sequential, at about the same CPU time (12.9-14.1 s against 13.1-13.3 s), and 20 s of compilation against 35 s (one
chain's program is smaller than the ``lax.map`` of it). Two conditions, each found by a run where the chains did not
overlap (10-13 s of wall time for as much CPU): each chain's program leaves XLA's multithreaded Eigen pool alone
(:data:`THREADED_OPTIONS`), and each thread waits for its chain's result. Chains in threads compute what they compute
sequentially up to round-off (NUTS then parts ways: another seed's draws, not worse ones).

Mass matrices on SPARC RAR, measured (standard cuts: 147 galaxies, nuisance Upsilon/D/i and sigma_int, d = 590;
MAP start, 2 chains x 400 warm-up, 2 x 200 draws timed after a first 200, compile excluded; the 2-core CPU was shared
at load 8-16, so the last column is indicative; gradients and ESS per draw do not depend on the load):

==========  ==========  =====  ==================  ====================  ===========  =========
metric      grads/draw  step   ESS g_dagger / 800  ESS sigma_int / 800   divergences  ESS g / s
==========  ==========  =====  ==================  ====================  ===========  =========
diagonal    127         0.045  783                 1386                  0            2.5
structured  127         0.040  665                 1105                  0            3.3
arrowhead   23.7        0.21   291                 345                   2            4.9
==========  ==========  =====  ==================  ====================  ===========  =========

Trajectory length is set by each galaxy's D-Upsilon-i trade, which only the arrowhead metric captures: 5.4x fewer
gradients per draw, 2x the ESS of g_dagger per gradient, but fewer effective draws per draw and a few divergences.
One seed: the diagonal stayed the default then.

The arrowhead warm-up starts from the Laplace metric at the MAP (:func:`warmup`'s ``initial_metric``), and each
window's estimate pools its draws with :data:`.arrowhead.LAPLACE_PRIOR_DRAWS` draws' worth of that metric. ``jaxcoh
sample`` adapts the arrowhead by default (README: its SPARC runs, diagnostics and B7); this engine, which knows
nothing about galaxies, keeps the diagonal.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.base import get_filter_adapt_info_fn
from blackjax.mcmc.metrics import LowRankInverseMassMatrix
from jax import Array

from . import arrowhead
from .arrowhead import ArrowheadInverseMassMatrix, arrowhead_indices, arrowhead_warmup, as_metric, identity, laplace
from .structured import StructuredMetricState, shared_indices, structured_metric_core  # noqa: F401 (re-exported)

MASS_MATRICES = ("diagonal", "dense", "structured", "arrowhead")
CHAIN_METHODS = ("threads", "sequential", "vectorized")
INITIAL_METRICS = ("identity", "laplace")
DEFAULT_CHAIN_METHOD = "threads"  # the fastest on CPU, see the measurements above

LogDensity = Callable[[Any], Array]


class SamplerState(NamedTuple):
    """Everything needed to continue sampling after warm-up; every leaf has a leading chain axis.

    ``inverse_mass_matrix`` is ``[chain, d]`` (diagonal), ``[chain, d, d]`` (dense) or a blackjax
    ``LowRankInverseMassMatrix(sigma [chain, d], U [chain, d, k], lam [chain, k])`` (structured), ``d`` counting the
    coordinates of ``ravel_pytree(position)``.  ``key_data`` is the raw key of each chain; draw ``i`` uses
    ``fold_in(key, i)``.  ``n_done`` ([] int) counts the draws already made.
    """

    position: Any
    logdensity: Array  # [chain]
    logdensity_grad: Any
    step_size: Array  # [chain]
    inverse_mass_matrix: Any
    key_data: Array  # [chain, *key_shape] uint32
    n_done: Array  # [] int32 (fixed dtype: a reloaded state must not retrace the chunk program)


class SampleStats(NamedTuple):
    """Per-draw sampler statistics, ``[chain, draw]`` each, under ArviZ's ``sample_stats`` names."""

    diverging: Array
    tree_depth: Array
    n_steps: Array
    acceptance_rate: Array
    energy: Array
    step_size: Array
    lp: Array


class NutsResult(NamedTuple):
    """Draws ``[chain, draw, ...]`` (``None`` with ``keep_draws=False``), their statistics, and the final state."""

    draws: Any
    stats: SampleStats | None
    state: SamplerState


def _over_chains(fn: Callable, chain_method: str) -> Callable:
    """Run ``fn`` on each chain: ``vmap`` (one batched program) or ``lax.map`` (one chain after another)."""
    if chain_method == "vectorized":
        return jax.vmap(fn)
    if chain_method == "sequential":
        return lambda *args: jax.lax.map(lambda a: fn(*a), args)
    raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}")


class _ThreadedChains:
    """``fn`` on each chain, the chains side by side in threads, each a call of one compiled single-chain program.

    XLA releases the GIL while a call runs, so chains in threads use the cores that one chain leaves idle (a NUTS
    step is too small for XLA's intra-op parallelism). Written by hand because JAX's ways of running
    programs side by side need one device per program (``pmap``, sharding) and the CPU backend has one device
    unless the process starts with forced host devices."""

    def __init__(self, fn: Callable):
        self._jitted = jax.jit(fn)
        self._compiled: dict = {}
        self._lock = threading.Lock()

    def __call__(self, *args):
        n = jax.tree.leaves(args)[0].shape[0]
        per_chain = [jax.tree.map(lambda a, c=c: a[c], args) for c in range(n)]
        key = (jax.tree.structure(per_chain[0]),
               tuple((a.shape, a.dtype, getattr(a, "weak_type", False)) for a in jax.tree.leaves(per_chain[0])))
        with self._lock:  # compiled once before the threads start (two first calls would both compile)
            if key not in self._compiled:
                options = THREADED_OPTIONS if jax.default_backend() == "cpu" else None
                self._compiled[key] = self._jitted.lower(*per_chain[0]).compile(compiler_options=options)
        run = self._compiled[key]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(n, os.cpu_count() or 1)) as pool:
            # each thread waits for its chain: returning at dispatch (JAX's asynchronous dispatch) let the backend run
            # the chains one after another (measured in B7's process: 12.6 s of wall time for 12.7 s of CPU; 7.6 s
            # for 14.8 s waiting)
            outs = list(pool.map(lambda a: jax.block_until_ready(run(*a)), per_chain))
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)


# XLA's multithreaded Eigen kernels (its dots and matrix products on CPU) share one intra-op pool, in which chains in
# threads wait for each other: on B7's workload (the docstring's) 10.0 s of wall time with it, 6.6-6.9 s without
# (CPU 13.1 and 12.9-13.6 s), with the same draws. A CPU code-generation option of each chain's program: other
# programs keep the pool.
THREADED_OPTIONS = {"xla_cpu_multi_thread_eigen": False}


def _program(fn: Callable, chain_method: str) -> Callable:
    """``fn`` over the leading chain axis of its arguments, compiled, by ``chain_method``."""
    if chain_method == "threads":
        return _ThreadedChains(fn)
    return jax.jit(_over_chains(fn, chain_method))


# Programs are cached on (logdensity, static settings), so repeated runs and resumed runs reuse the compiled code.
@functools.lru_cache(maxsize=32)
def _warmup_program(logdensity, n_warmup, mass_matrix, shared_idx, target_accept, max_tree_depth, chain_method,
                    local_idx=None, prior_draws=0.0):
    if mass_matrix == "arrowhead":
        def one_arrowhead_chain(key, position, imm0):
            return arrowhead_warmup(logdensity, key, position, n_warmup, shared_idx=np.asarray(shared_idx),
                                    local_idx=np.asarray(local_idx), target_accept=target_accept,
                                    max_tree_depth=max_tree_depth, imm0=imm0, prior_draws=prior_draws)

        return _program(one_arrowhead_chain, chain_method)
    common = dict(
        target_acceptance_rate=target_accept,
        adaptation_info_fn=get_filter_adapt_info_fn(),  # keep no per-step warm-up trace (n_warmup x d memory)
        max_num_doublings=max_tree_depth,
    )
    if mass_matrix == "structured":
        core = structured_metric_core(np.asarray(shared_idx))
        adaptation = blackjax.staged_adaptation(blackjax.nuts, logdensity, metric=core, **common)
    else:
        adaptation = blackjax.window_adaptation(
            blackjax.nuts, logdensity, is_mass_matrix_diagonal=mass_matrix == "diagonal", **common
        )

    def one_chain(key, position):
        (state, params), _ = adaptation.run(key, position, n_warmup)
        return state, params["step_size"], params["inverse_mass_matrix"]

    return _program(one_chain, chain_method)


@functools.lru_cache(maxsize=32)
def _laplace_program(logdensity, shared_idx, local_idx):
    return jax.jit(lambda position: laplace(logdensity, position, np.asarray(shared_idx), np.asarray(local_idx)))


@functools.lru_cache(maxsize=32)
def _chunk_program(logdensity, n_steps, max_tree_depth, chain_method):
    kernel = blackjax.nuts.build_kernel()

    def one_chain(hmc_state, step_size, inverse_mass_matrix, key_data, first):
        key = jax.random.wrap_key_data(key_data)

        def step(state, i):
            state, info = kernel(
                jax.random.fold_in(key, i), state, logdensity, step_size, as_metric(inverse_mass_matrix),
                max_tree_depth,
            )
            stats = SampleStats(
                info.is_divergent, info.num_trajectory_expansions, info.num_integration_steps,
                info.acceptance_rate, info.energy, step_size, state.logdensity,
            )
            return state, (state.position, stats)

        return jax.lax.scan(step, hmc_state, first + jnp.arange(n_steps))

    return _program(one_chain, chain_method)


def _as_key(seed: int | Array) -> Array:
    if isinstance(seed, (int, np.integer)):
        return jax.random.key(int(seed))
    return seed if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(seed)


def _check(mass_matrix: str | None, chain_method: str) -> None:
    if mass_matrix is not None and mass_matrix not in MASS_MATRICES:
        raise ValueError(f"mass_matrix must be one of {MASS_MATRICES}, got {mass_matrix!r}")
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}")


def warmup(
    logdensity: LogDensity,
    position0: Any,
    *,
    seed: int | Array = 0,
    n_chains: int = 4,
    n_warmup: int = 1000,
    mass_matrix: str = "diagonal",
    init_scale: float | Any = 0.1,
    shared_key: str = "shared",
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    chain_method: str = DEFAULT_CHAIN_METHOD,
    initial_metric: str | None = None,
    prior_draws: float | None = None,
) -> SamplerState:
    """Adapt step size and inverse mass matrix, per chain, from ``position0`` jittered by ``init_scale * N(0, 1)``.

    ``init_scale`` is a float or a pytree like ``position0`` (e.g. Laplace sds).  Each chain gets its own step size
    and mass matrix (as Stan does).  Returns the state after the last warm-up step, ``n_done = 0``.

    ``initial_metric``: where the adaptation starts, "identity" (Stan) or, for the arrowhead mass matrix (its
    default), "laplace": the inverse negative Hessian at ``position0`` (:func:`.arrowhead.laplace`; meant for a MAP
    start). On B7's workload (2 chains x (250 + 250), compiled programs reused): 59.0 s from the identity, 22.4 s
    from the Laplace metric, the same gradients per draw afterwards (the identity's first window is long).
    ``prior_draws``: the Laplace metric's weight in each window (None: ``arrowhead.LAPLACE_PRIOR_DRAWS`` from a
    Laplace start, meant for ``position0`` at the MAP; 0 for other starts).
    """
    _check(mass_matrix, chain_method)
    initial_metric = initial_metric or ("laplace" if mass_matrix == "arrowhead" else "identity")
    if initial_metric not in INITIAL_METRICS:
        raise ValueError(f"initial_metric must be one of {INITIAL_METRICS}, got {initial_metric!r}")
    if initial_metric == "laplace" and mass_matrix != "arrowhead":
        raise ValueError(f"initial_metric='laplace' is available for the arrowhead mass matrix, not {mass_matrix!r}")
    if n_warmup < 1 or n_chains < 1:
        raise ValueError("n_warmup and n_chains must be positive")
    position0 = jax.tree.map(jnp.asarray, position0)
    k_init, k_warm, k_draw = jax.random.split(_as_key(seed), 3)
    leaves, treedef = jax.tree.flatten(position0)
    scales = treedef.flatten_up_to(init_scale) if not np.isscalar(init_scale) else [init_scale] * len(leaves)
    noise = [jax.random.normal(k, (n_chains, *x.shape), x.dtype) for k, x in
             zip(jax.random.split(k_init, len(leaves)), leaves)]
    starts = treedef.unflatten(
        [x[None] + jnp.broadcast_to(jnp.asarray(s, x.dtype), x.shape)[None] * e
         for x, s, e in zip(leaves, scales, noise)]
    )
    idx = local = None
    if mass_matrix == "structured":
        idx = tuple(shared_indices(position0, shared_key).tolist())
    elif mass_matrix == "arrowhead":
        shared, per_galaxy = arrowhead_indices(position0, shared_key)
        idx, local = tuple(shared.tolist()), tuple(map(tuple, per_galaxy.tolist()))
    pool = 0.0 if initial_metric != "laplace" else arrowhead.LAPLACE_PRIOR_DRAWS if prior_draws is None else prior_draws
    program = _warmup_program(logdensity, n_warmup, mass_matrix, idx, target_accept, max_tree_depth, chain_method,
                              local, float(pool))
    args = (jax.random.split(k_warm, n_chains), starts)
    if mass_matrix == "arrowhead":
        imm0 = (_laplace_program(logdensity, idx, local)(position0) if initial_metric == "laplace"
                else identity(shared, per_galaxy, leaves[0].dtype))
        args += (jax.tree.map(lambda a: jnp.broadcast_to(a, (n_chains, *a.shape)), imm0),)
    hmc_state, step_size, inverse_mass_matrix = program(*args)
    state = SamplerState(
        hmc_state.position, hmc_state.logdensity, hmc_state.logdensity_grad, step_size, inverse_mass_matrix,
        jax.random.key_data(jax.random.split(k_draw, n_chains)), jnp.asarray(0, jnp.int32),
    )
    # Strong dtypes throughout (blackjax's step size comes out weakly typed): a state reloaded from disk then has
    # the same avals and reuses the compiled chunk program instead of compiling a second one.
    return jax.tree.map(lambda x: jnp.asarray(x, x.dtype), state)


def sample_chunk(
    logdensity: LogDensity,
    state: SamplerState,
    n_steps: int,
    *,
    max_tree_depth: int = 10,
    chain_method: str = DEFAULT_CHAIN_METHOD,
) -> tuple[SamplerState, Any, SampleStats]:
    """``n_steps`` NUTS draws from ``state`` in one jitted ``lax.scan``: ``(new state, draws, stats)``.

    Draws are ``[chain, n_steps, ...]`` like the position, stats ``[chain, n_steps]``.
    """
    _check(None, chain_method)
    program = _chunk_program(logdensity, int(n_steps), max_tree_depth, chain_method)
    hmc_state = blackjax.mcmc.hmc.HMCState(state.position, state.logdensity, state.logdensity_grad)
    first = jnp.broadcast_to(jnp.asarray(state.n_done, jnp.int32), state.step_size.shape)
    hmc_state, (draws, stats) = program(hmc_state, state.step_size, state.inverse_mass_matrix, state.key_data, first)
    new_state = state._replace(
        position=hmc_state.position, logdensity=hmc_state.logdensity, logdensity_grad=hmc_state.logdensity_grad,
        n_done=state.n_done + n_steps,
    )
    return new_state, draws, stats


def run_nuts(
    logdensity: LogDensity,
    position0: Any,
    *,
    seed: int | Array = 0,
    n_chains: int = 4,
    n_warmup: int = 1000,
    n_draws: int = 1000,
    chunk_size: int = 250,
    mass_matrix: str = "diagonal",
    init_scale: float | Any = 0.1,
    shared_key: str = "shared",
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    chain_method: str = DEFAULT_CHAIN_METHOD,
    on_chunk: Callable[[Any, SampleStats, SamplerState], None] | None = None,
    resume_state: SamplerState | None = None,
    keep_draws: bool = True,
    initial_metric: str | None = None,
) -> NutsResult:
    """Warm up (unless ``resume_state`` is given), then draw until ``n_draws`` per chain, ``chunk_size`` at a time.

    After each chunk, ``on_chunk(draws, stats, state)`` gets that chunk (``[chain, <=chunk_size, ...]``) and the
    state to save (:func:`save_state`); passing that state back as ``resume_state`` (with the same ``chunk_size``,
    ``max_tree_depth`` and ``chain_method``) continues with exactly the draws an uninterrupted run makes
    (``position0``, ``seed`` and the warm-up settings are then unused).  With
    ``keep_draws=False`` nothing is accumulated in memory (the caller keeps the chunks).
    """
    _check(mass_matrix, chain_method)
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    state = resume_state
    if state is None:
        state = warmup(
            logdensity, position0, seed=seed, n_chains=n_chains, n_warmup=n_warmup, mass_matrix=mass_matrix,
            init_scale=init_scale, shared_key=shared_key, target_accept=target_accept,
            max_tree_depth=max_tree_depth, chain_method=chain_method, initial_metric=initial_metric,
        )
    chunks = []
    while int(state.n_done) < n_draws:
        n = min(chunk_size, n_draws - int(state.n_done))
        state, draws, stats = sample_chunk(
            logdensity, state, n, max_tree_depth=max_tree_depth, chain_method=chain_method
        )
        draws, stats = jax.device_get((draws, stats))  # host memory: device memory stays one chunk deep
        if on_chunk is not None:
            on_chunk(draws, stats, state)
        if keep_draws:
            chunks.append((draws, stats))
    if not keep_draws or not chunks:
        return NutsResult(None, None, state)
    draws, stats = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *chunks)
    return NutsResult(draws, stats, state)


def _state_treedef(position_template: Any, mass_matrix: str) -> Any:
    imm = {"structured": LowRankInverseMassMatrix(0, 0, 0),
           "arrowhead": ArrowheadInverseMassMatrix(0, 0, 0, 0, 0)}.get(mass_matrix, 0)
    zeros = jax.tree.map(lambda _: 0, position_template)
    return jax.tree.structure(SamplerState(zeros, 0, zeros, 0, imm, 0, 0))


def _mass_matrix_kind(state: SamplerState) -> str:
    if isinstance(state.inverse_mass_matrix, LowRankInverseMassMatrix):
        return "structured"
    if isinstance(state.inverse_mass_matrix, ArrowheadInverseMassMatrix):
        return "arrowhead"
    return "diagonal" if np.ndim(state.inverse_mass_matrix) == 2 else "dense"


def save_state(path: str | os.PathLike, state: SamplerState) -> Path:
    """Write ``state`` to ``path`` (``.npz``) atomically: a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    kind = _mass_matrix_kind(state)
    leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, mass_matrix=np.asarray(kind), n_leaves=np.asarray(len(leaves)),
                     **{f"leaf_{i}": x for i, x in enumerate(leaves)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(path: str | os.PathLike, position_template: Any) -> SamplerState:
    """Read a state written by :func:`save_state`; ``position_template`` (e.g. the MAP) gives the pytree structure."""
    with np.load(path) as f:
        kind = str(f["mass_matrix"])
        leaves = [f[f"leaf_{i}"] for i in range(int(f["n_leaves"]))]
    treedef = _state_treedef(position_template, kind)
    if treedef.num_leaves != len(leaves):
        raise ValueError(f"{path}: {len(leaves)} arrays, but the template position needs {treedef.num_leaves}")
    return jax.tree.map(jnp.asarray, jax.tree.unflatten(treedef, leaves))
