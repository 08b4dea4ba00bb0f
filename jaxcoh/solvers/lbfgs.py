"""L-BFGS with a zoom line search (optax), as one ``lax.while_loop``: for large smooth problems with priors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu

from .common import (RUNNING, SolverOptions, SolverResult, Status, finite_or_inf, loss_history, push_loss,
                     relative_change, report_iteration)


def lbfgs(loss_fn: Callable[[Any, Any], jax.Array], z0: Any, args: Any,
          options: SolverOptions = SolverOptions()) -> SolverResult:
    """Minimises ``loss_fn(z, args)`` with ``optax.lbfgs``.

    Stops when the gradient norm falls below ``gtol * (1 + |loss|)``, when an iteration changes the loss by less
    than ``ftol`` relative, or after ``max_iter`` iterations; a non-finite loss stops it with ``NONFINITE``.
    """

    def fun(z):
        return loss_fn(z, args)

    opt = optax.lbfgs(memory_size=options.memory_size)

    # The objective's value and gradient at the current iterate live in optax's state: its line search leaves them
    # there for the point it accepted, and they are set once for the start. (optax.value_and_grad_from_state reads
    # them through a lax.cond whose other branch evaluates the gradient: compiled into the loop, and run at every
    # iteration under vmap, where a cond becomes a select.)
    def body(carry):
        z, state, loss_prev, i0, history, status0 = carry
        value, grad = otu.tree_get(state, "value"), otu.tree_get(state, "grad")
        updates, state = opt.update(grad, state, z, value=value, grad=grad, value_fn=fun)
        z = optax.apply_updates(z, updates)
        loss = otu.tree_get(state, "value")
        gnorm = otu.tree_norm(otu.tree_get(state, "grad"))
        rel = jnp.abs(loss_prev - loss) / jnp.maximum(jnp.abs(loss), 1.0)
        i = i0 + 1
        report_iteration(options, status0 == RUNNING, (i, loss, gnorm), (i0, value, otu.tree_norm(grad)))
        status = jnp.select(
            [~jnp.isfinite(loss), (gnorm <= options.gtol * (1 + jnp.abs(loss))) | (rel <= options.ftol),
             i >= options.max_iter],
            [Status.NONFINITE, Status.CONVERGED, Status.MAX_ITER],
            RUNNING,
        ).astype(jnp.int32)
        return z, state, loss, i, push_loss(history, loss), status

    loss0, grad0 = jax.value_and_grad(fun)(z0)
    init = (z0, otu.tree_set(opt.init(z0), value=loss0, grad=grad0), finite_or_inf(loss0), jnp.asarray(0, jnp.int32),
            loss_history(loss0), jnp.where(jnp.isfinite(loss0), RUNNING, Status.NONFINITE).astype(jnp.int32))
    z, state, loss, i, history, status = jax.lax.while_loop(lambda c: c[-1] == RUNNING, body, init)
    loss, grad = otu.tree_get(state, "value"), otu.tree_get(state, "grad")  # at z
    return SolverResult(z, loss, otu.tree_norm(grad), i, status, relative_change(history, finite_or_inf(loss), i))
