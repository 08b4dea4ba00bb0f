"""Joint MAP fits of rotation-curve models: shared parameters, per-galaxy parameters and nuisance, all at once.

The objective is the negative log posterior ``sum_points rho(r) + nuisance priors + model priors``, with
``r = (V_obs - V_model) / sqrt(errV^2 + floor^2)`` over every real point of every galaxy (padding masked before the
arithmetic), ``rho(r) = r^2/2`` for ``loss="chi2"``, Student-t or Huber for robust fits. Hundreds of parameters
(4 nuisance values per galaxy) are solved together, by optax's L-BFGS and then a block-arrowhead Levenberg-Marquardt
on the same terms written as residuals (:func:`residuals`); the shared parameters start from a few Sobol points,
solved side by side in one vmapped call.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.custom_derivatives import SymbolicZero

from .catalog import Catalog
from .config import precision_name
from .curves import CurveInputs, CurveModel, acceleration_ratio_dex, curve_inputs, get_curve_model, model_speed
from .numerics import safe_sqrt
from .nuisance import NUISANCE, Nuisance, apply_nuisance, nuisance_prior_residuals, table_nuisance
from .properties import galaxy_properties
from .solvers import SolverOptions, SolverResult, Status, solve
from .parameters import ParameterSpec
from .uncertainty import ErrorAnalysis, hessian_errors, is_log_coordinate

LOSSES = ("chi2", "student_t", "huber")
log = logging.getLogger("jaxcoh")


class JointOptions(NamedTuple):
    """Static options of a joint fit."""

    nuisance: bool = True  # fit Upsilon, D and i per galaxy (False: fixed at 0.5 / 0.7 and table1's D and i)
    loss: str = "chi2"
    error_floor: float = 0.0  # km/s, added in quadrature to errV
    recipe: str = "sparc"
    student_nu: float = 4.0
    huber_delta: float = 1.345


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Rescaled:
    """The data as the likelihood sees it at some nuisance values: the curve models' inputs, the observed speeds and
    the inverse errors used (floor included), ``[g, n]``; ``recipe`` and ``error_floor`` say which options made it."""

    x: CurveInputs
    V_obs: Array  # km/s
    inv_err: Array  # 1/(km/s): residuals are products, not divisions
    recipe: str = dataclasses.field(metadata={"static": True})
    error_floor: float = dataclasses.field(metadata={"static": True})


class JointData(NamedTuple):
    """The catalog to fit (table frame), the references of power-law F models (table properties) and, for fits at
    the table's nuisance values, the data rescaled once (:func:`prepare`)."""

    cat: Catalog
    refs: tuple[Array, Array]
    fixed: Rescaled | None = None


def joint_data(cat: Catalog, recipe: str = "sparc") -> JointData:
    props = galaxy_properties(cat, recipe)
    ok = props.has_properties & cat.galaxy_mask
    med = lambda v: jnp.nanmedian(jnp.where(ok, v, jnp.nan))  # noqa: E731
    return JointData(cat, (med(props.sigma_v), med(props.R_d)))


def robust_rho(r: Array, opts: JointOptions) -> Array:
    """Per-point negative log likelihood (up to a constant) of a residual in units of its error."""
    if opts.loss == "chi2":
        return 0.5 * r**2
    if opts.loss == "student_t":
        return 0.5 * (opts.student_nu + 1) * jnp.log1p(r**2 / opts.student_nu)
    if opts.loss == "huber":
        a = jnp.abs(r)
        d = opts.huber_delta
        return jnp.where(a <= d, 0.5 * r**2, d * (a - 0.5 * d))
    raise ValueError(f"loss must be one of {LOSSES}, got {opts.loss!r}")


