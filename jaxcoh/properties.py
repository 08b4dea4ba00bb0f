"""Galaxy-property recipes: what the models and the derivation are told about each galaxy.

Two recipes, and every output says which one was used:

``legacy``
    The seed's proxies, built from the rotation curve alone (``SEED_PIPELINE.md`` section 1): ``V_bar`` from the
    squares of the components at Upsilon = 1, ``v_flat`` the median of the last 10 observed speeds, ``R_d`` the last
    radius, ``M_b = v_flat^2 R_last / G`` and ``sigma_v = 0.15 v_flat``; only galaxies with more than 5 points have
    properties (the others get ``sigma_v = 25`` km/s for the derivation).
``sparc``
    Physical values from table1: ``V_bar^2 = Vgas|Vgas| + Ud Vdisk^2 + Ub Vbul^2`` (Ud = 0.5, Ub = 0.7 unless given),
    ``M_b = Ud L[3.6] + 1.33 M_HI`` (table1 gives the total luminosity, so the bulge is counted at the disk's
    Upsilon), ``R_d = Rdisk``, ``v_flat = Vflat`` and ``sigma_v = 0.15 v_flat``. Where table1 has no Vflat (0), the
    legacy estimate from the curve is used and ``v_flat_from_curve`` says so.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import Array

from .catalog import Catalog
from .constants import G_DERIVATION, HELIUM_FACTOR, UPSILON_BULGE, UPSILON_DISK
from .numerics import safe_sqrt

RECIPES = ("legacy", "sparc")
SIGMA_FRACTION = 0.15  # sigma_v = 0.15 v_flat (section 1)
SIGMA_DEFAULT = 25.0  # km/s, for galaxies without legacy properties
LEGACY_MIN_POINTS = 6  # legacy properties need n > 5
FLAT_POINTS = 10  # v_flat: median of the last 10 observed speeds


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GalaxyProperties:
    """What a recipe says about each galaxy. Shapes: ``V_bar: [g, n]``; the rest ``[g]``."""

    V_bar: Array  # km/s, baryonic speed (>= 0) used by the derivation
    M_b: Array  # Msun, baryonic mass
    R_d: Array  # kpc, disk scale length
    v_flat: Array  # km/s
    sigma_v: Array  # km/s, velocity dispersion proxy
    has_properties: Array  # bool: the recipe defines M_b, R_d, v_flat for this galaxy
    v_flat_from_curve: Array  # bool: v_flat estimated from the curve (always for legacy)
    recipe: str = dataclasses.field(default="legacy", metadata={"static": True})


def baryonic_speed_squared(cat: Catalog, upsilon_disk: Array | float = UPSILON_DISK,
                           upsilon_bulge: Array | float = UPSILON_BULGE) -> Array:
    """``[g, n]`` SPARC's signed baryonic term ``Vgas|Vgas| + Ud Vdisk^2 + Ub Vbul^2`` [(km/s)^2].

    ``upsilon_*`` are scalars or ``[g]`` per-galaxy values.
    """
    ud = jnp.asarray(upsilon_disk)[..., None] if jnp.ndim(upsilon_disk) else upsilon_disk
    ub = jnp.asarray(upsilon_bulge)[..., None] if jnp.ndim(upsilon_bulge) else upsilon_bulge
    V_gas, V_disk, V_bul = _real_components(cat)  # padding zeroed: a NaN there would poison the gradient in Upsilon
    return V_gas * jnp.abs(V_gas) + ud * V_disk**2 + ub * V_bul**2


def _real_components(cat: Catalog) -> tuple[Array, Array, Array]:
    """``V_gas, V_disk, V_bul [g, n]`` zeroed at padding, which may hold NaN: ``0 * NaN`` cotangents made grads NaN."""
    return tuple(jnp.where(cat.mask, v, 0.0) for v in (cat.V_gas, cat.V_disk, cat.V_bul))


def curve_flat_speed(V_obs: Array, mask: Array) -> Array:
    """``[g]`` median of the last ``FLAT_POINTS`` real observed speeds (all of them for shorter curves; NaN for
    none)."""
    n = jnp.sum(mask, axis=1, keepdims=True, dtype=jnp.int32)  # (int64 under x64: twice the traffic, no gain)
    k = min(FLAT_POINTS, mask.shape[1])
    # Gather the last k real points (curves are compacted to the front): a [g, k] window instead of the padded row.
    idx = n - k + jnp.arange(k)[None, :]
    window = jnp.take_along_axis(V_obs, jnp.clip(idx, 0, mask.shape[1] - 1), axis=1)
    return window_median(window, idx >= 0)


def window_median(x: Array, valid: Array) -> Array:
    """``[g]`` median of the ``valid`` entries of each row of a short ``[g, k]`` window (NaN where none is valid).

    By ranks, not by sorting: XLA's CPU sort (and top_k) calls a comparator per comparison, and sorting 10 values per
    galaxy was measured at ~20% of the kernel's value and gradient (3.7 ms for 10^4 galaxies); the ``[g, k, k]``
    comparisons below are one vectorised fusion (0.5 ms). Ties are ranked by position, so every rank is taken once.
    """
    n = jnp.sum(valid, axis=1, keepdims=True, dtype=jnp.int32)
    x = jnp.where(valid, x, jnp.inf)  # invalid entries rank last
    pos = jnp.arange(x.shape[1])
    a, b = x[:, :, None], x[:, None, :]
    rank = jnp.sum((b < a) | ((b == a) & (pos[None, None, :] < pos[None, :, None])), axis=2,
                   dtype=jnp.int32)  # [g, k]

    def order_statistic(r):
        return jnp.sum(jnp.where(rank == r, x, 0.0), axis=1)

    return jnp.where(n[:, 0] > 0, 0.5 * (order_statistic((n - 1) // 2) + order_statistic(n // 2)), jnp.nan)


def last_radius(R: Array, mask: Array) -> Array:
    """``[g]`` the outermost real radius (radii increase along a curve)."""
    return jnp.max(jnp.where(mask, R, 0.0), axis=1)


def legacy_properties(cat: Catalog) -> GalaxyProperties:
    """The seed-compatible proxies (section 1), computed from the curves alone."""
    mask = cat.mask
    V_gas, V_disk, V_bul = _real_components(cat)  # padding zeroed: a NaN there would poison the gradient
    V_bar = safe_sqrt(V_gas**2 + V_disk**2 + V_bul**2)
    has = jnp.sum(mask, axis=1) >= LEGACY_MIN_POINTS
    v_flat = jnp.where(has, curve_flat_speed(cat.V_obs, mask), jnp.nan)
    R_last = jnp.where(has, last_radius(cat.R, mask), jnp.nan)
    return GalaxyProperties(
        V_bar=V_bar,
        M_b=v_flat**2 * R_last / G_DERIVATION,
        R_d=R_last,
        v_flat=v_flat,
        sigma_v=jnp.where(has, SIGMA_FRACTION * jnp.where(has, v_flat, 0.0), SIGMA_DEFAULT),
        has_properties=has,
        v_flat_from_curve=jnp.ones_like(has),
        recipe="legacy",
    )


def sparc_properties(cat: Catalog, upsilon_disk: Array | float = UPSILON_DISK,
                     upsilon_bulge: Array | float = UPSILON_BULGE) -> GalaxyProperties:
    """Physical properties from table1 (see the module docstring)."""
    V_bar = safe_sqrt(baryonic_speed_squared(cat, upsilon_disk, upsilon_bulge))
    from_curve = cat.V_flat <= 0
    v_curve = curve_flat_speed(cat.V_obs, cat.mask)
    v_flat = jnp.where(from_curve, v_curve, cat.V_flat)
    M_b = (upsilon_disk * cat.L36 + HELIUM_FACTOR * cat.M_HI) * 1e9
    has = cat.galaxy_mask & (cat.R_disk > 0) & (M_b > 0) & jnp.isfinite(v_flat) & (v_flat > 0)
    return GalaxyProperties(
        V_bar=V_bar,
        M_b=M_b,
        R_d=cat.R_disk,
        v_flat=v_flat,
        sigma_v=jnp.where(has, SIGMA_FRACTION * jnp.where(has, v_flat, 0.0), SIGMA_DEFAULT),
        has_properties=has,
        v_flat_from_curve=from_curve,
        recipe="sparc",
    )


def galaxy_properties(cat: Catalog, recipe: str = "legacy", **kwargs) -> GalaxyProperties:
    """Properties of every galaxy by ``recipe`` (``"legacy"`` or ``"sparc"``; keyword arguments go to the recipe)."""
    if recipe == "legacy":
        if kwargs:
            raise TypeError(f"the legacy recipe takes no options, got {sorted(kwargs)}")
        return legacy_properties(cat)
    if recipe == "sparc":
        return sparc_properties(cat, **kwargs)
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")
