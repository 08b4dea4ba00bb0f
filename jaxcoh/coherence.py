"""The roughness derivation and F_missing, the per-galaxy target (``SEED_PIPELINE.md`` section 2).

Each step is a small pure function named after the physics, elementwise on points or on galaxies. They compose into
:func:`derive_galaxy` for one padded curve, which is vmapped once over galaxies in :func:`derive_f_missing`. Every
hyperparameter is a traced argument, so the whole derivation is differentiable in all of them.

Units: R, delta_R, ell0 in kpc; speeds in km/s; accelerations in (km/s)^2 per pc (the seed's ``V^2 / (R * 1e3)``);
times in s.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from .constants import C_KMS, G_DERIVATION, KPC_KM
from .numerics import at_least, clip, masked_mean, masked_sum, safe_div, safe_pow

TAU_MIN, TAU_MAX = 1e6, 1e20  # s: the seed's clip on both coherence times
MIN_POINTS = 4  # galaxies with fewer points are skipped (section 2)
MIN_K_ROUGH = 1e-6
MIN_C_MEAN = 1e-6
MIN_V_BAR = 1e-6  # km/s, step 11's floor on V_bar: a galaxy at or below it everywhere has no baryons


class Hyperparameters(NamedTuple):
    """Hyperparameters of the derivation (a pytree; every field a scalar, differentiable). Defaults are the seed's."""

    ell0: Array | float = 5.0  # kpc, coherence length of the Burr-XII window
    p: Array | float = 0.757  # Burr-XII inner slope
    n_coh: Array | float = 0.5  # Burr-XII outer exponent
    A0: Array | float = 0.774  # roughness amplitude normalisation
    gamma_rough: Array | float = 0.1  # roughness exponent on the exposure
    beta_sigma: Array | float = 1.5  # power of the dispersion in the noise coherence time
    delta_R: Array | float = 0.1  # kpc, cell size of the potential contrast
    alpha_geom: Array | float = 1.0  # scale of the geometric coherence time

    def astype(self, dtype) -> Hyperparameters:
        return Hyperparameters(*(jnp.asarray(x, dtype=dtype) for x in self))


class Reason(enum.IntEnum):
    """Why a galaxy's F_missing is undefined (NaN); ``OK`` when it is defined."""

    OK = 0
    TOO_FEW_POINTS = 1  # fewer than MIN_POINTS real points
    NO_EXCESS = 2  # no point with K_req > 0: nothing to explain
    NO_ROUGHNESS = 3  # K_rough <= MIN_K_ROUGH: the ratio is undefined
    NO_BARYONS = 4  # V_bar <= MIN_V_BAR at every point: K_req is (V_obs / floor)^2, a ratio of nothing


# ---- per point ------------------------------------------------------------------------------------------------------
def baryonic_acceleration(V_bar: Array, R: Array) -> Array:
    """Step 1: ``g_bar = V_bar^2 / (R * 1e3)``."""
    return V_bar**2 / (R * 1e3)


def baryonic_density(g_bar: Array, R: Array) -> Array:
    """Step 2: the density scale ``rho = g_bar / (G R 1e3) * 1e-9``."""
    return g_bar / (G_DERIVATION * R * 1e3) * 1e-9


def potential_contrast(rho: Array, delta_R: Array) -> Array:
    """Step 3: dimensionless potential contrast across a cell, ``max(G rho delta_R^2 / c^2, 1e-10)``."""
    return at_least(G_DERIVATION * rho * delta_R**2 / C_KMS**2, 1e-10)


def orbital_period(g_bar: Array, R: Array, v2_floor: float) -> Array:
    """Steps 4 and 8: ``2 pi R / v_c`` [s] with ``v_c = sqrt(max(g_bar R 1e3, v2_floor))``.

    The seed floors ``v_c^2`` at 1e-6 for the geometric time and 1e-12 for the exposure; both are kept.
    """
    v_c = jnp.sqrt(at_least(g_bar * R * 1e3, v2_floor))
    return 2 * jnp.pi * R * KPC_KM / (v_c * 1e3)


def geometric_coherence_time(dphi: Array, T_orb: Array, alpha_geom: Array) -> Array:
    """Step 5: ``tau_geom = clip(alpha_geom (2 pi / dphi) T_orb, 1e6, 1e20)`` [s]."""
    return clip(alpha_geom * (2 * jnp.pi / dphi) * T_orb, TAU_MIN, TAU_MAX)