def robust_residual(r: Array, opts: JointOptions) -> Array:
    """``psi(r) = sign(r) sqrt(2 rho(r))``: the residual whose square is ``2 rho``, so every loss stays a least-squares
    problem (Gauss-Newton / LM apply). Smooth through 0, where ``psi ~ r``."""
    if opts.loss == "chi2":
        return r
    small = jnp.abs(r) < 1e-6
    rs = jnp.where(small, 1.0, r)  # double where: the ratio below is 0/0 at r = 0
    return jnp.where(small, r, rs * jnp.sqrt(2 * robust_rho(rs, opts) / rs**2))


class Evaluation(NamedTuple):
    """Everything a fit's metrics need, per point ``[g, n]`` and per galaxy ``[g]``."""

    r: Array  # residual in units of the error
    V_obs: Array  # km/s, at the nuisance inclination
    e_V: Array  # km/s, the error used (floor included)
    V_model: Array  # km/s
    V_bar2: Array  # (km/s)^2
    R: Array  # kpc, at the nuisance distance
    mask: Array
    chi2: Array  # [g]
    objective_terms: Array  # [g] rho summed plus every prior term of the galaxy
    prior_residuals: Array  # [g, k] model and nuisance prior terms (0 for masked galaxies)
    log_ratio: Array  # log10(g_obs / g_model)
    rar_valid: Array


def split(model: CurveModel, z: dict, data: JointData, opts: JointOptions):
    """``(shared, local, nuisance)`` values from the unconstrained pytree ``z``."""
    shared = model.shared.to_values(z["shared"])
    local = model.local.to_values(z["local"])
    if opts.nuisance:
        nu = Nuisance(**NUISANCE.to_values(z["nuisance"]))
    else:
        nu = table_nuisance(data.cat)
    return shared, local, nu


def rescale(cat: Catalog, nu: Nuisance, refs: tuple[Array, Array], opts: JointOptions) -> Rescaled:
    """The data at nuisance values ``nu`` (jittable)."""
    scaled = apply_nuisance(cat, nu)
    x = curve_inputs(scaled, nu.upsilon_disk, nu.upsilon_bulge, opts.recipe, refs)
    err = safe_sqrt(jnp.where(cat.mask, scaled.e_V_obs**2 + opts.error_floor**2, 1.0))
    return Rescaled(x, scaled.V_obs, 1.0 / err, opts.recipe, opts.error_floor)


@functools.partial(jax.jit, static_argnames="opts")
def _rescale_at_table(data: JointData, opts: JointOptions) -> Rescaled:
    return rescale(data.cat, table_nuisance(data.cat), data.refs, opts)


def prepare(data: JointData, opts: JointOptions) -> JointData:
    """``data`` with everything that does not depend on the fitted parameters computed once, where there is such a
    part: with the nuisance fixed at the table's values (``opts.nuisance`` False) the rescaled data, curve inputs,
    galaxy properties and the roughness derivation's geometric times are constants of the fit. Every evaluation of
    the objective then starts from them (the same numbers as computing them each time). With the nuisance fitted,
    ``data`` is returned as it is."""
    if opts.nuisance:
        return data
    return data._replace(fixed=_rescale_at_table(data._replace(fixed=None), opts))


def _check_prepared(f: Rescaled, opts: JointOptions) -> None:
    if opts.nuisance or (f.recipe, f.error_floor) != (opts.recipe, opts.error_floor):
        raise ValueError(f"data were prepared for nuisance=False, recipe={f.recipe!r}, error_floor={f.error_floor}; "
                         f"the options ask for nuisance={opts.nuisance}, recipe={opts.recipe!r}, "
                         f"error_floor={opts.error_floor}: prepare them with these options")


