"""Shared parameters from their marginal posterior: every galaxy's own and nuisance parameters integrated out by
Laplace's approximation, the way the field marginalises Upsilon, D and i (Li et al. 2018, 2020), at the cost of a
few Newton steps after the joint fit.

Why: the joint MAP over shared *and* per-galaxy parameters is biased for the shared ones by an amount that does not
shrink with the number of galaxies (each galaxy's few points leave its nuisance posterior broad and skewed: the
Neyman-Scott problem), while their standard errors shrink as 1/sqrt(N). Measured on RAR mocks with known truth and the
nuisance drawn from the fit's priors (``scripts/scale_fit.py``): g_dagger 1.7% high, +4.3 standard errors at 10^4
galaxies and +12.4 at 10^5; without nuisance the same mock and fit gave -0.5.

The marginal negative log posterior of the shared parameters ``t`` is, with ``h`` the fit's objective and ``q_g``
galaxy ``g``'s own parameters in their prior coordinates (where the objective is the density's negative log, see
:mod:`~jaxcoh.curves.posterior`), ``q*(t)`` their conditional modes and ``H_g`` the Hessian of ``h`` in ``q_g``
there::

    P(t) = -ln int exp(-h(t, q)) dq  ~  h(t, q*(t)) + 1/2 sum_g ln det H_g(t) + const.

It is computed in the fit's unconstrained coordinates ``z``: at a conditional mode the gradient vanishes, so the term
of the Hessian with the bijection's second derivative drops and ``ln det H_g^q = ln det H_g^z - 2 sum_k ln|dq_k/dz_k|``.
``H_g`` is the exact Hessian (one Hessian-vector product per parameter kind, every galaxy at once): with the
Gauss-Newton one the correction of the 10^4-galaxy mock overshot to -3.8 standard errors; with the exact one it gave
+0.26.

``P`` is minimised by Newton steps on the profile, from the joint MAP:

1. ``dP/dt = dh/dt + dD/dt + (dq*/dt)^T dD/dq`` (``D`` the log-determinant term), with ``dq*/dt = -H_qq^-1 H_qt``
   (implicit function theorem: ``dh/dq = 0`` at the conditional modes);
2. ``t <- t - (beta S)^-1 dP/dt``, ``S = H_tt - H_tq H_qq^-1 H_qt`` the Schur complement (the curvature of ``h``'s
   profile) and ``beta`` a secant estimate of how much ``D``'s own curvature adds to it along the last step
   (:func:`secant_scale`; the exact curvature would need fourth derivatives). With ``S`` alone the steps converged
   linearly at a rate of about one over the points per galaxy: 3 steps for the RAR, but 20 steps still short of the
   tolerance for the ten shared parameters of the unified kernel on 51 mock galaxies;
3. every galaxy's parameters moved by ``dq*/dt`` times the step, then solved again with ``t`` fixed (the separable
   block Levenberg-Marquardt of :mod:`~jaxcoh.curves.galaxy_starts`),

until the next step is below :data:`~jaxcoh.curves.convergence.STATIONARITY_TOL` standard errors of every shared
parameter; a step that raises ``P`` is halved from where it started.
A shared parameter at a bound of its range stays there (the steps of the others are conditional on it), and so do
the combinations of shared parameters that the data do not determine (:func:`newton_direction`).
A galaxy whose block is not positive definite (a parameter held at a bound) has no Laplace term; it is counted and
left out of ``D``. The standard errors stay those of ``S`` (the profile's curvature without ``D``'s). What that
leaves out, measured by central differences of ``dP/dt`` with every galaxy re-solved (``scripts/laplace_curvature.py``,
2000 RAR mock galaxies): g_dagger's error 0.9% smaller with ``D``'s curvature; with intrinsic scatter, g_dagger's 1.0%
smaller and sigma_int's 1.7% larger. ``D`` is a sum of one O(1) term per galaxy against ``h``'s one per point.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..solvers import SolverOptions
from ..solvers.arrowhead import kind_jvps, schur_complement, small_cho_solve, small_cholesky
from ..uncertainty import DEGENERACY_RTOL
from .convergence import BOUND_U, STATIONARITY_TOL, pack_z, unpack_z
from .galaxy_starts import solve_each_galaxy
from .likelihood import CurveData, Likelihood, per_galaxy_groups, prepare
from .models import CurveModel
from .objective import GALAXY_BLOCK, galaxy_blocks, objective

log = logging.getLogger("jaxcoh")

MARGINALS = ("auto", "joint", "laplace")
# "auto": the Laplace marginal beyond this many galaxies (with points), the joint MAP up to it. The joint MAP's bias in
# the shared parameters does not shrink with the number of galaxies while its errors do (1/sqrt(N)): measured on RAR
# mocks, +4.3 standard errors at 10^4 galaxies and +12.4 at 10^5 (the Laplace marginal: +0.15 and -1.00), within 3 at
# 150 (tests/test_mock.py); at 10^3 the same growth puts it near 1.4 (extrapolated, not measured). Up to it, SPARC-size
# fits and their published numbers stay the joint MAP's (compare and the sampler's start take the joint MAP at any size:
# jaxcoh.curves.fitting.at_joint_maximum).
LAPLACE_AUTO_GALAXIES = 1000
MAX_NEWTON = 20

# Galaxies per block of the Newton step's third derivatives: at 10^4 RAR mock galaxies the step on the whole catalog
# at once took the fit's peak memory from 1.43 to 3.58 GiB (10^5 would not have fitted in 24 GiB).
BLOCK = GALAXY_BLOCK


def choose_marginal(marginal: str, n_galaxies: int) -> str:
    """``"joint"`` or ``"laplace"``: ``marginal`` itself, or for ``"auto"`` the Laplace marginal beyond
    :data:`LAPLACE_AUTO_GALAXIES` galaxies."""
    if marginal not in MARGINALS:
        raise ValueError(f"marginal must be one of {MARGINALS}, got {marginal!r}")
    if marginal == "auto":
        return "laplace" if n_galaxies > LAPLACE_AUTO_GALAXIES else "joint"
    return marginal


class Laplace(NamedTuple):
    """How the Laplace profile's Newton steps went (host values)."""

    iterations: int  # Newton steps taken
    step_in_stderr: float  # the next step at the solution, max over the shared parameters in standard errors
    converged: bool
    marginal_objective: float  # h + the log-determinant term at the solution (up to a constant)
    shift_in_stderr: dict[str, float]  # Laplace solution minus the joint MAP, per shared parameter, in standard errors
    # (of the unconstrained coordinate, at the solution)
    galaxies_without_term: int  # galaxies whose Hessian block was not positive definite at the solution
    degenerate: bool = False  # combinations of shared parameters the data do not determine were left where they were

    def to_dict(self) -> dict:
        return self._asdict()