def noise_coherence_time(R: Array, sigma_v: Array, beta_sigma: Array) -> Array:
    """Step 6: ``tau_noise = clip(R kpc / (max(sigma_v, 1e-3)^beta_sigma 1e3), 1e6, 1e20)`` [s]."""
    return clip(R * KPC_KM / (at_least(sigma_v, 1e-3) ** beta_sigma * 1e3), TAU_MIN, TAU_MAX)


def coherence_rate(rate_geom: Array, tau_noise: Array) -> Array:
    """Step 7 as a rate: ``1/tau_coh = max(1/tau_geom + 1/tau_noise, 1e-20)`` [1/s], from ``rate_geom = 1/tau_geom``
    (the harmonic combination of the two times)."""
    return at_least(rate_geom + 1.0 / tau_noise, 1e-20)


def exposure_period(g_bar: Array, R: Array) -> Array:
    """Step 8's ``T2`` (the exposure is ``Xi = tau_coh / T2``): the orbital period with ``v_c^2`` floored at 1e-12,
    itself floored at 1e10 s."""
    return at_least(orbital_period(g_bar, R, 1e-12), 1e10)


def burr_xii_window(R: Array, ell0: Array, p: Array, n_coh: Array) -> Array:
    """Step 10: the Burr-XII radial window ``C(R) = clip(1 - (1 + (R/ell0)^p)^(-n_coh), 0, 1)``."""
    return clip(1.0 - jnp.exp(-n_coh * jnp.log1p(safe_pow(R / ell0, p))), 0.0, 1.0)  # exp/log: see safe_pow


def required_enhancement(V_obs: Array, V_bar: Array) -> Array:
    """Step 11: ``K_req = max((V_obs / max(V_bar, 1e-6))^2 - 1, 0)``, the enhancement the data ask for."""
    return at_least((V_obs / at_least(V_bar, 1e-6)) ** 2 - 1.0, 0.0)


# ---- per galaxy -----------------------------------------------------------------------------------------------------
def roughness_amplitude(Xi_mean: Array, A0: Array, gamma_rough: Array) -> Array:
    """Step 9: ``K_rough = A0 max(Xi_mean, 0)^gamma_rough``."""
    return A0 * safe_pow(at_least(Xi_mean, 0.0), gamma_rough)


def empirical_amplitude(K_req_mean: Array, C_mean: Array) -> Array:
    """Step 12: ``A_emp = K_req_mean / C_mean`` where ``C_mean > 1e-6``, else ``K_req_mean``."""
    ok = C_mean > MIN_C_MEAN
    return jnp.where(ok, K_req_mean / jnp.where(ok, C_mean, 1.0), K_req_mean)


class GeometricTimes(NamedTuple):
    """The times of steps 1-8 that depend on the curve alone, per point, as rates (1/s): no fitted parameter but
    ``delta_R`` and ``alpha_geom`` enters them, so fits that hold those fixed compute them once. Rates, because the
    exposure is then one division per point, ``Xi = (1/T2) / (1/tau_geom + 1/tau_noise)`` (the same number up to
    rounding)."""

    rate_geom: Array  # 1 / tau_geom (step 5)
    rate_T2: Array  # 1 / T2, the exposure period (step 8)


def geometric_times(R: Array, V_bar: Array, delta_R: Array, alpha_geom: Array) -> GeometricTimes:
    """Steps 1-5 and step 8's period on real points (padding already replaced by safe values); any shape."""
    g_bar = baryonic_acceleration(V_bar, R)
    dphi = potential_contrast(baryonic_density(g_bar, R), delta_R)
    return GeometricTimes(1.0 / geometric_coherence_time(dphi, orbital_period(g_bar, R, 1e-6), alpha_geom),
                          1.0 / exposure_period(g_bar, R))


def exposure_mean_from_times(times: GeometricTimes, R: Array, mask: Array, sigma_v: Array,
                             beta_sigma: Array) -> Array:
    """Steps 6-8 and the mean: ``Xi_mean [...]`` from ``[..., n]`` times, radii (safe at padding) and mask, and
    ``[...]`` dispersions."""
    rate = coherence_rate(times.rate_geom, noise_coherence_time(R, sigma_v[..., None], beta_sigma))
    return masked_mean(times.rate_T2 / rate, mask, axis=-1, fill=0.0)


