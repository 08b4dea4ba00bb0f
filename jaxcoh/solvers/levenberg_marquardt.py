"""Levenberg-Marquardt as one ``lax.while_loop``: dense for small problems, block-arrowhead for joint fits.

Written by hand because the problems it serves are dominated by structure the libraries do not see:

- small fits (4 parameters, ~10^2 residuals, 10^3-10^4 vmapped replicates) are dominated by per-iteration overhead:
  measured on 1000 vmapped bootstrap fits, this loop ran ~8x faster than ``optimistix.LevenbergMarquardt`` (whose
  trust-region machinery and linear-solver abstraction cost more than the 4x4 solve itself), and ~70x faster than
  vmapped ``optax.lbfgs``, where every lane waits for the slowest line search;
- joint fits (a few shared parameters plus a few per galaxy, for 10^2-10^6 galaxies) have an arrowhead normal
  matrix: per-galaxy parameters touch only their galaxy's residuals. :func:`block_levenberg_marquardt` builds the
  Jacobian with ``k_shared + k_local`` JVPs (one per parameter *kind*, all galaxies at once) instead of one per
  parameter, and solves the normal equations by the Schur complement on the shared block, so an iteration costs
  O(galaxies) time and memory (a dense solve would be O(galaxies^3)).

Marquardt's scaling (damping proportional to ``diag(J^T J)``) makes steps invariant to the parameters' units.
Converges when an accepted step lowers the objective by less than ``ftol`` relative, or the gradient norm falls
below ``gtol * (1 + loss)``; ``STALLED`` when the damping saturates without either. Under ``vmap`` the loop runs
until every lane has finished; finished lanes are frozen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.flatten_util import ravel_pytree

from .common import RUNNING, SolverOptions, SolverResult, Status, finite_or_inf

LAMBDA_INIT = 1e-3
LAMBDA_MIN, LAMBDA_MAX = 1e-15, 1e15


class _State(NamedTuple):
    x: Any  # parameters (a pytree of arrays)
    loss: Array  # [] sum of squared residuals at x
    neq: Any  # the normal equations at x (the linearisation, reused while steps are rejected)
    grad_norm: Array  # [] gradient norm at x
    lam: Array  # [] damping
    i: Array  # [] int iterations done
    status: Array  # [] int: RUNNING, then a Status


def _marquardt(d: Array, lam: Array) -> Array:
    """The damping added to a normal-matrix diagonal ``d`` (floored so a parameter without residuals stays solvable)."""
    return lam * (d + 1e-12 * jnp.max(d, axis=-1, keepdims=True) + jnp.finfo(d.dtype).tiny)


def _lm_loop(linearize: Callable[[Any], tuple[Any, Array, Array]], damped_step: Callable[[Any, Array], Any],
             x0: Any, options: SolverOptions) -> _State:
    """The LM iteration over any parameter layout: ``linearize(x) -> (normal equations, gradient norm, loss)``,
    ``damped_step(normal equations, lam) -> step`` (a pytree like ``x``). Returns the final state.

    Each iteration linearises once, at the trial point (the residuals come with the Jacobian), and keeps the
    linearisation of the current point in the state: a rejected step costs no second Jacobian, and no separate
    objective evaluation is needed. With ``jax.linearize`` for the Jacobian, 4096 vmapped mass-coherence fits ran
    50 iterations 1.7x faster than linearise-at-the-current-point-then-evaluate with ``jacfwd``.
    """

    def body(s: _State) -> _State:
        step = damped_step(s.neq, s.lam)
        x_new = jax.tree_util.tree_map(jnp.add, s.x, step)
        neq_new, grad_new, loss_new = linearize(x_new)
        loss_new = finite_or_inf(loss_new)
        finite = jnp.all(jnp.asarray([jnp.isfinite(a).all() for a in jax.tree_util.tree_leaves((step, neq_new))]))
        accept = finite & (loss_new < s.loss)
        rel = (s.loss - loss_new) / jnp.maximum(s.loss, jnp.finfo(s.loss.dtype).tiny)
        small_grad = s.grad_norm <= options.gtol * (1 + s.loss)
        converged = (accept & (rel <= options.ftol)) | small_grad
        lam = jnp.where(accept, jnp.maximum(s.lam / 3, LAMBDA_MIN), s.lam * 10)
        i = s.i + 1
        status = jnp.select(
            [converged, lam >= LAMBDA_MAX, i >= options.max_iter],
            [Status.CONVERGED, Status.STALLED, Status.MAX_ITER],
            RUNNING,
        )
        keep = lambda a, b: jnp.where(accept, a, b)  # noqa: E731
        return _State(
            x=jax.tree_util.tree_map(keep, x_new, s.x),
            loss=keep(loss_new, s.loss),
            neq=jax.tree_util.tree_map(keep, neq_new, s.neq),
            grad_norm=keep(grad_new, s.grad_norm),
            lam=lam,
            i=i,
            status=status.astype(jnp.int32),
        )

    neq0, grad0, loss0 = linearize(x0)
    dtype = jnp.result_type(loss0)
    init = _State(
        x=x0,
        loss=finite_or_inf(loss0),
        neq=neq0,
        grad_norm=grad0,
        lam=jnp.asarray(LAMBDA_INIT, dtype),
        i=jnp.asarray(0, jnp.int32),
        status=jnp.where(jnp.isfinite(loss0), RUNNING, Status.NONFINITE).astype(jnp.int32),
    )
    return jax.lax.while_loop(lambda s: s.status == RUNNING, body, init)


def levenberg_marquardt(residual_fn: Callable[[Any, Any], Array], z0: Any, args: Any,
                        options: SolverOptions = SolverOptions()) -> SolverResult:
    """Minimises ``sum(residual_fn(z, args)**2)`` over the pytree ``z`` from ``z0`` (dense normal equations)."""
    x0, unravel = ravel_pytree(z0)

    def residuals(x):
        return jnp.ravel(residual_fn(unravel(x), args))

    def linearize(x):
        # Forward mode: one JVP per parameter, the residuals themselves from the same pass (jax.linearize).
        r, jvp = jax.linearize(residuals, x)
        J = jax.vmap(jvp, out_axes=1)(jnp.eye(x.shape[0], dtype=x.dtype))  # [m, k]
        g = J.T @ r
        return (J.T @ J, g), 2 * jnp.linalg.norm(g), jnp.sum(r**2)

    def damped_step(neq, lam):
        A, g = neq
        return -jnp.linalg.solve(A + jnp.diag(_marquardt(jnp.diag(A), lam)), g)

    s = _lm_loop(linearize, damped_step, x0, options)
    return SolverResult(unravel(s.x), s.loss, s.grad_norm, s.i, s.status)


def block_levenberg_marquardt(residual_fn: Callable[[Any, Any], Array], z0: Any, args: Any,
                              options: SolverOptions = SolverOptions()) -> SolverResult:
    """Minimises ``sum(residual_fn(z, args)**2)`` where ``z = {"shared": pytree of scalars, "local": pytree of [g]
    arrays}`` and ``residual_fn`` returns per-galaxy residuals ``[g, m]`` in which galaxy ``j``'s row depends on
    the shared parameters and on the local parameters of ``j`` only (this is assumed, not checked).
    """
    s0, unravel_s = ravel_pytree(z0["shared"])
    local_leaves, local_def = jax.tree_util.tree_flatten(z0["local"])
    ks, kl = s0.shape[0], len(local_leaves)

    def unpack(x):
        s, L = x
        return {"shared": unravel_s(s),
                "local": jax.tree_util.tree_unflatten(local_def, [L[:, c] for c in range(kl)])}

    def residuals(x):
        return residual_fn(unpack(x), args)

    L0 = (jnp.stack(local_leaves, axis=1) if kl else jnp.zeros((0, 0), s0.dtype))
    x0 = (s0, L0)

    def linearize(x):
        s, L = x
        r = residuals(x)  # [g, m]
        # One JVP per parameter kind: a tangent on every galaxy's copy at once is exact, since row j depends only
        # on galaxy j's local parameters.
        if ks:
            Js = jax.vmap(lambda t: jax.jvp(lambda ss: residuals((ss, L)), (s,), (t,))[1],
                          out_axes=-1)(jnp.eye(ks, dtype=s.dtype))  # [g, m, ks]
        if kl:
            Jl = jax.vmap(lambda t: jax.jvp(lambda LL: residuals((s, LL)), (L,), (jnp.broadcast_to(t, L.shape),))[1],
                          out_axes=-1)(jnp.eye(kl, dtype=L.dtype))  # [g, m, kl]
        neq = {}
        grad_sq = jnp.zeros((), r.dtype)
        if ks:
            neq["A_ss"] = jnp.einsum("gmi,gmj->ij", Js, Js)
            neq["g_s"] = jnp.einsum("gmi,gm->i", Js, r)
            grad_sq = grad_sq + jnp.sum(neq["g_s"] ** 2)
        if kl:
            neq["A_ll"] = jnp.einsum("gmi,gmj->gij", Jl, Jl)
            neq["g_l"] = jnp.einsum("gmi,gm->gi", Jl, r)
            grad_sq = grad_sq + jnp.sum(neq["g_l"] ** 2)
        if ks and kl:
            neq["B"] = jnp.einsum("gmi,gmj->gij", Jl, Js)  # [g, kl, ks]
        return neq, 2 * jnp.sqrt(grad_sq), jnp.sum(r**2)

    def damped_step(neq, lam):
        ds = jnp.zeros_like(s0)
        dl = jnp.zeros_like(L0)
        if kl:
            A_ll = neq["A_ll"] + jax.vmap(jnp.diag)(_marquardt(jnp.diagonal(neq["A_ll"], axis1=1, axis2=2), lam))
            solve_l = jax.vmap(jnp.linalg.solve)
            inv_gl = solve_l(A_ll, neq["g_l"][..., None])[..., 0]  # [g, kl]
        if ks:
            A_ss = neq["A_ss"] + jnp.diag(_marquardt(jnp.diag(neq["A_ss"]), lam))
            rhs = -neq["g_s"]
            if kl:  # Schur complement: eliminate every galaxy's block, solve the shared block, substitute back
                inv_B = solve_l(A_ll, neq["B"])  # [g, kl, ks]
                A_ss = A_ss - jnp.einsum("gli,glj->ij", neq["B"], inv_B)
                rhs = rhs + jnp.einsum("gli,gl->i", neq["B"], inv_gl)
            ds = jnp.linalg.solve(A_ss, rhs)
        if kl:
            dl = -inv_gl - (jnp.einsum("glj,j->gl", inv_B, ds) if ks else 0.0)
        return (ds, dl)

    s = _lm_loop(linearize, damped_step, x0, options)
    return SolverResult(unpack(s.x), s.loss, s.grad_norm, s.i, s.status)
