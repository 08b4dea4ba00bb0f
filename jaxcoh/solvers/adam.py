"""Adam with an exponentially decaying learning rate (optax): the robust fallback for rough objectives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu

from .common import RUNNING, SolverOptions, SolverResult, Status, finite_or_inf, report_iteration


def adam(loss_fn: Callable[[Any, Any], jax.Array], z0: Any, args: Any,
         options: SolverOptions = SolverOptions()) -> SolverResult:
    """Minimises ``loss_fn(z, args)`` with Adam; returns the best iterate seen (Adam's loss is not monotone).

    The learning rate decays from ``learning_rate`` by a factor 100 over ``max_iter`` steps, so late steps refine
    rather than rattle. Converges when the gradient norm falls below ``gtol * (1 + |loss|)``.
    """
    # optax.exponential_decay(learning_rate, max_iter, 1e-2), written out: max_iter may be traced (jit_with_options)
    def schedule(count):
        return options.learning_rate * 1e-2 ** (count / jnp.maximum(options.max_iter, 1))

    opt = optax.adam(schedule)
    vg = jax.value_and_grad(lambda z: loss_fn(z, args))

    def body(carry):
        z, state, best_z, best_loss, i0, shown, status0 = carry
        loss, grad = vg(z)
        better = jnp.isfinite(loss) & (loss < best_loss)
        best_z = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), z, best_z)
        best_loss = jnp.where(better, loss, best_loss)
        updates, state = opt.update(grad, state, z)
        z = optax.apply_updates(z, updates)
        i = i0 + 1
        gnorm = otu.tree_norm(grad)
        report_iteration(options, status0 == RUNNING, (i, loss, gnorm), (i0, *shown))
        status = jnp.select(
            [~jnp.isfinite(loss), gnorm <= options.gtol * (1 + jnp.abs(loss)), i >= options.max_iter],
            [Status.NONFINITE, Status.CONVERGED, Status.MAX_ITER],
            RUNNING,
        ).astype(jnp.int32)
        shown = (loss.astype(shown[0].dtype), gnorm.astype(shown[1].dtype))  # the carry's types, for the loop
        return z, state, best_z, best_loss, i, shown, status

    inf = jnp.asarray(jnp.inf, jnp.result_type(*jax.tree_util.tree_leaves(z0)))
    init = (z0, opt.init(z0), z0, inf, jnp.asarray(0, jnp.int32), (inf, inf), jnp.asarray(RUNNING, jnp.int32))
    z, _, best_z, best_loss, i, _, status = jax.lax.while_loop(lambda c: c[-1] == RUNNING, body, init)
    loss, grad = vg(best_z)
    # A non-finite loss after a finite best is a divergence Adam recovered from: report the best iterate.
    status = jnp.where((status == Status.NONFINITE) & jnp.isfinite(best_loss), Status.MAX_ITER, status)
    # Adam's iterates are not monotone and only the best is kept: no window of its losses describes convergence
    return SolverResult(best_z, finite_or_inf(loss), otu.tree_norm(grad), i, status.astype(jnp.int32),
                        jnp.full_like(loss, jnp.nan))
