"""Whether a rotation-curve fit has converged, decided at its solution rather than by the solver's own stopping rule,
and which fitted parameters touch the data (what the degrees of freedom count).

A fit is converged when it is stationary and no longer moving:

- the projected gradient: the gradient of the objective, with the components of parameters at a bound that push
  outward set to zero (there the bound, not the data, holds the parameter: KKT stationarity), is small in every
  coordinate in units of that coordinate's standard error: ``|g_i| / sqrt(H_ii) <= STATIONARITY_TOL``, with ``H`` the
  Gauss-Newton diagonal. This is the largest Newton step along one coordinate, in standard errors: 0.01 means the
  optimum is within a hundredth of an error bar in every parameter, whatever their units;
- the objective's relative change over the solver's last iterations (:data:`jaxcoh.solvers.common.CHANGE_WINDOW`) is
  below ``CHANGE_TOL``.

Where a model declares kinks of its objective (``CurveModel.kinks``: DC14's shape, clipped at the edges of its range),
a galaxy sitting on one is judged by the one-sided test of :func:`kink_steps` instead.

Both figures are reported. A parameter "touches the data" when changing it changes some point's residual (a galaxy
without a bulge does not see its Upsilon_bul, which only its prior holds).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..solvers.arrowhead import kind_jvps
from ..tracecache import persistent
from .likelihood import CurveData, Likelihood, per_galaxy_groups, residuals
from .models import CurveModel

STATIONARITY_TOL = 1e-2  # the largest Newton step along one coordinate, in its standard errors
CHANGE_TOL = 1e-7  # relative change of the objective over the solver's last iterations (a crawl shows here)
BOUND_U = 1e-6  # a bounded parameter within this fraction of its range from a bound is at the bound
KINK_THETAS = 1001  # convex combinations of the two one-sided gradients tried at a kink


class Convergence(NamedTuple):
    """The stationarity test of a fit's solution (host floats)."""

    max_step_in_stderr: float  # max_i |g_i| / sqrt(H_ii) over the projected gradient
    projected_gradient_norm: float  # 2-norm of the projected gradient in the solver's coordinates
    relative_change: float  # of the objective over the last iterations
    converged: bool
    galaxy_step: np.ndarray | None = None  # [g] max step in standard errors over each galaxy's own parameters

    def to_dict(self) -> dict:
        d = {k: v for k, v in self._asdict().items() if k != "galaxy_step"}
        return {**d, "stationarity_tol": STATIONARITY_TOL, "change_tol": CHANGE_TOL}

    def galaxy_stationary(self) -> np.ndarray | None:
        """``[g]`` bool: each galaxy's own parameters pass the stationarity test (the fit's shared ones aside)."""
        return None if self.galaxy_step is None else self.galaxy_step <= STATIONARITY_TOL


def pack_z(model: CurveModel, opts: Likelihood, z: dict, n_galaxies: int, dtype) -> tuple[Array, Array]:
    """``(s [ks], L [g, kl])``: the shared and the per-galaxy coordinates of ``z``, kind by kind."""
    s = jnp.stack([z["shared"][k] for k in model.shared.names]) if len(model.shared) else jnp.zeros((0,), dtype)
    groups = per_galaxy_groups(model, opts)
    L = (jnp.stack([z[grp][p.name] for grp, p in groups], axis=1) if groups
         else jnp.zeros((n_galaxies, 0), dtype))
    return s, L


def unpack_z(model: CurveModel, opts: Likelihood, s: Array, L: Array) -> dict:
    z = {"shared": {k: s[i] for i, k in enumerate(model.shared.names)}, "local": {}}
    if opts.nuisance:
        z["nuisance"] = {}
    for c, (grp, p) in enumerate(per_galaxy_groups(model, opts)):
        z[grp][p.name] = L[:, c]
    return z


def _bounded(params) -> Array:
    return jnp.asarray([p.bounded for p in params], bool)


