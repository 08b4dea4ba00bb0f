"""Fitting a rotation-curve model to every galaxy at once: starts, the solver chain, and the result.

Hundreds of parameters (the shared ones, each galaxy's own, 4 nuisance values per galaxy) are solved together:
optax's L-BFGS through the nonlinear phase, then the block-arrowhead Levenberg-Marquardt on the same terms written as
residuals; the shared parameters start from a few Sobol points, solved side by side in one vmapped call.
"""

from __future__ import annotations

import logging
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .. import progress
from ..catalog import Catalog
from ..config import precision_name
from ..solvers import SolverOptions, SolverResult, Status, solve
from ..solvers.common import jit_with_options
from .convergence import Convergence, assess
from .errors import curve_errors
from .folding import fold, folds, lm_residuals
from .galaxy_starts import GalaxyStarts, best_start_per_galaxy
from .laplace import Laplace, choose_marginal, format_shift, laplace_profile
from .likelihood import (CurveData, Evaluation, Likelihood, curve_data, likelihood_model, per_galaxy_groups,
                         prepare, residuals, split)
from .models import CurveModel, get_model
from .nuisance import NUISANCE, table_nuisance
from .objective import diagnose, evaluate_compiled, objective
from .result import CurveFit

log = logging.getLogger("jaxcoh")


class CurveSettings(NamedTuple):
    """How a rotation-curve model is fitted: the likelihood (static: nuisance, loss, error floor, recipe), the starts
    of the shared parameters (``n_starts``: the declared inits then a Sobol design drawn with ``seed``), the starts
    of every galaxy's own and nuisance parameters (``galaxy_starts``, see :mod:`~jaxcoh.curves.galaxy_starts`; None:
    :func:`default_galaxy_starts` of the model), the
    solver (``"auto"`` or a chain such as ``"lbfgs+block_lm"``) with one :class:`SolverOptions` per stage (None: the
    defaults), whether to compute standard errors, whether the solvers report every iteration to
    :mod:`jaxcoh.progress` (the command line's progress line), and which posterior the shared parameters maximise:
    ``marginal="joint"`` the joint one (with every galaxy's parameters), ``"laplace"`` the marginal one, every galaxy's
    own and nuisance parameters integrated out by Laplace's approximation (:mod:`~jaxcoh.curves.laplace`: on RAR mocks
    within 1 standard error of the truth at 10^4 and 10^5 galaxies, where the joint MAP was 4.3 and 12.4 away), and
    ``"auto"`` (the default) the Laplace marginal beyond :data:`~jaxcoh.curves.laplace.LAPLACE_AUTO_GALAXIES` galaxies,
    the joint MAP up to it. ``layout``: what the block Levenberg-Marquardt linearises, "folded" rows of a few points
    (:mod:`~jaxcoh.curves.folding`; pointwise models only), "padded" the catalog as it is, or "auto" (the default)
    folded rows for a pointwise model where they have fewer slots than padding. ``start_precision``: the precision
    the galaxies' starts are solved in (e.g. "float32", about twice as fast on CPU), each start then compared and
    tested at its solution in the fit's own precision, in which the best is polished; None: the fit's own.
    ``start_options``: the block Levenberg-Marquardt's options for each of those starts (None: those of the chain's
    block LM stage); the best start is then polished by the whole chain. ``polish_off_bounds``: without shared
    parameters, the galaxies whose best start has a bounded coordinate saturated at a bound are polished a second
    time from just inside it, each keeping the better of its two polishes (:func:`polish_off_bounds`)."""

    likelihood: Likelihood = Likelihood()
    n_starts: int = 4
    seed: int = 0
    solver: str = "auto"
    solver_options: tuple[SolverOptions, ...] | None = None
    errors: bool = True
    galaxy_starts: int | None = None
    report: bool = False
    marginal: str = "auto"
    layout: str = "auto"
    start_precision: str | None = None
    start_options: SolverOptions | None = None
    polish_off_bounds: bool = False


