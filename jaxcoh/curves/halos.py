"""The seven dark-matter halos of Li, Lelli, McGaugh & Schombert 2020 (ApJS 247, 31) as rotation-curve models.

``V_model^2 = V_bar^2 + V_halo^2(R; V200, C200[, shape])`` per galaxy, the halo from :mod:`jaxcoh.halo_profiles`
(its docstring records which conventions were checked against the published table, VizieR J/ApJS/247/31), with the
nuisance parameters (Upsilon_disk, Upsilon_bul, D, i) and their priors as for every curve model. Twelve models, as
Li et al. fitted them: seven profiles with "Flat" priors, and the five that LCDM predicts with "LCDM" priors:

=================  ===============  =====================================================================
registered name    display name     per-galaxy parameters, shape
=================  ===============  =====================================================================
``piso_flat``      pISO-Flat        V200, C200
``burkert_flat``   Burkert-Flat     V200, C200
``nfw_flat``       NFW-Flat         V200, C200
``nfw_lcdm``       NFW-LCDM         V200, C200
``einasto_*``      Einasto-*        V200, C200, alpha (C200 = R200/r_-2)
``dc14_*``         DC14-*           V200, C200; (a, b, g) from X = log10(M_star/M200) at the nuisance values
``corenfw_*``      coreNFW-*        V200, C200; r_c = 1.75 R_eff (at the nuisance distance), n from t_dyn
``lucky13_*``      Lucky13-*        V200, C200
=================  ===============  =====================================================================

Priors (``-ln p = sum(z^2)/2``, every ``z`` a residual of the least-squares problem):

- Flat: V200 in [10, 500] km/s, C200 in [1, 1000], Einasto's alpha in [0.05, 2] (Li+20's table spans [0, 2];
  ``mu_einasto`` is verified from 0.05 on), uniform: no residual, the bounds held by the bijections. A flat prior
  needs no Jacobian term at a MAP: the objective is the posterior density in the parameters' own values, whatever
  coordinate (log V200, log C200) the optimiser moves in.
- LCDM: the Dutton & Maccio (2014) concentration-mass relation, Gaussian in log10 C200 (0.11 dex; the Einasto
  relation for Einasto, NFW's for the others), Moster et al. (2013)'s stellar-to-halo mass relation, Gaussian in
  log10 M_star at fixed M200 (0.15 dex), and for Einasto alpha(M200) of Dutton & Maccio, Gaussian in log10 alpha
  (0.16 dex). Each is a density in a logarithm, and is taken as the prior density in the fitted values without the
  Jacobians ``ln C200``, ``ln alpha`` and ``ln |d log10 M_star / d log10 M200|`` that would turn it into a density
  in C200, alpha or V200: those terms are omitted (whether Li+20 added them cannot be decided from their published
  table; see :mod:`jaxcoh.halo_profiles`). V200 and C200 keep the Flat bounds.

Evaluation: each profile's ``mu`` is called once per model on the points and the concentrations together; built for
a given catalog (:func:`make_halo_model` with its mask, as ``jaxcoh.curves.halo_catalog`` does), a model evaluates
the halo at the real points only; :func:`make_halo_stack` fits several models as one (each row one galaxy under one
model: one compilation for the whole catalogue). Einasto's and DC14's ``mu`` carry their own derivative rules
(:func:`mu_einasto`, :func:`mu_dc14`): the same values, differentiable twice, and DC14's Jacobian at the cost of one
quadrature rather than one per parameter kind.

Starts: V200 at the galaxy's fastest observed point (:func:`jaxcoh.curves.fitting.initial_local`, for every model
with a ``V200``), C200 at 10, alpha at 0.5; per-galaxy multi-start (``CurveSettings(galaxy_starts=K)``) spreads
further starts over the bounds, which matters: the fits are multimodal (low- and high-concentration solutions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..halo_profiles import (C200_RANGE, DC14_X_RANGE, PROFILES, V200_RANGE, HaloProfile, corenfw_core_radius,
                             corenfw_shape, dc14_shape, dc14_x, log10_m200, log10_rho_s, m200, r200, scale_radius,
                             z_concentration, z_einasto_alpha, z_shmr)
from ..halo_profiles import mu_dc14 as hp_mu_dc14
from ..halo_profiles import mu_einasto as hp_mu_einasto
from ..numerics import safe_div, safe_log, safe_pow
from ..parameters import Parameter, ParameterSpec
from .fold_plan import fold_width, folded_mask
from .inputs import CurveInputs, stellar_mass
from .models import CurveModel, KinkSides, builtin, get_model, register_model
from .nuisance import NUISANCE, Nuisance, apply_nuisance, table_nuisance

PRIOR_SETS = ("Flat", "LCDM")
ALPHA_RANGE = (0.05, 2.0)  # Einasto alpha: Li+20's [0, 2] from where mu_einasto is verified
C200_INIT, ALPHA_INIT = 10.0, 0.5
LN10 = math.log(10.0)


EINASTO_FD_STEP = 1e-4  # relative step in alpha of the derivative below (float64)
EINASTO_FD_STEP_32 = 5e-3  # in float32: ~eps^(1/3), truncation and rounding ~2e-5 relative each (1e-4 left ~1e-3)


@jax.custom_jvp
def mu_einasto(x: Array, alpha: Array) -> Array:
    """:func:`jaxcoh.halo_profiles.mu_einasto`, differentiable to any order.

    Its derivative in alpha runs through XLA's ``igamma_grad_a``, which JAX cannot differentiate again, so the
    Hessian behind the standard errors would fail. Here the x-derivative is the density, ``x^2 rho(x)``, and the
    alpha-derivative a central difference of this function itself (step ``1e-4 alpha``: truncation ~1e-9 and
    rounding ~1e-12 relative; a second derivative ~1e-8; in float32 the step is 5e-3 alpha), each differentiable
    again. The value and both sides of the difference are one call on the three inputs side by side (one copy of
    XLA's incomplete gamma, whose series and continued fraction run as loops to the slowest element, in the program;
    as fast as three calls: 43 against 44 ms an iteration of the halo catalogue, the loops are compute-bound).
    """
    return hp_mu_einasto(x, alpha)


@mu_einasto.defjvp
def _mu_einasto_jvp(primals, tangents):
    x, alpha = jnp.broadcast_arrays(*primals)
    dx, dalpha = tangents
    h = (EINASTO_FD_STEP if alpha.dtype == jnp.float64 else EINASTO_FD_STEP_32) * alpha
    mu, up, down = mu_einasto(jnp.stack([x, x, x]), jnp.stack([alpha, alpha + h, alpha - h]))
    d_alpha = (up - down) / (2 * h)
    d_x = x * x * jnp.exp(-(2.0 / alpha) * (safe_pow(x, alpha) - 1.0))  # x^2 rho/rho_s; 0 at x = 0
    return mu, d_x * dx + d_alpha * dalpha


@jax.custom_jvp
def mu_dc14(x: Array, X: Array) -> Array:
    """:func:`jaxcoh.halo_profiles.mu_dc14` with a derivative that costs one profile evaluation, whatever the number
    of tangents: ``d mu/dx = x^2 rho(x)`` in closed form and ``d mu/dX`` by one forward pass, both from the primal
    values only, so a Jacobian of many columns (the block Levenberg-Marquardt's, one per parameter kind) reuses
    them instead of running the quadrature once per column. Differentiable again (the Hessian of the errors)."""
    return hp_mu_dc14(x, X)


@mu_dc14.defjvp
def _mu_dc14_jvp(primals, tangents):
    x, X = primals
    dx, dX = tangents
    value, d_X = jax.jvp(hp_mu_dc14, (x, X), (jnp.zeros_like(x), jnp.ones_like(X)))
    a, b, g = dc14_shape(X)
    d_x = safe_pow(x, 2.0 - g) * jnp.exp(-(b - g) / a * jnp.log1p(safe_pow(x, a)))  # x^2 rho/rho_s
    return value, d_x * dx + d_X * dX


MU = {**{name: p.mu for name, p in PROFILES.items()}, "Einasto": mu_einasto, "DC14": mu_dc14}  # what models use


def model_name(profile: str, prior: str) -> str:
    """The registered name of ``profile`` fitted with ``prior``: ``"NFW", "LCDM" -> "nfw_lcdm"``."""
    return f"{profile.lower()}_{prior.lower()}"


def halo_shape(profile: str, local: Mapping[str, Array], M_star: Array, R_eff: Array) -> tuple[Array, ...]:
    """The profile's ``mu`` arguments beyond x, each ``[g]``: Einasto ``(alpha,)``, DC14 ``(X,)`` from the stellar
    mass [Msun], coreNFW ``(r_c/rs, n)`` from the effective radius [kpc]; ``()`` for the others."""
    V200, C200 = local["V200"], local["C200"]
    if profile == "Einasto":
        return (local["alpha"],)
    if profile == "DC14":
        return (dc14_x(M_star, m200(V200)),)
    if profile == "coreNFW":
        return corenfw_shape(V200, C200, corenfw_core_radius(R_eff))
    return ()


def _v2_at(profile: str, local: Mapping[str, Array], x: CurveInputs, R: Array, rows: np.ndarray,
           galaxies: np.ndarray) -> Array:
    """``V_halo^2`` at radii ``R [m]`` of galaxies ``rows [m]`` (static), every row among ``galaxies`` (static,
    sorted): :func:`jaxcoh.halo_profiles.v2_halo`'s ``V200^2 mu(C200 X)/(X mu(C200))``, ``X = R/R200``, with ``mu``
    called once on the points and the galaxies' concentrations together (one copy of the profile in the traced
    program: DC14's quadrature is compiled once)."""
    shape = halo_shape(profile, local, x.M_star, x.R_eff)
    V200, C200 = local["V200"], local["C200"]
    X = R / r200(V200)[rows]
    mu = MU[profile](jnp.concatenate([C200[rows] * X, C200[galaxies]]),
                              *(jnp.concatenate([s[rows], s[galaxies]]) for s in shape))
    mu_x, mu_c = mu[: X.shape[0]], mu[X.shape[0]:]
    return (V200**2)[rows] * safe_div(mu_x, X) / mu_c[np.searchsorted(galaxies, rows)]


def halo_speed2(profile: str, local: Mapping[str, Array], x: CurveInputs, points: np.ndarray | None = None
                ) -> Array:
    """``V_halo^2 [g, n]`` [(km/s)^2] at the (rescaled) radii of ``x``, padding at R = 1.

    ``points``: a catalog's ``[g, n]`` mask (host array), known when the model is built for that catalog
    (:func:`make_halo_model`): the profile is then evaluated at the real points only (a static gather; 0 at
    padding), the same numbers at a fraction of the cost where curves are ragged (SPARC: 17% of its 175 x 115
    entries are points; DC14's Jacobian 9x faster). Used where ``x`` has that shape; elsewhere (blocks of a
    blocked objective, other catalogs) every entry is evaluated.
    """
    g, n = x.R.shape
    if points is not None and points.shape == (g, n):
        rows, cols = np.nonzero(points)
        v2 = _v2_at(profile, local, x, x.R[rows, cols], rows, np.arange(g))
        return jnp.zeros((g, n), v2.dtype).at[rows, cols].set(v2)
    R = jnp.where(x.mask, x.R, 1.0).reshape(-1)
    return _v2_at(profile, local, x, R, np.repeat(np.arange(g), n), np.arange(g)).reshape(g, n)


def lcdm_prior_residuals(profile: str, local: Mapping[str, Array], x: CurveInputs) -> Array:
    """``z [g, k]``: the c-M relation, the stellar-to-halo mass relation, and (Einasto) alpha(M200)."""
    lm = log10_m200(local["V200"])
    log_mstar = safe_log(x.M_star, fill=0.0) / LN10
    z = [z_concentration(local["C200"], lm, PROFILES[profile].cm_relation), z_shmr(log_mstar, lm)]
    if profile == "Einasto":
        z.append(z_einasto_alpha(local["alpha"], lm))
    return jnp.stack(z, axis=1)


def _local_spec(profile: HaloProfile) -> ParameterSpec:
    params = [Parameter("V200", 100.0, *V200_RANGE, scale="log", unit="km/s", per_galaxy=True,
                        description="circular speed at R200 (200 times the critical density, H0 = 73)"),
              Parameter("C200", C200_INIT, *C200_RANGE, scale="log", per_galaxy=True,
                        description="concentration R200/rs")]
    if profile.shape_fitted:
        params.append(Parameter("alpha", ALPHA_INIT, *ALPHA_RANGE, per_galaxy=True, description="Einasto shape"))
    return ParameterSpec(params)


DC14_KINK_TOL = 1e-6  # |X - edge| within which a DC14 fit sits on the kink of the clipped shape
DC14_KINK_STEP = 1e-7  # the one-sided gradients are taken this far from the kink, in X


def dc14_kinks(spec: ParameterSpec, is_dc14: Callable[[int], np.ndarray]):
    """The ``kinks`` of a model whose rows ``is_dc14(n_galaxies) [g]`` are DC14 (:class:`KinkSides`): X =
    log10(M_star/M200) on an edge of its range (``DC14_X_RANGE``), where the shape stops varying with X. The two
    sides move V200 alone (X falls by 3 dex per dex of V200, M200 being proportional to V200^3)."""
    v200 = next(p for p in spec if p.name == "V200")

    def x_of(z: dict, cat, opts) -> Array:
        nu = Nuisance(**NUISANCE.to_values(z["nuisance"])) if opts.nuisance else table_nuisance(cat)
        M_star = stellar_mass(apply_nuisance(cat, nu), nu.upsilon_disk, nu.upsilon_bulge)
        return dc14_x(M_star, m200(v200.to_value(z["local"]["V200"])))

    def kinks(z: dict, cat, opts) -> KinkSides | None:
        X = np.asarray(x_of(z, cat, opts), float)
        edge = np.where(np.abs(X - DC14_X_RANGE[0]) <= np.abs(X - DC14_X_RANGE[1]), *DC14_X_RANGE)
        at = is_dc14(cat.n_galaxies) & (np.abs(X - edge) <= DC14_KINK_TOL) & np.asarray(cat.galaxy_mask)
        if not at.any():
            return None
        V200 = np.asarray(v200.to_value(z["local"]["V200"]), float)

        def side(target: np.ndarray) -> dict:
            moved = jnp.asarray(np.where(at, V200 * 10.0 ** ((X - target) / 3), V200), cat.dtype)
            return {**z, "local": {**z["local"], "V200": v200.to_unconstrained(moved)}}

        normal = jax.grad(lambda zz: jnp.sum(jnp.where(at, x_of(zz, cat, opts), 0.0)))(z)
        return KinkSides(at, side(edge - DC14_KINK_STEP), side(edge + DC14_KINK_STEP), normal)

    return kinks


def make_halo_model(profile: str, prior: str, points: np.ndarray | None = None) -> CurveModel:
    """The curve model of ``profile`` (a key of :data:`jaxcoh.halo_profiles.PROFILES`) with ``prior`` ("Flat" or
    "LCDM"), family "halo" (not fitted by ``compare`` by default), not registered. With ``points`` (a catalog's
    ``[g, n]`` mask) the model evaluates its halo at that catalog's real points only (:func:`halo_speed2`): the same
    model, faster on that catalog."""
    points = None if points is None else np.asarray(points, bool)
    p = PROFILES[profile]
    if prior not in p.priors:
        raise ValueError(f"{profile} is fitted with {' and '.join(p.priors)} priors, not {prior!r}")

    def speed2(shared, local, x: CurveInputs) -> Array:
        return x.V_bar2 + halo_speed2(profile, local, x, points)

    def prior_residuals(shared, local, x: CurveInputs) -> Array:
        return lcdm_prior_residuals(profile, local, x)

    what = {"Flat": "flat priors on V200 and C200", "LCDM": f"LCDM priors (Dutton & Maccio 2014 {p.cm_relation} "
            "c-M relation, Moster et al. 2013 stellar-to-halo mass relation"
            + (", alpha(M200)" if p.shape_fitted else "") + ")"}[prior]
    return CurveModel(model_name(profile, prior), ParameterSpec([]), _local_spec(p), speed2,
                      prior_residuals=prior_residuals if prior == "LCDM" else None,
                      description=f"V^2 = V_bar^2 + V_{profile}^2 (Li et al. 2020), {what}", family="halo",
                      # M_star (DC14's shape, the LCDM priors) takes the bulge's light of the galaxy, which folded
                      # rows carry; with a point mask, other layouts are evaluated at every slot
                      pointwise=True,
                      kinks=dc14_kinks(_local_spec(p), lambda g: np.ones(g, bool)) if profile == "DC14" else None)


HALO_MODELS: dict[str, CurveModel] = {}
PROFILE_OF: dict[str, tuple[str, str]] = {}  # registered name -> (profile, prior set)
for _profile, _p in PROFILES.items():
    for _prior in _p.priors:
        _m = register_model(builtin(make_halo_model(_profile, _prior)))
        HALO_MODELS[_m.name] = _m
        PROFILE_OF[_m.name] = (_profile, _prior)
DISPLAY_NAMES = {name: f"{profile}-{prior}" for name, (profile, prior) in PROFILE_OF.items()}


def halo_model_names() -> list[str]:
    """The twelve registered halo models, in Li et al.'s table order (pISO, Burkert, NFW, Einasto, DC14, coreNFW,
    Lucky13; Flat before LCDM)."""
    return list(HALO_MODELS)


def display_name(model: str | CurveModel) -> str:
    """Li et al.'s name of a halo model (``"nfw_lcdm" -> "NFW-LCDM"``); other models keep their own."""
    name = model if isinstance(model, str) else model.name
    return DISPLAY_NAMES.get(name, name)


def profile_and_prior(model: str | CurveModel) -> tuple[str, str]:
    """``("NFW", "LCDM")`` for ``"nfw_lcdm"``."""
    name = get_model(model).name
    if name not in PROFILE_OF:
        raise KeyError(f"{name} is not a halo model; the halo models are {halo_model_names()}")
    return PROFILE_OF[name]


ALPHA_PIN = 1.0  # prior width holding the unused alpha of a stack's non-Einasto rows (it touches no data)


def _rows_of_each_profile(profiles: np.ndarray) -> dict[str, np.ndarray]:
    """``{profile: the rows [k] it is evaluated on}`` (sorted) of ``profiles [rows]``, in order of appearance."""
    return {p: np.nonzero(profiles == p)[0] for p in dict.fromkeys(profiles)}


def make_halo_stack(models: Sequence[str | CurveModel], points: np.ndarray) -> CurveModel:
    """Several halo models as one curve model, for a catalog whose real points are ``points [g, n]`` repeated once
    per model (row ``m g + j`` is galaxy ``j`` under ``models[m]``; ``jaxcoh.curves.halo_catalog.stack_catalog``
    builds it), or for that catalog's folded rows (:func:`jaxcoh.curves.folding.folded_rows`: model ``m``'s rows
    after model ``m - 1``'s): one fit, one compilation, for all of them.

    Every row is its own problem (no shared parameters), with the parameters, nuisance values and priors of its
    model, so a stacked fit solves exactly the separate fits side by side. Each profile is evaluated once: on the
    real points of its rows in either layout. The per-galaxy parameters are V200, C200 and, if an Einasto model is
    stacked, alpha; on the other rows alpha touches no data (``inert_local``: its starts stay at 0.5), and a prior
    residual ``(alpha - 0.5)/1`` holds it there (0: no step of a fit moves it, no objective counts it). Prior
    residuals ``[rows, 2 or 3]``: the c-M and stellar-to-halo mass terms of LCDM rows (0 on Flat rows) and the alpha
    terms.
    """
    names = [get_model(m).name for m in models]
    pairs = [profile_and_prior(m) for m in names]
    points = np.asarray(points, bool)
    g, n = points.shape
    tiled = np.tile(points, (len(names), 1))
    folded = folded_mask(points, fold_width(n))  # [r, w]: this catalog's folded rows
    # each layout's real points, model after model; where the two coincide (no curve longer than a row) so do they
    masks = {m.shape: m for m in (np.tile(folded, (len(names), 1)), tiled)}
    with_alpha = any(p == "Einasto" for p, _ in pairs)

    def row_models(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``(profile [rows], LCDM prior [rows])`` of each row of a layout of ``shape``."""
        if not any(shape == built[:len(shape)] for built in masks):  # masks' keys: the layouts' shapes
            raise ValueError(f"a stack of {len(names)} halo models evaluates the catalog it was built for, "
                             f"{tiled.shape}, or its folded rows, not {shape} (no blocked objective: fit fewer "
                             "models at once)")
        model_of_row = np.repeat(np.arange(len(names)), shape[0] // len(names))
        return (np.asarray([pairs[m][0] for m in model_of_row]),
                np.asarray([pairs[m][1] == "LCDM" for m in model_of_row], bool))

    def speed2(shared, local, x: CurveInputs) -> Array:
        profiles, _ = row_models(x.R.shape)  # each profile evaluated at the real points of its rows
        real = masks[x.R.shape]
        rows_of = _rows_of_each_profile(profiles)
        rows, cols = zip(*(np.nonzero(real & (profiles == p)[:, None]) for p in rows_of), strict=True)
        v2 = jnp.concatenate([_v2_at(p, local, x, x.R[r, c], r, rows_of[p])
                              for p, r, c in zip(rows_of, rows, cols, strict=True)])
        return x.V_bar2 + jnp.zeros(real.shape, v2.dtype).at[np.concatenate(rows), np.concatenate(cols)].set(v2)

    def prior_residuals(shared, local, x: CurveInputs) -> Array:
        profiles, lcdm = row_models(local["V200"].shape)
        einasto = profiles == "Einasto"
        lm = log10_m200(local["V200"])
        z_c = jnp.where(einasto, z_concentration(local["C200"], lm, "Einasto"), z_concentration(local["C200"], lm))
        z = [jnp.where(lcdm, z_c, 0.0), jnp.where(lcdm, z_shmr(safe_log(x.M_star) / LN10, lm), 0.0)]
        if with_alpha:
            alpha = local["alpha"]
            z.append(jnp.where(einasto, jnp.where(lcdm, z_einasto_alpha(alpha, lm), 0.0),
                               (alpha - ALPHA_INIT) / ALPHA_PIN))
        return jnp.stack(z, axis=1)

    def inert_local(n_galaxies: int) -> dict[str, np.ndarray]:  # alpha on the rows of the other models
        return {"alpha": np.repeat([p != "Einasto" for p, _ in pairs], n_galaxies // len(names))}

    def is_dc14(n_galaxies: int) -> np.ndarray:
        return np.repeat([p == "DC14" for p, _ in pairs], n_galaxies // len(names))

    spec = _local_spec(PROFILES["Einasto" if with_alpha else "NFW"])
    return CurveModel(f"halos({','.join(names)})", ParameterSpec([]), spec, speed2, prior_residuals=prior_residuals,
                      description="stacked halo models: " + ", ".join(display_name(m) for m in names), family="halo",
                      pointwise=True, inert_local=inert_local if with_alpha else None,
                      kinks=dc14_kinks(spec, is_dc14) if any(p == "DC14" for p, _ in pairs) else None)


DC14_EDGE_TOL = 1e-3  # X within this fraction of DC14's range from an edge, or beyond it, is held by the clip


def dc14_x_held(model: str | CurveModel, local: Mapping[str, Array], M_star: Array) -> np.ndarray | None:
    """``[g]`` for a DC14 model: whether ``X = log10(M_star/M200)`` at per-galaxy values ``local`` and stellar masses
    ``M_star`` [Msun] is held at an edge of DC14's range (``DC14_X_RANGE``, the clip of Di Cintio et al.'s fits),
    within :data:`DC14_EDGE_TOL` of its span or beyond; None for the other profiles.

    Beyond an edge the fitted shape is the edge's (38 of DC14's 350 galaxy-models on SPARC). On an edge the objective
    has a kink (the shape varies with X on one side, is frozen on the other), where a minimum need not have a
    vanishing gradient: the convergence test judges galaxies there one-sidedly (:func:`dc14_kinks`,
    :func:`jaxcoh.curves.convergence.kink_steps`). On SPARC (`jaxcoh halos`) 12 DC14 galaxy-models with X on an edge
    fail that test too (``step_in_stderr`` 0.013-0.12: along the kink the objective still falls), their objective
    unchanged by 140 more iterations: the block LM cannot follow a crease."""
    if profile_and_prior(model)[0] != "DC14":
        return None
    X = np.asarray(dc14_x(jnp.asarray(M_star), m200(jnp.asarray(local["V200"]))), float)
    lo, hi = DC14_X_RANGE
    tol = DC14_EDGE_TOL * (hi - lo)
    return (X <= lo + tol) | (X >= hi - tol)


def derived_quantities(model: str | CurveModel, local: Mapping[str, Array], M_star: Array, R_eff: Array
                       ) -> dict[str, Array]:
    """The published table's derived columns at per-galaxy values ``local`` (``[g]`` each): ``rs`` [kpc],
    ``log10_rho_s`` [Msun/pc^3], ``log10_M200`` [Msun] and ``alpha`` (Einasto's, else 0 as in the table)."""
    profile, _ = profile_and_prior(model)
    V200, C200 = jnp.asarray(local["V200"]), jnp.asarray(local["C200"])
    shape = halo_shape(profile, {**local, "V200": V200, "C200": C200}, jnp.asarray(M_star), jnp.asarray(R_eff))
    return {"rs": scale_radius(V200, C200), "log10_rho_s": log10_rho_s(MU[profile], V200, C200, *shape),
            "log10_M200": log10_m200(V200),
            "alpha": jnp.asarray(local["alpha"]) if "alpha" in local else jnp.zeros_like(V200)}
