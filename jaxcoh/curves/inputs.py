"""What a rotation-curve model sees: the data after the nuisance rescaling, as one pytree of ``[g, n]`` / ``[g]``
arrays, and the helpers every model and metric shares (the signed model speed, the RAR residual)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from ..catalog import Catalog
from ..coherence import GeometricTimes, geometric_times
from ..constants import G_NEWTON, KMS2_PER_KPC_TO_MS2
from ..fmissing.models import ModelInputs
from ..numerics import clip, safe_div, safe_sqrt
from ..properties import GalaxyProperties, baryonic_speed_squared, galaxy_properties

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
    M_star: Array  # Msun [g], Upsilon_disk L_disk + Upsilon_bul L_bul at the nuisance values (see stellar_mass)
    R_eff: Array  # kpc [g], table1's effective radius at the nuisance distance


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
    return CurveInputs(cat.R, baryonic_speed_squared(cat, upsilon_disk, upsilon_bulge), cat.mask, props, x, times,
                       stellar_mass(cat, upsilon_disk, upsilon_bulge), cat.R_eff)


def bulge_luminosity(cat: Catalog) -> Array:
    """``L_bul [g]`` [1e9 Lsun] at 3.6 micron: ``V_bul^2 R / G`` at the last point, clipped to ``[0, L36]``.

    SPARC's bulge speeds are those of a spherical bulge at Upsilon = 1 (Lelli, McGaugh & Schombert 2016), whose
    enclosed mass is exactly ``V^2 R / G``: at the outermost radius it is the whole bulge. Integrating the rotmod
    files' SBbul over the tabulated radii instead (the other way to split table1's total L[3.6]) misses the light
    inside the first radius: on SPARC it puts under 1% of the light in the bulge for 8 of the 32 galaxies whose
    Vbul is non-zero (NGC2841: 0.1% against 25% here), and needs SB profiles, which mocks do not have. Li et al. (2020)
    do not state their split in the parts of the paper reachable here; this one uses only V_bul, R and table1.
    Invariant under the distance (L_bul and L36 both scale with D^2). Rows that are not whole curves carry their
    galaxy's value (``cat.L_bul``, scaled with D^2 by :func:`~jaxcoh.curves.nuisance.apply_nuisance`).
    """
    if cat.L_bul is not None:
        return cat.L_bul
    n = jnp.sum(cat.mask, axis=1, dtype=jnp.int32)
    last = jnp.clip(n - 1, 0, cat.mask.shape[1] - 1)[:, None]
    V = jnp.take_along_axis(jnp.where(cat.mask, cat.V_bul, 0.0), last, axis=1)[:, 0]
    R = jnp.take_along_axis(jnp.where(cat.mask, cat.R, 0.0), last, axis=1)[:, 0]
    return clip(V * V * R / G_NEWTON * 1e-9, 0.0, cat.L36)


def stellar_mass(cat: Catalog, upsilon_disk, upsilon_bulge) -> Array:
    """``M_star = Upsilon_disk L_disk + Upsilon_bul L_bul [g]`` [Msun], ``L_disk = L36 - L_bul``
    (:func:`bulge_luminosity`); ``upsilon_*`` scalars or ``[g]``. DC14's shape and the LCDM stellar-to-halo mass
    prior of the halo models use it."""
    L_bul = bulge_luminosity(cat)
    return 1e9 * (upsilon_disk * (cat.L36 - L_bul) + upsilon_bulge * L_bul)


def baryonic_acceleration_si(V_bar2: Array, R: Array) -> Array:
    """``g_bar = V_bar^2 / R`` in m/s^2 (signed)."""
    return V_bar2 / R * KMS2_PER_KPC_TO_MS2


def model_speed(V2: Array) -> Array:
    """``sign(V^2) sqrt(|V^2|)``: the model speed, signed where the baryons alone push outward."""
    return jnp.sign(V2) * safe_sqrt(jnp.abs(V2))


def acceleration_ratio_dex(V_obs: Array, V2_model: Array, mask: Array) -> tuple[Array, Array]:
    """``(log10(g_obs/g_model), valid)``: the radial-acceleration residual per point (R cancels in the ratio)."""
    valid = mask & (V_obs > 0) & (V2_model > 0)
    ratio = safe_div(jnp.where(valid, V_obs**2, 1.0), jnp.where(valid, V2_model, 1.0), 1.0)
    return jnp.where(valid, jnp.log10(jnp.where(valid, ratio, 1.0)), 0.0), valid
