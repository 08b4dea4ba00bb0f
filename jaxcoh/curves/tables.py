"""Tables and text of rotation-curve fits: one row per galaxy, one row per point, and the printed summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..constants import KMS2_PER_KPC_TO_MS2
from .laplace import format_shift
from .nuisance import Nuisance, apply_nuisance
from .result import CurveFit


def per_galaxy_table(fit: CurveFit, names: Sequence[str]) -> pd.DataFrame:
    """One row per galaxy: nuisance values (and errors), per-galaxy parameters, chi^2, RMS [km/s], points."""
    keep = fit.per_galaxy_points > 0
    cols: dict = {"galaxy": np.asarray(list(names), dtype=object), "model": fit.model}
    for k, v in {**fit.nuisance, **fit.local}.items():
        cols[k] = v
        if k in fit.per_galaxy_stderr:
            cols[f"{k}_err"] = fit.per_galaxy_stderr[k]
    cols.update(chi2=fit.per_galaxy_chi2, rms_kms=fit.per_galaxy_rms, n_points=fit.per_galaxy_points)
    return pd.DataFrame(cols)[keep].reset_index(drop=True)


def curves_table(fit: CurveFit, cat: Catalog) -> pd.DataFrame:
    """One row per point: the data at the fitted nuisance values (component speeds with sqrt(Upsilon) applied, so
    ``V_bar^2 = V_gas|V_gas| + V_disk^2 + V_bul^2``), the model, and the accelerations [m/s^2]."""
    ev = fit.evaluation
    mask = np.asarray(cat.mask)
    nu = Nuisance(**{k: jnp.asarray(v, cat.dtype) for k, v in fit.nuisance.items()})
    scaled = apply_nuisance(cat, nu)  # the fit's own rescaling of the components (distance)
    R = np.asarray(ev.R)
    V_obs, V_model, V_bar2 = np.asarray(ev.V_obs), np.asarray(ev.V_model), np.asarray(ev.V_bar2)
    to_si = KMS2_PER_KPC_TO_MS2
    cols = {
        "galaxy": np.broadcast_to(np.asarray(list(cat.names), dtype=object)[:, None], mask.shape),
        "model": np.full(mask.shape, fit.model, dtype=object),
        "R_kpc": R,
        "V_obs": V_obs,
        "e_V_obs": np.asarray(ev.e_V),
        "V_gas": np.asarray(scaled.V_gas),
        "V_disk": np.asarray(scaled.V_disk) * np.sqrt(fit.nuisance["upsilon_disk"])[:, None],
        "V_bul": np.asarray(scaled.V_bul) * np.sqrt(fit.nuisance["upsilon_bulge"])[:, None],
        "V_bar": np.sign(V_bar2) * np.sqrt(np.abs(V_bar2)),
        "V_model": V_model,
        "g_bar": V_bar2 / R * to_si,
        "g_obs": V_obs**2 / R * to_si,
        "g_model": np.sign(V_model) * V_model**2 / R * to_si,
    }
    return pd.DataFrame({k: np.asarray(v)[mask] for k, v in cols.items()})


def format_compare(summary: dict) -> str:
    """The comparison as a fixed-width table, best BIC first, with the sample and the published RAR beside it."""
    lines = [f"{summary['n_galaxies']} galaxies, {summary['n_points']} points, {summary['dtype']}, "
             f"nuisance {'fitted' if summary['options']['nuisance'] else 'fixed'}, loss {summary['options']['loss']}",
             f"{'model':<24}{'chi2/nu':>9}{'dBIC':>11}{'med RMS':>9}{'>Newt':>7}{'RAR dex':>9}{'wall s':>8}  status"]
    models = summary["models"]
    best = min(m["bic"] for m in models.values())
    for name in summary["ranking_by_bic"]:
        m = models[name]
        lines.append(f"{name:<24}{m['chi2_nu']:>9.3f}{m['bic'] - best:>11.1f}{m['median_rms_kms']:>9.2f}"
                     f"{m['frac_better_than_newtonian']:>7.2f}{m['rar_scatter_dex']:>9.3f}{m['wall_s']:>8.1f}  "
                     f"{m['status']}")
    if "rar" in models:
        m, p = models["rar"], models["rar"]["published"]
        lines.append(f"RAR g_dagger = {m['params']['g_dagger']:.3e} +- {m['stderr']['g_dagger']:.1e} m/s^2 "
                     f"(published {p['g_dagger']:.2e} +- {p['g_dagger_err']:.2e}); scatter {m['rar_scatter_dex']:.3f} "
                     f"dex (published {p['rar_scatter_dex']:.2f} with fixed Upsilon, D, i; "
                     f"{p['rar_scatter_dex_nuisance_fitted']:.3f} with them fitted)")
    for name, m in models.items():
        if m.get("at_bound"):
            lines.append(f"{name}: at a bound: {', '.join(m['at_bound'])}")
    return "\n".join(lines)


def format_fit(result: dict) -> str:
    """One fit's parameters with errors, statistics and what could not be determined."""
    lines = [f"{result['model']}: {result['n_galaxies']} galaxies, {result['n_points']} points, {result['dtype']}, "
             f"{result['status']} after {result['n_iter']} iterations ({result['wall_s']:.1f} s)",
             f"chi2 = {result['chi2']:.2f}, dof = {result['dof']}, chi2/nu = {result['chi2_nu']:.3f}, "
             f"BIC = {result['bic']:.1f}, RAR scatter = {result['rar_scatter_dex']:.3f} dex"]
    lap = result.get("laplace")
    if lap:
        lines.append(f"shared parameters from the Laplace marginal ({lap['iterations']} Newton steps from the joint "
                     "MAP, moved " + format_shift(lap["shift_in_stderr"])
                     + " standard errors)")
    for k, v in result["params"].items():
        e = result["stderr"].get(k, math.nan)
        lines.append(f"  {k:<14}{v:>14.6g}  +- {e:.3g}" if e == e else f"  {k:<14}{v:>14.6g}  (not determined)")
    errors = result.get("errors") or {}
    for k, d in errors.get("derived", {}).items():
        lines.append(f"  {k:<14}{d['value']:>14.6g}  +- {d['stderr']:.3g}  (derived)")
    for d in errors.get("degenerate_directions", []):
        if not any("[" in k for k in d):
            lines.append("  degenerate: " + " + ".join(f"{c:g} {k}" for k, c in d.items()) + " = const")
    if errors.get("at_bound"):
        lines.append("  at a bound: " + ", ".join(errors["at_bound"]))
    return "\n".join(lines)
