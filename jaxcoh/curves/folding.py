"""Folded rows: a catalog's curves cut into rows of a few points, each row carrying its galaxy's table values and
(gathered) parameters, for models whose points need nothing of the rest of their curve
(:attr:`~jaxcoh.curves.models.CurveModel.pointwise`).

Ragged curves padded to the longest one are mostly padding (SPARC's standard cuts: 147 x 113 slots for 2696 points,
84%); rows of :data:`~jaxcoh.curves.fold_plan.FOLD_WIDTH` points hold them in 3904 slots (where each point goes:
:mod:`~jaxcoh.curves.fold_plan`). A galaxy's likelihood is a sum over its rows: its points' terms where they fall,
its galaxy-level prior terms (model and nuisance priors) on its first row only. The sampler's log density
(:mod:`~jaxcoh.curves.posterior`), the fits' block Levenberg-Marquardt (:func:`row_residuals`, whose normal
equations sum rows into galaxies) and the settled test of every galaxy's starts (:func:`galaxy_objective_terms`)
evaluate folded rows; the rest of a fit (L-BFGS, errors, the convergence test, tables) keeps the padded catalog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..catalog import POINT_FIELDS, POINT_PAD, Catalog
from .fold_plan import FOLD_WIDTH, fold_plan, fold_saves, fold_width
from .inputs import bulge_luminosity
from .likelihood import (CurveData, Evaluation, Likelihood, evaluate, galaxy_prior_residuals, prepare, residual_rows,
                         residuals)
from .models import CurveModel


class FoldedRows(NamedTuple):
    """A catalog's points on folded rows: the rows' data (prepared as the catalog's), the galaxy each row belongs to
    ``[r]`` (int32, sorted) and whether it is that galaxy's first row ``[r]``."""

    data: CurveData
    galaxy: Array
    first: Array


def folded_rows(cat: Catalog, width: int = FOLD_WIDTH) -> tuple[Catalog, np.ndarray, np.ndarray]:
    """``cat`` cut into rows of ``width`` points (host side): ``(rows, row_galaxy [r], first [r])``, where row ``r``
    holds points ``[k width, (k + 1) width)`` of galaxy ``row_galaxy[r]`` (its ``k``-th row; ``first`` marks
    ``k = 0``) with that galaxy's table values and bulge light (``L_bul``: its curve's, not the row's), padded with
    :data:`~jaxcoh.catalog.POINT_PAD`. A galaxy without points keeps one empty row. SPARC's standard cuts: 244 rows
    x 16 = 3904 slots for 2696 points."""
    n = np.asarray(cat.points_per_galaxy)
    row_galaxy, k, point = fold_plan(n, width)
    real = point < n[row_galaxy][:, None]
    src = (row_galaxy[:, None], np.minimum(point, cat.n_max - 1))
    fields = {f: jnp.asarray(np.where(real, np.asarray(getattr(cat, f))[src], POINT_PAD[f]), cat.dtype)
              for f in POINT_FIELDS if getattr(cat, f) is not None}  # SB_* may be None (mocks)
    L_bul = jnp.asarray(np.asarray(bulge_luminosity(cat))[row_galaxy], cat.dtype)
    rows = dataclasses.replace(cat.take(row_galaxy), **fields, mask=jnp.asarray(real), L_bul=L_bul)
    return rows, row_galaxy, k == 0


def folds(layout: str, model: CurveModel, cat: Catalog) -> bool:
    """Whether ``layout`` puts ``model``'s data on folded rows: "folded" (a pointwise model only), or "auto" for a
    pointwise model on a concrete catalog whose rows have fewer slots than its padding (the fits' and the sampler's
    rule)."""
    if layout == "folded" and not model.pointwise:
        raise ValueError(f"{model.name} is not pointwise (its points need the rest of their curve): no folded layout")
    traced = isinstance(cat.mask, jax.core.Tracer)
    return layout == "folded" or (layout == "auto" and model.pointwise and not traced
                                  and fold_saves(np.asarray(cat.mask)))


def fold(data: CurveData, opts: Likelihood) -> CurveData:
    """``data`` with its points also on folded rows (``data.rows``), prepared for ``opts`` as ``data`` is."""
    cat = data.cat
    if isinstance(cat.mask, jax.core.Tracer):
        raise ValueError("folded rows need a concrete catalog (its curve lengths), not a traced one")
    rows, row_galaxy, first = folded_rows(cat, fold_width(cat.n_max))
    part = prepare(CurveData(rows.anonymous(), data.refs), opts)
    return data._replace(rows=FoldedRows(part, jnp.asarray(row_galaxy, jnp.int32), jnp.asarray(first)))


def per_galaxy_rows(z: dict, index) -> dict:
    """The per-galaxy leaves of ``z`` at galaxies ``index`` (the shared ones as they are)."""
    return {k: (v if k == "shared" else jax.tree.map(lambda a: a[index], v)) for k, v in z.items()}


def row_evaluation(model: CurveModel, z: dict, data: CurveData, opts: Likelihood) -> Evaluation:
    """The model at ``z`` (per-galaxy leaves ``[g]``) on ``data.rows``, row by row (each row's galaxy-level prior
    terms are its galaxy's: repeated on every row)."""
    rows = data.rows
    return evaluate(model, per_galaxy_rows(z, rows.galaxy), rows.data, opts)


def _repeated(ev: Evaluation, rows: FoldedRows, opts: Likelihood) -> Array:
    """``[r, k]``: the galaxy-level prior terms of rows after their galaxy's first (0 on first rows)."""
    return jnp.where(rows.first[:, None], 0.0, galaxy_prior_residuals(ev, opts))


def row_residuals(z: dict, model: CurveModel, data: CurveData, opts: Likelihood) -> Array:
    """Every term of the negative log posterior as a residual, row by row ``[r, width + k]``: the rows' points, then
    the prior terms (a galaxy's own on its first row, 0 on the others; the intrinsic scatter's per-point terms on
    every row). Row ``i`` depends on the shared parameters and those of galaxy ``data.rows.galaxy[i]``."""
    rows = data.rows
    ev = row_evaluation(model, z, data, opts)
    r = residual_rows(ev, rows.data.cat.galaxy_mask, opts)
    k = galaxy_prior_residuals(ev, opts).shape[1]
    return jnp.where(rows.first[:, None] | (jnp.arange(r.shape[1]) < r.shape[1] - k)[None, :], r, 0.0)


def galaxy_objective_terms(model: CurveModel, z: dict, data: CurveData, opts: Likelihood) -> Array:
    """Each galaxy's share of the objective ``[g]`` (:attr:`Evaluation.objective_terms`), summed over its folded
    rows where ``data`` has them."""
    if data.rows is None:
        return evaluate(model, z, data, opts).objective_terms
    ev = row_evaluation(model, z, data, opts)
    terms = ev.objective_terms - 0.5 * jnp.sum(_repeated(ev, data.rows, opts) ** 2, axis=1)
    return jax.ops.segment_sum(terms, data.rows.galaxy, data.cat.n_galaxies, indices_are_sorted=True)


def lm_residuals(data: CurveData) -> tuple[Callable, Array | None]:
    """``(residual function, row_galaxy)`` for the block Levenberg-Marquardt on ``data``: row by row where it has
    folded rows, galaxy by galaxy (``row_galaxy`` None) otherwise."""
    if data.rows is None:
        return residuals, None
    return row_residuals, data.rows.galaxy