def format_shift(shift_in_stderr: dict[str, float]) -> str:
    """``"g_dagger +0.12, ..."``: how far the Laplace solution moved each shared parameter from the joint MAP, in
    standard errors (the fit's log line and its printed summary)."""
    return ", ".join(f"{k} {v:+.2f}" for k, v in shift_in_stderr.items())


def _log_det_term(model: CurveModel, opts: Likelihood, s: Array, L: Array, data: CurveData, include: Array
                  ) -> tuple[Array, Array]:
    """``(D, ok [g])``: ``D = 1/2 sum_g ln det H_g^q`` over the galaxies ``include`` keeps whose block ``H_g`` (exact
    Hessian of the objective in their own unconstrained coordinates, ``L [g, kl]``) is positive definite (``ok``).
    The others are masked before the arithmetic (no points, benign parameter values): a galaxy whose block is not
    finite (a parameter at a bound where a curvature overflows) would otherwise make the third derivatives NaN for
    every parameter (zero cotangents times infinite partials). A block that is finite but not positive definite is
    left out the same way (its Cholesky factor's NaN did that to per_galaxy_amplitude's Laplace step on SPARC)."""
    L = jnp.where(include[:, None], L, 0.0)
    data = data._replace(cat=dataclasses.replace(data.cat, mask=data.cat.mask & include[:, None]))
    grad_l = jax.grad(lambda LL: objective(unpack_z(model, opts, s, LL), model, data, opts))
    kl = L.shape[1]
    H = jax.vmap(lambda t: jax.jvp(grad_l, (L,), (jnp.broadcast_to(t, L.shape),))[1], out_axes=-1)(
        jnp.eye(kl, dtype=L.dtype))  # [g, kl, kl]
    active = data.cat.galaxy_mask
    eye = jnp.eye(kl, dtype=L.dtype)
    H = jnp.where(active[:, None, None], 0.5 * (H + jnp.swapaxes(H, 1, 2)), eye)
    pivots = jnp.diagonal(small_cholesky(jax.lax.stop_gradient(H)), axis1=1, axis2=2)  # NaN: not positive definite
    ok = active & jnp.all(jnp.isfinite(pivots) & (pivots > 0), axis=1)
    # Double where: a galaxy left out is factorised as the identity, so no NaN of its factor meets a zero cotangent.
    diag = jnp.diagonal(small_cholesky(jnp.where(ok[:, None, None], H, eye)), axis1=1, axis2=2)
    log_det = 2.0 * jnp.sum(jnp.log(diag), axis=1)
    log_jac = sum((p.log_abs_det_jacobian(L[:, c]) for c, (_, p) in enumerate(per_galaxy_groups(model, opts))),
                  jnp.zeros_like(log_det))
    return jnp.sum(jnp.where(ok, 0.5 * log_det - log_jac, 0.0)), ok


