"""The arrowhead structure of joint fits: a few shared parameters, a few per galaxy, galaxies independent given the
shared ones. Used by the block Levenberg-Marquardt solver (normal equations) and by the joint fits' error analysis
(Hessian), which are the same algebra on different matrices.

- Derivatives by parameter *kind*: a function whose row ``j`` depends on the shared parameters ``s [ks]`` and on
  galaxy ``j``'s own ``L[j] [kl]`` is differentiated with ``ks + kl`` JVPs (a tangent on every galaxy's copy of a
  kind at once is exact, since no row sees another galaxy's values), not one per parameter: O(galaxies) work.
- The Schur complement ``S = A_ss - B^T A_ll^-1 B`` (``B = A_ls``) eliminates every galaxy's block; its inverse is
  the shared block of the inverse, and each galaxy's block of the inverse is ``A_ll^-1 + W S^-1 W^T`` with
  ``W = A_ll^-1 B``.
- Tiny symmetric positive-definite blocks (2-8 parameters, for every galaxy at once) are factorised by an unrolled
  Cholesky written with elementwise operations. Written by hand because LAPACK's batched solvers are custom calls
  that, on a 2-core CPU, deadlocked XLA's intra-op thread pool at ~8000 galaxies (two workers each waiting in
  ``lapack_dtrsm_ffi``'s ``ParallelBatchMap`` for work no free worker could take); elementwise code cannot block,
  fuses with its neighbours, and runs on any backend.

The einsum helpers accept numpy or JAX arrays alike (the error analysis works on host float64 copies).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array


def _xp(*arrays):
    return np if all(isinstance(a, np.ndarray) for a in arrays) else jnp


def kind_jvps(fn: Callable[[Array, Array], Array], s: Array, L: Array) -> tuple[Array, Array | None, Array | None]:
    """``(fn(s, L), d fn / d s [..., ks], d fn / d L-kind [..., kl])`` at ``(s [ks], L [g, kl])``.

    ``fn(s, L)`` must have rows (leading axis ``g``) that depend on ``L`` only through their own row. Column ``c``
    of the third result is the derivative of row ``j`` along ``L[j, c]``. Either derivative is None when its block
    is empty. ``fn`` may return a pytree: each result is then the same pytree (a leaf without the row structure has
    no meaningful third result).

    Every direction goes through one vmapped JVP, which also gives the value: one copy of ``fn`` in the program and
    one evaluation of its primal (a vmap per kind, and the value apart, tripled both; the copies were most of XLA's
    compile time of the joint fits).
    """
    ks, kl = s.shape[0], L.shape[1]
    if not ks and not kl:
        return fn(s, L), None, None
    t_s = jnp.eye(ks + kl, ks, dtype=s.dtype)  # [ks + kl, ks]: unit vectors, then zeros for the local directions
    t_l = jnp.eye(ks + kl, kl, -ks, dtype=L.dtype)  # [ks + kl, kl]: zeros, then the local kinds' unit vectors
    value, d = jax.vmap(lambda ts, tl: jax.jvp(fn, (s, L), (ts, jnp.broadcast_to(tl, L.shape))),
                        out_axes=(None, -1))(t_s, t_l)
    part = lambda sl: jax.tree_util.tree_map(lambda a: a[..., sl], d)  # noqa: E731
    return value, (part(slice(None, ks)) if ks else None), (part(slice(ks, None)) if kl else None)


def galaxy_sums(a: Array, row_galaxy: Array | None, n_galaxies: int) -> Array:
    """``[g, ...]``: rows ``a [r, ...]`` summed into the galaxies ``row_galaxy [r]`` (sorted) they belong to;
    ``a`` itself where rows are galaxies (``row_galaxy`` None)."""
    if row_galaxy is None:
        return a
    return jax.ops.segment_sum(a, row_galaxy, n_galaxies, indices_are_sorted=True)


def normal_equations(J_s: Array | None, J_l: Array | None, r: Array, row_galaxy: Array | None = None,
                     n_galaxies: int | None = None) -> dict[str, Array]:
    """Gauss-Newton normal equations of residuals ``r [g, m]`` with Jacobians ``J_s [g, m, ks]``, ``J_l [g, m, kl]``:
    ``A_ss [ks, ks]``, ``g_s [ks]``, ``A_ll [g, kl, kl]``, ``g_l [g, kl]`` and ``B [g, kl, ks]`` (blocks present
    only where their parameters are). With ``row_galaxy [r]``, the residuals come in rows ``[r, m]``, each one
    galaxy's (:func:`galaxy_sums`), and the per-galaxy blocks are summed over each galaxy's rows."""
    neq = {}
    if J_s is not None:
        neq["A_ss"] = jnp.einsum("gmi,gmj->ij", J_s, J_s)
        neq["g_s"] = jnp.einsum("gmi,gm->i", J_s, r)
    if J_l is not None:
        neq["A_ll"] = galaxy_sums(jnp.einsum("gmi,gmj->gij", J_l, J_l), row_galaxy, n_galaxies)
        neq["g_l"] = galaxy_sums(jnp.einsum("gmi,gm->gi", J_l, r), row_galaxy, n_galaxies)
    if J_s is not None and J_l is not None:
        neq["B"] = galaxy_sums(jnp.einsum("gmi,gmj->gij", J_l, J_s), row_galaxy, n_galaxies)
    return neq


def schur_complement(A_ss, B, inv_B):
    """``S = A_ss - B^T A_ll^-1 B`` given ``inv_B = A_ll^-1 B`` (``[g, kl, ks]``)."""
    return A_ss - _xp(A_ss, B, inv_B).einsum("gli,glj->ij", B, inv_B)


def block_covariance(inv_ll, inv_B, S_inv):
    """Each galaxy's block of the inverse arrowhead matrix, ``A_ll^-1 + W S^-1 W^T`` with ``W = A_ll^-1 B``
    ``[g, kl, ks]``: the marginal covariance of a galaxy's own parameters."""
    return inv_ll + _xp(inv_ll, inv_B, S_inv).einsum("gli,ij,gmj->glm", inv_B, S_inv, inv_B)