def evaluate(model: CurveModel, z: dict, data: JointData, opts: JointOptions) -> Evaluation:
    """The model at ``z`` on every point (jittable)."""
    if data.fixed is not None:
        _check_prepared(data.fixed, opts)
    shared, local, nu = split(model, z, data, opts)
    cat = data.cat
    d = rescale(cat, nu, data.refs, opts) if data.fixed is None else data.fixed
    x = d.x
    mask = cat.mask
    galaxies = cat.galaxy_mask
    V2 = jnp.where(mask, model.speed2(shared, local, x), 1.0)
    V_model = model_speed(V2)
    r = jnp.where(mask, (d.V_obs - V_model) * d.inv_err, 0.0)
    priors = [jnp.zeros((cat.n_galaxies, 0), r.dtype)]
    if model.prior_residuals is not None:
        priors.append(model.prior_residuals(shared, local, x))
    if opts.nuisance:
        priors.append(nuisance_prior_residuals(nu, cat))
    prior = jnp.where(galaxies[:, None], jnp.concatenate(priors, axis=1), 0.0)
    rho = jnp.sum(jnp.where(mask, robust_rho(r, opts), 0.0), axis=1)
    log_ratio, valid = acceleration_ratio_dex(d.V_obs, V2, mask)
    return Evaluation(r, d.V_obs, 1.0 / d.inv_err, V_model, x.V_bar2, x.R, mask,
                      chi2=jnp.sum(r**2, axis=1),
                      objective_terms=jnp.where(galaxies, rho + 0.5 * jnp.sum(prior**2, axis=1), 0.0),
                      prior_residuals=prior, log_ratio=log_ratio, rar_valid=valid)


def residuals(z: dict, model: CurveModel, data: JointData, opts: JointOptions) -> Array:
    """Every term of the negative log posterior as a residual, galaxy by galaxy ``[g, n + k]``:
    ``objective = sum(residuals^2) / 2``. Row ``j`` depends on the shared parameters and galaxy ``j``'s own."""
    ev = evaluate(model, z, data, opts)
    point = jnp.where(ev.mask & data.cat.galaxy_mask[:, None], robust_residual(ev.r, opts), 0.0)
    return jnp.concatenate([point, ev.prior_residuals], axis=1)


GALAXY_BLOCK = 2048  # galaxies per block of the blocked objective (large catalogs)


def objective(z: dict, model: CurveModel, data: JointData, opts: JointOptions) -> Array:
    """Negative log posterior (scalar, up to a constant). Catalogs of many blocks of :data:`GALAXY_BLOCK` galaxies
    go through :func:`blocked_objective` (same value, bounded memory, faster gradients)."""
    g = data.cat.n_galaxies
    if g >= 4 * GALAXY_BLOCK and g % GALAXY_BLOCK == 0:
        return blocked_objective(z, model, data, opts, GALAXY_BLOCK)
    return jnp.sum(evaluate(model, z, data, opts).objective_terms)


