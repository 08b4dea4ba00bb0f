"""Models of the rotation curves themselves: the unified coherence kernel and the standard baselines.

Every model maps shared parameters, per-galaxy parameters and the (nuisance-rescaled) data to ``V_model^2 [g, n]``:

``newtonian``
    ``V^2 = V_bar^2`` (K = 0).
``rar``
    the radial acceleration relation (McGaugh, Lelli & Schombert 2016),
    ``g_obs = g_bar / (1 - exp(-sqrt(g_bar/g_dagger)))``, one shared ``g_dagger``.
``unified_additive``, ``unified_multiplicative``
    ``V^2 = V_bar^2 (1 + A_gal C(R/ell0))`` with the Burr-XII window C and ``A_gal = K_rough + K_missing`` or
    ``K_rough F_pred``; K_rough from the roughness derivation, K_missing / F_pred from an F_missing model
    (mass-coherence by default) on the galaxy properties of a recipe. All shared parameters are fittable.
``per_galaxy_amplitude``
    the same Burr-XII shape with a free amplitude per galaxy: the ceiling any system-level amplitude model can reach.
``nfw``
    a dark-matter halo per galaxy, ``V^2 = V_bar^2 + V_NFW^2(R; V200, c200)``, with the concentration-mass relation
    of Dutton & Maccio (2014) as a log-normal prior (0.11 dex) on c200.

Here ``V_bar^2 = Vgas|Vgas| + Ud Vdisk^2 + Ub Vbul^2`` keeps SPARC's sign, so ``V_model^2`` can be negative at a few
inner points; the model speed is then ``sign(V^2) sqrt(|V^2|)``, as SPARC tabulates Vgas.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .catalog import Catalog
from .coherence import GeometricTimes, burr_xii_window, exposure_mean_from_times, geometric_times, roughness_amplitude
from .constants import G_NEWTON, KMS2_PER_KPC_TO_MS2
from .models import Model, ModelInputs, get_model
from .numerics import safe_div, safe_sqrt
from .parameters import Parameter, ParameterSpec
from .properties import GalaxyProperties, baryonic_speed_squared, galaxy_properties

H0_KMS_KPC = 0.073  # Hubble constant [km/s/kpc] (73 km/s/Mpc, as SPARC's Hubble-flow distances)
CM_SCATTER_DEX = 0.11  # scatter of the concentration-mass relation (Dutton & Maccio 2014)
DERIVATION_FIXED = {"delta_R": 0.1, "alpha_geom": 1.0}  # kpc, 1: enter only through clipped times; kept at the seed's


class CurveInputs(NamedTuple):
    """The data a curve model sees, after the nuisance rescaling. Every field ``[g, n]`` or ``[g]`` (galaxies first,
    so that the inputs split into blocks of galaxies)."""

    R: Array  # kpc
    V_bar2: Array  # (km/s)^2, signed
    mask: Array
    properties: GalaxyProperties  # of the recipe, at the nuisance values
    x: ModelInputs  # inputs of the F_missing model (the sample's references broadcast to [g])
    times: GeometricTimes  # of the roughness derivation at DERIVATION_FIXED (safe values at padding)


def curve_inputs(cat: Catalog, upsilon_disk, upsilon_bulge, recipe: str, refs: tuple[Array, Array]) -> CurveInputs:
    """Inputs of the curve models for a (nuisance-rescaled) catalog; ``refs`` = (sigma_ref, R_ref) of power laws.

    Properties of galaxies the recipe cannot describe (no table values) are replaced by harmless ones before any
    model uses them.
    """
    if recipe == "sparc":
        props = galaxy_properties(cat, "sparc", upsilon_disk=upsilon_disk, upsilon_bulge=upsilon_bulge)
    else:
        props = galaxy_properties(cat, recipe)
    ok = props.has_properties
    x = ModelInputs(
        M_b=jnp.where(ok, props.M_b, 1e10), R_d=jnp.where(ok, props.R_d, 1.0),
        v_flat=jnp.where(ok, props.v_flat, 100.0), sigma_v=jnp.where(ok, props.sigma_v, 15.0),
        sigma_ref=jnp.broadcast_to(refs[0], ok.shape), R_ref=jnp.broadcast_to(refs[1], ok.shape),
    )
    props = dataclasses.replace(props, sigma_v=x.sigma_v)
    times = geometric_times(jnp.where(cat.mask, cat.R, 1.0), jnp.where(cat.mask, props.V_bar, 1.0),
                            **DERIVATION_FIXED)
    return CurveInputs(cat.R, baryonic_speed_squared(cat, upsilon_disk, upsilon_bulge), cat.mask, props, x, times)


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a static argument of jitted fits
class CurveModel:
    """``speed2(shared, local, inputs) -> V_model^2 [g, n]`` with declared shared and per-galaxy parameters.

    ``prior_residuals(shared, local, inputs) -> [g, k]`` are the per-galaxy parameters' Gaussian prior terms
    ``z`` (negative log prior ``sum(z^2)/2``), if any: as residuals they keep the fit a least-squares problem.
    """

    name: str
    shared: ParameterSpec
    local: ParameterSpec
    speed2: Callable[[Mapping[str, Array], Mapping[str, Array], CurveInputs], Array]
    prior_residuals: Callable[[Mapping[str, Array], Mapping[str, Array], CurveInputs], Array] | None = None
    description: str = ""
    derived: Mapping[str, Callable] = dataclasses.field(default_factory=dict)


# ---- baselines -------------------------------------------------------------------------------------------------------
def newtonian_speed2(shared, local, x: CurveInputs) -> Array:
    return x.V_bar2


def rar_interpolation(g_bar: Array, g_dagger: Array) -> Array:
    """``nu = 1 / (1 - exp(-sqrt(g_bar / g_dagger)))`` for ``g_bar > 0``; 1 elsewhere (no baryonic pull)."""
    pos = g_bar > 0
    root = safe_sqrt(jnp.where(pos, g_bar, 1.0) / g_dagger)
    return jnp.where(pos, -1.0 / jnp.expm1(-root), 1.0)


def baryonic_acceleration_si(V_bar2: Array, R: Array) -> Array:
    """``g_bar = V_bar^2 / R`` in m/s^2 (signed)."""
    return V_bar2 / R * KMS2_PER_KPC_TO_MS2


def rar_speed2(shared, local, x: CurveInputs) -> Array:
    R = jnp.where(x.mask, x.R, 1.0)  # padding may hold R = 0: masked before the division, not after
    return x.V_bar2 * rar_interpolation(baryonic_acceleration_si(x.V_bar2, R), shared["g_dagger"])


def nfw_speed2_halo(R: Array, V200: Array, c200: Array) -> Array:
    """NFW halo ``V^2(R)`` [(km/s)^2] for ``[g, n]`` radii and ``[g]`` V200 [km/s], c200; ``r200 = V200/(10 H0)``."""
    r200 = V200 / (10 * H0_KMS_KPC)
    c = c200[:, None]
    xr = R / r200[:, None]
    m = lambda y: jnp.log1p(y) - y / (1 + y)  # noqa: E731  (enclosed-mass profile of NFW)
    return (V200**2)[:, None] * m(c * xr) / (xr * m(c))


def nfw_speed2(shared, local, x: CurveInputs) -> Array:
    return x.V_bar2 + nfw_speed2_halo(jnp.where(x.mask, x.R, 1.0), local["V200"], local["c200"])


def m200_from_v200(V200: Array) -> Array:
    """``M200 = V200^3 / (10 G H0)`` [Msun]."""
    return V200**3 / (10 * G_NEWTON * H0_KMS_KPC)


def nfw_prior_residuals(shared, local, x: CurveInputs) -> Array:
    """Log-normal concentration-mass prior, Dutton & Maccio (2014) at z = 0, h = 0.73, 0.11 dex scatter. ``[g, 1]``"""
    log_c_mean = 0.905 - 0.101 * jnp.log10(m200_from_v200(local["V200"]) / (1e12 / 0.73))
    return ((jnp.log10(local["c200"]) - log_c_mean) / CM_SCATTER_DEX)[:, None]


BURR_SHAPE = ParameterSpec([
    Parameter("ell0", 5.0, 0.3, 100.0, scale="log", unit="kpc", description="coherence length of the window"),
    Parameter("p", 0.757, 0.1, 5.0, description="inner slope of the window"),
    Parameter("n_coh", 0.5, 0.05, 5.0, scale="log", description="outer exponent of the window"),
])


def amplitude_speed2(shared, local, x: CurveInputs) -> Array:
    C = burr_xii_window(jnp.where(x.mask, x.R, 1.0), shared["ell0"], shared["p"], shared["n_coh"])
    return x.V_bar2 * (1 + local["amplitude"][:, None] * C)


NEWTONIAN = CurveModel("newtonian", ParameterSpec([]), ParameterSpec([]), newtonian_speed2,
                       description="K = 0")
RAR = CurveModel(
    "rar",
    ParameterSpec([Parameter("g_dagger", 1.2e-10, 1e-12, 1e-8, scale="log", unit="m/s^2",
                             description="acceleration scale of the radial acceleration relation")]),
    ParameterSpec([]), rar_speed2, description="g_obs = g_bar / (1 - exp(-sqrt(g_bar/g_dagger)))",
)
PER_GALAXY_AMPLITUDE = CurveModel(
    "per_galaxy_amplitude", BURR_SHAPE,
    ParameterSpec([Parameter("amplitude", 1.0, 0.0, math.inf, scale="log", per_galaxy=True,
                             description="A_gal of each galaxy, free")]),
    amplitude_speed2, description="V^2 = V_bar^2 (1 + A_g C(R/ell0)), A_g free per galaxy",
)
NFW = CurveModel(
    "nfw", ParameterSpec([]),
    ParameterSpec([Parameter("V200", 100.0, 5.0, 1000.0, scale="log", unit="km/s", per_galaxy=True),
                   Parameter("c200", 10.0, 1.0, 100.0, scale="log", per_galaxy=True)]),
    nfw_speed2, prior_residuals=nfw_prior_residuals, description="V^2 = V_bar^2 + V_NFW^2, c200 prior from Dutton & Maccio 2014",
)

# ---- the unified kernel --------------------------------------------------------------------------------------------
ROUGHNESS_HYPER = ParameterSpec([
    Parameter("A0", 0.774, 0.01, 20.0, scale="log", description="roughness amplitude normalisation"),
    Parameter("gamma_rough", 0.1, 0.0, 1.0, description="roughness exponent on the exposure"),
    Parameter("beta_sigma", 1.5, 0.1, 4.0, description="power of sigma_v in the noise coherence time"),
])


def unified_kernel_amplitude(kind: str, missing: Model, shared, x: CurveInputs) -> Array:
    """``A_gal [g]``: ``K_rough + K_missing`` (additive) or ``K_rough * F_pred`` (multiplicative)."""
    Xi_mean = exposure_mean_from_times(x.times, jnp.where(x.mask, x.R, 1.0), x.mask, x.properties.sigma_v,
                                       shared["beta_sigma"])
    K_rough = roughness_amplitude(Xi_mean, shared["A0"], shared["gamma_rough"])
    F = missing.predict({k: shared[k] for k in missing.parameters.names}, x.x)
    return K_rough + F if kind == "additive" else K_rough * F


def unified_model(kind: str, missing: str | Model = "mass_coherence") -> CurveModel:
    """The unified kernel with ``kind`` "additive" or "multiplicative" and an F_missing model ``missing``."""
    if kind not in ("additive", "multiplicative"):
        raise ValueError(f"kind must be 'additive' or 'multiplicative', got {kind!r}")
    m = get_model(missing)
    clash = set(m.parameters.names) & set(BURR_SHAPE.names + ROUGHNESS_HYPER.names)
    if clash:
        raise ValueError(f"model {m.name} has parameters named like the kernel's: {sorted(clash)}")

    def speed2(shared, local, x: CurveInputs) -> Array:
        A = unified_kernel_amplitude(kind, m, shared, x)
        C = burr_xii_window(jnp.where(x.mask, x.R, 1.0), shared["ell0"], shared["p"], shared["n_coh"])
        return x.V_bar2 * (1 + A[:, None] * C)

    derived = dict(m.derived)
    if kind == "multiplicative":
        derived["A0_times_" + m.parameters.names[0]] = (
            lambda p, first=m.parameters.names[0]: p["A0"] * p[first])  # A_gal depends on A0 and the amplitude via their product
    return CurveModel(
        name=f"unified_{kind}" if m.name == "mass_coherence" else f"unified_{kind}_{m.name}",
        shared=ParameterSpec([*m.parameters, *ROUGHNESS_HYPER, *BURR_SHAPE]),
        local=ParameterSpec([]),
        speed2=speed2,
        description=(f"V^2 = V_bar^2 (1 + A_gal C(R/ell0)), A_gal = "
                     f"{'K_rough + K_missing' if kind == 'additive' else 'K_rough * F_pred'}, F from {m.name}"),
        derived=derived,
    )


UNIFIED_ADDITIVE = unified_model("additive")
UNIFIED_MULTIPLICATIVE = unified_model("multiplicative")

CURVE_MODELS: dict[str, CurveModel] = {m.name: m for m in (
    NEWTONIAN, RAR, UNIFIED_ADDITIVE, UNIFIED_MULTIPLICATIVE, PER_GALAXY_AMPLITUDE, NFW)}


def fix_parameters(model: str | CurveModel, **values: float) -> CurveModel:
    """``model`` with the shared parameters in ``values`` held fixed (no longer fitted, not counted in the dof)."""
    model = get_curve_model(model)
    unknown = set(values) - set(model.shared.names)
    if unknown:
        raise KeyError(f"{model.name} has no shared parameters {sorted(unknown)}; it has {model.shared.names}")
    free = ParameterSpec([p for p in model.shared if p.name not in values])

    def with_fixed(shared):
        dt = next(iter(shared.values())).dtype if shared else None
        return {**shared, **{k: jnp.asarray(v, dt) for k, v in values.items()}}

    prior = model.prior_residuals
    derived = {k: (lambda p, f=f: f(with_fixed(p))) for k, f in model.derived.items()
               if not all(n in values for n in model.shared.names)}
    return CurveModel(
        name=model.name, shared=free, local=model.local,
        speed2=lambda sh, lo, x: model.speed2(with_fixed(sh), lo, x),
        prior_residuals=None if prior is None else (lambda sh, lo, x: prior(with_fixed(sh), lo, x)),
        description=f"{model.description}; fixed: " + ", ".join(f"{k}={v:g}" for k, v in values.items()),
        derived=derived,
    )


def get_curve_model(name: str | CurveModel) -> CurveModel:
    if isinstance(name, CurveModel):
        return name
    try:
        return CURVE_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown curve model {name!r}; have {sorted(CURVE_MODELS)}") from None


def model_speed(V2: Array) -> Array:
    """``sign(V^2) sqrt(|V^2|)``: the model speed, signed where the baryons alone push outward."""
    return jnp.sign(V2) * safe_sqrt(jnp.abs(V2))


def acceleration_ratio_dex(V_obs: Array, V2_model: Array, mask: Array) -> tuple[Array, Array]:
    """``(log10(g_obs/g_model), valid)``: the radial-acceleration residual per point (R cancels in the ratio)."""
    valid = mask & (V_obs > 0) & (V2_model > 0)
    ratio = safe_div(jnp.where(valid, V_obs**2, 1.0), jnp.where(valid, V2_model, 1.0), 1.0)
    return jnp.where(valid, jnp.log10(jnp.where(valid, ratio, 1.0)), 0.0), valid


__all__ = ["CURVE_MODELS", "CurveInputs", "CurveModel", "acceleration_ratio_dex", "curve_inputs", "fix_parameters",
           "get_curve_model",
           "model_speed", "nfw_speed2_halo", "rar_interpolation", "unified_model"]
