"""Fitting a rotation-curve model to every galaxy at once: starts, the solver chain, and the result.

Hundreds of parameters (the shared ones, each galaxy's own, 4 nuisance values per galaxy) are solved together:
optax's L-BFGS through the nonlinear phase, then the block-arrowhead Levenberg-Marquardt on the same terms written as
residuals; the shared parameters start from a few Sobol points, solved side by side in one vmapped call.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..catalog import Catalog
from ..config import precision_name
from ..solvers import SolverOptions, SolverResult, Status, solve
from .errors import curve_errors
from .likelihood import CurveData, Evaluation, Likelihood, curve_data, evaluate, prepare, residuals, split
from .models import CurveModel, get_model
from .nuisance import NUISANCE, table_nuisance
from .objective import diagnose, objective
from .result import CurveFit

log = logging.getLogger("jaxcoh")


class CurveSettings(NamedTuple):
    """How a rotation-curve model is fitted: the likelihood (static: nuisance, loss, error floor, recipe), the starts
    of the shared parameters (``n_starts``: the declared inits then a Sobol design drawn with ``seed``), the solver
    (``"auto"`` or a chain such as ``"lbfgs+block_lm"``) with one :class:`SolverOptions` per stage (None: the
    defaults), and whether to compute standard errors."""

    likelihood: Likelihood = Likelihood()
    n_starts: int = 4
    seed: int = 0
    solver: str = "auto"
    solver_options: tuple[SolverOptions, ...] | None = None
    errors: bool = True


def initial_local(model: CurveModel, cat: Catalog) -> dict[str, Array]:
    """Per-galaxy starting values: the declared inits, and for NFW halos V200 at the galaxy's fastest point."""
    init = model.local.init_values(cat.n_galaxies, dtype=cat.dtype)
    if "V200" in init:
        vmax = jnp.max(jnp.where(cat.mask, cat.V_obs, 0.0), axis=1)
        init["V200"] = jnp.clip(vmax, 10.0, 500.0)
    return init


def starts(model: CurveModel, data: CurveData, opts: Likelihood, n_starts: int, seed: int) -> dict:
    """Unconstrained starts ``[S, ...]``: shared from a Sobol design (the first at the declared inits), local and
    nuisance at their inits (the nuisance priors' centres)."""
    cat = data.cat
    dt = cat.dtype
    shared0 = model.shared.to_unconstrained({p.name: jnp.asarray(p.init, dt) for p in model.shared})
    if n_starts > 1 and len(model.shared):
        design = model.shared.design(n_starts - 1, seed=seed, dtype=dt)
        shared = {k: jnp.concatenate([shared0[k][None], design[k]]) for k in model.shared.names}
    else:
        shared = {k: v[None] for k, v in shared0.items()}
    S = n_starts if len(model.shared) else 1
    rep = lambda a: jnp.broadcast_to(a, (S, *a.shape))  # noqa: E731
    z = {"shared": shared, "local": jax.tree_util.tree_map(rep, model.local.to_unconstrained(initial_local(model, cat)))}
    if opts.nuisance:
        nu0 = table_nuisance(cat)._asdict()
        z["nuisance"] = jax.tree_util.tree_map(rep, NUISANCE.to_unconstrained(nu0))
    return z


def _solve_one(model: CurveModel, opts: Likelihood, solver: str, solver_options: SolverOptions, z: dict,
               data: CurveData):
    if solver == "block_lm":  # per-galaxy parameters side by side: {"shared": ..., "local": {local, nuisance}}
        local = {k: v for k, v in z.items() if k != "shared"}
        res = solve(solver, {"shared": z["shared"], "local": local}, data,
                    residual_fn=lambda zz, d: residuals({"shared": zz["shared"], **zz["local"]}, model, d, opts),
                    options=solver_options)
        res = res._replace(z={"shared": res.z["shared"], **res.z["local"]})
    else:
        res = solve(solver, z, data, residual_fn=lambda zz, d: residuals(zz, model, d, opts),
                    loss_fn=lambda zz, d: objective(zz, model, d, opts), options=solver_options)
    return res._replace(loss=objective(res.z, model, data, opts))  # LM reports sum(r^2) = 2 objective