def arrowhead_solve(A_ss: Array | None, A_ll: Array | None, B: Array | None, g_s: Array | None,
                    g_l: Array | None, solve_ll: Callable[[Array, Array], Array],
                    solve_ss: Callable[[Array, Array], Array]) -> tuple[Array | None, Array | None]:
    """``(d_s, d_l)`` solving ``[[A_ss, B^T], [B, A_ll]] [d_s, d_l] = -[g_s, g_l]``: every galaxy's block
    eliminated (``solve_ll(A_ll [g, kl, kl], rhs [g, kl, m])``), the shared block solved by the Schur complement
    (``solve_ss(S, rhs [ks, 1])``), then substituted back."""
    if A_ll is None:
        return solve_ss(A_ss, -g_s[:, None])[:, 0], None
    inv_gl = solve_ll(A_ll, g_l[..., None])[..., 0]  # [g, kl]
    if A_ss is None:
        return None, -inv_gl
    inv_B = solve_ll(A_ll, B)  # [g, kl, ks]
    S = schur_complement(A_ss, B, inv_B)
    d_s = solve_ss(S, (-g_s + jnp.einsum("gli,gl->i", B, inv_gl))[:, None])[:, 0]
    return d_s, -inv_gl - jnp.einsum("glj,j->gl", inv_B, d_s)


# ---- tiny SPD blocks without LAPACK --------------------------------------------------------------------------------
def small_cholesky(A: Array) -> Array:
    """Lower Cholesky factor of symmetric positive-definite ``A [..., k, k]`` for small ``k``, unrolled.

    A non-positive pivot gives NaN (the caller's finiteness test rejects the step), never a silent wrong factor.
    """
    k = A.shape[-1]
    cols: list[list[Array]] = [[None] * k for _ in range(k)]  # cols[i][j] = L[..., i, j] for j <= i
    for j in range(k):
        pivot = A[..., j, j] - sum((cols[j][p] ** 2 for p in range(j)), jnp.zeros_like(A[..., j, j]))
        ok = pivot > 0
        d = jnp.sqrt(jnp.where(ok, pivot, 1.0))  # double where: sqrt'(0) is infinite
        d = jnp.where(ok, d, jnp.nan)
        cols[j][j] = d
        for i in range(j + 1, k):
            off = A[..., i, j] - sum((cols[i][p] * cols[j][p] for p in range(j)), jnp.zeros_like(d))
            cols[i][j] = off / d
    zero = jnp.zeros_like(A[..., 0, 0])
    return jnp.stack([jnp.stack([cols[i][j] if j <= i else zero for j in range(k)], axis=-1) for i in range(k)],
                     axis=-2)


def small_cho_solve(Lf: Array, b: Array) -> Array:
    """``A^-1 b`` for ``A = Lf Lf^T`` (``Lf [..., k, k]`` from :func:`small_cholesky`) and ``b [..., k, m]``:
    forward then back substitution, unrolled."""
    k = Lf.shape[-1]
    y: list[Array] = []
    for i in range(k):
        acc = b[..., i, :] - sum((Lf[..., i, p, None] * y[p] for p in range(i)), jnp.zeros_like(b[..., i, :]))
        y.append(acc / Lf[..., i, i, None])
    x: list[Array] = [None] * k
    for i in reversed(range(k)):
        acc = y[i] - sum((Lf[..., p, i, None] * x[p] for p in range(i + 1, k)), jnp.zeros_like(y[i]))
        x[i] = acc / Lf[..., i, i, None]
    return jnp.stack(x, axis=-2)


def spd_solve(A: Array, b: Array) -> Array:
    """``A^-1 b`` for symmetric positive-definite ``A [..., k, k]`` and ``b [..., k, m]``, without LAPACK."""
    if A.shape[-1] == 0:
        return b
    return small_cho_solve(small_cholesky(A), b)
