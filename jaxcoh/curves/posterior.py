"""The joint posterior of a rotation-curve model on the fit's unconstrained coordinates: what a sampler needs.

The fit's objective is the negative log posterior over the parameters' *prior coordinates*: each explicit prior is a
density in one coordinate (Upsilon log-normal: log Upsilon; distance and inclination Gaussian: D and i; NFW's
concentration: log c200), and a parameter without one has a flat prior in the coordinate its declared scale names
(log for scale parameters, the value otherwise), within its bounds. A sampler moves in ``z`` (where the bijections
put no bounds), so the density there gains ``log |dq/dz|`` per parameter (:meth:`Parameter.log_abs_det_jacobian`).

A sampler evaluates the density thousands of times on one catalog, so the catalog's layout matters: ragged curves
padded to the longest one are mostly padding (SPARC's standard cuts: 147 x 113 slots for 2696 points, 84%). Models
whose points need nothing of the rest of their curve (:attr:`CurveModel.pointwise`) are evaluated on *folded rows*
(:mod:`~jaxcoh.curves.folding`): every curve cut into rows of a few points, each row carrying its galaxy's table
values and (gathered) parameters, one program over all rows. Other models are summed over *length buckets*
(:func:`length_buckets`): the galaxies grouped by the length of their curves, each group padded only to its own
longest curve. Every term of the objective belongs to one galaxy (shared parameters have flat priors, and their
Jacobian is added once), so either sum is the same density.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .folding import fold, folds, galaxy_objective_terms, per_galaxy_rows
from .likelihood import CurveData, Likelihood, likelihood_model, per_galaxy_groups, prepare
from .models import CurveModel
from .objective import objective

MAX_BUCKETS = 4
# The fixed cost of one more bucket, in padded slots: every bucket repeats the per-galaxy and per-program work.
# Measured on SPARC's standard cuts (RAR, nuisance, sigma_int; value and gradient, float64, 2-core CPU, best of 3
# x 500 calls): one layout 1001 us (16611 slots), 3 buckets 578 us (4572), 6 buckets 567 us (3388).
BUCKET_SLOTS = 500
LAYOUTS = ("auto", "padded", "bucketed", "folded")


def length_buckets(lengths: np.ndarray, max_buckets: int = MAX_BUCKETS, bucket_slots: int = BUCKET_SLOTS
                   ) -> list[np.ndarray]:
    """The galaxies with points grouped by curve length (``lengths [g]``, host ints) into at most ``max_buckets``
    buckets, each a sorted index array, so that padded slots (members x longest member) plus ``bucket_slots`` per
    bucket are fewest. Exact: dynamic programming over the distinct lengths (a bucket is a run of them)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    u, counts = np.unique(lengths[lengths > 0], return_counts=True)
    if u.size == 0:
        return []
    before = np.concatenate([[0], np.cumsum(counts)])  # galaxies with a length below u[i]
    inf = np.iinfo(np.int64).max // 4
    # best[k, j]: cost of covering the j shortest distinct lengths with k buckets; cut[k, j]: where the last starts
    best = np.full((max_buckets + 1, u.size + 1), inf, dtype=np.int64)
    cut = np.zeros_like(best)
    best[0, 0] = 0
    for k in range(1, max_buckets + 1):
        for j in range(1, u.size + 1):
            costs = best[k - 1, :j] + (before[j] - before[:j]) * u[j - 1] + bucket_slots
            i = int(np.argmin(costs))
            best[k, j], cut[k, j] = costs[i], i
    k = int(np.argmin(best[1:, u.size])) + 1
    bounds, j = [], u.size
    for kk in range(k, 0, -1):
        i = int(cut[kk, j])
        bounds.append((u[i], u[j - 1]))
        j = i
    return [np.nonzero((lengths >= lo) & (lengths <= hi))[0] for lo, hi in reversed(bounds)]


def _shared_log_jacobian(model: CurveModel, z: dict) -> Array:
    return sum((p.log_abs_det_jacobian(z["shared"][p.name]) for p in model.shared), jnp.zeros(()))


def _galaxy_log_jacobian(model: CurveModel, opts: Likelihood, z: dict, galaxies: Array) -> Array:
    return sum((jnp.sum(jnp.where(galaxies, p.log_abs_det_jacobian(z[group][p.name]), 0.0))
                for group, p in per_galaxy_groups(model, opts)), jnp.zeros(()))


def log_jacobian(model: CurveModel, opts: Likelihood, z: dict, galaxies: Array) -> Array:
    """``sum log |dq/dz|`` over every parameter of ``z`` (per-galaxy ones over the real galaxies ``[g]`` only)."""
    return _shared_log_jacobian(model, z) + _galaxy_log_jacobian(model, opts, z, galaxies)


def _bucketed(data: CurveData, opts: Likelihood, bucket_slots: int) -> list[tuple[np.ndarray, CurveData]] | None:
    """``(galaxy indices, their data)`` per length bucket; None where one padded layout is as good (or the catalog
    is traced: its lengths are unknown)."""
    cat = data.cat
    if isinstance(cat.mask, jax.core.Tracer):
        return None
    buckets = length_buckets(np.asarray(cat.points_per_galaxy), MAX_BUCKETS, bucket_slots)
    if len(buckets) < 2:
        return None
    return [(idx, prepare(CurveData(cat.take(idx).anonymous(), data.refs), opts)) for idx in buckets]


def _folded_density(model: CurveModel, data: CurveData, opts: Likelihood) -> Callable[[dict], Array]:
    folded = fold(data, opts)

    def f(z: dict) -> Array:
        return (-jnp.sum(galaxy_objective_terms(model, z, folded, opts))
                + log_jacobian(model, opts, z, data.cat.galaxy_mask))

    return f


def log_density(model: CurveModel, data: CurveData, opts: Likelihood, layout: str = "auto"
                ) -> Callable[[dict], Array]:
    """``z -> log posterior`` (up to a constant) of ``model`` (with ``sigma_int`` when ``opts.intrinsic_scatter``)
    on ``data``, for samplers that take a log-density of an unconstrained pytree (blackjax).

    ``layout``: "padded" evaluates the catalog as it is; "folded" on rows of
    :data:`~jaxcoh.curves.fold_plan.FOLD_WIDTH` points (pointwise models only); "bucketed" as a sum over up to
    :data:`MAX_BUCKETS` length buckets (galaxies without points, which add nothing, dropped). All give the same
    density. "auto": folded for a pointwise model where that has fewer slots than padding, else bucketed where the
    slots saved outweigh :data:`BUCKET_SLOTS` per bucket; a traced catalog stays padded."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    model = likelihood_model(model, opts)
    traced = isinstance(data.cat.mask, jax.core.Tracer)
    if layout in ("bucketed", "folded") and traced:
        raise ValueError(f"a {layout} layout needs a concrete catalog (its curve lengths), not a traced one")
    if folds(layout, model, data.cat):
        return _folded_density(model, data, opts)
    parts = _bucketed(data, opts, 0 if layout == "bucketed" else BUCKET_SLOTS) if layout != "padded" else None

    if parts is None:
        def f(z: dict) -> Array:
            return -objective(z, model, data, opts) + log_jacobian(model, opts, z, data.cat.galaxy_mask)
        return f

    def f_bucketed(z: dict) -> Array:
        total = _shared_log_jacobian(model, z)
        for idx, part in parts:
            zb = per_galaxy_rows(z, idx)
            total = total - objective(zb, model, part, opts) + _galaxy_log_jacobian(model, opts, zb,
                                                                                    part.cat.galaxy_mask)
        return total

    return f_bucketed
