"""Standard errors of a rotation-curve fit from the exact Hessian of its objective, arrowhead by arrowhead.

A per-galaxy parameter meets only its own galaxy and the shared ones, so the Hessian is built with one
Hessian-vector product per parameter *kind* (every galaxy's block at once) and the per-galaxy parameters are
eliminated by the Schur complement ``S = H_ss - H_sl H_ll^-1 H_ls`` (:mod:`jaxcoh.solvers.arrowhead`, the same
algebra the block Levenberg-Marquardt solves with), whose inverse is the shared parameters' covariance marginalised
over every per-galaxy one: O(galaxies), where a dense Hessian would be O(galaxies^2) memory and O(galaxies^3) time.
Coordinates are logarithmic for positive parameters, as in :func:`jaxcoh.uncertainty.hessian_errors`, which
analyses ``S`` (degeneracies, bounds, derived quantities).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..parameters import ParameterSpec
from ..solvers.arrowhead import block_covariance, kind_jvps, schur_complement
from ..tracecache import persistent
from ..uncertainty import ErrorAnalysis, hessian_errors, is_log_coordinate
from .likelihood import CurveData, Likelihood, split
from .models import CurveModel
from .nuisance import NUISANCE
from .objective import objective

log = logging.getLogger("jaxcoh")


def local_spec(model: CurveModel, opts: Likelihood) -> ParameterSpec:
    """Every per-galaxy parameter of a joint fit: the model's own, then the nuisance values (if fitted)."""
    return ParameterSpec([*model.local, *(NUISANCE if opts.nuisance else [])])


def _from_log_coordinates(model: CurveModel, opts: Likelihood, s_log: tuple[bool, ...], l_log: tuple[bool, ...],
                          qs: Array, QL: Array) -> dict:
    """The unconstrained ``z`` at shared coordinates ``qs`` ``[ks]`` and per-galaxy coordinates ``QL`` ``[g, kl]``
    (logarithms where ``s_log`` / ``l_log`` say so, values elsewhere)."""
    sv = {k: jnp.exp(qs[i]) if lg else qs[i] for i, (k, lg) in enumerate(zip(model.shared.names, s_log))}
    names = local_spec(model, opts).names
    lv = {k: jnp.exp(QL[:, c]) if lg else QL[:, c] for c, (k, lg) in enumerate(zip(names, l_log))}
    z = {"shared": model.shared.to_unconstrained(sv),
         "local": model.local.to_unconstrained({k: lv[k] for k in model.local.names})}
    if opts.nuisance:
        z["nuisance"] = NUISANCE.to_unconstrained({k: lv[k] for k in NUISANCE.names})
    return z


@persistent(("model", "opts", "s_log", "l_log"))
@functools.partial(jax.jit, static_argnames=("model", "opts", "s_log", "l_log"))
def arrowhead_hessian(model, opts, s_log, l_log, qs0: Array, QL0: Array, data: CurveData):
    """The blocks of the arrowhead Hessian at ``(qs0, QL0)``: ``H_ll [g, kl, kl]``, ``H_ss [ks, ks]`` and
    ``H_ls [g, kl, ks]`` (the shared blocks None without shared parameters, the per-galaxy ones None without
    per-galaxy parameters). One jitted call: evaluated eagerly, op by op, these took 16-21 s per model on SPARC in a
    fresh process (and 20 s for the shared parameters alone of the unified kernel on 10 mock galaxies)."""

    def f(qs, QL):
        return objective(_from_log_coordinates(model, opts, s_log, l_log, qs, QL), model, data, opts)

    # One vmapped JVP of the whole gradient: one copy of the model in the program (a JVP per block tripled it).
    _, d_s, d_l = kind_jvps(jax.grad(f, argnums=(0, 1)), qs0, QL0)
    H_ss, H_ls = (d_s[0], d_s[1]) if d_s is not None else (None, None)
    return (d_l[1] if d_l is not None else None), H_ss, (H_ls if d_l is not None else None)


