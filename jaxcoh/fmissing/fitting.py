"""Fitting F_missing models: one global multi-start fit (:func:`fit`), and the batched solve every F_missing fit
and sweep is made of.

Every batched fit is one jitted call of :func:`solve_batch`: the solver vmapped over starting points, vmapped again
over weight vectors (one per bootstrap replicate, cross-validation fold or grid point).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..config import precision_name
from ..fitresult import FitResult
from ..solvers import SolverOptions, SolverResult, Status, solve
from ..tracecache import persistent
from ..uncertainty import ErrorAnalysis, hessian_errors, is_log_coordinate
from .derivation import FMissing
from .models import Model, get_model
from .objective import FitData, as_fit_data, diagnose, model_residuals, unconstrained_residuals
from .union import ModelUnion, evaluate_compiled, nll_hessian, union_of


class FitSettings(NamedTuple):
    """How an F_missing model is fitted: the solver, its options, and the multi-start design (``n_starts`` starts,
    the model's initial values then a scrambled Sobol design over the bounds, drawn with ``seed``)."""

    solver: str = "lm"
    n_starts: int = 64
    seed: int = 0
    options: SolverOptions = SolverOptions()


@persistent(("model", "solver", "options"))
@functools.partial(jax.jit, static_argnames=("model", "solver", "options"))
def solve_batch(model: Model, solver: str, options: SolverOptions, z0: Mapping[str, Array], data: FitData,
                weights: Array) -> SolverResult:
    """Fits ``model`` from every start in ``z0`` (``{name: [S]}``, unconstrained) for every weight vector in
    ``weights`` (``[W, g]``). Returns a :class:`SolverResult` with leading axes ``[W, S]``."""
    return solve_starts_and_weights(model, solver, options, z0, data, weights)


def solve_starts_and_weights(model: Model, solver: str, options: SolverOptions, z0: Mapping[str, Array],
                             data: FitData, weights: Array) -> SolverResult:
    """The body of :func:`solve_batch`, for use inside other jitted functions (whose ``options`` may be traced)."""
    def one(z, w):
        return solve(solver, z, w, residual_fn=lambda zz, ww: unconstrained_residuals(model, zz, data, ww),
                     options=options)

    return jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0))(z0, weights)


def best_of_starts(res: SolverResult) -> tuple[Array, SolverResult]:
    """Index of the lowest finite loss along the last (starts) axis, and the result there (jittable)."""
    loss = jnp.where(jnp.isfinite(res.loss), res.loss, jnp.inf)
    i = jnp.argmin(loss, axis=-1)
    take = lambda a: jnp.take_along_axis(a, i.reshape(i.shape + (1,) * (a.ndim - i.ndim)), axis=i.ndim).squeeze(i.ndim)
    return i, jax.tree_util.tree_map(take, res)


def starts(model: Model, settings: FitSettings, dtype, init: Mapping[str, float] | None = None) -> dict:
    """Unconstrained starts ``{name: [n_starts]}``: the model's initial values (or ``init``) followed by
    ``n_starts - 1`` Sobol points over the bounds (log-uniform for scale parameters), drawn with ``settings.seed``."""
    spec = model.parameters
    n_starts, seed = settings.n_starts, settings.seed
    first = spec.to_unconstrained_compiled({k: np.asarray(v, dtype)
                                            for k, v in (init or {p.name: p.init for p in spec}).items()})
    if n_starts <= 1:
        return {k: jnp.asarray(v)[None] for k, v in first.items()}
    design = spec.design(n_starts - 1, seed=seed, dtype=dtype)
    return {k: jnp.asarray(np.concatenate([np.asarray(first[k])[None], np.asarray(design[k])])) for k in spec.names}


@dataclasses.dataclass(kw_only=True)
class FMissingFit(FitResult):
    """An F_missing model fitted to one sample (``metrics``: rms, r, spearman, n)."""

    loss: float
    solver: str
    n_starts_converged: int
    n_starts_at_best: int

    def to_dict(self) -> dict:
        return {**super().to_dict(), "loss": self.loss, "solver": self.solver,
                "n_starts_converged": self.n_starts_converged, "n_starts_at_best": self.n_starts_at_best}