def _block_pieces(model: CurveModel, opts: Likelihood, s: Array, L: Array, data: CurveData):
    """One block of galaxies' share of the Newton step: ``(h + D, dP/dt [ks], S [ks, ks], W [g, kl, ks], ok [g])``,
    with ``W = H_qq^-1 H_qt`` (so ``dq*/dt = -W``); sums over blocks give the whole catalog's."""
    f = lambda ss, LL: objective(unpack_z(model, opts, ss, LL), model, data, opts)  # noqa: E731
    (h, (g_s, _)), d_s, d_l = kind_jvps(jax.value_and_grad(f, argnums=(0, 1)), s, L)
    H_ss, H_ls, H_ll = d_s[1][0], d_s[1][1], d_l[1][1]  # [ks, ks], [g, kl, ks], [g, kl, kl]
    kl = L.shape[1]
    eye = jnp.eye(kl, dtype=L.dtype)
    finite = (data.cat.galaxy_mask & jnp.all(jnp.isfinite(H_ll), axis=(1, 2))
              & jnp.all(jnp.isfinite(H_ls), axis=(1, 2)))
    (D, ok), (dD_s, dD_l) = jax.value_and_grad(
        lambda ss, LL: _log_det_term(model, opts, ss, LL, data, finite), argnums=(0, 1), has_aux=True)(s, L)
    H_ll = jnp.where(ok[:, None, None], 0.5 * (H_ll + jnp.swapaxes(H_ll, 1, 2)), eye)
    H_ls = jnp.where(ok[:, None, None], H_ls, 0.0)
    W = small_cho_solve(small_cholesky(H_ll), H_ls)  # [g, kl, ks]
    grad = g_s + dD_s - jnp.einsum("gli,gl->i", W, jnp.where(ok[:, None], dD_l, 0.0))
    return h + D, grad, schur_complement(H_ss, H_ls, W), W, ok


@functools.partial(jax.jit, static_argnames=("model", "opts", "block"))
def profile_pieces(model: CurveModel, opts: Likelihood, z: dict, data: CurveData, block: int):
    """What a Newton step on the Laplace profile at ``z`` needs (per-galaxy parameters at their conditional modes),
    computed ``block`` galaxies at a time (``lax.map``: the third derivatives' memory is one block's;
    ``n_galaxies`` a multiple of ``block``): ``(P at z, dP/dt [ks], S [ks, ks], W [g, kl, ks], ok [g], free [ks])``,
    ``free`` False for a shared parameter at a bound of its range."""
    s, L = pack_z(model, opts, z, data.cat.n_galaxies, data.cat.dtype)
    _, cats, fixed = galaxy_blocks(z, data, block)

    def one(b):
        L_b, cat_b, fixed_b = b
        return _block_pieces(model, opts, s, L_b, CurveData(cat_b, data.refs, fixed_b))

    value, grad, S, W, ok = jax.lax.map(one, (L.reshape(-1, block, L.shape[1]), cats, fixed))
    u = jax.nn.sigmoid(s)
    bounded = jnp.asarray([p.bounded for p in model.shared], bool)
    free = ~(bounded & ((u <= BOUND_U) | (u >= 1 - BOUND_U)))
    return (jnp.sum(value), jnp.sum(grad, axis=0), jnp.sum(S, axis=0), W.reshape(-1, *W.shape[2:]), ok.reshape(-1),
            free)


