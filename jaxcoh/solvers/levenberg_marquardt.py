"""Levenberg-Marquardt for small least-squares problems, as one ``lax.while_loop``.

Written by hand because the problems it serves (4 parameters, ~10^2 residuals, 10^3-10^4 vmapped replicates) are
dominated by per-iteration overhead: measured on 1000 vmapped bootstrap fits, this loop ran ~8x faster than
``optimistix.LevenbergMarquardt`` (whose trust-region machinery and linear-solver abstraction cost more than the
4x4 solve itself), and ~70x faster than vmapped ``optax.lbfgs``, where every lane waits for the slowest line
search. Under ``vmap`` the loop runs until every lane has converged; finished lanes are frozen.
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
    x: Array  # [p] flat unconstrained parameters
    loss: Array  # [] sum of squared residuals at x
    lam: Array  # [] damping
    i: Array  # [] int iterations done
    status: Array  # [] int: RUNNING, then a Status


def levenberg_marquardt(residual_fn: Callable[[Any, Any], Array], z0: Any, args: Any,
                        options: SolverOptions = SolverOptions()) -> SolverResult:
    """Minimises ``sum(residual_fn(z, args)**2)`` over the pytree ``z`` from ``z0``.

    Marquardt's scaling (damping proportional to ``diag(J^T J)``) makes steps invariant to the parameters' units.
    Converges when an accepted step lowers the objective by less than ``ftol`` relative, or the gradient norm falls
    below ``gtol * (1 + loss)``; ``STALLED`` when the damping saturates without either.
    """
    x0, unravel = ravel_pytree(z0)

    def residuals(x):
        return jnp.ravel(residual_fn(unravel(x), args))

    def res_and_jac(x):
        r = residuals(x)
        return r, r

    jac = jax.jacfwd(res_and_jac, has_aux=True)  # one forward pass gives J and r

    def objective(x):
        return jnp.sum(residuals(x) ** 2)

    def cond(s: _State):
        return s.status == RUNNING

    def body(s: _State) -> _State:
        J, r = jac(s.x)
        A = J.T @ J
        g = J.T @ r
        d = jnp.diag(A)
        damped = A + s.lam * jnp.diag(d + 1e-12 * jnp.max(d))
        step = -jnp.linalg.solve(damped, g)
        x_new = s.x + step
        loss_new = finite_or_inf(objective(x_new))
        accept = jnp.isfinite(step).all() & (loss_new < s.loss)
        rel = (s.loss - loss_new) / jnp.maximum(s.loss, jnp.finfo(s.loss.dtype).tiny)
        grad_norm = 2 * jnp.linalg.norm(g)
        small_grad = grad_norm <= options.gtol * (1 + s.loss)
        converged = (accept & (rel <= options.ftol)) | small_grad
        lam = jnp.where(accept, jnp.maximum(s.lam / 3, LAMBDA_MIN), s.lam * 10)
        i = s.i + 1
        status = jnp.select(
            [converged, lam >= LAMBDA_MAX, i >= options.max_iter],
            [Status.CONVERGED, Status.STALLED, Status.MAX_ITER],
            RUNNING,
        )
        return _State(
            x=jnp.where(accept, x_new, s.x),
            loss=jnp.where(accept, loss_new, s.loss),
            lam=lam,
            i=i,
            status=status.astype(jnp.int32),
        )

    loss0 = objective(x0)
    dtype = x0.dtype
    init = _State(
        x=x0,
        loss=finite_or_inf(loss0),
        lam=jnp.asarray(LAMBDA_INIT, dtype),
        i=jnp.asarray(0, jnp.int32),
        status=jnp.where(jnp.isfinite(loss0), RUNNING, Status.NONFINITE).astype(jnp.int32),
    )
    s = jax.lax.while_loop(cond, body, init)
    J, r = jac(s.x)
    grad_norm = 2 * jnp.linalg.norm(J.T @ r)
    return SolverResult(unravel(s.x), s.loss, grad_norm, s.i, s.status)
