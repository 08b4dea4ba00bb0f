"""Repeated k-fold cross-validation of F_missing models by galaxy: every fold, repeat and start in one jitted call."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..metrics import pearson_r, rms, spearman_rho
from ..solvers import solve
from ..solvers.common import jit_with_options
from ..tracecache import persistent
from .derivation import FMissing
from .fitting import FitSettings, best_of_starts, starts
from .models import Model, get_model
from .objective import FitData, as_fit_data
from .union import ModelUnion, union_of


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


def _train_weights(data: FitData, held: Array) -> Array:
    """``[R F, g]`` the weights of every fold's fit: the sample less the fold's held-out galaxies."""
    n_rep, n_fold, g = held.shape
    return (data.sample[None, None, :] & ~held).reshape(n_rep * n_fold, g).astype(data.target.dtype)


def _held_out_scores(F_pred: Array, best_loss: Array, data: FitData, held: Array, train: Array):
    """Per repeat ``(RMS, Pearson r, Spearman rho)`` of the held-out predictions, and every fold fit's in-sample
    RMS, from each fold fit's predictions ``F_pred [R F, g]`` and loss ``[R F]``."""
    n_rep, n_fold, g = held.shape
    held_pred = jnp.sum(jnp.where(held, F_pred.reshape(n_rep, n_fold, g), 0.0), axis=1)  # each galaxy held out
    ok = data.sample[None, :] & jnp.isfinite(held_pred) & (held_pred > 0)  # exactly once per repeat

    def per_repeat(pred, okr):
        return (rms(pred - data.target, okr), pearson_r(pred, data.target, okr), spearman_rho(pred, data.target, okr))

    out = jax.vmap(per_repeat)(held_pred, ok & jnp.any(held, axis=1))
    return out, jnp.sqrt(best_loss / jnp.sum(train, axis=1))


@persistent(("union", "solver", "options"))
@jit_with_options(static_argnames=("union", "solver"), options_argnames=("options",))
def fit_and_cross_validate(union: ModelUnion, solver: str, options, index: Array, z_fit: Array, z_cv: Array,
                           data: FitData, held: Array):
    """The global fit and the cross-validation of the model at ``index`` of ``union``, in one program that every
    model of the union shares: the fit's starts ``z_fit [S, width]`` (unit weights) and every fold's starts ``z_cv
    [C, width]`` (the fold's training weights, ``held [R, F, g]`` as in :func:`cross_validate`) solved side by side
    as one flat batch of start-and-weights lanes. Returns the fit's :class:`SolverResult` ``[S]`` (``S`` may be 0:
    :func:`cross_validate` alone) and the cross-validation's scores (:func:`_held_out_scores`). The numbers of
    :func:`jaxcoh.fmissing.fit` with these starts, to rounding (the padded program rounds differently), at one
    compilation for the union instead of two per model."""
    train = _train_weights(data, held)
    n_cv = train.shape[0] * z_cv.shape[0]
    z = jnp.concatenate([z_fit, jnp.tile(z_cv, (train.shape[0], 1))])
    w = jnp.concatenate([jnp.ones((z_fit.shape[0], train.shape[1]), train.dtype),
                         jnp.repeat(train, z_cv.shape[0], axis=0)])

    def one(zz, ww):
        return solve(solver, zz, ww, residual_fn=lambda a, b: union.unconstrained_residuals(index, a, data, b),
                     options=options)

    res = jax.vmap(one)(z, w)
    fit_res = jax.tree_util.tree_map(lambda a: a[: z_fit.shape[0]], res)
    cv_res = jax.tree_util.tree_map(lambda a: a[z_fit.shape[0]:].reshape(train.shape[0], n_cv // train.shape[0],
                                                                         *a.shape[1:]), res)
    _, best = best_of_starts(cv_res)
    F_pred = jax.vmap(lambda zz: union.switch(index, lambda m, v, x: m.predict(m.parameters.to_values(v), x), zz,
                                              data.x))(best.z)
    return fit_res, _held_out_scores(F_pred, best.loss, data, held, train)


def cross_validation(scores, n_folds: int, n_repeats: int) -> CrossValidation:
    """The :class:`CrossValidation` of a program's scores (:func:`_held_out_scores`)."""
    (rms_r, r_r, rho_r), train_rms = scores
    rms_r, r_r, rho_r = (np.asarray(a, dtype=np.float64) for a in (rms_r, r_r, rho_r))
    return CrossValidation(
        rms=float(rms_r.mean()), rms_std=float(rms_r.std(ddof=1)) if n_repeats > 1 else math.nan,
        r=float(r_r.mean()), r_std=float(r_r.std(ddof=1)) if n_repeats > 1 else math.nan,
        spearman=float(rho_r.mean()), n_folds=n_folds, n_repeats=n_repeats,
        train_rms=float(np.mean(np.asarray(train_rms))),
        per_repeat_rms=rms_r.tolist(), per_repeat_r=r_r.tolist(),
    )


def cross_validate(
    model: str | Model,
    fm: FMissing | FitData,
    settings: FitSettings = FitSettings(n_starts=32),
    *,
    n_folds: int = 5,
    n_repeats: int = 5,
) -> CrossValidation:
    """Repeated k-fold cross-validation by galaxy (folds drawn with ``settings.seed``), all folds, repeats and
    starts in one jitted call (:func:`fit_and_cross_validate` without a fit)."""
    model = get_model(model)
    data = as_fit_data(fm)
    held = jnp.asarray(fold_weights(np.asarray(data.sample), n_folds, n_repeats, settings.seed))
    union = union_of(model)
    z0 = union.pack(model, starts(model, settings, data.target.dtype))
    _, scores = fit_and_cross_validate(union, settings.solver, settings.options, 0, z0[:0], z0, data, held)
    return cross_validation(scores, n_folds, n_repeats)
