"""One entry point to every solver: ``solve(name, z0, args, residual_fn=..., loss_fn=...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from jax import Array

from .adam import adam
from .common import SolverOptions, SolverResult
from .lbfgs import lbfgs
from .levenberg_marquardt import block_levenberg_marquardt, levenberg_marquardt

SOLVERS = ("lm", "block_lm", "lbfgs", "adam")


def solve(
    solver: str,
    z0: Any,
    args: Any,
    *,
    residual_fn: Callable[[Any, Any], Array] | None = None,
    loss_fn: Callable[[Any, Any], Array] | None = None,
    options: SolverOptions = SolverOptions(),
    row_galaxy: Array | None = None,
) -> SolverResult:
    """Runs ``solver`` ("lm", "block_lm", "lbfgs" or "adam") from ``z0``.

    Least-squares problems give ``residual_fn(z, args) -> [m]`` (objective ``sum(r^2)``); other problems give
    ``loss_fn(z, args) -> []``. LM needs residuals; the optax solvers use ``loss_fn``, or ``sum(r^2)``.
    ``row_galaxy``: the block LM's residuals come as rows of galaxies (see :func:`block_levenberg_marquardt`).
    """
    if row_galaxy is not None and solver != "block_lm":
        raise ValueError(f"residual rows grouped by galaxy are for the block LM, not {solver!r}")
    if solver in ("lm", "block_lm"):
        if residual_fn is None:
            raise ValueError(f"solver {solver!r} needs a residual function (a least-squares problem)")
        if solver == "lm":
            return levenberg_marquardt(residual_fn, z0, args, options)
        return block_levenberg_marquardt(residual_fn, z0, args, options, row_galaxy)
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