def _galaxy_blocks(z: dict, data: JointData, block: int):
    """``(per-galaxy parts of z, catalog, prepared data)`` split into ``[g // block, block, ...]`` blocks."""
    g = data.cat.n_galaxies
    if g % block:
        raise ValueError(f"{g} galaxies are not a multiple of the block size {block}: pad with cat.pad_galaxies")
    split_ = lambda a: a.reshape(g // block, block, *a.shape[1:])  # noqa: E731
    return jax.tree_util.tree_map(split_, ({k: v for k, v in z.items() if k != "shared"}, data.cat, data.fixed))


def _block_objective(shared: dict, local: dict, cat: Catalog, fixed: Rescaled | None, refs, model: CurveModel,
                     opts: JointOptions) -> Array:
    return jnp.sum(evaluate(model, {"shared": shared, **local}, JointData(cat, refs, fixed), opts).objective_terms)


def _blocked_sum(z: dict, model: CurveModel, data: JointData, opts: JointOptions, block: int) -> Array:
    return jnp.sum(jax.lax.map(lambda b: _block_objective(z["shared"], *b, data.refs, model, opts),
                               _galaxy_blocks(z, data, block)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 3, 4))
def blocked_objective(z: dict, model: CurveModel, data: JointData, opts: JointOptions, block: int) -> Array:
    """:func:`objective` summed over blocks of ``block`` galaxies (``n_galaxies`` a multiple of it: pad with
    :meth:`Catalog.pad_galaxies`) by ``lax.map``.

    Its derivative is gradient accumulation: each block's value and gradient in ``z`` are taken together
    (``lax.map`` of ``value_and_grad``), so a block's intermediates are used by its backward pass while still in
    cache, and memory is that of one block. The JVP is ``<grad, dz>``: reverse mode transposes it (one gradient),
    and forward-over-reverse (Hessians) differentiates the per-block gradients. Measured on a 2-core CPU (2 MB of
    cache per core, float32, prepared data): at 16384 galaxies x 64 points the value and gradient took 10 ms in
    blocks of 2048 against 19 ms in one pass, whose ``[g, n]`` intermediates no longer fit the cache; at 10^4
    galaxies one pass was still faster (4.5 ms against 5.6 ms). Rematerialising blocks (``checkpoint``, the previous
    scheme) cost a second forward pass.
    """
    return _blocked_sum(z, model, data, opts, block)


def _blocked_objective_jvp(model, opts, block, primals, tangents):
    z, data = primals
    dz, ddata = tangents

    def one(b):
        return jax.value_and_grad(_block_objective, argnums=(0, 1))(z["shared"], *b, data.refs, model, opts)

    values, (g_shared, g_local) = jax.lax.map(one, _galaxy_blocks(z, data, block))
    grad = {"shared": jax.tree_util.tree_map(lambda a: jnp.sum(a, axis=0), g_shared),
            **jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:]), g_local)}
    pairs = [(g, t) for g, t in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(
        dz, is_leaf=lambda t: isinstance(t, SymbolicZero)), strict=True) if not isinstance(t, SymbolicZero)]
    value = jnp.sum(values)
    dvalue = sum((jnp.vdot(g, t) for g, t in pairs), jnp.zeros_like(value))
    if not all(isinstance(t, SymbolicZero) for t in jax.tree_util.tree_leaves(
            ddata, is_leaf=lambda t: isinstance(t, SymbolicZero))):  # differentiated in the data too: plain JVP
        ddata = jax.tree_util.tree_map(lambda t, p: _zero_tangent(p) if isinstance(t, SymbolicZero) else t, ddata,
                                       data, is_leaf=lambda t: isinstance(t, SymbolicZero))
        dvalue = dvalue + jax.jvp(lambda d: _blocked_sum(z, model, d, opts, block), (data,), (ddata,))[1]
    return value, dvalue


blocked_objective.defjvp(_blocked_objective_jvp, symbolic_zeros=True)


def _zero_tangent(p: Array):
    """A zero tangent for primal ``p`` (``float0`` for integer and boolean data, as ``jax.jvp`` requires)."""
    return jnp.zeros_like(p) if jnp.issubdtype(p.dtype, jnp.inexact) else np.zeros(p.shape, jax.dtypes.float0)


def initial_local(model: CurveModel, cat: Catalog) -> dict[str, Array]:
    """Per-galaxy starting values: the declared inits, and for NFW halos V200 at the galaxy's fastest point."""
    init = model.local.init_values(cat.n_galaxies, dtype=cat.dtype)
    if "V200" in init:
        vmax = jnp.max(jnp.where(cat.mask, cat.V_obs, 0.0), axis=1)
        init["V200"] = jnp.clip(vmax, 10.0, 500.0)
    return init


def initial_z(model: CurveModel, data: JointData, opts: JointOptions, n_starts: int, seed: int) -> dict:
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


def _solve_one(model: CurveModel, opts: JointOptions, solver: str, solver_options: SolverOptions, z: dict,
               data: JointData):
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
def solve_joint(model: CurveModel, opts: JointOptions, solver: str, solver_options: tuple[SolverOptions, ...],
                z0: dict, data: JointData):
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


