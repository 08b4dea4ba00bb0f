"""The joint posterior of a rotation-curve model on the fit's unconstrained coordinates: what a sampler needs.

The fit's objective is the negative log posterior over the parameters' *prior coordinates*: each explicit prior is a
density in one coordinate (Upsilon log-normal: log Upsilon; distance and inclination Gaussian: D and i; NFW's
concentration: log c200), and a parameter without one has a flat prior in the coordinate its declared scale names
(log for scale parameters, the value otherwise), within its bounds. A sampler moves in ``z`` (where the bijections
put no bounds), so the density there gains ``log |dq/dz|`` per parameter (:meth:`Parameter.log_abs_det_jacobian`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import Array

from .galaxy_starts import per_galaxy_groups
from .likelihood import CurveData, Likelihood, likelihood_model
from .models import CurveModel
from .objective import objective


def log_jacobian(model: CurveModel, opts: Likelihood, z: dict, galaxies: Array) -> Array:
    """``sum log |dq/dz|`` over every parameter of ``z`` (per-galaxy ones over the real galaxies ``[g]`` only)."""
    total = sum((p.log_abs_det_jacobian(z["shared"][p.name]) for p in model.shared), jnp.zeros(()))
    for group, p in per_galaxy_groups(model, opts):
        total = total + jnp.sum(jnp.where(galaxies, p.log_abs_det_jacobian(z[group][p.name]), 0.0))
    return total


def log_density(model: CurveModel, data: CurveData, opts: Likelihood) -> Callable[[dict], Array]:
    """``z -> log posterior`` (up to a constant) of ``model`` (with ``sigma_int`` when ``opts.intrinsic_scatter``)
    on ``data``, for samplers that take a log-density of an unconstrained pytree (blackjax)."""
    model = likelihood_model(model, opts)

    def f(z: dict) -> Array:
        return -objective(z, model, data, opts) + log_jacobian(model, opts, z, data.cat.galaxy_mask)

    return f