FIT_LAYOUTS = ("auto", "padded", "folded")
# Starts per galaxy unless the settings say: 8 reach the optimum that independent scipy fits from 30-100 starts found
# for NFW on SPARC; the halo profiles of Li et al. need more (on SPARC's catalogue 8 left the twelve models' total
# chi^2 705 above the lowest that 8-64 starts found, 32 left 4.4: jaxcoh.curves.halo_catalog.HALO_SETTINGS).
GALAXY_STARTS = {"halo": 32}
DEFAULT_GALAXY_STARTS = 8


def default_galaxy_starts(model: CurveModel) -> int:
    """Starts per galaxy a fit of ``model`` takes when its settings give none (by the model's family)."""
    return GALAXY_STARTS.get(model.family, DEFAULT_GALAXY_STARTS)


def lm_data(data: CurveData, model: CurveModel, opts: Likelihood, layout: str) -> CurveData:
    """``data`` with folded rows where ``layout`` asks for them (see :class:`CurveSettings`)."""
    if layout not in FIT_LAYOUTS:
        raise ValueError(f"layout must be one of {FIT_LAYOUTS}, got {layout!r}")
    return fold(data, opts) if folds(layout, model, data.cat) else data


def at_joint_maximum(settings: CurveSettings) -> CurveSettings:
    """``settings`` with ``marginal="auto"`` resolved to the joint MAP, for the callers that need the maximum of the
    joint posterior at any size: ``compare``'s chi^2, AIC and BIC are statistics of the likelihood's maximum, and the
    sampler starts at the mode of the posterior it samples. An explicit ``"laplace"`` is kept."""
    return settings._replace(marginal="joint") if settings.marginal == "auto" else settings


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
        fn, row_galaxy = lm_residuals(data)
        res = solve(solver, {"shared": z["shared"], "local": local}, data,
                    residual_fn=lambda zz, d: fn({"shared": zz["shared"], **zz["local"]}, model, d, opts),
                    options=solver_options, row_galaxy=row_galaxy)
        res = res._replace(z={"shared": res.z["shared"], **res.z["local"]})
    else:
        res = solve(solver, z, data, residual_fn=lambda zz, d: residuals(zz, model, d, opts),
                    loss_fn=lambda zz, d: objective(zz, model, d, opts), options=solver_options)
    return res._replace(loss=objective(res.z, model, data, opts))  # LM reports sum(r^2) = 2 objective


@jit_with_options(static_argnames=("model", "opts", "solver"), options_argnames=("solver_options",),
                  persist=True)
def solve_joint(model: CurveModel, opts: Likelihood, solver: str, solver_options: tuple[SolverOptions, ...],
                z0: dict, data: CurveData):
    """Solves from every start in ``z0`` (leading axis S) in one vmapped call. ``solver`` may chain solvers,
    ``"lbfgs+block_lm"``: each starts where the previous stopped (``solver_options`` gives one entry per stage)."""
    stages = solver.split("+")
    if not jax.tree_util.tree_leaves(z0):  # nothing to fit (Newtonian with fixed nuisance): evaluate once
        zero = jnp.zeros((1,), jnp.int32)
        nothing = jnp.zeros((1,), data.cat.dtype)
        return SolverResult(z0, objective(z0, model, data, opts)[None], nothing, zero, zero + Status.CONVERGED,
                            nothing)

    def one(z):
        n_iter = 0
        for name, o in zip(stages, solver_options, strict=True):
            res = _solve_one(model, opts, name, o, z, data)
            z, n_iter = res.z, n_iter + res.n_iter
        return res._replace(n_iter=n_iter)  # the last stage's status and change

    if z0_lanes(z0) == 1:  # one start (every model without shared parameters): no vmap, whose batching of the
        # solvers' loops costs a second trace, a larger program and a select on every carried value
        return jax.tree_util.tree_map(lambda a: a[None], one(jax.tree_util.tree_map(lambda a: a[0], z0)))
    return jax.vmap(one)(z0)


DEFAULT_SOLVER_OPTIONS = {
    "lm": SolverOptions(max_iter=300, ftol=1e-12, gtol=1e-9),
    "block_lm": SolverOptions(max_iter=300, ftol=1e-12, gtol=1e-9),
    "lbfgs": SolverOptions(max_iter=3000, ftol=1e-13, gtol=1e-7),
    "lbfgs_stage": SolverOptions(max_iter=600, ftol=1e-13, gtol=1e-7),  # before block_lm: through the nonlinear phase
    "adam": SolverOptions(max_iter=5000, learning_rate=0.02),
}
LM_MAX_RESIDUALS = 2**26  # the block Jacobian [g, n + k, kinds] must fit in memory; L-BFGS beyond
LBFGS_STAGE_MAX_GALAXIES = 4096  # "auto" puts an L-BFGS stage before the block LM up to this many galaxies