def choose_solver(model: CurveModel, data: JointData, opts: JointOptions) -> str:
    """``lbfgs+block_lm`` while the block Jacobian fits comfortably in memory, ``lbfgs`` beyond.

    Measured on SPARC: L-BFGS gets through the nonlinear phase (nuisance values pushed far from their priors by a
    poor model, parameters at bounds) where LM's single damping stalls; LM then finishes in a few Gauss-Newton steps
    what L-BFGS approaches slowly. Either alone was worse on some of the six models."""
    kinds = len(model.shared) + len(model.local) + (len(NUISANCE) if opts.nuisance else 0)
    g, n = data.cat.mask.shape
    return "lbfgs+block_lm" if g * (n + len(NUISANCE) + 1) * max(kinds, 1) <= LM_MAX_RESIDUALS else "lbfgs"


@dataclasses.dataclass
class JointFit:
    """One curve model fitted jointly: parameters, errors, per-galaxy values and the fit statistics."""

    model: str
    params: dict[str, float]
    stderr: dict[str, float]
    local: dict[str, np.ndarray]  # per-galaxy model parameters [g]
    nuisance: dict[str, np.ndarray]  # [g]; the table values when nuisance is off
    per_galaxy_stderr: dict[str, np.ndarray]  # [g] marginal errors of the per-galaxy and nuisance values
    objective: float
    chi2: float
    n_points: int
    n_galaxies: int
    n_params: int
    per_galaxy_chi2: np.ndarray
    per_galaxy_rms: np.ndarray  # km/s
    per_galaxy_points: np.ndarray
    rar_scatter_dex: float
    status: str
    n_iter: int
    n_starts: int
    errors: ErrorAnalysis | None
    options: JointOptions
    dtype: str
    wall_s: float = math.nan
    description: str = ""
    evaluation: Evaluation | None = None  # the model on every point at the fit (numpy arrays)

    @property
    def dof(self) -> int:
        return self.n_points - self.n_params

    def statistics(self) -> dict:
        """chi^2, dof, chi^2/nu, AIC, BIC (k counts every fitted parameter, nuisance included)."""
        k, n = self.n_params, self.n_points
        return {"chi2": self.chi2, "dof": self.dof, "chi2_nu": self.chi2 / max(self.dof, 1),
                "aic": self.chi2 + 2 * k, "bic": self.chi2 + k * math.log(n), "n_params": k}


