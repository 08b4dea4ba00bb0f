"""Fitting F_missing models: global multi-start fits, batched refits, and cross-validation by galaxy.

Every batched fit here is one jitted call of :func:`solve_batch`: the solver vmapped over starting points, vmapped
again over weight vectors (one per bootstrap replicate, cross-validation fold or grid point). The loss is the seed's:
the sum of squared residuals ``F_pred - F_missing`` over the sample, leaving out galaxies whose prediction is not
finite and positive; the reported RMS is ``sqrt(loss / sum(weights))``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .config import precision_name
from .f_missing import FMissing
from .metrics import pearson_r, rms, spearman_rho
from .models import Model, ModelInputs, get_model, model_inputs
from .numerics import safe_sqrt
from .solvers import SolverOptions, SolverResult, Status, solve
from .tracecache import persistent
from .uncertainty import hessian_errors


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


def predictions(model: Model, values: Mapping[str, Array], data: FitData) -> tuple[Array, Array]:
    """``(F_pred, ok)``: the prediction and where it counts (in the sample, finite and positive)."""
    F_pred = model.predict(values, data.x)
    ok = data.sample & jnp.isfinite(F_pred) & (jnp.where(jnp.isfinite(F_pred), F_pred, 0.0) > 0)
    return F_pred, ok


def model_residuals(model: Model, values: Mapping[str, Array], data: FitData, weights: Array | None = None) -> Array:
    """``[g]`` weighted residuals ``sqrt(w) (F_pred - F_missing)``, zero outside the counted galaxies."""
    F_pred, ok = predictions(model, values, data)
    w = jnp.where(ok, 1.0 if weights is None else weights, 0.0)
    return safe_sqrt(w) * jnp.where(ok, F_pred - data.target, 0.0)


def evaluate(model: Model, values: Mapping[str, Array], data: FitData, weights: Array | None = None) -> dict:
    """RMS, Pearson r and Spearman rho of the model at ``values`` over the counted galaxies (jittable)."""
    F_pred, ok = predictions(model, values, data)
    return {
        "rms": rms(F_pred - data.target, ok, weights),
        "r": pearson_r(F_pred, data.target, ok, weights),
        "spearman": spearman_rho(F_pred, data.target, ok),
        "n": jnp.sum(ok),
    }


def unconstrained_residuals(model: Model, z: Mapping[str, Array], data: FitData, weights: Array | None = None) -> Array:
    """:func:`model_residuals` at the unconstrained parameters ``z`` (what the solvers iterate on)."""
    return model_residuals(model, model.parameters.to_values(z), data, weights)


@persistent(("model", "solver", "options"))
@functools.partial(jax.jit, static_argnames=("model", "solver", "options"))
def solve_batch(model: Model, solver: str, options: SolverOptions, z0: Mapping[str, Array], data: FitData,
                weights: Array) -> SolverResult:
    """Fits ``model`` from every start in ``z0`` (``{name: [S]}``, unconstrained) for every weight vector in
    ``weights`` (``[W, g]``). Returns a :class:`SolverResult` with leading axes ``[W, S]``."""
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


def starts(model: Model, n_starts: int, seed: int, dtype, init: Mapping[str, float] | None = None) -> dict:
    """The model's initial values (or ``init``) followed by ``n_starts - 1`` Sobol points over the bounds."""
    spec = model.parameters
    first = spec.to_unconstrained({k: jnp.asarray(v, dtype) for k, v in (init or {p.name: p.init for p in spec}).items()})
    if n_starts <= 1:
        return {k: v[None] for k, v in first.items()}
    design = spec.design(n_starts - 1, seed=seed, dtype=dtype)
    return {k: jnp.concatenate([first[k][None], design[k]]) for k in spec.names}