def choose_solver(model: CurveModel, data: CurveData, opts: Likelihood) -> str:
    """``lbfgs+block_lm`` while the block Jacobian fits comfortably in memory, ``lbfgs`` beyond; ``block_lm`` alone
    for models with per-galaxy but no shared parameters and for catalogs of more than
    :data:`LBFGS_STAGE_MAX_GALAXIES` galaxies.

    Measured on SPARC: L-BFGS gets through the nonlinear phase (nuisance values pushed far from their priors by a
    poor model, parameters at bounds) where LM's single damping stalls; LM then finishes in a few Gauss-Newton steps
    what L-BFGS approaches slowly. Either alone was worse on some of the six models. Without shared parameters the
    block LM damps every galaxy on its own and the L-BFGS stage, one line search for all of them, only costs time
    (standard cuts, default settings, no errors: NFW 4776.45991 either way, the first fit in a fresh process 29.5 s
    -> 22.4 s, a second one 4.8 s -> 3.9 s; Burkert-Flat 3470.71830 either way; DC14-LCDM 4177.70 -> 4177.80, both
    stalled). Newtonian with nuisance (nuisance values alone) still needs it: 59428.2 with it, 59484.0 and the
    iteration cap without. Beyond :data:`LBFGS_STAGE_MAX_GALAXIES` galaxies the block LM runs alone: the L-BFGS
    stage's line searches over the whole catalog cost about a second per iteration at 17079 galaxies (the RAR mock of
    ``jaxcoh fit --mock-galaxies 20000 --mock-kernel rar``: 600 iterations, 10.6 of the fit's 12 minutes), and the
    block LM alone reached the same optimum (objective 190735.03, CONVERGED) in 57 s; alone it also converges on the
    10^4 and 10^5-galaxy mocks of B8. (Measured on mocks the model made; a poorly fitting model at that size may need
    ``--solver lbfgs+block_lm``.)"""
    kinds = len(model.shared) + len(model.local) + (len(NUISANCE) if opts.nuisance else 0)
    g, n = data.cat.mask.shape
    if g * (n + len(NUISANCE) + 1) * max(kinds, 1) > LM_MAX_RESIDUALS:
        return "lbfgs"
    if len(model.local) and not len(model.shared):
        return "block_lm"
    return "block_lm" if g > LBFGS_STAGE_MAX_GALAXIES else "lbfgs+block_lm"


def stage_options(solver: str, solver_options: tuple[SolverOptions, ...] | None, report: bool = False
                  ) -> tuple[SolverOptions, ...]:
    """One :class:`SolverOptions` per stage of the chain ``solver`` (the defaults where none are given; an L-BFGS
    stage before another stage is the short one), reporting under the stage's name when ``report``."""
    stages = solver.split("+")
    if solver_options is None:
        solver_options = tuple(DEFAULT_SOLVER_OPTIONS["lbfgs_stage" if name == "lbfgs" and i < len(stages) - 1
                                                      else name] for i, name in enumerate(stages))
    if len(solver_options) != len(stages):
        raise ValueError(f"{len(solver_options)} solver options for the {len(stages)} stages of {solver!r}")
    return tuple(o._replace(report=name if report else "") for o, name in zip(solver_options, stages, strict=True))


def _first_finite(model, z0, res, data, opts, names) -> int:
    """The start with the lowest finite objective; raises (naming galaxies and parameters) when there is none."""
    loss = np.asarray(res.loss)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    if not np.isfinite(loss).any():
        z = jax.tree_util.tree_map(lambda a: a[0], z0)
        raise FloatingPointError(f"{model.name}: the objective was not finite from any of {len(loss)} starts; "
                                 + "; ".join(diagnose(model, z, data, opts, names) or ["the solver diverged"]))
    status = np.asarray(res.status)
    if np.any(status == Status.NONFINITE):
        j = int(np.nonzero(status == Status.NONFINITE)[0][0])
        zj = jax.tree_util.tree_map(lambda a: a[j], z0)
        log.warning(f"{model.name}: {int(np.sum(status == Status.NONFINITE))} of {len(status)} starts hit a non-finite "
                    f"objective (the others are used); at start {j}: "
                    + "; ".join(diagnose(model, zj, data, opts, names) or ["finite at the start: diverged on the way"]))
    return int(np.argmin(loss))


