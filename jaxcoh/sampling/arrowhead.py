"""The "arrowhead" mass matrix: a posterior whose per-galaxy parameters are independent given the shared ones.

In a joint fit, galaxy ``j``'s parameters ``x_j`` (m of them: its own and its nuisance values) touch only its own
points, so given the shared parameters ``x_s`` (k) the galaxies are independent: the posterior's precision is an
arrowhead (a dense shared block, a dense m x m block per galaxy, shared-galaxy coupling, nothing between galaxies).
The Gaussian with that structure is the regression model ``x_j = mu_j + A_j (x_s - mu_s) + e_j``,
``e_j ~ N(0, S_j)``, ``x_s ~ N(mu_s, C_ss)``: its covariance ``C = L L^T`` has the block-triangular factor

    L = [[L_s, 0], [A L_s, blockdiag(L_j)]],   L_s L_s^T = C_ss,   L_j L_j^T = S_j,

so every operation NUTS needs (``C p``, the kinetic energy ``|L^T p|^2 / 2``, momenta ``L^{-T} eps``) is a few
``[g, m, m]`` and ``[g, m, k]`` batched products, O(g m (m + k) + k^2) instead of O(d^2). Unlike the "structured"
metric (dense shared block, diagonal elsewhere) it captures what dominates SPARC's posterior: within a galaxy,
distance, Upsilon and inclination trade against each other (V_bar^2 ~ D Upsilon, V_obs ~ 1/sin i), and every
galaxy's Upsilon against the shared parameters.

Adaptation follows Stan's windows (blackjax's schedule and dual averaging); in each slow window Welford accumulators
collect exactly the arrowhead entries of the sample covariance, regularised as Stan does
(``n/(n+5) C + 1e-3 * 5/(n+5) I``) or, from a Laplace start, pooled with the Laplace covariance, and
``A_j = C_js C_ss^{-1}``, ``S_j = C_jj - A_j C_sj`` follow (a Schur complement of a positive-definite matrix:
positive definite).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.staged_adaptation import build_schedule
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.mcmc.metrics import Metric
from jax import Array
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular

# How many draws' worth of the warm-up's starting metric (the Laplace approximation at the MAP) each window's estimate
# is pooled with (:func:`_welford_final`). Measured on B7's workload (SPARC's RAR with nuisance and sigma_int, 2 chains
# x (250 warm-up + 250 draws), seeds 1, 3, 4; bulk / tail ESS of g_dagger, then of sigma_int): 0 (Stan's shrinkage
# towards 1e-3 I) 183-315 / 318-337 and 185-201 / 242-339; 50: 295-371 / 308-403 and 251-356 / 295-336; 200:
# 477-621 / 352-440 and 394-520 / 339-488; 500: 642-934 / 316-384 (bulk ESS above the draws, tails no better) and
# 592-648 / 357-470; the Laplace metric held fixed (seeds 1, 3): 535 and 1349 / 218 and 402, the per-galaxy
# parameters' median ESS lower on seed 1.
# The last window of a 250-step warm-up holds 100 draws, too few for 147 galaxies' 4 x 4 blocks and couplings.
LAPLACE_PRIOR_DRAWS = 200.0


class ArrowheadInverseMassMatrix(NamedTuple):
    """Inverse mass matrix ``C = L L^T`` (see the module docstring), arrays only (a pytree a state can carry).

    ``shared_idx [k]`` and ``local_idx [g, m]`` are the positions of the shared and per-galaxy coordinates in
    ``ravel_pytree(position)``; ``mean_*`` are not used by the metric (kept for inspection)."""

    L_shared: Array  # [k, k] lower Cholesky factor of C_ss
    A: Array  # [g, m, k] regression of each galaxy's coordinates on the shared ones
    L_local: Array  # [g, m, m] lower Cholesky factors of the conditional covariances S_j
    shared_idx: Array  # [k] int32
    local_idx: Array  # [g, m] int32


def arrowhead_indices(position: Any, shared_key: str = "shared") -> tuple[np.ndarray, np.ndarray]:
    """``(shared_idx [k], local_idx [g, m])``: where the shared coordinates and each galaxy's sit in
    ``ravel_pytree(position)``. Every leaf outside ``position[shared_key]`` must have the galaxy axis first."""
    if not isinstance(position, dict) or shared_key not in position:
        raise ValueError(f"the arrowhead mass matrix needs a dict position with a {shared_key!r} entry")
    others = [np.shape(x) for k, v in position.items() if k != shared_key for x in jax.tree.leaves(v)]
    sizes = {s[0] for s in others if len(s)}
    if len(sizes) != 1 or any(len(s) == 0 for s in others):
        raise ValueError(f"the arrowhead mass matrix needs every leaf outside {shared_key!r} to have the same leading "
                         f"(galaxy) axis; got shapes {others}")
    g = sizes.pop()

    def galaxy_of(key, x):
        shape = np.shape(x)
        if key == shared_key:
            return np.full(shape, -1.0)
        return np.broadcast_to(np.arange(g, dtype=float).reshape((g,) + (1,) * (len(shape) - 1)), shape)

    tagged = {k: jax.tree.map(lambda x, k=k: galaxy_of(k, x), v) for k, v in position.items()}
    flat = np.asarray(ravel_pytree(tagged)[0])
    shared_idx = np.flatnonzero(flat < 0)
    local = np.flatnonzero(flat >= 0)
    local_idx = local[np.argsort(flat[local], kind="stable")].reshape(g, -1)
    if shared_idx.size == 0:
        raise ValueError("the arrowhead mass matrix needs at least one shared coordinate")
    return shared_idx.astype(np.int32), local_idx.astype(np.int32)


def identity(shared_idx: np.ndarray, local_idx: np.ndarray, dtype) -> ArrowheadInverseMassMatrix:
    k, (g, m) = shared_idx.size, local_idx.shape
    return ArrowheadInverseMassMatrix(jnp.eye(k, dtype=dtype), jnp.zeros((g, m, k), dtype),
                                      jnp.broadcast_to(jnp.eye(m, dtype=dtype), (g, m, m)),
                                      jnp.asarray(shared_idx), jnp.asarray(local_idx))


def laplace(logdensity, position: Any, shared_idx: np.ndarray, local_idx: np.ndarray) -> ArrowheadInverseMassMatrix:
    """The arrowhead inverse mass matrix of the Laplace approximation at ``position`` (the MAP): the Gaussian whose
    precision is the negative Hessian ``H`` of ``logdensity`` there, where ``H`` is an arrowhead (galaxies
    independent given the shared coordinates). Its blocks come from ``k + m`` Hessian-vector products (a tangent on
    every galaxy's copy of a coordinate at once, as the fits' error analysis does), and the factors follow exactly:
    ``S_j = H_jj^-1``, ``A_j = -H_jj^-1 H_js``, ``C_ss^-1 = H_ss - sum_j H_sj H_jj^-1 H_js`` (the Schur complement).
    A galaxy block (or the shared one) that is not positive definite (a start away from the optimum) falls back to
    the identity, as Stan's warm-up starts. Jittable."""
    from ..solvers.arrowhead import small_cholesky, spd_solve  # LAPACK-free tiny blocks (see that module)

    flat0, unravel = ravel_pytree(position)
    k, (g, m) = shared_idx.size, local_idx.shape
    directions = jnp.zeros((k + m, flat0.size), flat0.dtype)
    directions = directions.at[jnp.arange(k), shared_idx].set(1.0)
    directions = directions.at[k + jnp.arange(m)[:, None], local_idx.T].set(1.0)

    def neg_grad(x):
        return -jax.grad(lambda y: logdensity(unravel(y)))(x)

    cols = jax.vmap(lambda v: jax.jvp(neg_grad, (flat0,), (v,))[1])(directions)  # [k + m, d]: columns of H
    H_ss, H_ls = cols[:k][:, shared_idx], jnp.moveaxis(cols[:k][:, local_idx], 0, -1)  # [k, k], [g, m, k]
    H_ll = jnp.moveaxis(cols[k:][:, local_idx], 0, -1)  # [g, m, m]
    H_ll = 0.5 * (H_ll + jnp.swapaxes(H_ll, 1, 2))
    L_ll = small_cholesky(H_ll)
    ok_l = jnp.all(jnp.isfinite(L_ll), axis=(1, 2))
    eye_m, eye_k = jnp.eye(m, dtype=flat0.dtype), jnp.eye(k, dtype=flat0.dtype)
    safe_ll = jnp.where(ok_l[:, None, None], H_ll, eye_m)
    S = spd_solve(safe_ll, jnp.broadcast_to(eye_m, (g, m, m)))  # H_jj^-1
    A = jnp.where(ok_l[:, None, None], -spd_solve(safe_ll, H_ls), 0.0)
    P_ss = H_ss + jnp.einsum("gmk,gml->kl", H_ls, A)  # H_ss - sum H_sj H_jj^-1 H_js
    # the one shared block (any size, not batched over galaxies): LAPACK's; NaN where not positive definite
    C_ss = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(0.5 * (P_ss + P_ss.T)), True), eye_k)
    L_s = jnp.linalg.cholesky(0.5 * (C_ss + C_ss.T))
    L_l = small_cholesky(0.5 * (S + jnp.swapaxes(S, 1, 2)))
    ok_s = jnp.all(jnp.isfinite(L_s))
    return ArrowheadInverseMassMatrix(jnp.where(ok_s, L_s, eye_k), jnp.where(ok_s, A, 0.0),
                                      jnp.where(ok_l[:, None, None], L_l, eye_m),
                                      jnp.asarray(shared_idx), jnp.asarray(local_idx))


