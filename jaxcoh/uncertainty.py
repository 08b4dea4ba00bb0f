"""Standard errors from the Hessian, and an honest report where it has none to give.

The Hessian of a negative log-likelihood is taken in coordinates where positive parameters are logarithmic, so that
its eigenvalues compare directions of relative change and a degeneracy (a direction the data cannot see, such as
``Psi0 f_R^3 = const`` in the mass-coherence model) shows up as an eigenvalue near zero whatever the units. Where the
Hessian is positive definite the covariance is its inverse. Where it is not, the individual standard errors are NaN,
the flat directions are reported by parameter, and derived quantities that the data do constrain (declared by the
model) get errors from the pseudo-inverse, which is valid because their gradient is orthogonal to the flat
directions (checked).
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
    covariance: np.ndarray  # [p, p] of the parameter values (NaN if the Hessian is singular)
    positive_definite: bool
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
    p = len(names)
    diag = np.diag(H)
    d = np.sqrt(np.where(diag > 0, diag, 1.0))
    Hn = H / np.outer(d, d)
    if not np.all(np.isfinite(Hn)) or np.any(diag <= 0):  # nothing to invert: say which directions are flat
        flat = [n for n, d in zip(names, diag, strict=True) if not d > 0]
        nanv = {n: math.nan for n in names}
        return ErrorAnalysis(nanv, np.full((p, p), np.nan), False, math.inf,
                             [{_coord(n, lg): 1.0} for n, lg in zip(names, log, strict=True) if n in flat],
                             {k: {"value": _derived_value(f, values), "stderr": math.nan} for k, f in (derived or {}).items()},
                             at_bound)
    evals, evecs = np.linalg.eigh(Hn)
    cond = float(evals[-1] / evals[0]) if evals[0] > 0 else math.inf
    flat_mask = evals <= DEGENERACY_RTOL * evals[-1]
    degenerate = []
    for k in np.nonzero(flat_mask)[0]:
        v = evecs[:, k] / d  # back to unscaled coordinates
        v = v / np.max(np.abs(v))
        degenerate.append({_coord(n, lg): float(round(c, 6)) for n, lg, c in zip(names, log, v, strict=True)
                           if abs(c) > 1e-6})
    # Pseudo-inverse over the non-flat eigen-space, in scaled coordinates.
    inv_e = np.where(flat_mask, 0.0, 1.0 / np.where(flat_mask, 1.0, evals))
    cov_q = (evecs * inv_e) @ evecs.T / np.outer(d, d)
    pd_ok = not flat_mask.any()
    jac = np.where(log, x, 1.0)  # dx/dq
    if pd_ok:
        cov = cov_q * np.outer(jac, jac)
        stderr = {n: float(np.sqrt(cov[i, i])) for i, n in enumerate(names)}
    else:
        cov = np.full((p, p), np.nan)
        stderr = {n: math.nan for n in names}
        # Parameters untouched by every flat direction stay identifiable.
        null = evecs[:, flat_mask]
        for i, n in enumerate(names):
            if np.all(np.abs(null[i]) < 1e-6):
                stderr[n] = float(jac[i] * np.sqrt(cov_q[i, i]))
    out_derived = {}
    for k, f in (derived or {}).items():
        val = _derived_value(f, values)
        grad_q = np.asarray(jax.grad(lambda q, f=f: f(from_q(q)))(jnp.asarray(q0, dtype)), dtype=np.float64)
        g_scaled = grad_q / d
        null = evecs[:, flat_mask]
        visible = (np.linalg.norm(null.T @ g_scaled) <= 1e-6 * max(np.linalg.norm(g_scaled), 1e-300))
        var = float(grad_q @ cov_q @ grad_q)
        out_derived[k] = {"value": val, "stderr": math.sqrt(var) if visible and var >= 0 else math.nan}
    return ErrorAnalysis(stderr, cov, pd_ok, cond, degenerate, out_derived, at_bound)


def _coord(name: str, log: bool) -> str:
    return f"log {name}" if log else name


def _derived_value(f, values) -> float:
    return float(f({k: jnp.asarray(v) for k, v in values.items()}))


def _near_bound(param, value: float) -> bool:
    if not param.bounded:
        return False
    if param.scale == "log" and param.lower > 0:
        lo, hi, v = math.log(param.lower), math.log(param.upper), math.log(value)
    else:
        lo, hi, v = param.lower, param.upper, value
    return min(v - lo, hi - v) <= BOUND_RTOL * (hi - lo)