def _log_stage(model: CurveModel, text: str, t0: float, report: bool, best: SolverResult | None = None) -> None:
    """A log line per solver stage, from the host (no callback inside the compiled solver: see
    :func:`jaxcoh.cli.common.per_iteration`); with per-iteration reports, their listeners close the stage first."""
    if report:
        progress.finished()
    more = "" if best is None else f": {int(best.n_iter)} iterations, objective {float(best.loss):.6g}"
    log.info(f"{model.name}: {text}{more} ({time.perf_counter() - t0:.0f} s)")


def fit(model: str | CurveModel, cat: Catalog, settings: CurveSettings = CurveSettings()) -> CurveFit:
    """MAP fit of ``model`` to every galaxy of ``cat`` (already cut) with the likelihood of ``settings``.

    The shared parameters' starts are solved side by side; at the best, every galaxy's own parameters are refitted
    from ``settings.galaxy_starts`` starts (None: :func:`default_galaxy_starts`) with the shared ones fixed, each
    galaxy keeps its best, and the whole is polished by the same solver chain (without shared parameters the
    galaxies' starts begin from the initial values, the first of them); with the Laplace marginal
    (``settings.marginal``) the shared parameters then move to the optimum of their Laplace marginal
    (:mod:`~jaxcoh.curves.laplace`), every galaxy's own at its conditional mode there. The status is decided at the
    solution (:mod:`~jaxcoh.curves.convergence`).
    ``settings.solver="auto"`` picks L-BFGS polished by the block Levenberg-Marquardt while its Jacobian fits
    (:data:`LM_MAX_RESIDUALS`; the block LM alone beyond :data:`LBFGS_STAGE_MAX_GALAXIES` galaxies), L-BFGS alone
    beyond (and then one start per galaxy: the per-galaxy solves are
    Levenberg-Marquardt's); "block_lm", "lm" (dense), "lbfgs", "adam" and chains such as "adam+lbfgs" can be asked
    for. Raises ``FloatingPointError`` naming the galaxy and parameter when no start gives a finite objective.
    """
    opts = settings.likelihood
    model = likelihood_model(get_model(model), opts)
    marginal = choose_marginal(settings.marginal, int(np.sum(np.asarray(cat.galaxy_mask))))
    t0 = time.perf_counter()
    if settings.report:  # the progress lines timed as this fit's own
        progress.started()
    data = prepare(curve_data(cat, opts.recipe), opts)
    solver = choose_solver(model, data, opts) if settings.solver == "auto" else settings.solver
    if "block_lm" in solver.split("+"):
        data = lm_data(data, model, opts, settings.layout)
    options = stage_options(solver, settings.solver_options, settings.report)
    z0 = starts(model, data, opts, settings.n_starts, settings.seed)
    galaxy_info = GalaxyStarts(n_starts=1, n_multimodal=0, n_improved=0)
    per_galaxy = bool(len(model.local) or opts.nuisance)
    n_galaxy_starts = (settings.galaxy_starts if settings.galaxy_starts is not None
                       else default_galaxy_starts(model))
    galaxy_starts = per_galaxy and n_galaxy_starts > 1 and "block_lm" in solver.split("+")
    if galaxy_starts and not len(model.shared):
        # Nothing shared to settle first: a first solve would be one more start per galaxy, solved to the end before
        # the others begin (on the halo catalogue, 75 of its 270 block LM iterations). The initial values are the
        # first of the galaxies' starts instead.
        res, n_iter, z = None, 0, jax.tree_util.tree_map(lambda a: a[0], z0)
    else:
        res = solve_joint(model, opts, solver, options, z0, data)
        best = jax.tree_util.tree_map(lambda a: a[_first_finite(model, z0, res, data, opts, cat.names)], res)
        n_iter, z = int(best.n_iter), best.z
        _log_stage(model, f"{solver} from {settings.n_starts} start(s)", t0, settings.report, best)
    if galaxy_starts:
        lm = (settings.start_options if settings.start_options is not None
              else options[solver.split("+").index("block_lm")])
        lm = lm._replace(report="galaxy starts" if settings.report else "")
        z, galaxy_info = best_start_per_galaxy(model, opts, lm, z, data, n_galaxy_starts, settings.seed,
                                               settings.start_precision)
        _log_stage(model, f"{n_galaxy_starts} starts per galaxy: {galaxy_info.n_improved} galaxies improved by "
                   f"their other starts, {galaxy_info.n_multimodal} with starts that disagreed", t0, settings.report)
        n_lanes = polish_lanes(z0, cat)
        lanes, polished, best = polish(model, opts, solver, options, z, data, n_lanes)
        _log_stage(model, f"{solver} polish", t0, settings.report, best)
        if settings.polish_off_bounds and not len(model.shared):
            best = polish_off_bounds(model, opts, solver, options, z, data, best, n_lanes)
        if res is None:
            _first_finite(model, lanes, polished, data, opts, cat.names)
            res = polished
        n_iter += int(best.n_iter)
    elif per_galaxy and n_galaxy_starts > 1:
        log.info(f"{model.name}: one start per galaxy (the per-galaxy starts need the block Levenberg-Marquardt, "
                 f"not in the solver chain {solver!r})")
    laplace = None
    if marginal == "laplace" and len(model.shared) and per_galaxy:  # else nothing is integrated out
        stages = solver.split("+")
        lm = options[stages.index("block_lm")] if "block_lm" in stages else DEFAULT_SOLVER_OPTIONS["block_lm"]
        z, laplace = laplace_profile(model, opts, lm, best.z, data)
        best = best._replace(z=z, loss=jax.jit(objective, static_argnums=(1, 3))(z, model, data, opts))
        _log_stage(model, f"Laplace marginal after {laplace.iterations} Newton steps, shared parameters moved "
                   + format_shift(laplace.shift_in_stderr) + " standard errors", t0, settings.report)
    if settings.report:  # every solve has returned (polish_off_bounds logs nothing of its own)
        progress.finished()
    convergence, n_params = assess(model, best.z, data, opts, float(best.change),
                                   shared_step=None if laplace is None else laplace.step_in_stderr)
    status = Status(int(best.status))
    if status != Status.NONFINITE:
        status = Status.CONVERGED if convergence.converged else (
            Status.MAX_ITER if status == Status.MAX_ITER else Status.STALLED)
    ev = evaluate_compiled(model, best.z, data, opts)
    jax.block_until_ready(ev)
    wall = time.perf_counter() - t0
    err, per_galaxy_err = (curve_errors(model, best.z, data, opts, cat.names) if settings.errors else (None, {}))
    return assemble(model, cat, data, opts, best._replace(n_iter=n_iter, status=int(status)), ev, err,
                    per_galaxy_err, n_starts=int(np.asarray(res.loss).size), wall_s=wall, n_params=n_params,
                    convergence=convergence, galaxy_starts=galaxy_info, laplace=laplace)


