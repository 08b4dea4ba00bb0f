"""The objective of F_missing fits: the seed's least squares over the sample, its evaluation and its diagnosis.

The loss is the sum of squared residuals ``F_pred - F_missing`` over the sample (optionally weighted per galaxy: a
bootstrap replicate's counts, a cross-validation fold), leaving out galaxies whose prediction is not finite and
positive; the reported RMS is ``sqrt(loss / sum(weights))``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..metrics import pearson_r, rms, spearman_rho
from ..numerics import safe_sqrt
from .derivation import FMissing
from .models import Model, ModelInputs, model_inputs


class FitData(NamedTuple):
    """The sample an F_missing model is fitted to. Fields ``[g]`` (references scalars).

    Inputs of galaxies outside the sample are replaced by harmless values before any model sees them, so that
    neither their value nor their gradient can be NaN.
    """

    x: ModelInputs
    target: Array  # F_missing (0 outside the sample)
    sample: Array  # bool


def fit_data(fm: FMissing, sample: Array | None = None) -> FitData:
    """The fit sample of ``fm`` (default: its ``in_sample``) as :class:`FitData`."""
    sample = fm.in_sample if sample is None else jnp.asarray(sample, bool) & fm.in_sample
    x = model_inputs(fm, sample)
    safe = x._replace(
        M_b=jnp.where(sample, x.M_b, 1e10),
        R_d=jnp.where(sample, x.R_d, 1.0),
        v_flat=jnp.where(sample, x.v_flat, 100.0),
        sigma_v=jnp.where(sample, x.sigma_v, 15.0),
    )
    return FitData(safe, jnp.where(sample, fm.derivation.F_missing, 0.0), sample)


def as_fit_data(fm: FMissing | FitData) -> FitData:
    return fm if isinstance(fm, FitData) else fit_data(fm)


def predictions(model: Model, values: Mapping[str, Array], data: FitData) -> tuple[Array, Array]:
    """``(F_pred, ok)``: the prediction and where it counts (in the sample, finite and positive)."""
    F_pred = model.predict(values, data.x)
    return F_pred, _counted(F_pred, data)


def _counted(F_pred: Array, data: FitData) -> Array:
    return data.sample & jnp.isfinite(F_pred) & (jnp.where(jnp.isfinite(F_pred), F_pred, 0.0) > 0)


def model_residuals(model: Model, values: Mapping[str, Array], data: FitData, weights: Array | None = None) -> Array:
    """``[g]`` weighted residuals ``sqrt(w) (F_pred - F_missing)``, zero outside the counted galaxies."""
    F_pred, ok = predictions(model, values, data)
    w = jnp.where(ok, 1.0 if weights is None else weights, 0.0)
    return safe_sqrt(w) * jnp.where(ok, F_pred - data.target, 0.0)


def unconstrained_residuals(model: Model, z: Mapping[str, Array], data: FitData, weights: Array | None = None) -> Array:
    """:func:`model_residuals` at the unconstrained parameters ``z`` (what the solvers iterate on)."""
    return model_residuals(model, model.parameters.to_values(z), data, weights)


def evaluate(model: Model, values: Mapping[str, Array], data: FitData, weights: Array | None = None) -> dict:
    """RMS, Pearson r and Spearman rho of the model at ``values`` over the counted galaxies (jittable)."""
    return _metrics(model.predict(values, data.x), data, weights)


def _metrics(F_pred: Array, data: FitData, weights: Array | None) -> dict:
    ok = _counted(F_pred, data)
    return {
        "rms": rms(F_pred - data.target, ok, weights),
        "r": pearson_r(F_pred, data.target, ok, weights),
        "spearman": spearman_rho(F_pred, data.target, ok),
        "n": jnp.sum(ok),
    }


# The metrics as one program shared by every model (their sort for Spearman's ranks costs more to compile than most
# predictions): :func:`jaxcoh.fmissing.union.evaluate_compiled`.
_metrics_compiled = jax.jit(_metrics)


@functools.partial(jax.jit, static_argnums=0)
def _residuals_and_gradient(model: Model, z: Mapping[str, Array], data: FitData, weights: Array | None):
    """The weighted residuals at ``z`` and the gradient of their sum of squares, as one program (evaluated op by op
    they compiled a program per operation before an error could be raised)."""
    def loss(zz):
        return jnp.sum(unconstrained_residuals(model, zz, data, weights) ** 2)

    return unconstrained_residuals(model, z, data, weights), jax.grad(loss)(z)


def diagnose(model: Model, z: Mapping[str, Array], data: FitData, weights: Array | None = None,
             names: Sequence[str] | None = None) -> list[str]:
    """What is not finite at the unconstrained ``z``: the galaxies (by name, if ``names``) whose weighted residual
    is, then the parameters whose gradient is. Empty when everything is finite."""
    r, grad = jax.device_get(_residuals_and_gradient(model, z, data, weights))
    label = (lambda j: names[j]) if names is not None else (lambda j: f"galaxy {j}")
    msgs = [f"residual not finite for {label(int(j))}" for j in np.nonzero(~np.isfinite(r))[0][:5]]
    msgs += [f"gradient not finite for parameter {k}" for k, g in grad.items() if not np.isfinite(g)]
    return msgs