def _split(imm: ArrowheadInverseMassMatrix, flat: Array) -> tuple[Array, Array]:
    return flat[imm.shared_idx], flat[imm.local_idx]


def _join(imm: ArrowheadInverseMassMatrix, xs: Array, xl: Array, like: Array) -> Array:
    return jnp.zeros_like(like).at[imm.shared_idx].set(xs).at[imm.local_idx].set(xl)


def _lt(imm: ArrowheadInverseMassMatrix, ps: Array, pl: Array) -> tuple[Array, Array]:
    """``L^T p``."""
    us = imm.L_shared.T @ (ps + jnp.einsum("gmk,gm->k", imm.A, pl))
    ul = jnp.einsum("gnm,gn->gm", imm.L_local, pl)
    return us, ul


def _l(imm: ArrowheadInverseMassMatrix, us: Array, ul: Array) -> tuple[Array, Array]:
    """``L u``."""
    xs = imm.L_shared @ us
    return xs, jnp.einsum("gmk,k->gm", imm.A, xs) + jnp.einsum("gmn,gn->gm", imm.L_local, ul)


def _lt_solve(imm: ArrowheadInverseMassMatrix, es: Array, el: Array) -> tuple[Array, Array]:
    """``p`` with ``L^T p = e``."""
    pl = jax.vmap(lambda Lj, e: solve_triangular(Lj, e, lower=True, trans="T"))(imm.L_local, el)
    ps = solve_triangular(imm.L_shared, es, lower=True, trans="T") - jnp.einsum("gmk,gm->k", imm.A, pl)
    return ps, pl