def fit_curves(
    model: str | CurveModel,
    cat: Catalog,
    *,
    options: JointOptions = JointOptions(),
    n_starts: int = 4,
    seed: int = 0,
    solver: str = "auto",
    solver_options: SolverOptions | tuple[SolverOptions, ...] | None = None,
    errors: bool = True,
) -> JointFit:
    """MAP fit of ``model`` to every galaxy of ``cat`` with the nuisance parameters of ``options``.

    ``solver="auto"`` picks L-BFGS polished by the block Levenberg-Marquardt while its Jacobian fits
    (:data:`LM_MAX_RESIDUALS`), L-BFGS alone beyond; "block_lm", "lm" (dense), "lbfgs", "adam" and chains such as
    "adam+lbfgs" can be asked for.
    Raises ``FloatingPointError`` naming the galaxy and parameter when no start gives a finite objective.
    """
    import time

    model = get_curve_model(model)
    t0 = time.perf_counter()
    data = prepare(joint_data(cat, options.recipe), options)
    n_gal = int(np.asarray(cat.galaxy_mask).sum())
    k = len(model.shared) + n_gal * (len(model.local) + (len(NUISANCE) if options.nuisance else 0))
    if solver == "auto":
        solver = choose_solver(model, data, options)
    if solver_options is None:
        stages = solver.split("+")
        solver_options = tuple(DEFAULT_SOLVER_OPTIONS["lbfgs_stage" if name == "lbfgs" and i < len(stages) - 1
                                                      else name] for i, name in enumerate(stages))
    elif isinstance(solver_options, SolverOptions):
        solver_options = (solver_options,) * len(solver.split("+"))
    z0 = initial_z(model, data, options, n_starts, seed)
    res = solve_joint(model, options, solver, solver_options, z0, data)
    loss = np.asarray(res.loss)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    if not np.isfinite(loss).any():
        z = jax.tree_util.tree_map(lambda a: a[0], z0)
        raise FloatingPointError(f"{model.name}: the objective was not finite from any of {len(loss)} starts; "
                                 + "; ".join(diagnose(model, z, data, options) or ["the solver diverged"]))
    status = np.asarray(res.status)
    if np.any(status == Status.NONFINITE):
        j = int(np.nonzero(status == Status.NONFINITE)[0][0])
        zj = jax.tree_util.tree_map(lambda a: a[j], z0)
        log.warning(f"{model.name}: {int(np.sum(status == Status.NONFINITE))} of {len(status)} starts hit a non-finite "
                    f"objective (the others are used); at start {j}: "
                    + "; ".join(diagnose(model, zj, data, options) or ["finite at the start: diverged on the way"]))
    i = int(np.argmin(loss))
    best = jax.tree_util.tree_map(lambda a: a[i], res)
    ev = jax.jit(evaluate, static_argnums=(0, 3))(model, best.z, data, options)
    jax.block_until_ready(ev)
    wall = time.perf_counter() - t0
    shared, local, nu = split(model, best.z, data, options)
    mask = np.asarray(cat.mask)
    galaxies = np.asarray(cat.galaxy_mask)
    n_pts = mask.sum(axis=1)
    resid = np.asarray(ev.V_obs) - np.asarray(ev.V_model)
    rms_g = np.sqrt(np.where(mask, resid**2, 0).sum(axis=1) / np.maximum(n_pts, 1))
    valid = np.asarray(ev.rar_valid)
    lr = np.asarray(ev.log_ratio)[valid]
    err = None
    stderr = {p: math.nan for p in model.shared.names}
    nu_err = {}
    if errors:
        err, nu_err = _joint_errors(model, best.z, data, options)
        stderr = {p: err.stderr.get(p, math.nan) for p in model.shared.names}
    return JointFit(
        model=model.name,
        params={k_: float(v) for k_, v in shared.items()},
        stderr=stderr,
        local={k_: np.asarray(v) for k_, v in local.items()},
        nuisance={k_: np.asarray(v) for k_, v in nu._asdict().items()},
        per_galaxy_stderr=nu_err,
        objective=float(loss[i]),
        chi2=float(np.sum(np.asarray(ev.chi2)[galaxies])),
        n_points=int(mask.sum()),
        n_galaxies=n_gal,
        n_params=k,
        per_galaxy_chi2=np.asarray(ev.chi2),
        per_galaxy_rms=rms_g,
        per_galaxy_points=n_pts,
        rar_scatter_dex=float(np.std(lr)) if lr.size else math.nan,
        status=Status(int(best.status)).name,
        n_iter=int(best.n_iter),
        n_starts=int(loss.size),
        errors=err,
        options=options,
        dtype=precision_name(cat.dtype),
        wall_s=wall,
        description=model.description,
        evaluation=Evaluation(*(np.asarray(a) for a in ev)),
    )


def diagnose(model: CurveModel, z: dict, data: JointData, opts: JointOptions) -> list[str]:
    """What is not finite at ``z``: galaxies whose objective terms are, then parameters whose gradient is
    (per-galaxy parameters named with their galaxy). Empty when all is finite."""
    names = data.cat.names
    ev = evaluate(model, z, data, opts)
    msgs = [f"objective not finite for galaxy {names[int(j)]}"
            for j in np.nonzero(~np.isfinite(np.asarray(ev.objective_terms)))[0][:5]]
    grad = jax.grad(objective)(z, model, data, opts)
    for group, leaves in grad.items():
        for name, g in leaves.items():
            bad = ~np.isfinite(np.asarray(g))
            if bad.ndim == 0 and bad:
                msgs.append(f"gradient not finite for {group} parameter {name}")
            elif bad.ndim and bad.any():
                msgs += [f"gradient not finite for {name}[{names[int(j)]}]" for j in np.nonzero(bad)[0][:5]]
    return msgs