@dataclasses.dataclass
class FitResult:
    """One model fitted to one sample: best parameters, their errors, metrics and how the solve went."""

    model: str
    params: dict[str, float]
    stderr: dict[str, float]
    loss: float
    metrics: dict[str, float]
    n_iter: int
    converged: bool
    status: str
    solver: str
    n_starts: int
    n_starts_converged: int
    n_starts_at_best: int
    errors: Any  # ErrorAnalysis
    dtype: str

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "params": self.params,
            "stderr": self.stderr,
            "loss": self.loss,
            **self.metrics,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "status": self.status,
            "solver": self.solver,
            "n_starts": self.n_starts,
            "n_starts_converged": self.n_starts_converged,
            "n_starts_at_best": self.n_starts_at_best,
            "dtype": self.dtype,
            **{k: v for k, v in self.errors.to_dict().items() if k != "stderr"},
        }


def fit_model(
    model: str | Model,
    fm: FMissing | FitData,
    *,
    solver: str = "lm",
    n_starts: int = 64,
    seed: int = 0,
    weights: Array | None = None,
    init: Mapping[str, float] | None = None,
    options: SolverOptions = SolverOptions(),
    names: list[str] | None = None,
) -> FitResult:
    """Global fit of ``model`` to the sample: ``n_starts`` starts (a Sobol design, log-uniform for scale
    parameters) solved together in one vmapped call; the best is kept and analysed (errors, degeneracies)."""
    model = get_model(model)
    data = fm if isinstance(fm, FitData) else fit_data(fm)
    dtype = data.target.dtype
    w = jnp.ones_like(data.target) if weights is None else jnp.asarray(weights, dtype)
    z0 = starts(model, n_starts, seed, dtype, init)
    res = jax.tree_util.tree_map(lambda a: a[0], solve_batch(model, solver, options, z0, data, w[None]))
    loss = np.where(np.isfinite(np.asarray(res.loss)), np.asarray(res.loss), np.inf)
    if not np.isfinite(loss).any():
        first = {k: v[0] for k, v in z0.items()}
        raise FloatingPointError(f"{model.name}: every one of the {n_starts} starts gave a non-finite loss; "
                                 + "; ".join(diagnose(model, first, data, w, names)))
    i = int(np.argmin(loss))
    best = jax.tree_util.tree_map(lambda a: a[i], res)
    values = model.parameters.to_values(best.z)
    metrics = {k: float(v) for k, v in jax.jit(evaluate, static_argnums=0)(model, values, data, w).items()}
    n_eff = float(jnp.sum(jnp.where(data.sample, w, 0.0)))
    errors = least_squares_errors(model, values, data, w, loss[i], n_eff)
    status = Status(int(best.status))
    return FitResult(
        model=model.name,
        params={k: float(v) for k, v in values.items()},
        stderr=errors.stderr,
        loss=float(loss[i]),
        metrics=metrics,
        n_iter=int(best.n_iter),
        converged=status == Status.CONVERGED,
        status=status.name,
        solver=solver,
        n_starts=n_starts,
        n_starts_converged=int(np.sum(np.asarray(res.status) == Status.CONVERGED)),
        n_starts_at_best=int(np.sum(loss <= loss[i] * (1 + 1e-6) + 1e-12)),
        errors=errors,
        dtype=precision_name(dtype),
    )


def diagnose(model: Model, z: Mapping[str, Array], data: FitData, weights: Array, names=None) -> list[str]:
    """What is not finite at the unconstrained ``z``: the galaxies (by name, if ``names``) whose weighted residual is,
    then the parameters whose gradient is. Empty when everything is finite."""
    def loss(zz):
        return jnp.sum(model_residuals(model, model.parameters.to_values(zz), data, weights) ** 2)

    r = np.asarray(model_residuals(model, model.parameters.to_values(z), data, weights))
    label = (lambda j: names[j]) if names is not None else (lambda j: f"galaxy {j}")
    msgs = [f"residual not finite for {label(int(j))}" for j in np.nonzero(~np.isfinite(r))[0][:5]]
    grad = jax.grad(loss)(z)
    msgs += [f"gradient not finite for parameter {k}" for k, g in grad.items() if not np.isfinite(np.asarray(g))]
    return msgs or ["finite at the first start: the solver diverged"]


def least_squares_errors(model: Model, values, data: FitData, weights, ssr: float, n_eff: float):
    """Hessian errors of a least-squares fit: ``nll = SSR / (2 s^2)`` with ``s^2 = SSR_min / (n - p)``."""
    p = len(model.parameters)
    s2 = ssr / max(n_eff - p, 1.0)

    def nll(v):
        return jnp.sum(model_residuals(model, v, data, weights) ** 2) / (2 * s2)

    return hessian_errors(nll, {k: float(v) for k, v in values.items()}, model.parameters, model.derived)