def _l_solve(imm: ArrowheadInverseMassMatrix, xs: Array, xl: Array) -> tuple[Array, Array]:
    """``u`` with ``L u = x``."""
    us = solve_triangular(imm.L_shared, xs, lower=True)
    rest = xl - jnp.einsum("gmk,k->gm", imm.A, imm.L_shared @ us)
    return us, jax.vmap(lambda Lj, r: solve_triangular(Lj, r, lower=True))(imm.L_local, rest)


def arrowhead_metric(imm: ArrowheadInverseMassMatrix) -> Metric:
    """A blackjax :class:`Metric` for the inverse mass matrix ``imm`` (built inside the traced step)."""

    def velocity(flat: Array) -> Array:
        return _join(imm, *_l(imm, *_lt(imm, *_split(imm, flat))), flat)

    def sample_momentum(rng_key, position):
        flat, unravel = ravel_pytree(position)
        eps = jax.random.normal(rng_key, flat.shape, flat.dtype)
        return unravel(_join(imm, *_lt_solve(imm, *_split(imm, eps)), flat))

    def kinetic_energy(momentum, position=None):
        us, ul = _lt(imm, *_split(imm, ravel_pytree(momentum)[0]))
        return 0.5 * (jnp.sum(us**2) + jnp.sum(ul**2))

    def check_turning(momentum_left, momentum_right, momentum_sum, position_left=None, position_right=None):
        m_left, m_right, m_sum = (ravel_pytree(m)[0] for m in (momentum_left, momentum_right, momentum_sum))
        rho = m_sum - (m_right + m_left) / 2
        return (jnp.dot(velocity(m_left), rho) <= 0) | (jnp.dot(velocity(m_right), rho) <= 0)

    def scale(position, element, *, inv, trans):
        # M^{-1/2} = L (inv), M^{1/2} = L^{-T} (not inv); trans transposes either.
        flat, unravel = ravel_pytree(element)
        parts = _split(imm, flat)
        if inv:
            out = _lt(imm, *parts) if trans else _l(imm, *parts)
        else:
            out = _l_solve(imm, *parts) if trans else _lt_solve(imm, *parts)
        return unravel(_join(imm, *out, flat))

    return Metric(sample_momentum, kinetic_energy, check_turning, scale)