def fit(
    model: str | Model,
    fm: FMissing | FitData,
    settings: FitSettings = FitSettings(),
    *,
    weights: Array | None = None,
    init: Mapping[str, float] | None = None,
    names: Sequence[str] | None = None,
) -> FMissingFit:
    """Global fit of ``model`` to the sample (optionally weighted per galaxy): the starts of ``settings`` (or
    ``init`` first) solved together in one vmapped call; the best is kept and analysed (errors, degeneracies).
    Raises ``FloatingPointError`` naming the galaxies (by ``names``) and parameters when no start is finite."""
    t0 = time.perf_counter()
    model = get_model(model)
    data = as_fit_data(fm)
    w = jnp.ones_like(data.target) if weights is None else jnp.asarray(weights, data.target.dtype)
    z0 = starts(model, settings, data.target.dtype, init)
    res = jax.tree_util.tree_map(lambda a: a[0], solve_batch(model, settings.solver, settings.options, z0, data,
                                                             w[None]))
    return fit_result(model, data, settings, z0, w, res, t0=t0, names=names)


def fit_result(model: Model, data: FitData, settings: FitSettings, z0: Mapping[str, Array], weights: Array,
               res: SolverResult, *, t0: float, names: Sequence[str] | None = None,
               union: ModelUnion | None = None) -> FMissingFit:
    """The :class:`FMissingFit` of the solves ``res [S]`` from the starts ``z0`` (``{name: [S]}``): the best start
    analysed (metrics, errors, degeneracies) with the programs of ``union`` (default: the model's own)."""
    union = union_of(model) if union is None else union
    res = jax.device_get(res)  # on the host: picking the best start is indexing, not programs to compile
    loss = np.where(np.isfinite(res.loss), res.loss, np.inf)
    if not np.isfinite(loss).any():
        first = {k: v[0] for k, v in z0.items()}
        raise FloatingPointError(f"{model.name}: every one of the {settings.n_starts} starts gave a non-finite loss; "
                                 + "; ".join(diagnose(model, first, data, weights, names)
                                             or ["finite at the first start: the solver diverged"]))
    i = int(np.argmin(loss))
    best = jax.tree_util.tree_map(lambda a: a[i], res)
    values = model.parameters.to_values_compiled(best.z)
    metrics = {k: float(v) for k, v in evaluate_compiled(union, model, values, data, weights).items()}
    n_eff = float(jnp.sum(jnp.where(data.sample, weights, 0.0)))
    errors = least_squares_errors(model, values, data, weights, loss[i], n_eff, union=union)
    return FMissingFit(
        model=model.name,
        params={k: float(v) for k, v in values.items()},
        stderr=errors.stderr,
        status=Status(int(best.status)).name,
        metrics=metrics,
        errors=errors,
        n_iter=int(best.n_iter),
        n_starts=settings.n_starts,
        dtype=precision_name(data.target.dtype),
        wall_s=time.perf_counter() - t0,
        loss=float(loss[i]),
        solver=settings.solver,
        n_starts_converged=int(np.sum(np.asarray(res.status) == Status.CONVERGED)),
        n_starts_at_best=int(np.sum(loss <= loss[i] * (1 + 1e-6) + 1e-12)),
    )


def least_squares_errors(model: Model, values, data: FitData, weights, ssr: float, n_eff: float,
                         union: ModelUnion | None = None) -> ErrorAnalysis:
    """Hessian errors of a least-squares fit: ``nll = SSR / (2 s^2)`` with ``s^2 = SSR_min / (n - p)``; the Hessian
    from the program of ``union`` (default: the model's own), in hessian_errors' coordinates (logarithmic for
    positive parameters)."""
    union = union_of(model) if union is None else union
    p = len(model.parameters)
    s2 = ssr / max(n_eff - p, 1.0)

    def nll(v):
        return jnp.sum(model_residuals(model, v, data, weights) ** 2) / (2 * s2)

    values = {k: float(v) for k, v in values.items()}
    x = np.array([values[n] for n in model.parameters.names])
    log = np.array([is_log_coordinate(model.parameters, n, v) for n, v in zip(model.parameters.names, x, strict=True)])
    dtype = jnp.result_type(float)
    q = np.where(log, np.log(np.where(log, x, 1.0)), x)
    pad = union.width - p
    H = nll_hessian(union, union.index(model), jnp.asarray(np.pad(log, (0, pad))),
                    jnp.asarray(np.pad(q, (0, pad)), dtype), data, weights, jnp.asarray(s2, dtype))
    return hessian_errors(nll, values, model.parameters, model.derived, hessian=np.asarray(H)[:p, :p])