def _local_spec(model: CurveModel, opts: JointOptions) -> ParameterSpec:
    """Every per-galaxy parameter of a joint fit: the model's own, then the nuisance values (if fitted)."""
    return ParameterSpec([*model.local, *(NUISANCE if opts.nuisance else [])])


def _from_log_coordinates(model: CurveModel, opts: JointOptions, s_log: tuple[bool, ...], l_log: tuple[bool, ...],
                          qs: Array, QL: Array | None) -> dict:
    """The unconstrained ``z`` at shared coordinates ``qs`` ``[ks]`` and per-galaxy coordinates ``QL`` ``[g, kl]``
    (logarithms where ``s_log`` / ``l_log`` say so, values elsewhere)."""
    sv = {k: jnp.exp(qs[i]) if lg else qs[i] for i, (k, lg) in enumerate(zip(model.shared.names, s_log))}
    z = {"shared": model.shared.to_unconstrained(sv), "local": {}}
    if QL is not None:
        names = _local_spec(model, opts).names
        lv = {k: jnp.exp(QL[:, c]) if lg else QL[:, c] for c, (k, lg) in enumerate(zip(names, l_log))}
        z["local"] = model.local.to_unconstrained({k: lv[k] for k in model.local.names})
        if opts.nuisance:
            z["nuisance"] = NUISANCE.to_unconstrained({k: lv[k] for k in NUISANCE.names})
    return z


@functools.partial(jax.jit, static_argnames=("model", "opts", "s_log", "l_log"))
def _arrowhead_hessian(model, opts, s_log, l_log, qs0: Array, QL0: Array, data: JointData):
    """The blocks of the arrowhead Hessian at ``(qs0, QL0)``: ``H_ll [g, kl, kl]`` (one Hessian-vector product per
    parameter kind, every galaxy at once: galaxies are independent), ``H_ss [ks, ks]`` and ``H_ls [g, kl, ks]``.
    One jitted call: evaluated eagerly, op by op, these took 16-21 s per model on SPARC in a fresh process."""

    def f(qs, QL):
        return objective(_from_log_coordinates(model, opts, s_log, l_log, qs, QL), model, data, opts)

    kl, ks = QL0.shape[1], qs0.shape[0]
    grad_L = jax.grad(f, argnums=1)
    H_ll = jax.vmap(lambda t: jax.jvp(lambda QL: grad_L(qs0, QL), (QL0,), (jnp.broadcast_to(t, QL0.shape),))[1],
                    out_axes=-1)(jnp.eye(kl, dtype=QL0.dtype))
    if not ks:
        return H_ll, None, None
    return H_ll, jax.hessian(f, argnums=0)(qs0, QL0), jax.jacfwd(grad_L, argnums=0)(qs0, QL0)


