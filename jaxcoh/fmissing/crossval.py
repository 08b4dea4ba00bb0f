"""Repeated k-fold cross-validation of F_missing models by galaxy: every fold, repeat and start in one jitted call."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..metrics import pearson_r, rms, spearman_rho
from ..tracecache import persistent
from .derivation import FMissing
from ..solvers.common import jit_with_options
from .fitting import FitSettings, best_of_starts, solve_starts_and_weights, starts
from .models import Model, get_model
from .objective import FitData, as_fit_data


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


@persistent(("model", "solver", "options"))  # traced once, kept between processes with the compiled program
@jit_with_options(static_argnames=("model", "solver"), options_argnames=("options",))
def _cv_core(model, solver, options, z0, data: FitData, held: Array):
    n_rep, n_fold, g = held.shape
    train = (data.sample[None, None, :] & ~held).reshape(n_rep * n_fold, g).astype(data.target.dtype)
    res = solve_starts_and_weights(model, solver, options, z0, data, train)
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
    settings: FitSettings = FitSettings(n_starts=32),
    *,
    n_folds: int = 5,
    n_repeats: int = 5,
) -> CrossValidation:
    """Repeated k-fold cross-validation by galaxy (folds drawn with ``settings.seed``), all folds, repeats and
    starts in one jitted call."""
    model = get_model(model)
    data = as_fit_data(fm)
    held = jnp.asarray(fold_weights(np.asarray(data.sample), n_folds, n_repeats, settings.seed))
    z0 = starts(model, settings, data.target.dtype)
    (rms_r, r_r, rho_r), train_rms = _cv_core(model, settings.solver, settings.options, z0, data, held)
    rms_r, r_r, rho_r = (np.asarray(a, dtype=np.float64) for a in (rms_r, r_r, rho_r))
    return CrossValidation(
        rms=float(rms_r.mean()), rms_std=float(rms_r.std(ddof=1)) if n_repeats > 1 else math.nan,
        r=float(r_r.mean()), r_std=float(r_r.std(ddof=1)) if n_repeats > 1 else math.nan,
        spearman=float(rho_r.mean()), n_folds=n_folds, n_repeats=n_repeats,
        train_rms=float(np.mean(np.asarray(train_rms))),
        per_repeat_rms=rms_r.tolist(), per_repeat_r=r_r.tolist(),
    )
