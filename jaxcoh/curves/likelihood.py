"""The likelihood and priors of rotation-curve fits, point by point: what every objective, fit, error analysis and
sampler of the curve workflow evaluates.

The negative log posterior is ``sum_points rho(r) + nuisance priors + model priors``, with
``r = (V_obs - V_model) / sqrt(errV^2 + floor^2)`` over every real point of every galaxy (padding masked before the
arithmetic), ``rho(r) = r^2/2`` for ``loss="chi2"``, Student-t or Huber for robust fits. Every term is also written
as a residual (:func:`residuals`, ``objective = sum(residuals^2) / 2``), so that least-squares solvers apply, and
galaxy ``j``'s residuals depend only on the shared parameters and galaxy ``j``'s own (the arrowhead structure).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ..catalog import Catalog
from ..numerics import safe_sqrt
from ..parameters import Parameter, ParameterSpec
from ..properties import galaxy_properties
from .inputs import CurveInputs, acceleration_ratio_dex, curve_inputs, model_speed
from .models import CurveModel, extended
from .nuisance import NUISANCE, Nuisance, apply_nuisance, nuisance_prior_residuals, table_nuisance

if TYPE_CHECKING:
    from .folding import FoldedRows

LOSSES = ("chi2", "student_t", "huber")


class Likelihood(NamedTuple):
    """Static options of the curve likelihood (hashable: a static argument of the jitted objective).

    With ``intrinsic_scatter`` the shared ``sigma_int`` [dex] is a log-normal scatter of V_obs^2 about V_model^2
    (of g_obs about g_model at fixed g_bar), taken to first order as a Gaussian scatter of V of
    ``s_k = ln(10)/2 * sigma_int * |V_model,k|`` combined with each point's error ``e_k`` (``errV`` and the floor,
    in quadrature; both at the nuisance inclination), so for ``loss="chi2"``, over the real points ``k``::

        -ln L = sum_k [ (V_obs,k - V_model,k)^2 / (2 sigma_k^2) + ln(sigma_k / e_k) ] + C,
        sigma_k^2 = e_k^2 + s_k^2,   C = sum_k [ ln e_k + ln(2 pi) / 2 ].

    The normalisation ``ln(sigma_k / e_k) = ln(1 + s_k^2/e_k^2) / 2`` is kept (it is what bounds sigma_int from
    above); ``C`` is dropped. It is a constant: the inclination scales V_obs, e_k and (in the table's frame) the
    model alike, so in the table's frame ``e_k`` is the tabulated error and ``sigma_k / e_k`` is unchanged (with an
    ``error_floor`` and fitted inclinations the floor's share of ``ln e_k`` moves with i and is dropped as well).
    """

    nuisance: bool = True  # fit Upsilon, D and i per galaxy (False: fixed at 0.5 / 0.7 and table1's D and i)
    loss: str = "chi2"
    error_floor: float = 0.0  # km/s, added in quadrature to errV
    recipe: str = "sparc"
    student_nu: float = 4.0
    huber_delta: float = 1.345
    intrinsic_scatter: bool = False  # a shared sigma_int [dex]: log-normal scatter of V_obs^2 about V_model^2


# The intrinsic scatter: log-normal, of V_obs^2 about V_model^2 (so of g_obs about g_model at fixed g_bar, R cancels),
# sigma_int dex. To first order a scatter of V^2 by sigma_int dex scatters V by ln(10) sigma_int / 2 of itself, added
# in quadrature to the point's measurement error: sigma^2 = e^2 + (ln(10) sigma_int |V_model| / 2)^2. The Gaussian
# likelihood's normalisation then depends on the parameters: -ln L = sum (V_obs - V_model)^2 / (2 sigma^2) + ln sigma
# + const, and ln(sigma / e) = ln(1 + s^2/e^2) / 2 is written as the residual sqrt(ln(1 + s^2/e^2)) (e is fixed, so
# ln e is a constant), keeping the objective a sum of squares.
INTRINSIC_SCATTER = Parameter("sigma_int", 0.05, 1e-4, 1.0, scale="log", unit="dex",
                              description="intrinsic scatter of g_obs about g_model at fixed g_bar")
LN10 = math.log(10.0)
SCATTER_SPEC = ParameterSpec([INTRINSIC_SCATTER])


def likelihood_model(model: CurveModel, opts: Likelihood) -> CurveModel:
    """The model as the likelihood fits it: with the shared ``sigma_int`` when ``opts.intrinsic_scatter``."""
    return extended(model, SCATTER_SPEC) if opts.intrinsic_scatter else model


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


class CurveData(NamedTuple):
    """The catalog to fit (table frame), the references of power-law F models (table properties), for fits at the
    table's nuisance values the data rescaled once (:func:`prepare`), and, for pointwise models, the same points cut
    into rows of a few (:func:`jaxcoh.curves.folding.fold`: what least-squares solvers evaluate). ``rows`` is made
    from ``cat``: code that replaces ``cat`` must drop or remake it."""

    cat: Catalog
    refs: tuple[Array, Array]
    fixed: Rescaled | None = None
    rows: FoldedRows | None = None


def curve_data(cat: Catalog, recipe: str = "sparc") -> CurveData:
    """The data of a fit of ``cat``, under anonymous names (:meth:`Catalog.anonymous`): messages that name galaxies
    take the names from the catalog itself."""
    cat = cat.anonymous()
    return CurveData(cat, _references(cat, recipe))


@functools.partial(jax.jit, static_argnames="recipe")
def _references(cat: Catalog, recipe: str) -> tuple[Array, Array]:
    """The medians of sigma_v and R_d over the galaxies with properties (one program: op by op, 2.5 s a fit)."""
    props = galaxy_properties(cat, recipe)
    ok = props.has_properties & cat.galaxy_mask
    med = lambda v: jnp.nanmedian(jnp.where(ok, v, jnp.nan))  # noqa: E731
    return med(props.sigma_v), med(props.R_d)


def robust_rho(r: Array, opts: Likelihood) -> Array:
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


def robust_residual(r: Array, opts: Likelihood) -> Array:
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
    prior_residuals: Array  # [g, k] model and nuisance prior terms, then (with intrinsic scatter) the normalisation
    # terms sqrt(ln(1 + s^2/e^2)) of every point; 0 for masked galaxies and points
    log_ratio: Array  # log10(g_obs / g_model)
    rar_valid: Array


def per_galaxy_groups(model: CurveModel, opts: Likelihood) -> list[tuple[str, Parameter]]:
    """``(group, Parameter)`` of every per-galaxy parameter of a joint fit, in the order of ``z``."""
    return [("local", p) for p in model.local] + ([("nuisance", p) for p in NUISANCE] if opts.nuisance else [])


def split(model: CurveModel, z: dict, data: CurveData, opts: Likelihood):
    """``(shared, local, nuisance)`` values from the unconstrained pytree ``z``."""
    shared = model.shared.to_values(z["shared"])
    local = model.local.to_values(z["local"])
    if opts.nuisance:
        nu = Nuisance(**NUISANCE.to_values(z["nuisance"]))
    else:
        nu = table_nuisance(data.cat)
    return shared, local, nu


def rescale(cat: Catalog, nu: Nuisance, refs: tuple[Array, Array], opts: Likelihood) -> Rescaled:
    """The data at nuisance values ``nu`` (jittable)."""
    scaled = apply_nuisance(cat, nu)
    x = curve_inputs(scaled, nu.upsilon_disk, nu.upsilon_bulge, opts.recipe, refs)
    err = safe_sqrt(jnp.where(cat.mask, scaled.e_V_obs**2 + opts.error_floor**2, 1.0))
    return Rescaled(x, scaled.V_obs, 1.0 / err, opts.recipe, opts.error_floor)


@functools.partial(jax.jit, static_argnames="opts")
def _rescale_at_table(data: CurveData, opts: Likelihood) -> Rescaled:
    return rescale(data.cat, table_nuisance(data.cat), data.refs, opts)


def prepare(data: CurveData, opts: Likelihood) -> CurveData:
    """``data`` with everything that does not depend on the fitted parameters computed once, where there is such a
    part: with the nuisance fixed at the table's values (``opts.nuisance`` False) the rescaled data, curve inputs,
    galaxy properties and the roughness derivation's geometric times are constants of the fit. Every evaluation of
    the objective then starts from them (the same numbers as computing them each time). With the nuisance fitted,
    ``data`` is returned as it is."""
    if opts.nuisance:
        return data
    return data._replace(fixed=_rescale_at_table(data._replace(fixed=None), opts))


def _check_prepared(f: Rescaled, opts: Likelihood) -> None:
    if opts.nuisance or (f.recipe, f.error_floor) != (opts.recipe, opts.error_floor):
        raise ValueError(f"data were prepared for nuisance=False, recipe={f.recipe!r}, error_floor={f.error_floor}; "
                         f"the options ask for nuisance={opts.nuisance}, recipe={opts.recipe!r}, "
                         f"error_floor={opts.error_floor}: prepare them with these options")


def evaluate(model: CurveModel, z: dict, data: CurveData, opts: Likelihood) -> Evaluation:
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
    inv_err = d.inv_err
    priors = [jnp.zeros(mask.shape[:1] + (0,), V2.dtype)]
    if opts.intrinsic_scatter:
        q = jnp.where(mask, (0.5 * LN10 * shared["sigma_int"] * jnp.abs(V_model) * inv_err) ** 2, 0.0)  # (s/e)^2
        inv_err = inv_err * jax.lax.rsqrt(1.0 + q)
        priors.append(jnp.where(mask, safe_sqrt(jnp.log1p(q)), 0.0))
    r = jnp.where(mask, (d.V_obs - V_model) * inv_err, 0.0)
    if model.prior_residuals is not None:
        priors.append(model.prior_residuals(shared, local, x))
    if opts.nuisance:
        priors.append(nuisance_prior_residuals(nu, cat))
    prior = jnp.where(galaxies[:, None], jnp.concatenate(priors, axis=1), 0.0)
    rho = jnp.sum(jnp.where(mask, robust_rho(r, opts), 0.0), axis=1)
    log_ratio, valid = acceleration_ratio_dex(d.V_obs, V2, mask)
    return Evaluation(r, d.V_obs, 1.0 / inv_err, V_model, x.V_bar2, x.R, mask,
                      chi2=jnp.sum(r**2, axis=1),
                      objective_terms=jnp.where(galaxies, rho + 0.5 * jnp.sum(prior**2, axis=1), 0.0),
                      prior_residuals=prior, log_ratio=log_ratio, rar_valid=valid)


def galaxy_prior_residuals(ev: Evaluation, opts: Likelihood) -> Array:
    """The galaxy-level columns of ``ev.prior_residuals`` ``[g, k]`` (model and nuisance priors): those after the
    per-point normalisation terms of the intrinsic scatter (:func:`evaluate`'s order)."""
    return ev.prior_residuals[:, ev.mask.shape[1] if opts.intrinsic_scatter else 0:]


def residuals(z: dict, model: CurveModel, data: CurveData, opts: Likelihood) -> Array:
    """Every term of the negative log posterior as a residual, galaxy by galaxy ``[g, n + k]``:
    ``objective = sum(residuals^2) / 2``. Row ``j`` depends on the shared parameters and galaxy ``j``'s own."""
    ev = evaluate(model, z, data, opts)
    return residual_rows(ev, data.cat.galaxy_mask, opts)


def residual_rows(ev: Evaluation, galaxies: Array, opts: Likelihood) -> Array:
    """``[g, n + k]``: the point residuals of ``ev`` (galaxies ``[g]`` with points only), then its prior terms."""
    point = jnp.where(ev.mask & galaxies[:, None], robust_residual(ev.r, opts), 0.0)
    return jnp.concatenate([point, ev.prior_residuals], axis=1)