def _joint_errors(model, z, data, opts):
    """Errors of the shared parameters, marginalised over every per-galaxy one, and of the per-galaxy values.

    The Hessian of the joint posterior is an arrowhead (a per-galaxy parameter meets only its own galaxy and the
    shared ones), so it is built with one Hessian-vector product per parameter *kind* (the per-galaxy blocks of all
    galaxies at once) and the per-galaxy parameters are eliminated by the Schur complement
    ``S = H_ss - H_sl H_ll^-1 H_ls``, whose inverse is the shared parameters' marginal covariance: O(galaxies), where
    a dense Hessian would be O(galaxies^2) memory and O(galaxies^3) time. Coordinates are logarithmic for positive
    parameters, as in :func:`hessian_errors`, which analyses ``S`` (degeneracies, bounds, derived quantities).
    """
    shared, local, nu = split(model, z, data, opts)
    local_spec = _local_spec(model, opts)
    local_vals = {**local, **(nu._asdict() if opts.nuisance else {})}
    dt = data.cat.dtype

    def log_mask(spec, vals):
        return np.array([is_log_coordinate(spec, k, vals[k]) for k in spec.names])

    s_log, l_log = log_mask(model.shared, shared), log_mask(local_spec, local_vals)
    qs0 = jnp.asarray([jnp.log(shared[k]) if lg else shared[k] for k, lg in zip(model.shared.names, s_log)], dt)
    QL0 = (jnp.stack([jnp.log(local_vals[k]) if lg else local_vals[k] for k, lg in zip(local_spec.names, l_log)],
                     axis=1) if len(local_spec) else None)

    s_log, l_log = tuple(map(bool, s_log)), tuple(map(bool, l_log))

    def unpack(qs, QL):
        return _from_log_coordinates(model, opts, s_log, l_log, qs, QL)

    if QL0 is None:
        analysis = hessian_errors(lambda v: objective(unpack(jnp.stack([v[k] for k in model.shared.names]), None),
                                                      model, data, opts), shared, model.shared, model.derived)
        return analysis, {}

    def f(qs, QL):
        return objective(unpack(qs, QL), model, data, opts)

    H_ll, H_ss, H_ls = _arrowhead_hessian(model, opts, s_log, l_log, qs0, QL0, data)
    kl, ks = QL0.shape[1], qs0.shape[0]
    active = np.asarray(data.cat.galaxy_mask)
    H_ll = np.array(H_ll, np.float64)
    # A galaxy whose block is not finite (a parameter at a bound where a curvature overflows) gets no errors; its
    # block is replaced so that the others' analysis goes on.
    finite = np.isfinite(H_ll).all(axis=(1, 2))
    if not finite[active].all():
        log.warning(f"{model.name}: the Hessian block of {int((~finite & active).sum())} galaxies is not finite "
                    f"(first: {data.cat.names[int(np.nonzero(~finite & active)[0][0])]}): no errors for them")
    active = active & finite
    H_ll[~active] = np.eye(kl)  # padding rows have no terms: any invertible block leaves them out
    H_ll = 0.5 * (H_ll + np.swapaxes(H_ll, 1, 2))
    H_ll_inv = np.linalg.pinv(H_ll, hermitian=True)
    if ks:
        H_ss = np.asarray(H_ss, np.float64)
        H_ls = np.array(H_ls, np.float64)  # [g, kl, ks]
        H_ls[~active] = 0.0
        H_ls[~np.isfinite(H_ls)] = 0.0
        S = H_ss - np.einsum("gli,glm,gmj->ij", H_ls, H_ll_inv, H_ls)
        analysis = hessian_errors(lambda v: f(jnp.stack([v[k] for k in model.shared.names]), QL0), shared,
                                  model.shared, model.derived, hessian=S)
        S_inv = (np.linalg.pinv(0.5 * (S + S.T), hermitian=True) if np.isfinite(S).all()
                 else np.full_like(S, np.nan))
        # Marginal covariance of each galaxy's block: H_ll^-1 + H_ll^-1 H_ls S^-1 H_sl H_ll^-1.
        W = np.einsum("glm,gmi->gli", H_ll_inv, H_ls)
        cov_ll = H_ll_inv + np.einsum("gli,ij,gmj->glm", W, S_inv, W)
    else:
        analysis = ErrorAnalysis({}, np.zeros((0, 0)), True, 1.0, [], {}, [])
        cov_ll = H_ll_inv
    var = np.diagonal(cov_ll, axis1=1, axis2=2)  # [g, kl] in q coordinates
    local_err = {}
    for c, (k, lg) in enumerate(zip(local_spec.names, l_log)):
        x = np.asarray(local_vals[k], np.float64)
        err = np.sqrt(np.where(var[:, c] >= 0, var[:, c], np.nan)) * (x if lg else 1.0)
        local_err[k] = np.where(active, err, np.nan)
    return analysis, local_err
