"""What a rotation-curve model sees: the data after the nuisance rescaling, as one pytree of ``[g, n]`` / ``[g]``
arrays, and the helpers every model and metric shares (the signed model speed, the RAR residual)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from ..catalog import Catalog
from ..coherence import GeometricTimes, geometric_times
from ..constants import KMS2_PER_KPC_TO_MS2
from ..fmissing.models import ModelInputs
from ..numerics import safe_div, safe_sqrt
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
