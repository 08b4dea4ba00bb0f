"""What every solver returns and the options they share."""

from __future__ import annotations

import enum
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from .. import progress


class Status(enum.IntEnum):
    """How a solve ended. Failures are data (one code per fit), never exceptions inside jit."""

    CONVERGED = 0  # a tolerance was met
    MAX_ITER = 1  # ran out of iterations first
    NONFINITE = 2  # the objective was not finite at the start or became non-finite
    STALLED = 3  # no step could decrease the objective, but the gradient is not small


RUNNING = -1  # status of a solve still in its loop
CHANGE_WINDOW = 10  # iterations over which SolverResult.change measures the objective's relative decrease


class SolverResult(NamedTuple):
    """Result of one solve (every field a scalar or the parameter pytree; batched fields under vmap)."""

    z: Any  # unconstrained parameters
    loss: Array  # objective at z
    grad_norm: Array  # l2 norm of the objective's gradient at z
    n_iter: Array  # int
    status: Array  # int, a Status
    change: Array  # relative decrease of the loss over its last iterations (see relative_change)

    @property
    def converged(self) -> Array:
        return self.status == Status.CONVERGED


class SolverOptions(NamedTuple):
    """Shared options (static under jit). ``ftol``: relative objective change; ``gtol``: gradient norm."""

    max_iter: int = 200
    ftol: float = 1e-12
    gtol: float = 1e-9
    learning_rate: float = 0.05  # Adam only
    memory_size: int = 10  # L-BFGS only
    report: str = ""  # a stage name: report every iteration to jaxcoh.progress under it ("" : silent)


def report_iteration(options: SolverOptions, i: Array, loss: Array, grad_norm: Array) -> None:
    """Inside a solver loop: hands the iteration's figures to :func:`jaxcoh.progress.report` when asked to."""
    if options.report:
        jax.debug.callback(functools.partial(progress.report, options.report), i, loss, grad_norm)


def finite_or_inf(x: Array) -> Array:
    return jnp.where(jnp.isfinite(x), x, jnp.inf)


def loss_history(loss0: Array) -> Array:
    """The loss after each of the last :data:`CHANGE_WINDOW` iterations ``[W + 1]``, oldest first (the last entry is
    the current loss), before any iteration."""
    return jnp.full((CHANGE_WINDOW + 1,), finite_or_inf(loss0))


def push_loss(history: Array, loss: Array) -> Array:
    return jnp.concatenate([history[1:], finite_or_inf(loss)[None]])


def relative_change(history: Array, loss: Array, n_iter: Array) -> Array:
    """How much the loss fell over its last ``min(CHANGE_WINDOW, ceil(n_iter / 2))`` iterations, relative to its size
    (floored at 1: objectives near 0). Half the run at most, so that a short solve is judged by how it ended, not by
    its first steps."""
    back = jnp.clip((n_iter + 1) // 2, 1, CHANGE_WINDOW)
    return (history[CHANGE_WINDOW - back] - loss) / jnp.maximum(jnp.abs(loss), 1.0)