@persistent(("model", "opts"))
@functools.partial(jax.jit, static_argnames=("model", "opts"))
def stationarity(model: CurveModel, z: dict, data: CurveData, opts: Likelihood):
    """``(max step in standard errors, projected gradient norm, shared touch [ks], per-galaxy touch [g, kl], max step
    over each galaxy's own coordinates [g], max step over the shared ones, each galaxy's projected gradient and
    Gauss-Newton diagonal [g, kl] each)``."""
    s, L = pack_z(model, opts, z, data.cat.n_galaxies, data.cat.dtype)
    n = data.cat.n_max  # the first n residual columns are the points, the rest are prior terms

    def res(ss, LL):
        return residuals(unpack_z(model, opts, ss, LL), model, data, opts)

    def moved(x0):  # another value of every coordinate, well inside any bounds (a saturated one would not move)
        return jnp.where(jnp.abs(x0 - 0.3) > 0.1, 0.3, -0.3)

    # The Jacobians at the solution and at a moved point in one batched call (one copy of the model in the program):
    # a coordinate touches the data where its column is non-zero on a point's residual at the moved point, where no
    # bound saturates the bijection.
    r, J_s, J_l = jax.vmap(lambda ss, LL: kind_jvps(res, ss, LL))(
        jnp.stack([s, moved(s)]), jnp.stack([L, moved(L)]))
    r = r[0]
    touch_s = (jnp.any(J_s[1, :, :n] != 0, axis=(0, 1)) if J_s is not None else jnp.zeros((0,), bool))
    touch_l = (jnp.any(J_l[1, :, :n] != 0, axis=1) if J_l is not None else jnp.zeros((L.shape[0], 0), bool))
    J_s = J_s[0] if J_s is not None else None
    J_l = J_l[0] if J_l is not None else None
    dt = r.dtype
    grads, diags, uncons, bounded = [], [], [], []
    if J_s is not None:  # objective = sum(r^2)/2: gradient J^T r, Gauss-Newton Hessian J^T J
        grads.append(jnp.einsum("gmi,gm->i", J_s, r))
        diags.append(jnp.einsum("gmi,gmi->i", J_s, J_s))
        uncons.append(s)
        bounded.append(_bounded(model.shared))
    if J_l is not None:
        active = data.cat.galaxy_mask[:, None]
        grads.append(jnp.where(active, jnp.einsum("gmi,gm->gi", J_l, r), 0.0).ravel())
        diags.append(jnp.einsum("gmi,gmi->gi", J_l, J_l).ravel())
        uncons.append(L.ravel())
        kinds = [p for _, p in per_galaxy_groups(model, opts)]
        bounded.append(jnp.broadcast_to(_bounded(kinds), L.shape).ravel())
    n_galaxies = L.shape[0]
    if not grads:
        zero, none = jnp.zeros((), dt), jnp.zeros(L.shape, dt)
        return zero, zero, touch_s, touch_l, jnp.zeros((n_galaxies,), dt), zero, none, none
    g, h, x, b = (jnp.concatenate(a) for a in (grads, diags, uncons, bounded))
    # The bijection of a bounded parameter is sigmoid(z) over its range: at u ~ 0 it is at the lower bound, where a
    # positive gradient (the objective falls toward the bound) is the bound's to hold, not the data's.
    u = jax.nn.sigmoid(x)
    outward = b & (((u <= BOUND_U) & (g > 0)) | ((u >= 1 - BOUND_U) & (g < 0)))
    g = jnp.where(outward, 0.0, g)
    step = jnp.where(h > 0, jnp.abs(g) / jnp.sqrt(jnp.where(h > 0, h, 1.0)), jnp.where(g != 0, jnp.inf, 0.0))
    k_s = s.shape[0]
    per_galaxy = (jnp.max(step[k_s:].reshape(n_galaxies, -1), axis=1) if J_l is not None
                  else jnp.zeros((n_galaxies,), dt))
    return (jnp.max(step), jnp.sqrt(jnp.sum(g**2)), touch_s, touch_l, per_galaxy, jnp.max(step[:k_s], initial=0.0),
            g[k_s:].reshape(L.shape), h[k_s:].reshape(L.shape))