def z0_lanes(z0: dict) -> int:
    """The number of starts (lanes) of a batch of starts."""
    return next(iter(jax.tree_util.tree_leaves(z0))).shape[0]


POLISH_ONE_LANE_POINTS = 2**20  # lanes x points beyond which the polish runs one lane (its own compilation)


def polish(model: CurveModel, opts: Likelihood, solver: str, options: tuple[SolverOptions, ...], z: dict,
           data: CurveData, n_lanes: int) -> tuple[dict, SolverResult, SolverResult]:
    """``(lanes, solved lanes, lane 0)``: the solver chain from ``z`` copied into ``n_lanes`` identical lanes
    (:func:`polish_lanes`: the first solve's compiled program)."""
    lanes = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n_lanes, *a.shape)), z)
    solved = solve_joint(model, opts, solver, options, lanes, data)
    return lanes, solved, jax.tree_util.tree_map(lambda a: a[0], solved)


SATURATED_Z = 10.0  # |z| of a bounded coordinate beyond which its bijection's slope is < 5e-5: saturated at a bound


def polish_off_bounds(model: CurveModel, opts: Likelihood, solver: str, options: tuple[SolverOptions, ...], z: dict,
                      data: CurveData, best: SolverResult, n_lanes: int) -> SolverResult:
    """``best`` (the polish from ``z``, the galaxies' best starts) with each galaxy whose start has a bounded
    coordinate saturated at a bound (``|z| > SATURATED_Z``) replaced by a second polish from ``z`` with those
    coordinates at ``+-SATURATED_Z`` where that one ends lower. Only without shared parameters (each galaxy its own
    problem); the second polish runs the first's compiled program.

    At a bound a bounded parameter's sigmoid is flat: its gradient in z vanishes and the Newton step it would need is
    huge, so the polish cannot leave the bound even where the optimum is inside (on SPARC, NGC6674 under DC14-Flat
    stayed at C200 = 1 + 6e-12 with chi^2 13.93, NOT_STATIONARY; polished from z = -10 it reached 13.06 at C200 =
    1.52, converged). Restarting every such galaxy there instead lost fits whose optimum is at the bound (17 of the
    catalogue's galaxy-models ended higher, by up to 0.94): hence the better of the two, galaxy by galaxy."""
    groups = [(grp, p) for grp, p in per_galaxy_groups(model, opts) if p.bounded]
    saturated = np.zeros(data.cat.n_galaxies, bool)
    for grp, p in groups:
        saturated |= np.abs(np.asarray(z[grp][p.name])) > SATURATED_Z
    if not saturated.any():
        return best

    moved = {grp: dict(v) for grp, v in z.items()}
    for grp, p in groups:
        moved[grp][p.name] = jnp.clip(z[grp][p.name], -SATURATED_Z, SATURATED_Z)
    other = polish(model, opts, solver, options, moved, data, n_lanes)[2]
    better = saturated & (np.asarray(evaluate_compiled(model, other.z, data, opts).objective_terms)
                          < np.asarray(evaluate_compiled(model, best.z, data, opts).objective_terms))
    log.info(f"{model.name}: {int(saturated.sum())} galaxies polished again off a bound, {int(better.sum())} better")
    if not better.any():
        return best
    pick = jnp.asarray(better)
    chosen = {grp: (v if grp == "shared" else jax.tree_util.tree_map(lambda b, a: jnp.where(pick, b, a),
                                                                     other.z[grp], v))
              for grp, v in best.z.items()}
    # Polished once more from the chosen values (converged at once): the solution's loss, status and recent change
    # are then a solve's own, not a mixture of two.
    final = polish(model, opts, solver, options, chosen, data, n_lanes)[2]
    return final._replace(n_iter=best.n_iter + other.n_iter + final.n_iter)