def newton_direction(grad: np.ndarray, S: np.ndarray, free: np.ndarray, scale: float = 1.0
                     ) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(step, standard errors, degenerate)`` on the host: ``-(scale S)^+ grad`` over the free shared parameters, with
    ``scale`` the secant estimate of how much more the profile curves than ``S`` (:func:`secant_scale`).

    ``S`` is scaled to unit diagonal and its eigen-directions below :data:`~jaxcoh.uncertainty.DEGENERACY_RTOL` of
    the largest are left out, as :func:`jaxcoh.uncertainty.hessian_errors` leaves them out of the errors: the data do
    not determine them, so the Laplace term does not move them either. A parameter at a bound stays there (no step);
    the others' steps and errors are conditional on it, as in the error analysis. The standard errors are ``S``'s.
    Non-finite input gives a NaN step."""
    k = grad.shape[0]
    step, stderr = np.zeros(k), np.ones(k)
    f = np.asarray(free, bool)
    if not f.any():
        return step, stderr, False
    Sf = S[np.ix_(f, f)]
    if not (np.all(np.isfinite(Sf)) and np.all(np.isfinite(grad[f]))):
        return np.full(k, np.nan), stderr, False
    diag = np.diag(Sf)
    d = np.sqrt(np.where(diag > 0, diag, 1.0))
    evals, evecs = np.linalg.eigh(Sf / np.outer(d, d))
    keep = evals > DEGENERACY_RTOL * max(evals[-1], 0.0)
    P = evecs[:, keep]
    cov = (P / evals[keep]) @ P.T / np.outer(d, d)  # S^+ over the determined directions
    step[f] = -cov @ grad[f] / scale
    stderr[f] = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), 1.0))
    return step, stderr, bool((~keep).any())


SECANT_RANGE = (0.5, 2.0)


def secant_scale(dt: np.ndarray, d_grad: np.ndarray, S: np.ndarray) -> float:
    """How much more the profile curves than ``S`` along the last step ``dt``, from the change ``d_grad`` of its
    gradient: ``dt . d_grad / dt . S dt`` (the secant condition along ``dt``), within :data:`SECANT_RANGE`; 1 where
    ill-defined. One number, not a matrix: a symmetric rank-one estimate of the missing curvature, fed by gradients
    of re-solved galaxies, made the ten shared parameters of the unified kernel oscillate between 0.01 and 0.3
    standard errors for 20 steps."""
    den = float(dt @ S @ dt)
    ratio = float(dt @ d_grad) / den if den > 0 and np.isfinite(den) else 1.0
    return float(np.clip(ratio, *SECANT_RANGE)) if np.isfinite(ratio) else 1.0


@functools.partial(jax.jit, static_argnames=("model", "opts"))
def _moved(model: CurveModel, opts: Likelihood, z: dict, W: Array, step: Array) -> dict:
    """``z`` with the shared parameters moved by ``step`` and every galaxy's by ``dq*/dt step = -W step``."""
    s, L = pack_z(model, opts, z, W.shape[0], W.dtype)
    return unpack_z(model, opts, s + step, L - jnp.einsum("gli,i->gl", W, step))


def _padded(model: CurveModel, opts: Likelihood, z: dict, data: CurveData, block: int) -> tuple[dict, CurveData]:
    """``z`` and ``data`` with padding galaxies (no points, no terms) up to a multiple of ``block``."""
    g = data.cat.n_galaxies
    extra = (-g) % block
    if not extra:
        return z, data
    cat = data.cat.pad_galaxies(block)
    grow = lambda a: jnp.concatenate([a, jnp.zeros((extra, *a.shape[1:]), a.dtype)])  # noqa: E731
    z = {"shared": z["shared"], **jax.tree_util.tree_map(grow, {k: v for k, v in z.items() if k != "shared"})}
    return z, prepare(CurveData(cat, data.refs), opts)


def in_blocks(model: CurveModel, opts: Likelihood, z: dict, data: CurveData) -> tuple[dict, CurveData, int]:
    """``(z, data, block)``: the galaxies per block of :func:`profile_pieces` (all of them up to :data:`BLOCK`), and
    ``z`` and ``data`` padded to a multiple of it."""
    g = data.cat.n_galaxies
    block = g if g <= BLOCK else BLOCK
    return (*_padded(model, opts, z, data, block), block)


def conditional_modes(model: CurveModel, opts: Likelihood, options: SolverOptions, z: dict, W: Array,
                      step: np.ndarray, data: CurveData) -> dict:
    """``z`` with the shared parameters moved by ``step`` and every galaxy's own parameters re-solved at them, from
    the linear prediction ``dq*/dt step`` (``W`` from :func:`profile_pieces` at ``z``)."""
    moved = _moved(model, opts, z, W, jnp.asarray(step, W.dtype))
    own = {k: jax.tree_util.tree_map(lambda a: a[None], v) for k, v in moved.items() if k != "shared"}
    solved = solve_each_galaxy(model, opts, options, moved["shared"], own, data, test_settled=False)[0]
    return {"shared": moved["shared"], **jax.tree_util.tree_map(lambda a: a[0], solved)}


