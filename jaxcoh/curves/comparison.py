"""The unified kernel judged on the rotation curves, beside the standard baselines, on the same points and loss.

:func:`compare` fits every model jointly (:func:`jaxcoh.curves.fit`) and returns the ``compare.json`` summary, a
per-galaxy table and a per-point table of the fitted curves (for plots). Resumable model by model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..config import precision_name
from ..constants import G_DAGGER_MLS16, G_DAGGER_MLS16_ERR, RAR_SCATTER_LI18_DEX, RAR_SCATTER_MLS16_DEX
from ..results import arrays_digest
from ..resumable import PartStore
from .fitting import CurveSettings, at_joint_maximum, fit
from .models import MODELS, get_model
from .result import CurveFit
from .tables import curves_table, per_galaxy_table

COMPARED_FAMILIES = ("baseline", "kernel")  # fitted by default; halo profiles have `jaxcoh halos`
log = logging.getLogger("jaxcoh")


def default_models() -> list[str]:
    """The registered models of the families :data:`COMPARED_FAMILIES`, in registration order."""
    return [m for m in MODELS.names() if get_model(m).family in COMPARED_FAMILIES]


def model_summary(fit: CurveFit) -> dict:
    """What compare.json says of one fit (``frac_better_than_newtonian`` is added once every model is fitted)."""
    galaxies = fit.per_galaxy_points > 0
    out = {
        "description": fit.description,
        "params": fit.params,
        "stderr": fit.stderr,
        **fit.statistics(),
        "median_rms_kms": float(np.median(fit.per_galaxy_rms[galaxies])),
        "rar_scatter_dex": fit.rar_scatter_dex,
        "objective": fit.objective,
        "wall_s": fit.wall_s,
        "status": fit.status,
        "n_iter": fit.n_iter,
        "n_starts": fit.n_starts,
        "convergence": fit.convergence.to_dict() if fit.convergence else None,
        "galaxy_starts": fit.galaxy_starts.to_dict(),
    }
    if fit.laplace is not None:  # the shared parameters from the Laplace marginal
        out["laplace"] = fit.laplace.to_dict()
    if fit.errors is not None:
        out["at_bound"] = [n for n in fit.errors.at_bound if "[" not in n]
        out["derived"] = fit.errors.derived
        out["degenerate_directions"] = [d for d in fit.errors.degenerate if not any("[" in k for k in d)]
        out["hessian_positive_definite"] = fit.errors.positive_definite
    if fit.likelihood.nuisance:
        out["nuisance_median"] = {k: float(np.median(v[galaxies])) for k, v in fit.nuisance.items()}
    if fit.model == "rar":
        g, e = fit.params["g_dagger"], fit.stderr["g_dagger"]
        out["published"] = {
            "reference": "McGaugh, Lelli & Schombert 2016",
            "g_dagger": G_DAGGER_MLS16, "g_dagger_err": G_DAGGER_MLS16_ERR, "rar_scatter_dex": RAR_SCATTER_MLS16_DEX,
            "rar_scatter_dex_nuisance_fitted": RAR_SCATTER_LI18_DEX,
            "rar_scatter_reference": "0.13 dex with fixed Upsilon, D, i (McGaugh, Lelli & Schombert 2016); 0.057 dex "
                                     "with them fitted per galaxy (Li, Lelli, McGaugh & Schombert 2018)",
            "g_dagger_within_published_error": bool(abs(g - G_DAGGER_MLS16) <= G_DAGGER_MLS16_ERR),
            "g_dagger_pull": float((g - G_DAGGER_MLS16) / math.hypot(G_DAGGER_MLS16_ERR, e if e == e else 0.0)),
        }
    return out


def catalog_digest(cat: Catalog) -> str:
    """A hash of a catalog's names and arrays: results computed from another catalog are never reused."""
    return arrays_digest(jax.tree_util.tree_leaves(cat), "\n".join(cat.names))


def compare(
    cat: Catalog,
    models: Sequence[str] | None = None,
    settings: CurveSettings = CurveSettings(),
    *,
    progress: Callable[[str], None] | None = None,
    out: str | Path | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Fits every model of ``models`` (default :func:`default_models`) to ``cat`` (already cut) jointly; returns
    ``(compare.json content, per-galaxy table, per-point curves table)``. Newtonian is always fitted: it is every
    model's reference.

    With ``out``, each model's results are written atomically to ``out/models/`` as soon as it is fitted, and a
    re-run with the same catalog and settings loads them instead of fitting again (an interrupted comparison
    resumes).

    ``settings.marginal="auto"`` is the joint MAP here, at any size (:func:`~jaxcoh.curves.fitting.at_joint_maximum`):
    chi^2, AIC and BIC are statistics of the likelihood's maximum (``"laplace"`` still asks for the marginal's).
    """
    settings = at_joint_maximum(settings)
    models = default_models() if models is None else list(models)
    for m in models:
        get_model(m)  # an unknown name fails here, naming the registered ones
    order = ["newtonian", *[m for m in models if m != "newtonian"]]
    names = list(cat.names)
    opts = settings.likelihood
    store = PartStore(Path(out) / "models" if out is not None else None,
                      {"kind": "compare", "catalog": catalog_digest(cat),
                       "settings": {k: v for k, v in settings._asdict().items() if k != "report"},
                       "dtype": precision_name(cat.dtype)})
    parts: dict[str, dict] = {}
    for name in order:
        part = store.load(name, ("per_galaxy", "curves"))
        if part is None:
            fitted = fit(name, cat, settings)
            doc = {"summary": model_summary(fitted), "per_galaxy_chi2": fitted.per_galaxy_chi2}
            tables = {"per_galaxy": per_galaxy_table(fitted, names), "curves": curves_table(fitted, cat)}
            store.save(name, doc, tables)
        else:
            doc, tables = part
        parts[name] = {**doc, **tables}
        if progress is not None:
            progress(name)
    if store.resumed:
        log.info(f"resumed {', '.join(store.resumed)} from {store.directory}")
    galaxies = np.asarray(cat.galaxy_mask) & (np.asarray(cat.mask).sum(axis=1) > 0)
    reference = np.asarray(parts["newtonian"]["per_galaxy_chi2"], float)[galaxies]
    shown = [name for name in order if name in models]
    summary = {
        "n_galaxies": cat.n_galaxies,
        "n_points": cat.n_points,
        "dtype": precision_name(cat.dtype),
        "data": cat.source,
        "options": opts._asdict(),
        "solver": settings.solver,
        "n_starts": settings.n_starts,
        "models": {name: {**parts[name]["summary"], "frac_better_than_newtonian": float(np.mean(
            np.asarray(parts[name]["per_galaxy_chi2"], float)[galaxies] < reference))} for name in shown},
    }
    summary["ranking_by_bic"] = sorted(summary["models"], key=lambda m: summary["models"][m]["bic"])
    per_galaxy = pd.concat([parts[m]["per_galaxy"] for m in shown], ignore_index=True)
    curves = pd.concat([parts[m]["curves"] for m in shown], ignore_index=True)
    return summary, per_galaxy, curves