@functools.partial(jax.jit, static_argnames=("model", "opts", "solver", "solver_options"))
def solve_joint(model: CurveModel, opts: Likelihood, solver: str, solver_options: tuple[SolverOptions, ...],
                z0: dict, data: CurveData):
    """Solves from every start in ``z0`` (leading axis S) in one vmapped call. ``solver`` may chain solvers,
    ``"lbfgs+block_lm"``: each starts where the previous stopped (``solver_options`` gives one entry per stage)."""
    stages = solver.split("+")
    if not jax.tree_util.tree_leaves(z0):  # nothing to fit (Newtonian with fixed nuisance): evaluate once
        zero = jnp.zeros((1,), jnp.int32)
        return SolverResult(z0, objective(z0, model, data, opts)[None], jnp.zeros((1,), data.cat.dtype), zero,
                            zero + Status.CONVERGED)

    def one(z):
        n_iter = 0
        for name, o in zip(stages, solver_options, strict=True):
            res = _solve_one(model, opts, name, o, z, data)
            z, n_iter = res.z, n_iter + res.n_iter
        return res._replace(n_iter=n_iter)

    return jax.vmap(one)(z0)


DEFAULT_SOLVER_OPTIONS = {
    "lm": SolverOptions(max_iter=300, ftol=1e-12, gtol=1e-9),
    "block_lm": SolverOptions(max_iter=300, ftol=1e-12, gtol=1e-9),
    "lbfgs": SolverOptions(max_iter=3000, ftol=1e-13, gtol=1e-7),
    "lbfgs_stage": SolverOptions(max_iter=600, ftol=1e-13, gtol=1e-7),  # before block_lm: through the nonlinear phase
    "adam": SolverOptions(max_iter=5000, learning_rate=0.02),
}
LM_MAX_RESIDUALS = 2**26  # the block Jacobian [g, n + k, kinds] must fit in memory; L-BFGS beyond


def choose_solver(model: CurveModel, data: CurveData, opts: Likelihood) -> str:
    """``lbfgs+block_lm`` while the block Jacobian fits comfortably in memory, ``lbfgs`` beyond.

    Measured on SPARC: L-BFGS gets through the nonlinear phase (nuisance values pushed far from their priors by a
    poor model, parameters at bounds) where LM's single damping stalls; LM then finishes in a few Gauss-Newton steps
    what L-BFGS approaches slowly. Either alone was worse on some of the six models."""
    kinds = len(model.shared) + len(model.local) + (len(NUISANCE) if opts.nuisance else 0)
    g, n = data.cat.mask.shape
    return "lbfgs+block_lm" if g * (n + len(NUISANCE) + 1) * max(kinds, 1) <= LM_MAX_RESIDUALS else "lbfgs"



def stage_options(solver: str, solver_options: tuple[SolverOptions, ...] | None) -> tuple[SolverOptions, ...]:
    """One :class:`SolverOptions` per stage of the chain ``solver`` (the defaults where none are given; an L-BFGS
    stage before another stage is the short one)."""
    stages = solver.split("+")
    if solver_options is None:
        return tuple(DEFAULT_SOLVER_OPTIONS["lbfgs_stage" if name == "lbfgs" and i < len(stages) - 1 else name]
                     for i, name in enumerate(stages))
    if len(solver_options) != len(stages):
        raise ValueError(f"{len(solver_options)} solver options for the {len(stages)} stages of {solver!r}")
    return tuple(solver_options)


