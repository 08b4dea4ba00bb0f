"""Standard errors from the Hessian, and an honest report where it has none to give.

The Hessian of a negative log-likelihood is taken in coordinates where positive parameters are logarithmic, so that
its eigenvalues compare directions of relative change and a degeneracy (a direction the data cannot see, such as
``Psi0 f_R^3 = const`` in the mass-coherence model) shows up as an eigenvalue near zero whatever the units. Where the
Hessian is positive definite the covariance is its inverse. Where it is not, the individual standard errors are NaN,
the flat directions are reported by parameter, and derived quantities that the data do constrain (declared by the
model) get errors from the pseudo-inverse, which is valid because their gradient is orthogonal to the flat
directions (checked). Parameters at a bound get no error; the others' are conditional on them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .parameters import ParameterSpec

DEGENERACY_RTOL = 1e-8  # an eigenvalue below this fraction of the largest (scaled Hessian) is flat
BOUND_RTOL = 1e-6  # a parameter within this fraction of its range from a bound is "at the bound"


@dataclasses.dataclass
class ErrorAnalysis:
    """Standard errors of the parameters (NaN where not identifiable) and what could not be determined."""

    stderr: dict[str, float]
    covariance: np.ndarray  # [p, p] of the parameter values (NaN if singular, and for parameters at a bound)
    positive_definite: bool  # the Hessian of the parameters not at a bound
    condition_number: float  # of the scaled Hessian
    degenerate: list[dict[str, float]]  # flat directions, as coefficients of d(log p) or d(p) by name
    derived: dict[str, dict[str, float]]  # name -> {"value", "stderr"}
    at_bound: list[str]

    def to_dict(self) -> dict:
        return {
            "stderr": self.stderr,
            "hessian_positive_definite": self.positive_definite,
            "condition_number": self.condition_number,
            "degenerate_directions": self.degenerate,
            "derived": self.derived,
            "at_bound": self.at_bound,
        }


def is_log_coordinate(spec: ParameterSpec, name: str, value) -> bool:
    """Whether parameter ``name`` (at ``value``, a scalar or per-galaxy array) is analysed in log coordinates: a
    non-negative range and positive values. A ``hessian`` given to :func:`hessian_errors` must use this rule."""
    return spec[name].lower >= 0 and bool(np.all(np.asarray(value) > 0))


def hessian_errors(
    nll: Callable[[Mapping[str, jax.Array]], jax.Array],
    values: Mapping[str, float],
    spec: ParameterSpec,
    derived: Mapping[str, Callable[[Mapping[str, jax.Array]], jax.Array]] | None = None,
    *,
    hessian: np.ndarray | None = None,
) -> ErrorAnalysis:
    """Errors of the scalar parameters ``values`` of ``spec`` from the Hessian of ``nll`` (covariance = H^-1).

    Host-side analysis of one fit (eigen-decomposition in numpy); the Hessian itself is one ``jax.hessian`` call,
    or ``hessian`` when given (in the same coordinates: log for positive parameters; for instance the Schur
    complement of a joint fit, whose inverse is the covariance marginalised over the per-galaxy parameters).
    """
    names = [p.name for p in spec if not p.per_galaxy]
    x = np.array([float(values[n]) for n in names])
    log = np.array([is_log_coordinate(spec, n, v) for n, v in zip(names, x, strict=True)])
    q0 = np.where(log, np.log(np.where(log, x, 1.0)), x)
    dtype = jnp.result_type(float)

    def from_q(q):
        vals = jnp.where(jnp.asarray(log), jnp.exp(q), q)
        return {**{k: v for k, v in values.items() if k not in names}, **{n: vals[i] for i, n in enumerate(names)}}

    if hessian is None:
        hessian = jax.hessian(lambda q: nll(from_q(q)))(jnp.asarray(q0, dtype))
    H = np.asarray(hessian, dtype=np.float64)
    H = 0.5 * (H + H.T)
    at_bound = [n for n, v in zip(names, x, strict=True) if _near_bound(spec[n], v)]
    # At a bound the fit stopped against the constraint, not at a minimum, and the curvature there says nothing about
    # an error (the gradient need not vanish): those parameters get none, and the others' errors are conditional on
    # them (the inverse of the free parameters' sub-Hessian). Two parameters of a product both at their bounds (A0 and
    # K_max of the unified kernel) would otherwise make a flat direction that hides every other parameter's error.
    free = np.array([n not in at_bound for n in names])
    p = len(names)
    nanv = {n: math.nan for n in names}
    # value and gradient of each derived quantity in one compiled program (op by op, a dozen tiny ones per quantity)
    at = ({k: jnp.asarray(v) for k, v in values.items()}, jnp.asarray(q0, dtype))
    value_grad = {k: jax.jit(lambda v, q, f=f: (f(v), jax.grad(lambda qq: f(from_q(qq)))(q)))(*at)
                  for k, f in (derived or {}).items()}
    grads = {k: np.asarray(g, dtype=np.float64) for k, (_, g) in value_grad.items()}
    out_derived = {k: {"value": float(v), "stderr": math.nan} for k, (v, _) in value_grad.items()}
    Hf = H[np.ix_(free, free)]
    fnames = [n for n, f in zip(names, free, strict=True) if f]
    flog = log[free]
    diag = np.diag(Hf)
    d = np.sqrt(np.where(diag > 0, diag, 1.0))
    Hn = Hf / np.outer(d, d)
    if not fnames or not np.all(np.isfinite(Hn)) or np.any(diag <= 0):  # nothing to invert: say which are flat
        flat = [n for n, dd in zip(fnames, diag, strict=True) if not dd > 0]
        return ErrorAnalysis(nanv, np.full((p, p), np.nan), False, math.inf,
                             [{_coord(n, lg): 1.0} for n, lg in zip(fnames, flog, strict=True) if n in flat],
                             out_derived, at_bound)
    evals, evecs = np.linalg.eigh(Hn)
    cond = float(evals[-1] / evals[0]) if evals[0] > 0 else math.inf
    flat_mask = evals <= DEGENERACY_RTOL * evals[-1]
    degenerate = []
    for k in np.nonzero(flat_mask)[0]:
        v = evecs[:, k] / d  # back to unscaled coordinates
        v = v / np.max(np.abs(v))
        degenerate.append({_coord(n, lg): float(round(c, 6)) for n, lg, c in zip(fnames, flog, v, strict=True)
                           if abs(c) > 1e-6})
    # Pseudo-inverse over the non-flat eigen-space, in scaled coordinates.
    inv_e = np.where(flat_mask, 0.0, 1.0 / np.where(flat_mask, 1.0, evals))
    cov_qf = (evecs * inv_e) @ evecs.T / np.outer(d, d)
    pd_ok = not flat_mask.any()
    jac = np.where(log, x, 1.0)[free]  # dx/dq
    cov = np.full((p, p), np.nan)
    stderr = dict(nanv)
    null = evecs[:, flat_mask]
    # A declared degeneracy (a derived quantity) that ties a free parameter to one at its bound would leave the free
    # one identifiable only through the bound: it gets no error either (Psi0 when f_R is at a bound).
    tied = set()
    for grad_q in grads.values():
        if np.any(grad_q[~free] != 0):
            tied |= {n for n, g, f in zip(names, grad_q, free, strict=True) if f and g != 0}
    # Parameters untouched by every flat direction stay identifiable (all of them when there is none).
    for i, n in enumerate(fnames):
        if np.all(np.abs(null[i]) < 1e-6) and n not in tied:
            stderr[n] = float(jac[i] * np.sqrt(cov_qf[i, i]))
    if not flat_mask.any():
        cov[np.ix_(free, free)] = cov_qf * np.outer(jac, jac)
        cov[np.ix_(np.isin(names, sorted(tied)), np.ones(p, bool))] = np.nan
        cov[np.ix_(np.ones(p, bool), np.isin(names, sorted(tied)))] = np.nan
    # A derived quantity's error is conditional on the parameters at a bound, like the others'; for a degenerate
    # combination (Psi0 f_R^3 with f_R at a bound) that is its full error, since the data see only the combination.
    # One that depends on parameters at bounds alone gets none.
    for k, grad_q in grads.items():
        g = grad_q[free]
        if not np.any(g != 0):
            continue
        visible = np.linalg.norm(null.T @ (g / d)) <= 1e-6 * max(np.linalg.norm(g / d), 1e-300)
        var = float(g @ cov_qf @ g)
        out_derived[k]["stderr"] = math.sqrt(var) if visible and var >= 0 else math.nan
    return ErrorAnalysis(stderr, cov, pd_ok, cond, degenerate, out_derived, at_bound)


def _coord(name: str, log: bool) -> str:
    return f"log {name}" if log else name


def _near_bound(param, value: float) -> bool:
    if not param.bounded:
        return False
    if param.scale == "log" and param.lower > 0:
        lo, hi, v = math.log(param.lower), math.log(param.upper), math.log(value)
    else:
        lo, hi, v = param.lower, param.upper, value
    return min(v - lo, hi - v) <= BOUND_RTOL * (hi - lo)
