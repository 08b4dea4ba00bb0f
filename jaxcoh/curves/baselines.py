"""The standard baselines of rotation-curve fits, registered as curve models.

``newtonian``
    ``V^2 = V_bar^2`` (K = 0).
``rar``
    the radial acceleration relation (McGaugh, Lelli & Schombert 2016),
    ``g_obs = g_bar / (1 - exp(-sqrt(g_bar/g_dagger)))``, one shared ``g_dagger``.
``per_galaxy_amplitude``
    the Burr-XII shape of the coherence kernel with a free amplitude per galaxy: the ceiling any system-level
    amplitude model can reach.
``nfw``
    a dark-matter halo per galaxy, ``V^2 = V_bar^2 + V_NFW^2(R; V200, c200)``, with the concentration-mass relation
    of Dutton & Maccio (2014) as a log-normal prior (0.11 dex) on c200.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import Array

from ..coherence import burr_xii_window
from ..constants import G_NEWTON
from ..numerics import safe_sqrt
from ..parameters import Parameter, ParameterSpec
from .inputs import CurveInputs, baryonic_acceleration_si
from .models import CurveModel, builtin, register_model

H0_KMS_KPC = 0.073  # Hubble constant [km/s/kpc] (73 km/s/Mpc, as SPARC's Hubble-flow distances)
CM_SCATTER_DEX = 0.11  # scatter of the concentration-mass relation (Dutton & Maccio 2014)


def newtonian_speed2(shared, local, x: CurveInputs) -> Array:
    return x.V_bar2


def rar_interpolation(g_bar: Array, g_dagger: Array) -> Array:
    """``nu = 1 / (1 - exp(-sqrt(g_bar / g_dagger)))`` for ``g_bar > 0``; 1 elsewhere (no baryonic pull)."""
    pos = g_bar > 0
    root = safe_sqrt(jnp.where(pos, g_bar, 1.0) / g_dagger)
    return jnp.where(pos, -1.0 / jnp.expm1(-root), 1.0)


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


def nfw_draw_local(rng, M_b, v_flat) -> dict:
    """A plausible NFW halo for a mock galaxy: V200 within a factor ~1.4 of the baryonic Tully-Fisher speed, c200
    from the concentration-mass relation with its 0.11 dex scatter (the model's own prior)."""
    V200 = v_flat * rng.uniform(0.7, 1.4, v_flat.shape)
    log_c = 0.905 - 0.101 * np.log10(V200**3 / (10 * G_NEWTON * H0_KMS_KPC) / (1e12 / 0.73))
    return {"V200": V200, "c200": np.clip(10 ** (log_c + CM_SCATTER_DEX * rng.standard_normal(v_flat.shape)), 2, 60)}


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


NEWTONIAN = register_model(builtin(CurveModel("newtonian", ParameterSpec([]), ParameterSpec([]), newtonian_speed2,
                                             description="K = 0", pointwise=True)))
RAR = register_model(builtin(CurveModel(
    "rar",
    ParameterSpec([Parameter("g_dagger", 1.2e-10, 1e-12, 1e-8, scale="log", unit="m/s^2",
                             description="acceleration scale of the radial acceleration relation")]),
    ParameterSpec([]), rar_speed2, description="g_obs = g_bar / (1 - exp(-sqrt(g_bar/g_dagger)))", pointwise=True,
)))
PER_GALAXY_AMPLITUDE = register_model(builtin(CurveModel(
    "per_galaxy_amplitude", BURR_SHAPE,
    ParameterSpec([Parameter("amplitude", 1.0, 0.0, math.inf, scale="log", per_galaxy=True, start_range=(0.03, 30.0),
                             description="A_gal of each galaxy, free")]),
    amplitude_speed2, description="V^2 = V_bar^2 (1 + A_g C(R/ell0)), A_g free per galaxy", pointwise=True,
)))
NFW = register_model(builtin(CurveModel(
    "nfw", ParameterSpec([]),
    ParameterSpec([Parameter("V200", 100.0, 5.0, 1000.0, scale="log", unit="km/s", per_galaxy=True),
                   Parameter("c200", 10.0, 1.0, 100.0, scale="log", per_galaxy=True)]),
    nfw_speed2, prior_residuals=nfw_prior_residuals, draw_local=nfw_draw_local,
    description="V^2 = V_bar^2 + V_NFW^2, c200 prior from Dutton & Maccio 2014", pointwise=True,
)))
