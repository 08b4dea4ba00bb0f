"""Per-galaxy nuisance parameters of rotation-curve fits, their priors, and how they rescale the data.

As in published SPARC fits (Li, Lelli, McGaugh & Schombert 2018): the stellar mass-to-light ratios are log-normal,
0.1 dex around 0.5 (disk) and 0.7 (bulge); the distance is Gaussian around table1's D with its error; the inclination
is Gaussian around table1's i with its error. A distance ``D`` instead of the tabulated ``D_t`` scales radii by
``D/D_t``, luminosities and masses by ``(D/D_t)^2`` and baryonic speeds by ``sqrt(D/D_t)``; an inclination ``i``
instead of ``i_t`` scales observed speeds and their errors by ``sin(i_t)/sin(i)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from ..catalog import Catalog
from ..constants import UPSILON_BULGE, UPSILON_DISK
from ..parameters import Parameter, ParameterSpec

UPSILON_SCATTER_DEX = 0.1
# degrees: sin(i) > 0 throughout, and i = 90 (tabulated for 11 SPARC galaxies) lies inside, where the bijection is
# alive (at a bound its derivative vanishes and the fit could never move those inclinations); i and 180 - i are the
# same disk seen from the other side.
INCLINATION_RANGE = (1.0, 179.0)

NUISANCE = ParameterSpec([
    Parameter("upsilon_disk", UPSILON_DISK, 0.0, math.inf, scale="log", unit="Msun/Lsun", per_galaxy=True,
              description="stellar mass-to-light ratio of the disk at 3.6 micron"),
    Parameter("upsilon_bulge", UPSILON_BULGE, 0.0, math.inf, scale="log", unit="Msun/Lsun", per_galaxy=True,
              description="stellar mass-to-light ratio of the bulge at 3.6 micron"),
    Parameter("distance", 10.0, 0.0, math.inf, scale="log", unit="Mpc", per_galaxy=True, prior_scale="linear",
              description="distance (its prior is Gaussian in D)"),
    Parameter("inclination", 60.0, *INCLINATION_RANGE, unit="deg", per_galaxy=True, description="inclination"),
])


class Nuisance(NamedTuple):
    """Per-galaxy nuisance values, each ``[g]``."""

    upsilon_disk: Array
    upsilon_bulge: Array
    distance: Array  # Mpc
    inclination: Array  # degrees


def table_nuisance(cat: Catalog) -> Nuisance:
    """The nuisance values the table assumes: Upsilon 0.5 / 0.7, table1's D and i (the priors' centres)."""
    one = jnp.ones_like(cat.distance)
    return Nuisance(UPSILON_DISK * one, UPSILON_BULGE * one, cat.distance, cat.inclination)


def nuisance_prior_residuals(nu: Nuisance, cat: Catalog) -> Array:
    """The priors' normalised deviations ``z [g, 4]``; the negative log prior is ``sum(z^2)/2`` (up to a constant)."""
    def z_log(x, centre):
        return (jnp.log10(x) - math.log10(centre)) / UPSILON_SCATTER_DEX

    return jnp.stack([z_log(nu.upsilon_disk, UPSILON_DISK), z_log(nu.upsilon_bulge, UPSILON_BULGE),
                      (nu.distance - cat.distance) / cat.e_distance,
                      (nu.inclination - cat.inclination) / cat.e_inclination], axis=1)


def apply_nuisance(cat: Catalog, nu: Nuisance) -> Catalog:
    """The catalog as it would be tabulated at the nuisance distance and inclination (Upsilon is applied later).

    Radii, scale lengths and HI radii scale with ``d = D/D_t``; L[3.6] and M_HI with ``d^2``; the component speeds
    (at Upsilon = 1) with ``sqrt(d)``; observed speeds, their errors and V_flat with ``sin(i_t)/sin(i)``.
    """
    d = nu.distance / cat.distance
    s = jnp.sin(jnp.deg2rad(cat.inclination)) / jnp.sin(jnp.deg2rad(nu.inclination))
    sd = jnp.sqrt(d)[:, None]

    def real(x, pad):  # padding may hold anything (NaN): zero cotangents times NaN would poison D and i gradients
        return jnp.where(cat.mask, x, pad)

    return dataclasses.replace(
        cat,
        R=real(cat.R, 1.0) * d[:, None],
        V_obs=real(cat.V_obs, 0.0) * s[:, None],
        e_V_obs=real(cat.e_V_obs, 1.0) * s[:, None],
        V_gas=real(cat.V_gas, 0.0) * sd,
        V_disk=real(cat.V_disk, 0.0) * sd,
        V_bul=real(cat.V_bul, 0.0) * sd,
        distance=nu.distance,
        inclination=nu.inclination,
        L36=cat.L36 * d**2,
        L_bul=None if cat.L_bul is None else cat.L_bul * d**2,
        M_HI=cat.M_HI * d**2,
        R_eff=cat.R_eff * d,
        R_disk=cat.R_disk * d,
        R_HI=cat.R_HI * d,
        V_flat=cat.V_flat * s,
        e_V_flat=cat.e_V_flat * s,
    )


def nuisance_at_scores(name: str, score: Array, cat: Catalog) -> Array:
    """The value of nuisance parameter ``name`` at ``score`` prior standard deviations from its prior's centre, per
    galaxy (``score`` broadcasts against ``[g]``): the starts of multi-start fits, spread in units of each galaxy's
    own priors (``score`` ``[..., 1]`` or ``[..., g]``, the result ``[..., g]``). Distances stay positive and
    inclinations inside :data:`INCLINATION_RANGE`."""
    score = jnp.asarray(score)

    def galaxies(a):  # [g] aligned with the last axis of score
        return jnp.reshape(a, (1,) * max(score.ndim - 1, 0) + a.shape)

    if name in ("upsilon_disk", "upsilon_bulge"):
        centre = UPSILON_DISK if name == "upsilon_disk" else UPSILON_BULGE
        return centre * 10.0 ** (UPSILON_SCATTER_DEX * score) * galaxies(jnp.ones_like(cat.distance))
    if name == "distance":
        D = galaxies(cat.distance)
        return jnp.maximum(D + galaxies(cat.e_distance) * score, 0.1 * D)
    if name == "inclination":
        lo, hi = INCLINATION_RANGE
        return jnp.clip(galaxies(cat.inclination) + galaxies(cat.e_inclination) * score, lo + 0.5, hi - 0.5)
    raise KeyError(f"no nuisance parameter {name!r}; have {NUISANCE.names}")