def curve_errors(model: CurveModel, z: dict, data: CurveData, opts: Likelihood, names: Sequence[str]
                 ) -> tuple[ErrorAnalysis, dict[str, np.ndarray]]:
    """Errors of the shared parameters, marginalised over every per-galaxy one, and the marginal errors of the
    per-galaxy values (``{name: [g]}``, NaN for padding and for galaxies whose Hessian block is not finite).
    ``names``: the galaxies' names, for the warning."""
    shared, local, nu = split(model, z, data, opts)
    spec_l = local_spec(model, opts)
    local_vals = {**local, **(nu._asdict() if opts.nuisance else {})}
    dt = data.cat.dtype
    g = data.cat.n_galaxies

    def log_mask(spec, vals):
        return tuple(bool(is_log_coordinate(spec, k, vals[k])) for k in spec.names)

    s_log, l_log = log_mask(model.shared, shared), log_mask(spec_l, local_vals)
    qs0 = jnp.asarray([jnp.log(shared[k]) if lg else shared[k] for k, lg in zip(model.shared.names, s_log)], dt)
    QL0 = (jnp.stack([jnp.log(local_vals[k]) if lg else local_vals[k] for k, lg in zip(spec_l.names, l_log)], axis=1)
           if len(spec_l) else jnp.zeros((g, 0), dt))
    ks, kl = qs0.shape[0], QL0.shape[1]
    if not ks and not kl:  # nothing fitted (Newtonian with the nuisance fixed)
        return ErrorAnalysis({}, np.zeros((0, 0)), True, 1.0, [], {}, []), {}

    def f_shared(qs):
        return objective(_from_log_coordinates(model, opts, s_log, l_log, qs, QL0), model, data, opts)

    H_ll, H_ss, H_ls = arrowhead_hessian(model, opts, s_log, l_log, qs0, QL0, data)
    if not kl:
        analysis = hessian_errors(lambda v: f_shared(jnp.stack([v[k] for k in model.shared.names])), shared,
                                  model.shared, model.derived, hessian=np.asarray(H_ss, np.float64))
        return analysis, {}
    active = np.asarray(data.cat.galaxy_mask)
    H_ll = np.array(H_ll, np.float64)
    # A galaxy whose block is not finite (a parameter at a bound where a curvature overflows) gets no errors; its
    # block is replaced so that the others' analysis goes on.
    finite = np.isfinite(H_ll).all(axis=(1, 2))
    if not finite[active].all():
        log.warning(f"{model.name}: the Hessian block of {int((~finite & active).sum())} galaxies is not finite "
                    f"(first: {names[int(np.nonzero(~finite & active)[0][0])]}): no errors for them")
    active = active & finite
    H_ll[~active] = np.eye(kl)  # padding rows have no terms: any invertible block leaves them out
    H_ll = 0.5 * (H_ll + np.swapaxes(H_ll, 1, 2))
    inv_ll = np.linalg.pinv(H_ll, hermitian=True)  # host-side, once per fit: no LAPACK in a hot loop
    if ks:
        H_ls = np.array(H_ls, np.float64)  # [g, kl, ks]
        H_ls[~active] = 0.0
        H_ls[~np.isfinite(H_ls)] = 0.0
        inv_B = np.einsum("glm,gmi->gli", inv_ll, H_ls)
        S = schur_complement(np.asarray(H_ss, np.float64), H_ls, inv_B)
        analysis = hessian_errors(lambda v: f_shared(jnp.stack([v[k] for k in model.shared.names])), shared,
                                  model.shared, model.derived, hessian=S)
        S_inv = (np.linalg.pinv(0.5 * (S + S.T), hermitian=True) if np.isfinite(S).all()
                 else np.full_like(S, np.nan))
        cov_ll = block_covariance(inv_ll, inv_B, S_inv)
    else:
        analysis = ErrorAnalysis({}, np.zeros((0, 0)), True, 1.0, [], {}, [])
        cov_ll = inv_ll
    var = np.diagonal(cov_ll, axis1=1, axis2=2)  # [g, kl] in q coordinates
    local_err = {}
    for c, (k, lg) in enumerate(zip(spec_l.names, l_log)):
        x = np.asarray(local_vals[k], np.float64)
        err = np.sqrt(np.where(var[:, c] >= 0, var[:, c], np.nan)) * (x if lg else 1.0)
        local_err[k] = np.where(active, err, np.nan)
    return analysis, local_err
