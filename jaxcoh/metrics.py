"""Goodness-of-fit metrics over masked, optionally weighted samples (jittable, vmappable).

Weights are frequency weights (a bootstrap replicate is a vector of counts), so a weighted metric equals the metric
of the sample with each entry repeated ``weight`` times.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .numerics import safe_div, safe_sqrt


def _weights(mask: Array, weights: Array | None) -> Array:
    w = mask.astype(jnp.result_type(float)) if weights is None else jnp.where(mask, weights, 0.0)
    return w


def rms(residual: Array, mask: Array, weights: Array | None = None) -> Array:
    """Root-mean-square of ``residual`` over ``mask`` (NaN if empty)."""
    w = _weights(mask, weights)
    ms = safe_div(jnp.sum(w * jnp.where(mask, residual, 0.0) ** 2), jnp.sum(w), jnp.nan)
    return jnp.where(jnp.isnan(ms), jnp.nan, safe_sqrt(jnp.where(jnp.isnan(ms), 0.0, ms)))


def pearson_r(x: Array, y: Array, mask: Array, weights: Array | None = None) -> Array:
    """Pearson correlation of ``x`` and ``y`` over ``mask`` (NaN if undefined)."""
    w = _weights(mask, weights)
    x = jnp.where(mask, x, 0.0)
    y = jnp.where(mask, y, 0.0)
    sw = jnp.sum(w)
    mx = safe_div(jnp.sum(w * x), sw)
    my = safe_div(jnp.sum(w * y), sw)
    dx, dy = jnp.where(mask, x - mx, 0.0), jnp.where(mask, y - my, 0.0)
    sxy, sxx, syy = jnp.sum(w * dx * dy), jnp.sum(w * dx * dx), jnp.sum(w * dy * dy)
    den = safe_sqrt(sxx * syy)
    return safe_div(sxy, den, jnp.nan)


def average_ranks(x: Array, mask: Array) -> Array:
    """1-based ranks of ``x`` among the entries of ``mask``, ties sharing their average rank (as scipy's rankdata).

    Sorting once and counting with ``searchsorted`` costs O(n log n), so it scales to a million galaxies.
    """
    big = jnp.where(mask, x, jnp.inf)
    s = jnp.sort(big)
    lo = jnp.searchsorted(s, big, side="left")
    hi = jnp.searchsorted(s, big, side="right")
    return jnp.where(mask, (lo + hi + 1) / 2.0, 0.0)


def spearman_rho(x: Array, y: Array, mask: Array) -> Array:
    """Spearman rank correlation over ``mask`` (unweighted)."""
    return pearson_r(average_ranks(x, mask), average_ranks(y, mask), mask)