def as_metric(inverse_mass_matrix: Any) -> Any:
    """What blackjax's kernels take: a :class:`Metric` for an arrowhead matrix, anything else unchanged."""
    if isinstance(inverse_mass_matrix, ArrowheadInverseMassMatrix):
        return arrowhead_metric(inverse_mass_matrix)
    return inverse_mass_matrix


class Welford(NamedTuple):
    """Running means and co-moments of the arrowhead entries of the sample covariance."""

    n: Array
    mean_s: Array  # [k]
    mean_l: Array  # [g, m]
    m2_ss: Array  # [k, k]
    m2_ls: Array  # [g, m, k]
    m2_ll: Array  # [g, m, m]


def _welford_init(k: int, g: int, m: int, dtype) -> Welford:
    z = lambda *s: jnp.zeros(s, dtype)  # noqa: E731
    return Welford(jnp.zeros((), dtype), z(k), z(g, m), z(k, k), z(g, m, k), z(g, m, m))


def _welford_update(w: Welford, xs: Array, xl: Array) -> Welford:
    n = w.n + 1
    ds, dl = xs - w.mean_s, xl - w.mean_l
    mean_s, mean_l = w.mean_s + ds / n, w.mean_l + dl / n
    es, el = xs - mean_s, xl - mean_l
    return Welford(n, mean_s, mean_l, w.m2_ss + jnp.outer(ds, es), w.m2_ls + dl[:, :, None] * es[None, None, :],
                   w.m2_ll + dl[:, :, None] * el[:, None, :])


def _covariance_blocks(imm: ArrowheadInverseMassMatrix) -> tuple[Array, Array, Array]:
    """The arrowhead blocks ``(C_ss [k, k], C_ls [g, m, k], C_ll [g, m, m])`` of ``C = L L^T``."""
    c_ss = imm.L_shared @ imm.L_shared.T
    c_ls = jnp.einsum("gmk,kl->gml", imm.A, c_ss)
    c_ll = jnp.einsum("gmn,gln->gml", imm.L_local, imm.L_local) + jnp.einsum("gmk,gnk->gmn", c_ls, imm.A)
    return c_ss, c_ls, c_ll


