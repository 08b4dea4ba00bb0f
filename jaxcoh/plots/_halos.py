"""The halo catalogue (``jaxcoh halos``): the chi^2_nu distribution per model, the BIC wins, and rotation curves with
every halo model drawn over them.

Inputs as the command writes them: ``halos.csv`` (one row per galaxy and model: ``galaxy, model, chi2_nu, bic,
...``; ``model`` holds Li et al.'s names, ``PROFILE-PRIOR``), ``halos.json`` (``models.NAME.wins_by_bic``,
``wins_by_bic_within_prior_set``) and ``halo_curves.csv`` (``galaxy, model, R_kpc, V_obs, e_V_obs, V_gas, V_disk,
V_bul, V_bar, V_model``, each model at its own fitted nuisance values). One colour per profile, solid for Flat
priors and dashed for LCDM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._common import finish_curve_grid, new_figure, panel_grid
from ._curves import select_galaxies

HALO_COLUMNS = ("galaxy", "model", "chi2_nu", "bic")
HALO_CURVE_COLUMNS = ("galaxy", "model", "R_kpc", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "V_bar",
                      "V_model")
PROFILE_COLORS = {"pISO": "#1f77b4", "Burkert": "#2ca02c", "NFW": "#d62728", "Einasto": "#9467bd",
                  "DC14": "#ff7f0e", "coreNFW": "#8c564b", "Lucky13": "#17becf"}
PRIOR_STYLES = {"Flat": "-", "LCDM": "--"}


def halo_style(model: str) -> dict:
    """Colour by profile, line style by prior set, for a model named ``PROFILE-PRIOR`` (grey and solid otherwise)."""
    profile, _, prior = model.rpartition("-")
    return {"color": PROFILE_COLORS.get(profile, "#7f7f7f"), "ls": PRIOR_STYLES.get(prior, "-")}


def _models(table: pd.DataFrame) -> list[str]:
    models = list(dict.fromkeys(table["model"].astype(str)))
    if not models:
        raise ValueError("halo table has no rows")
    return models


def plot_halo_chi2(table: pd.DataFrame, x_max: float = 100.0):
    """The cumulative distribution of each model's reduced chi^2 over the galaxies (log axis; galaxies without
    degrees of freedom left out), with chi^2_nu = 1 and 2 marked and each model's median in the legend."""
    fig = new_figure(7.0, 4.6)
    ax = fig.subplots()
    for m in _models(table):
        c = table.loc[table["model"].astype(str) == m, "chi2_nu"].to_numpy(float)
        c = np.sort(c[np.isfinite(c)])
        if not c.size:
            continue
        y = np.arange(1, c.size + 1) / c.size
        ax.step(np.clip(c, 1e-2, x_max), y, where="post", lw=1.3, label=f"{m} (median {np.median(c):.2f})",
                **halo_style(m))
    for v in (1.0, 2.0):
        ax.axvline(v, color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(1e-2, x_max)
    ax.set_ylim(0, 1)
    ax.set_xlabel(r"$\chi^2_\nu$ per galaxy")
    ax.set_ylabel("fraction of galaxies")
    # upper left: a cumulative distribution reaches high fractions at small chi^2_nu only for fits far too good
    ax.legend(fontsize="x-small", ncols=2, loc="upper left", frameon=False)
    return fig


def plot_halo_wins(summary: Mapping):
    """For each model, the galaxies whose BIC it has the lowest of: among every model, and within its prior set."""
    models = summary.get("models", {})
    names = list(models)
    if not names:
        raise ValueError("halos.json names no models")
    fig = new_figure(7.0, 4.2)
    ax = fig.subplots()
    y = np.arange(len(names))
    overall = [models[m].get("wins_by_bic") or 0 for m in names]
    within = [models[m].get("wins_by_bic_within_prior_set") or 0 for m in names]
    colors = [halo_style(m)["color"] for m in names]
    ax.barh(y + 0.2, within, height=0.4, color=colors, alpha=0.45, label="within its prior set")
    ax.barh(y - 0.2, overall, height=0.4, color=colors, label="among every model")
    ax.set_yticks(y, names, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("galaxies with the lowest BIC")
    ax.legend(fontsize="small", frameon=False, loc="lower right")
    return fig


def plot_halo_curves(curves: pd.DataFrame, galaxies: int | Sequence[str] | None = None, ncols: int = 4):
    """Rotation curves with every halo model's fit: the data and baryons at the first model's fitted nuisance values,
    every model's curve as ``V_obs x V_model/V_obs`` point by point (its own Upsilon, D and i in the ratio: the
    fraction of the observed speed it reaches), at its own radii where its points differ."""
    names = select_galaxies(curves, galaxies)
    models = _models(curves)
    fig, axes = panel_grid(len(names), ncols, (2.9, 2.4), (0.0, 0.9))
    by_galaxy = {g: d for g, d in curves.groupby(curves["galaxy"].astype(str), sort=False)}
    panels = []
    for ax, g in zip(axes, names):
        gal = by_galaxy[g]
        ref = gal[gal["model"].astype(str) == str(gal["model"].iloc[0])]
        order = np.argsort(ref["R_kpc"].to_numpy(float), kind="stable")
        R, V_obs = ref["R_kpc"].to_numpy(float)[order], ref["V_obs"].to_numpy(float)[order]
        ax.plot(R, ref["V_bar"].to_numpy(float)[order], ls=":", color="k", lw=1.0, label="baryons")
        for m in models:
            d = gal[gal["model"].astype(str) == m]
            if d.empty:
                continue
            own = np.argsort(d["R_kpc"].to_numpy(float), kind="stable")
            V_model, V_m_obs = d["V_model"].to_numpy(float)[own], d["V_obs"].to_numpy(float)[own]
            if len(d) == len(ref):
                ratio = np.divide(V_model, V_m_obs, out=np.full_like(V_model, np.nan), where=V_m_obs != 0)
                x, y = R, V_obs * ratio
            else:
                x, y = d["R_kpc"].to_numpy(float)[own], V_model
            ax.plot(x, y, lw=1.1, label=m, **halo_style(m))
        panels.append((g, R, V_obs, ref["e_V_obs"].to_numpy(float)[order]))
    finish_curve_grid(fig, axes, panels, legend_ncols=7, legend_fontsize="x-small")
    return fig
