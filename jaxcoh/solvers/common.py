"""What every solver returns and the options they share."""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import Array


class Status(enum.IntEnum):
    """How a solve ended. Failures are data (one code per fit), never exceptions inside jit."""

    CONVERGED = 0  # a tolerance was met
    MAX_ITER = 1  # ran out of iterations first
    NONFINITE = 2  # the objective was not finite at the start or became non-finite
    STALLED = 3  # no step could decrease the objective, but the gradient is not small


RUNNING = -1  # status of a solve still in its loop


class SolverResult(NamedTuple):
    """Result of one solve (every field a scalar or the parameter pytree; batched fields under vmap)."""

    z: Any  # unconstrained parameters
    loss: Array  # objective at z
    grad_norm: Array  # l2 norm of the objective's gradient at z
    n_iter: Array  # int
    status: Array  # int, a Status

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


def finite_or_inf(x: Array) -> Array:
    return jnp.where(jnp.isfinite(x), x, jnp.inf)
