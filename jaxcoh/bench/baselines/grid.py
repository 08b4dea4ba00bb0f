"""B3: a grid over the derivation's hyperparameters, re-deriving F_missing and refitting at every point.

F_missing depends on the derivation's hyperparameters (ell0, A0, gamma_rough, beta_sigma), so asking how the
mass-coherence fit responds to them means re-running the whole pipeline per grid point: the galaxy loop, then a
differential evolution. jaxcoh instead differentiates through, or vmaps over, the derivation. Points are independent,
so any subset can be run and the cost per point extrapolated.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import pandas as pd

from .seed_pipeline import BOUNDS, derive_f_missing_loop, fit_sample, fit_seed_model_de

GRID_KEYS = ("ell0", "A0", "gamma_rough", "beta_sigma")


def product_grid(**axes: Iterable[float]) -> list[dict[str, float]]:
    """The Cartesian product of ``axes`` (e.g. ``ell0=[3, 5, 8], A0=[0.5, 0.774]``) as a list of points."""
    unknown = set(axes) - set(GRID_KEYS)
    if unknown:
        raise ValueError(f"grid axes must be among {GRID_KEYS}, got {sorted(unknown)}")
    names = list(axes)
    return [dict(zip(names, map(float, v), strict=True)) for v in itertools.product(*axes.values())]


def grid_point_de(galaxies: list[dict], point: Mapping[str, float], **de_kwargs) -> dict:
    """One grid point: derive F_missing at ``point`` (other hyperparameters at the seed's) and fit mass-coherence.

    Returns the row: the point's values, ``sample_size``, fitted ``K_max, Psi0, gamma, f_R``, ``rms`` and ``r``.
    """
    unknown = set(point) - set(GRID_KEYS)
    if unknown:
        raise ValueError(f"grid points take {GRID_KEYS}, got {sorted(unknown)}")
    F, props = fit_sample(derive_f_missing_loop(galaxies, dict(point)))
    fit = fit_seed_model_de("mass_coherence", F, props, **de_kwargs)
    return {**{k: float(v) for k, v in point.items()}, "sample_size": len(F), **fit["params"], "rms": fit["rms"],
            "r": fit["r"]}


def grid_de(galaxies: list[dict], grid: Iterable[Mapping[str, float]] | pd.DataFrame, **de_kwargs) -> pd.DataFrame:
    """Every point of ``grid`` (dicts, or a DataFrame with columns among :data:`GRID_KEYS`) by :func:`grid_point_de`,
    in a Python loop. ``de_kwargs`` go to ``fit_seed_model_de`` (default the seed's settings).

    Returns one row per point: its values, ``sample_size``, ``K_max, Psi0, gamma, f_R``, ``rms``, ``r``.
    """
    points = grid.to_dict("records") if isinstance(grid, pd.DataFrame) else list(grid)
    rows = [grid_point_de(galaxies, p, **de_kwargs) for p in points]
    inputs = [k for k in GRID_KEYS if any(k in p for p in points)]
    cols = [*inputs, "sample_size", *BOUNDS["mass_coherence"], "rms", "r"]
    return pd.DataFrame(rows, columns=cols)