def laplace_profile(model: CurveModel, opts: Likelihood, options: SolverOptions, z: dict, data: CurveData
                    ) -> tuple[dict, Laplace]:
    """The shared parameters at the minimum of the Laplace profile, from the joint MAP ``z``, and every galaxy's own
    parameters at their conditional modes there (see the module's notes)."""
    if not len(model.shared) or not per_galaxy_groups(model, opts):
        raise ValueError(f"{model.name}: the Laplace marginal needs shared and per-galaxy parameters (this fit has "
                         f"{len(model.shared)} shared and {len(per_galaxy_groups(model, opts))} per-galaxy kinds)")
    g = data.cat.n_galaxies
    z, data, block = in_blocks(model, opts, z, data)
    names = model.shared.names
    t0 = np.asarray([z["shared"][k] for k in names], np.float64)
    scale, previous = 1.0, None
    converged, steps = False, 0

    def step_to(z_from: dict, W: Array, step: np.ndarray) -> dict:  # every galaxy re-solved at the moved t
        return conditional_modes(model, opts, options, z_from, W, step, data)

    for it in range(1, MAX_NEWTON + 1):
        value, grad, S, W, ok, free = profile_pieces(model, opts, z, data, block)
        value = float(value)
        if previous is not None and not value <= previous["value"] + 1e-12 * abs(previous["value"]):
            # The last step raised P (or made it non-finite): half of it from where it started, until it is below
            # the tolerance (then that point stays, not converged: P does not fall along its Newton step).
            half = previous["step"] / 2
            if np.max(np.abs(half / previous["stderr"])) <= STATIONARITY_TOL:
                z = previous["z"]
                break
            previous["step"] = half
            z = step_to(previous["z"], previous["W"], half)
            log.debug(f"{model.name}: Laplace step {it}: P rose; half the step")
            continue
        t = np.asarray([z["shared"][k] for k in names], np.float64)
        grad, S, free = np.asarray(grad, np.float64), np.asarray(S, np.float64), np.asarray(free)
        if previous is not None:  # the profile's curvature beyond S along the last step
            dt = np.where(free, t - previous["t"], 0.0)
            scale = secant_scale(dt, np.where(free, grad - previous["grad"], 0.0), S)
        step, stderr, degenerate = newton_direction(grad, S, free, scale)
        last = step / stderr
        if not np.all(np.isfinite(last)):
            log.warning(f"{model.name}: the Laplace profile's Newton step was not finite at iteration {it}; kept "
                        "the last finite point")
            break
        log.debug(f"{model.name}: Laplace step {it}: {np.abs(last).max():.3g} standard errors")
        if np.max(np.abs(last)) <= STATIONARITY_TOL:  # stationary here: the step is not taken
            converged = True
            break
        previous = {"z": z, "t": t, "grad": grad, "value": value, "step": step, "stderr": stderr, "W": W}
        z = step_to(z, W, step)
        steps += 1
    if not converged:  # where the steps ended (ran out, stopped, or the last finite point): its own figures
        value, grad, S, W, ok, free = profile_pieces(model, opts, z, data, block)
        step, stderr, degenerate = newton_direction(np.asarray(grad, np.float64), np.asarray(S, np.float64),
                                                    np.asarray(free), scale)
        last = step / stderr
        value = float(value)
    t = np.asarray([z["shared"][k] for k in names], np.float64)
    # S's errors at the solution (from a zero gradient: where the last step's gradient was not finite, its own call
    # gave no errors)
    stderr_now = newton_direction(np.zeros(len(names)), np.asarray(S, np.float64), np.asarray(free))[1]
    n_bad = int(np.sum(np.asarray(data.cat.galaxy_mask) & ~np.asarray(ok)))
    if n_bad:
        log.warning(f"{model.name}: {n_bad} galaxies have no positive-definite Hessian block (a parameter at a "
                    "bound): left out of the Laplace term")
    own = {k: v for k, v in z.items() if k != "shared"}
    z = {"shared": z["shared"], **jax.tree_util.tree_map(lambda a: a[:g], own)}
    return z, Laplace(iterations=steps, step_in_stderr=float(np.max(np.abs(last))), converged=converged,
                      marginal_objective=float(value),
                      shift_in_stderr={k: float((t[i] - t0[i]) / stderr_now[i]) for i, k in enumerate(names)},
                      galaxies_without_term=n_bad, degenerate=degenerate)
