"""Draws -> ArviZ InferenceData, an atomically written ``posterior.nc``, summary tables and convergence warnings.

Draws are a nested dict of arrays ``[chain, draw, ...]``, e.g.
``{"shared": {name: [c, n]}, "local": {name: [c, n, g]}}``.
Each leaf becomes one posterior variable named by its last key; leaves under a per-galaxy top-level key get the
dims ``(chain, draw, galaxy)`` with galaxy names as coordinates.  netCDF goes through ArviZ's h5netcdf backend
(h5netcdf and h5py are dependencies of arviz 0.23).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

with warnings.catch_warnings():
    # arviz 0.23 announces its 1.0 refactor with a FutureWarning on import (once a day, per user): not actionable.
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
    import arviz as az

GALAXY_DIM = "galaxy"
SUMMARY_COLUMNS = ("mean", "sd", "hdi_3%", "hdi_97%", "mcse_mean", "ess_bulk", "ess_tail", "r_hat")
SAMPLE_STATS = ("diverging", "tree_depth", "n_steps", "acceptance_rate", "energy", "step_size", "lp")


def _variables(draws: Mapping, per_galaxy: Iterable[str]) -> tuple[dict[str, np.ndarray], set[str]]:
    """Leaves of ``draws`` by last key (per-galaxy ones last), and the names of those under a per-galaxy key."""
    per_galaxy = set(per_galaxy)
    out: dict[str, np.ndarray] = {}
    galaxy_vars: set[str] = set()

    def visit(node: Any, top: str | None, name: str | None) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                visit(child, key if top is None else top, str(key))
            return
        if name in out:
            raise ValueError(f"two draws leaves are both named {name!r}; names must be unique across groups")
        x = np.asarray(node)
        if x.ndim < 2:
            raise ValueError(f"draws[{name!r}] has shape {x.shape}; expected [chain, draw, ...]")
        out[name] = x
        if top in per_galaxy:
            galaxy_vars.add(name)

    visit(draws, None, None)
    # Global parameters first, then per-galaxy ones: the order of the posterior group and of summary tables.
    order = sorted(out, key=lambda name: name in galaxy_vars)
    return {name: out[name] for name in order}, galaxy_vars


def to_inference_data(
    draws: Mapping,
    stats: Any = None,
    *,
    galaxy_names: Sequence[str] | None = None,
    per_galaxy: Iterable[str] = ("local",),
    attrs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """An InferenceData with a ``posterior`` group (and ``sample_stats`` when ``stats`` is given).

    ``draws``: nested dict of ``[chain, draw, ...]`` arrays; leaves under a top-level key in ``per_galaxy`` are
    ``[chain, draw, galaxy, ...]`` and get dim ``galaxy`` (coordinates ``galaxy_names`` when given, else 0..g-1;
    further axes get ArviZ's default ``<name>_dim_<i>``).  ``stats``: a :class:`~.nuts.SampleStats` or a mapping of
    ``[chain, draw]`` arrays with ArviZ's names (``diverging``, ``tree_depth``, ``n_steps``, ``acceptance_rate``,
    ``energy``, ``step_size``, ``lp``).  ``attrs`` are stored on both groups (e.g. sampler settings, versions).
    """
    posterior, galaxy_vars = _variables(draws, per_galaxy)
    coords: dict[str, Any] = {}
    if galaxy_vars and galaxy_names is not None:
        names = [str(n) for n in galaxy_names]
        for name in galaxy_vars:
            if posterior[name].ndim < 3 or posterior[name].shape[2] != len(names):
                shape = posterior[name].shape
                raise ValueError(f"{name!r} has shape {shape}; expected [chain, draw, {len(names)}, ...]")
        coords[GALAXY_DIM] = names
    dims = {name: [GALAXY_DIM] for name in galaxy_vars}
    sample_stats = None
    if stats is not None:
        stats = stats._asdict() if hasattr(stats, "_asdict") else dict(stats)
        sample_stats = {k: np.asarray(v) for k, v in stats.items()}
    attrs = dict(attrs) if attrs else None
    return az.from_dict(
        posterior=posterior, sample_stats=sample_stats, coords=coords, dims=dims,
        posterior_attrs=attrs, sample_stats_attrs=attrs,  # (from_dict's own ``attrs`` reaches no group in 0.23)
    )


def write_netcdf(idata: az.InferenceData, path: str | os.PathLike) -> Path:
    """Write ``idata`` to ``path`` (e.g. ``posterior.nc``) atomically: temporary file in the same directory, then
    ``os.replace``, so a reader never sees a half-written file and an interrupted write leaves the old one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        idata.to_netcdf(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def summary_table(idata: az.InferenceData, var_names: Sequence[str] | None = None) -> pd.DataFrame:
    """``arviz.summary`` of the posterior, unrounded: columns ``parameter`` then :data:`SUMMARY_COLUMNS`.

    ``parameter`` is ArviZ's label, e.g. ``"a0"`` or ``"log_ml[NGC3198]"``; one row per scalar.
    """
    table = az.summary(idata, var_names=list(var_names) if var_names else None, hdi_prob=0.94, round_to="none")
    return table.loc[:, list(SUMMARY_COLUMNS)].rename_axis("parameter").reset_index()


def convergence_warnings(
    idata: az.InferenceData,
    table: pd.DataFrame | None = None,
    *,
    r_hat_max: float = 1.01,
    ess_bulk_min: float = 400.0,
    divergence_max: float = 0.01,
) -> list[str]:
    """Human-readable warnings: any ``r_hat > r_hat_max``, ``ess_bulk < ess_bulk_min``, or divergent transitions
    above ``divergence_max`` of all draws.  Undefined (NaN) r_hat or ESS count as failures.  ``table``: a
    :func:`summary_table` already computed (else it is computed here).  Empty list: nothing to report."""
    table = summary_table(idata) if table is None else table
    out = []
    for column, bad, relation in (
        ("r_hat", ~(table["r_hat"] <= r_hat_max), f"r_hat > {r_hat_max:g}"),
        ("ess_bulk", ~(table["ess_bulk"] >= ess_bulk_min), f"ess_bulk < {ess_bulk_min:g}"),
    ):
        if bad.any():
            rows = table[bad]
            worst = rows.sort_values(column, ascending=column == "ess_bulk", na_position="first").iloc[0]
            undefined = int(rows[column].isna().sum())
            out.append(
                f"{relation} for {len(rows)} of {len(table)} parameters"
                + (f" ({undefined} undefined)" if undefined else "")
                + f" (worst: {worst['parameter']} with {column} = {worst[column]:.4g})"
            )
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        diverging = np.asarray(idata.sample_stats["diverging"])
        n_div, n = int(diverging.sum()), diverging.size
        if n and n_div > divergence_max * n:
            out.append(f"{n_div} divergent transitions in {n} draws ({n_div / n:.1%} > {divergence_max:.0%})")
    return out