def fit(model: str | CurveModel, cat: Catalog, settings: CurveSettings = CurveSettings()) -> CurveFit:
    """MAP fit of ``model`` to every galaxy of ``cat`` (already cut) with the likelihood of ``settings``.

    ``settings.solver="auto"`` picks L-BFGS polished by the block Levenberg-Marquardt while its Jacobian fits
    (:data:`LM_MAX_RESIDUALS`), L-BFGS alone beyond; "block_lm", "lm" (dense), "lbfgs", "adam" and chains such as
    "adam+lbfgs" can be asked for. Raises ``FloatingPointError`` naming the galaxy and parameter when no start gives
    a finite objective.
    """
    model = get_model(model)
    opts = settings.likelihood
    t0 = time.perf_counter()
    data = prepare(curve_data(cat, opts.recipe), opts)
    solver = choose_solver(model, data, opts) if settings.solver == "auto" else settings.solver
    z0 = starts(model, data, opts, settings.n_starts, settings.seed)
    res = solve_joint(model, opts, solver, stage_options(solver, settings.solver_options), z0, data)
    loss = np.asarray(res.loss)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    if not np.isfinite(loss).any():
        z = jax.tree_util.tree_map(lambda a: a[0], z0)
        raise FloatingPointError(f"{model.name}: the objective was not finite from any of {len(loss)} starts; "
                                 + "; ".join(diagnose(model, z, data, opts) or ["the solver diverged"]))
    status = np.asarray(res.status)
    if np.any(status == Status.NONFINITE):
        j = int(np.nonzero(status == Status.NONFINITE)[0][0])
        zj = jax.tree_util.tree_map(lambda a: a[j], z0)
        log.warning(f"{model.name}: {int(np.sum(status == Status.NONFINITE))} of {len(status)} starts hit a non-finite "
                    f"objective (the others are used); at start {j}: "
                    + "; ".join(diagnose(model, zj, data, opts) or ["finite at the start: diverged on the way"]))
    i = int(np.argmin(loss))
    best = jax.tree_util.tree_map(lambda a: a[i], res)
    ev = jax.jit(evaluate, static_argnums=(0, 3))(model, best.z, data, opts)
    jax.block_until_ready(ev)
    wall = time.perf_counter() - t0
    err, per_galaxy_err = (curve_errors(model, best.z, data, opts) if settings.errors else (None, {}))
    return assemble(model, cat, data, opts, best, ev, err, per_galaxy_err, n_starts=int(loss.size), wall_s=wall)


def assemble(model: CurveModel, cat: Catalog, data: CurveData, opts: Likelihood, best: SolverResult, ev: Evaluation,
             errors, per_galaxy_stderr: dict, *, n_starts: int, wall_s: float) -> CurveFit:
    """The :class:`CurveFit` of the solution ``best`` (host-side summaries of the evaluation ``ev`` at it)."""
    shared, local, nu = split(model, best.z, data, opts)
    mask = np.asarray(cat.mask)
    galaxies = np.asarray(cat.galaxy_mask)
    n_gal = int(galaxies.sum())
    n_pts = mask.sum(axis=1)
    resid = np.asarray(ev.V_obs) - np.asarray(ev.V_model)
    lr = np.asarray(ev.log_ratio)[np.asarray(ev.rar_valid)]
    stderr = {p: (errors.stderr.get(p, math.nan) if errors is not None else math.nan) for p in model.shared.names}
    return CurveFit(
        model=model.name,
        params={k: float(v) for k, v in shared.items()},
        stderr=stderr,
        status=Status(int(best.status)).name,
        errors=errors,
        n_iter=int(best.n_iter),
        n_starts=n_starts,
        dtype=precision_name(cat.dtype),
        wall_s=wall_s,
        local={k: np.asarray(v) for k, v in local.items()},
        nuisance={k: np.asarray(v) for k, v in nu._asdict().items()},
        per_galaxy_stderr=per_galaxy_stderr,
        objective=float(best.loss),
        chi2=float(np.sum(np.asarray(ev.chi2)[galaxies])),
        n_points=int(mask.sum()),
        n_galaxies=n_gal,
        n_params=len(model.shared) + n_gal * (len(model.local) + (len(NUISANCE) if opts.nuisance else 0)),
        per_galaxy_chi2=np.asarray(ev.chi2),
        per_galaxy_rms=np.sqrt(np.where(mask, resid**2, 0).sum(axis=1) / np.maximum(n_pts, 1)),
        per_galaxy_points=n_pts,
        rar_scatter_dex=float(np.std(lr)) if lr.size else math.nan,
        likelihood=opts,
        description=model.description,
        evaluation=Evaluation(*(np.asarray(a) for a in ev)),
    )