def exposure_mean(h: Hyperparameters, R: Array, V_bar: Array, mask: Array, sigma_v: Array) -> Array:
    """Steps 1-8 for one galaxy: the mean exposure ``Xi_mean`` over its real points.

    Shapes: ``R, V_bar, mask: [n]``, ``sigma_v: []``. Padded points are replaced by safe values first.
    """
    R = jnp.where(mask, R, 1.0)
    V_bar = jnp.where(mask, V_bar, 1.0)
    times = geometric_times(R, V_bar, h.delta_R, h.alpha_geom)
    return exposure_mean_from_times(times, R, mask, jnp.asarray(sigma_v), h.beta_sigma)


def roughness(h: Hyperparameters, R: Array, V_bar: Array, mask: Array, sigma_v: Array) -> Array:
    """Steps 1-9 for one galaxy: ``K_rough`` (shapes as :func:`exposure_mean`)."""
    return roughness_amplitude(exposure_mean(h, R, V_bar, mask, sigma_v), h.A0, h.gamma_rough)


class GalaxyDerivation(NamedTuple):
    """Per-galaxy results of the derivation, every field ``[g]`` (``[]`` for one galaxy)."""

    n_points: Array  # int
    sigma_v: Array  # km/s
    Xi_mean: Array
    K_rough: Array
    C_mean: Array
    K_req_mean: Array  # NaN when no point has K_req > 0
    A_emp: Array
    F_missing: Array  # NaN where reason != OK
    reason: Array  # int, a Reason


def derive_galaxy(
    h: Hyperparameters, R: Array, V_obs: Array, V_bar: Array, mask: Array, sigma_v: Array
) -> GalaxyDerivation:
    """Steps 1-13 for one galaxy. Shapes: ``R, V_obs, V_bar, mask: [n]``; ``sigma_v: []``.

    Undefined results are NaN with a :class:`Reason`; their gradients are computed on safe substitutes, so they are
    finite (and zero where the value is NaN) and never poison a sum over galaxies taken with a mask.
    """
    n = jnp.sum(mask)
    Xi_mean = exposure_mean(h, R, V_bar, mask, sigma_v)
    K_rough = roughness_amplitude(Xi_mean, h.A0, h.gamma_rough)
    R_safe = jnp.where(mask, R, 1.0)
    C_mean = masked_mean(burr_xii_window(R_safe, h.ell0, h.p, h.n_coh), mask, fill=0.0)
    K_req = required_enhancement(jnp.where(mask, V_obs, 0.0), jnp.where(mask, V_bar, 1.0))
    excess = mask & (K_req > 0)
    n_excess = jnp.sum(excess)
    K_req_mean_safe = safe_div(masked_sum(K_req, excess), n_excess, 1.0)
    A_emp_safe = empirical_amplitude(K_req_mean_safe, C_mean)
    ok_rough = K_rough > MIN_K_ROUGH
    F_safe = A_emp_safe / jnp.where(ok_rough, K_rough, 1.0)  # step 13
    no_baryons = ~jnp.any(mask & (V_bar > MIN_V_BAR))
    reason = jnp.select(
        [n < MIN_POINTS, no_baryons, n_excess == 0, ~ok_rough],
        [Reason.TOO_FEW_POINTS, Reason.NO_BARYONS, Reason.NO_EXCESS, Reason.NO_ROUGHNESS],
        Reason.OK,
    ).astype(jnp.int32)
    nan = jnp.asarray(jnp.nan, dtype=F_safe.dtype)
    has_excess = n_excess > 0
    skipped = n < MIN_POINTS
    return GalaxyDerivation(
        n_points=n,
        sigma_v=sigma_v,
        Xi_mean=jnp.where(skipped, nan, Xi_mean),
        K_rough=jnp.where(skipped, nan, K_rough),
        C_mean=jnp.where(skipped, nan, C_mean),
        K_req_mean=jnp.where(has_excess & ~skipped, K_req_mean_safe, nan),
        A_emp=jnp.where(has_excess & ~skipped, A_emp_safe, nan),
        F_missing=jnp.where(reason == Reason.OK, F_safe, nan),
        reason=reason,
    )


def derive_curves(
    h: Hyperparameters, R: Array, V_obs: Array, V_bar: Array, mask: Array, sigma_v: Array
) -> GalaxyDerivation:
    """:func:`derive_galaxy` vmapped over galaxies: ``[g, n]`` curves and ``[g]`` dispersions."""
    return jax.vmap(derive_galaxy, in_axes=(None, 0, 0, 0, 0, 0))(h, R, V_obs, V_bar, mask, sigma_v)