# ---- cross-validation -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class CrossValidation:
    """Held-out performance: every galaxy predicted by a model fitted without it, per repeat."""

    rms: float  # mean over repeats of the held-out RMS
    rms_std: float
    r: float
    r_std: float
    spearman: float
    n_folds: int
    n_repeats: int
    train_rms: float  # mean in-sample RMS of the fold fits, for contrast
    per_repeat_rms: list[float]
    per_repeat_r: list[float]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fold_weights(sample: np.ndarray, n_folds: int, n_repeats: int, seed: int) -> np.ndarray:
    """``[n_repeats, n_folds, g]`` held-out masks: each repeat a fresh random partition of the sample."""
    sample = np.asarray(sample, bool)
    idx = np.nonzero(sample)[0]
    if idx.size < n_folds:
        raise ValueError(f"{idx.size} galaxies cannot be split into {n_folds} folds")
    rng = np.random.default_rng(seed)
    held = np.zeros((n_repeats, n_folds, sample.size), bool)
    for r in range(n_repeats):  # host-side fold assignment: n_repeats permutations
        perm = rng.permutation(idx)
        for f, part in enumerate(np.array_split(perm, n_folds)):
            held[r, f, part] = True
    return held


@functools.partial(jax.jit, static_argnames=("model", "solver", "options"))
def _cv_core(model, solver, options, z0, data: FitData, held: Array):
    n_rep, n_fold, g = held.shape
    train = (data.sample[None, None, :] & ~held).reshape(n_rep * n_fold, g).astype(data.target.dtype)
    res = solve_batch(model, solver, options, z0, data, train)
    _, best = best_of_starts(res)
    values = jax.vmap(model.parameters.to_values)(best.z)
    F_pred = jax.vmap(lambda v: model.predict(v, data.x))(values).reshape(n_rep, n_fold, g)
    held_pred = jnp.sum(jnp.where(held, F_pred, 0.0), axis=1)  # each galaxy held out exactly once per repeat
    ok = data.sample[None, :] & jnp.isfinite(held_pred) & (held_pred > 0)

    def per_repeat(pred, okr):
        return (rms(pred - data.target, okr), pearson_r(pred, data.target, okr), spearman_rho(pred, data.target, okr))

    ok_r = ok & jnp.any(held, axis=1)
    out = jax.vmap(per_repeat)(held_pred, ok_r)
    train_rms = jnp.sqrt(best.loss / jnp.sum(train, axis=1))
    return out, train_rms


def cross_validate(
    model: str | Model,
    fm: FMissing | FitData,
    *,
    n_folds: int = 5,
    n_repeats: int = 5,
    seed: int = 0,
    n_starts: int = 32,
    solver: str = "lm",
    options: SolverOptions = SolverOptions(),
) -> CrossValidation:
    """Repeated k-fold cross-validation by galaxy, all folds, repeats and starts in one jitted call."""
    model = get_model(model)
    data = fm if isinstance(fm, FitData) else fit_data(fm)
    held = jnp.asarray(fold_weights(np.asarray(data.sample), n_folds, n_repeats, seed))
    z0 = starts(model, n_starts, seed, data.target.dtype)
    (rms_r, r_r, rho_r), train_rms = _cv_core(model, solver, options, z0, data, held)
    rms_r, r_r, rho_r = (np.asarray(a, dtype=np.float64) for a in (rms_r, r_r, rho_r))
    return CrossValidation(
        rms=float(rms_r.mean()), rms_std=float(rms_r.std(ddof=1)) if n_repeats > 1 else math.nan,
        r=float(r_r.mean()), r_std=float(r_r.std(ddof=1)) if n_repeats > 1 else math.nan,
        spearman=float(rho_r.mean()), n_folds=n_folds, n_repeats=n_repeats,
        train_rms=float(np.mean(np.asarray(train_rms))),
        per_repeat_rms=rms_r.tolist(), per_repeat_r=r_r.tolist(),
    )
