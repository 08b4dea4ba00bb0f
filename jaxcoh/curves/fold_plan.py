"""Where the points of ragged curves go when they are cut into rows of a few (host side, numpy): the plan behind
:mod:`jaxcoh.curves.folding`, apart so that models built for one catalog (a stack of halo models) know its folded
layout without the likelihood."""

from __future__ import annotations

import numpy as np

# Points per folded row. Measured on the sampler's workload (SPARC's standard cuts, RAR, nuisance, sigma_int; value
# and gradient, float64, 2-core CPU; an ad-hoc script, best of 3 x 300 calls): widths 8, 12, 16, 24, 32 gave 309,
# 299, 259, 288, 382 us (3208 to 5568 slots; 16: 244 rows) against 327 us over length buckets and 610 padded; later,
# best of 5: 292-309 us folded, 331 bucketed, 648 padded. Compiling the value and gradient: 1.1-1.2 s folded against
# 4.1-5.5 s bucketed (one copy of the model, not four).
FOLD_WIDTH = 16


def rows_per_galaxy(n: np.ndarray, width: int) -> np.ndarray:
    """``ceil(n / width)`` rows per galaxy of ``n [g]`` points, one (empty) for a galaxy without points."""
    return np.maximum(1, -(-np.asarray(n) // width))


def fold_width(n_max: int) -> int:
    """The row width for curves padded to ``n_max`` points: :data:`FOLD_WIDTH`, or ``n_max`` where that is shorter."""
    return min(FOLD_WIDTH, n_max)


def fold_saves(points: np.ndarray) -> bool:
    """Whether folded rows have fewer slots than the padded layout of real points ``points [g, n]``."""
    g, n = points.shape
    width = fold_width(n)
    return rows_per_galaxy(points.sum(axis=1), width).sum() * width < g * n


def fold_plan(n: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row_galaxy [r], k [r], point [r, width])`` for curves of ``n [g]`` points cut into rows of ``width``: the
    galaxy of each row, its index among that galaxy's rows, and the index within the curve of each of its slots
    (real where below the curve's length)."""
    n = np.asarray(n)
    per = rows_per_galaxy(n, width)
    row_galaxy = np.repeat(np.arange(n.size), per)
    k = np.arange(row_galaxy.size) - np.repeat(np.cumsum(per) - per, per)
    return row_galaxy, k, k[:, None] * width + np.arange(width)


def folded_mask(points: np.ndarray, width: int) -> np.ndarray:
    """``[r, width]``: the real slots of the folded rows of a catalog whose real points are ``points [g, n]``."""
    n = np.asarray(points).sum(axis=1)
    row_galaxy, _, point = fold_plan(n, width)
    return point < n[row_galaxy][:, None]