def polish_lanes(z0: dict, cat: Catalog) -> int:
    """How many identical lanes the polish runs: as many as the first solve's starts, which reuses that solve's
    compiled program (compiling dominates small fits), or one where running the copies would cost more than
    compiling (at 10^4 RAR mock galaxies with block LM stages, the polish of four identical lanes took 9.6 s; that fit
    from one start, polished on one lane, 0.3 s).
    """
    lanes = z0_lanes(z0)
    return 1 if lanes * cat.n_max * cat.n_galaxies > POLISH_ONE_LANE_POINTS else lanes


def assemble(model: CurveModel, cat: Catalog, data: CurveData, opts: Likelihood, best: SolverResult, ev: Evaluation,
             errors, per_galaxy_stderr: dict, *, n_starts: int, wall_s: float, n_params: int,
             convergence: Convergence, galaxy_starts: GalaxyStarts | None, laplace: Laplace | None = None
             ) -> CurveFit:
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
        n_params=n_params,
        per_galaxy_chi2=np.asarray(ev.chi2),
        per_galaxy_rms=np.sqrt(np.where(mask, resid**2, 0).sum(axis=1) / np.maximum(n_pts, 1)),
        per_galaxy_points=n_pts,
        rar_scatter_dex=float(np.std(lr)) if lr.size else math.nan,
        likelihood=opts,
        description=model.description,
        evaluation=Evaluation(*(np.asarray(a) for a in ev)),
        convergence=convergence,
        galaxy_starts=galaxy_starts,
        laplace=laplace,
    )