def _welford_final(w: Welford, previous: ArrowheadInverseMassMatrix, prior: ArrowheadInverseMassMatrix | None = None,
                   prior_draws: float = 0.0) -> ArrowheadInverseMassMatrix:
    """The regularised estimate in factored form: with ``prior`` (the warm-up's starting metric, e.g. the Laplace
    approximation at the MAP) the sample covariance's co-moments are pooled with ``prior_draws`` draws' worth of the
    prior's covariance, ``(M2 + n0 C_prior) / (n - 1 + n0)``, so short windows lean on the prior and long ones on
    the draws; without it Stan's shrinkage towards 1e-3 I. (Shrinking towards the previous window's estimate instead,
    tried on SPARC's RAR, halved the ESS of sigma_int.)"""
    from ..solvers.arrowhead import small_cholesky  # LAPACK-free per-galaxy blocks (see that module)

    n = w.n
    denom = jnp.maximum(n - 1.0, 1.0)
    if prior is None:
        shrink, eps = n / (n + 5.0), 1e-3 * 5.0 / (n + 5.0)
        c_ss = shrink * w.m2_ss / denom + eps * jnp.eye(w.m2_ss.shape[0], dtype=n.dtype)
        c_ls = shrink * w.m2_ls / denom
        c_ll = shrink * w.m2_ll / denom + eps * jnp.eye(w.m2_ll.shape[1], dtype=n.dtype)[None]
    else:
        p_ss, p_ls, p_ll = _covariance_blocks(prior)
        total = denom + prior_draws
        c_ss, c_ls, c_ll = ((m2 + prior_draws * p) / total
                            for m2, p in ((w.m2_ss, p_ss), (w.m2_ls, p_ls), (w.m2_ll, p_ll)))
    L_s = jnp.linalg.cholesky(c_ss)  # the one shared block: LAPACK's; the per-galaxy ones below unrolled
    A = jnp.einsum("gmk,kl->gml", c_ls, jax.scipy.linalg.cho_solve((L_s, True), jnp.eye(L_s.shape[0], dtype=n.dtype)))
    S = c_ll - jnp.einsum("gmk,gnk->gmn", A, c_ls)
    S = 0.5 * (S + jnp.swapaxes(S, 1, 2))
    return previous._replace(L_shared=L_s, A=A, L_local=small_cholesky(S))


class _WarmupCarry(NamedTuple):
    hmc_state: Any
    da_state: Any
    step_size: Array
    imm: ArrowheadInverseMassMatrix
    welford: Welford


def arrowhead_warmup(logdensity, key: Array, position: Any, n_warmup: int, *, shared_idx: np.ndarray,
                     local_idx: np.ndarray, target_accept: float = 0.8, max_tree_depth: int = 10,
                     imm0: ArrowheadInverseMassMatrix | None = None, prior_draws: float = 0.0):
    """Stan's window adaptation of the step size and the arrowhead inverse mass matrix for one chain (traceable):
    ``(hmc_state, step_size, inverse_mass_matrix)`` after ``n_warmup`` NUTS steps from ``position``, starting from
    ``imm0`` (default the identity, as Stan; :func:`laplace` at the MAP saves the first window's long trajectories).
    """
    flat0, _ = ravel_pytree(position)
    dtype = flat0.dtype
    k, (g, m) = shared_idx.size, local_idx.shape
    imm0 = identity(shared_idx, local_idx, dtype) if imm0 is None else imm0
    prior = imm0 if prior_draws > 0 else None
    kernel = blackjax.nuts.build_kernel()
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)
    schedule = jnp.asarray(build_schedule(n_warmup), jnp.int32)  # [n, 2]: (slow window?, its last step?)
    hmc0 = blackjax.nuts.init(position, logdensity)
    carry = _WarmupCarry(hmc0, da_init(jnp.asarray(1.0, dtype)), jnp.asarray(1.0, dtype), imm0,
                         _welford_init(k, g, m, dtype))

    def step(c: _WarmupCarry, xs):
        i, (slow, window_end) = xs
        state, info = kernel(jax.random.fold_in(key, i), c.hmc_state, logdensity, c.step_size, arrowhead_metric(c.imm),
                             max_tree_depth)
        da = da_update(c.da_state, info.acceptance_rate)
        flat = ravel_pytree(state.position)[0]
        welford = jax.lax.cond(slow.astype(bool), lambda w: _welford_update(w, *_split(c.imm, flat)), lambda w: w,
                               c.welford)

        def end_window(args):
            da_, w_, imm_ = args
            return da_init(da_final(da_)), _welford_init(k, g, m, dtype), _welford_final(w_, imm_, prior, prior_draws)

        da, welford, imm = jax.lax.cond(window_end.astype(bool), end_window, lambda a: a, (da, welford, c.imm))
        return _WarmupCarry(state, da, jnp.exp(da.log_step_size), imm, welford), None

    last, _ = jax.lax.scan(step, carry, (jnp.arange(n_warmup), (schedule[:, 0], schedule[:, 1])))
    return last.hmc_state, jnp.exp(last.da_state.log_step_size_avg), last.imm