def assess(model: CurveModel, z: dict, data: CurveData, opts: Likelihood, relative_change: float,
           shared_step: float | None = None) -> tuple[Convergence, int]:
    """The :class:`Convergence` of the solution ``z`` (given the solver's last relative change) and the number of
    fitted parameters that touch the data. ``shared_step``: the shared parameters' own stationarity figure, in
    standard errors, where the solution is not the joint objective's (the Laplace marginal's shared parameters, where
    the joint gradient does not vanish); the per-galaxy coordinates are tested as always."""
    step, gnorm, touch_s, touch_l, galaxy_step, step_s = jax.device_get(stationarity(model, z, data, opts)[:6])
    active = np.asarray(data.cat.galaxy_mask)
    kinked = None if model.kinks is None else kink_steps(model, z, data, opts, galaxy_step)
    if kinked is not None:
        galaxy_step = kinked
    if shared_step is not None or kinked is not None:
        step = max(float(step_s if shared_step is None else shared_step),
                   float(np.max(np.where(active, galaxy_step, 0.0), initial=0.0)))
    n_params = int(np.sum(touch_s)) + int(np.sum(np.asarray(touch_l)[active]))
    change = float(relative_change)
    ok = bool(np.isfinite(step) and step <= STATIONARITY_TOL and math.isfinite(change) and abs(change) <= CHANGE_TOL)
    galaxy_step = np.where(active, np.asarray(galaxy_step, float), 0.0)
    return Convergence(float(step), float(gnorm), change, ok, galaxy_step), n_params


def kink_steps(model: CurveModel, z: dict, data: CurveData, opts: Likelihood, galaxy_step: np.ndarray
               ) -> np.ndarray | None:
    """``galaxy_step [g]`` with each galaxy that sits on a kink of the objective (``model.kinks``: DC14's clipped
    shape) judged by the one-sided test there, or None when no galaxy does.

    On a kink the gradient jumps, so a minimum there has no vanishing gradient. With ``g-`` and ``g+`` the projected
    gradients just below and just above the kink (where the kink coordinate ``X`` is smaller or larger), a point is a
    local minimum when some ``theta g- + (1 - theta) g+`` vanishes (the Clarke subgradient holds 0) and the jump
    ``g+ - g-`` points along ``grad X`` (``(g+ - g-).grad X >= 0``: the objective rises on both sides; the opposite
    sign is a ridge, a maximum across the kink). The galaxy's step is then the smallest over ``theta`` of the largest
    Newton step along one coordinate (in standard errors, with the smaller Gauss-Newton diagonal of the two sides), as
    :func:`stationarity` measures a smooth point; a ridge keeps its own step."""
    sides = model.kinks(z, data.cat, opts)
    if sides is None or not np.any(sides.at):
        return None
    at = np.nonzero(sides.at)[0]
    minus, plus = (np.asarray(jax.device_get(stationarity(model, zz, data, opts)[6:]))[:, at]
                   for zz in (sides.minus, sides.plus))
    h = np.minimum(minus[1], plus[1])
    scale = np.where(h > 0, np.sqrt(np.where(h > 0, h, 1.0)), np.nan)  # (no curvature: no Newton step to measure)
    a, b = minus[0] / scale, plus[0] / scale  # [k, kl]: the two sides' gradients in standard errors
    theta = np.linspace(0.0, 1.0, KINK_THETAS)[:, None, None]
    hull = np.min(np.nanmax(np.abs(theta * a + (1 - theta) * b), axis=2, initial=0.0), axis=0)
    n = np.asarray(pack_z(model, opts, sides.normal, data.cat.n_galaxies, data.cat.dtype)[1])[at] / scale  # grad X
    jump = b - a
    rising = np.nansum(jump * n, axis=1) >= -STATIONARITY_TOL * np.sqrt(np.nansum(jump**2, axis=1) * np.nansum(
        n**2, axis=1))
    out = np.array(galaxy_step, float)
    out[at] = np.where(rising, np.minimum(out[at], hull), out[at])
    return out
