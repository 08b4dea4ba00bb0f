"""What every solver returns, the options they share, and the dispatcher."""

from __future__ import annotations

import enum
from collections.abc import Callable
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


def solve(
    solver: str,
    z0: Any,
    args: Any,
    *,
    residual_fn: Callable[[Any, Any], Array] | None = None,
    loss_fn: Callable[[Any, Any], Array] | None = None,
    options: SolverOptions = SolverOptions(),
) -> SolverResult:
    """Runs ``solver`` ("lm", "block_lm", "lbfgs" or "adam") from ``z0``.

    Least-squares problems give ``residual_fn(z, args) -> [m]`` (objective ``sum(r^2)``); other problems give
    ``loss_fn(z, args) -> []``. LM needs residuals; the optax solvers use ``loss_fn``, or ``sum(r^2)``.
    """
    from .adam import adam
    from .lbfgs import lbfgs
    from .levenberg_marquardt import block_levenberg_marquardt, levenberg_marquardt

    if solver in ("lm", "block_lm"):
        if residual_fn is None:
            raise ValueError(f"solver {solver!r} needs a residual function (a least-squares problem)")
        lm = levenberg_marquardt if solver == "lm" else block_levenberg_marquardt
        return lm(residual_fn, z0, args, options)
    if loss_fn is None:
        if residual_fn is None:
            raise ValueError("give residual_fn or loss_fn")

        def loss_fn(z, a):
            return jnp.sum(residual_fn(z, a) ** 2)

    if solver == "lbfgs":
        return lbfgs(loss_fn, z0, args, options)
    if solver == "adam":
        return adam(loss_fn, z0, args, options)
    raise ValueError(f"unknown solver {solver!r}; choose 'lm', 'block_lm', 'lbfgs' or 'adam'")
