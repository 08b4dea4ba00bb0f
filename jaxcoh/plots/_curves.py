"""Rotation-curve fits (``jaxcoh compare`` / ``jaxcoh fit``): the curves, the radial acceleration relation, residuals.

Every function takes the ``curves.csv`` table: one row per point per model, speeds [km/s] at that model's fitted
nuisance values (``V_gas, V_disk, V_bul`` already scaled by sqrt(Upsilon), so ``V_bar^2 = V_gas|V_gas| + V_disk^2 +
V_bul^2``) and accelerations [m/s^2].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._common import DEX, MS2, finish_curve_grid, model_colors, panel_grid, positive

CURVE_COLUMNS = ("galaxy", "model", "R_kpc", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "V_bar", "V_model",
                 "g_bar", "g_obs", "g_model")
DEFAULT_GALAXIES = 16  # panels of the rotation-curve grid when none are named
HIST_MIN_POINTS = 1000  # the RAR shows the data as a 2D histogram from this many points, as points below it

# Baryonic components: black/grey line styles, so that colour always means a model.
_COMPONENTS = (("V_gas", "gas", ":", "0.35"), ("V_disk", "disk", "-.", "0.35"),
               ("V_bul", "bulge", (0, (5, 1, 1, 1)), "0.35"), ("V_bar", "baryons", "--", "k"))


class UnknownGalaxies(ValueError):
    """Galaxies were named that the curves table does not hold; the message names them."""


def select_galaxies(curves: pd.DataFrame, galaxies: int | str | Sequence[str] | None = None) -> list[str]:
    """The galaxies to draw: the first ``galaxies`` in table order (default 16), or the named ones (a ValueError
    names any the table does not hold)."""
    order = list(dict.fromkeys(curves["galaxy"].astype(str)))
    if galaxies is None:
        galaxies = DEFAULT_GALAXIES
    if isinstance(galaxies, (int, np.integer)):
        if galaxies < 1:
            raise ValueError(f"number of galaxies must be positive, got {galaxies}")
        return order[:int(galaxies)]
    names = [galaxies] if isinstance(galaxies, str) else [str(g) for g in galaxies]
    missing = [g for g in names if g not in set(order)]
    if missing:
        raise UnknownGalaxies(f"galaxies not in the curves table: {', '.join(missing)} (it holds {len(order)}: "
                         f"{', '.join(order[:8])}{', ...' if len(order) > 8 else ''})")
    return names


def _models(curves: pd.DataFrame) -> list[str]:
    models = list(dict.fromkeys(curves["model"].astype(str)))
    if not models:
        raise ValueError("curves table has no rows")
    return models


def plot_rotation_curves(curves: pd.DataFrame, galaxies: int | Sequence[str] | None = None, ncols: int = 4,
                         data_model: str | None = None):
    """A grid of rotation curves, one panel per galaxy: the observed speeds with their errors, the baryonic
    components (gas, disk, bulge) and their sum, and every model's fitted curve.

    ``galaxies``: how many (the first N in table order, default 16) or which (names).

    Each model fits its own Upsilon, distance and inclination, so its radii and speeds are its own. The data and
    the baryons are drawn at ``data_model``'s values (default: the first model other than newtonian), and every
    other model's curve is drawn over them as ``V_obs x V_model / V_obs`` point by point, with its own values in the
    ratio: the fraction of the observed speed each fit reaches, at the radii shown. (Where a galaxy's point count
    differs between models, a model's curve is drawn at its own radii instead.)"""
    names = select_galaxies(curves, galaxies)
    models = _models(curves)
    data_model = data_model or next((m for m in models if m != "newtonian"), models[0])
    if data_model not in models:
        raise ValueError(f"data_model {data_model!r} not in the curves table (models: {', '.join(models)})")
    colors = model_colors(models)
    fig, axes = panel_grid(len(names), ncols, (2.9, 2.4), (0.0, 0.6))
    by_galaxy = {g: d for g, d in curves.groupby(curves["galaxy"].astype(str), sort=False)}
    differs = False
    panels = []
    for ax, g in zip(axes, names):
        gal = by_galaxy[g]
        ref = gal[gal["model"] == data_model]
        if ref.empty:  # data_model did not fit this galaxy: draw the data at the first model that did
            ref = gal[gal["model"] == gal["model"].iloc[0]]
        order = np.argsort(ref["R_kpc"].to_numpy(float), kind="stable")
        R = ref["R_kpc"].to_numpy(float)[order]
        V_obs = ref["V_obs"].to_numpy(float)
        for col, label, ls, color in _COMPONENTS:
            v = ref[col].to_numpy(float)[order]
            if col == "V_bar" or np.any(np.abs(v[np.isfinite(v)]) > 0):
                ax.plot(R, v, ls=ls, color=color, lw=1.0, label=label)
        for m in models:
            d = gal[gal["model"] == m]
            if d.empty:
                continue
            V_model = d["V_model"].to_numpy(float)
            if len(d) == len(ref):  # the same points, in the same order, at this model's nuisance values
                V_m_obs = d["V_obs"].to_numpy(float)
                differs |= not np.allclose(V_m_obs, V_obs, rtol=1e-6, equal_nan=True)
                ratio = np.divide(V_model, V_m_obs, out=np.full_like(V_model, np.nan), where=V_m_obs != 0)
                x, y = R, (V_obs * ratio)[order]
            else:
                own = np.argsort(d["R_kpc"].to_numpy(float), kind="stable")
                x, y = d["R_kpc"].to_numpy(float)[own], V_model[own]
                differs = True
            ax.plot(x, y, color=colors[m], lw=1.4, label=m)
        panels.append((g, R, V_obs[order], ref["e_V_obs"].to_numpy(float)[order]))
    finish_curve_grid(fig, axes, panels, legend_ncols=6, legend_fontsize="small")
    if differs:
        fig.suptitle(f"data and baryons at {data_model}'s fitted Upsilon, distance and inclination; other models "
                     "drawn as V_obs x their V_model/V_obs", fontsize="small")
    return fig


def _binned_median(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Medians of ``y`` and of ``x`` in the bins of ``x`` (``edges``), for bins holding at least one point."""
    idx = np.digitize(x, edges[1:-1])
    xs, ys = [], []
    for k in range(len(edges) - 1):
        sel = idx == k
        if sel.any():
            xs.append(np.median(x[sel]))
            ys.append(np.median(y[sel]))
    return np.asarray(xs), np.asarray(ys)


def _log_ratio(curves: pd.DataFrame) -> np.ndarray:
    ok = positive(curves["g_obs"], curves["g_model"])
    return np.log10(curves["g_obs"].to_numpy(float)[ok] / curves["g_model"].to_numpy(float)[ok])


def plot_rar(curves: pd.DataFrame, ncols: int = 3, bins: int = 15):
    """The radial acceleration relation, one panel per model: ``g_obs`` against ``g_bar`` (log-log) as points, or a
    2D histogram from 1000 points on, at that model's fitted nuisance values; binned medians of the data and of the
    model's ``g_model``; the 1:1 (Newtonian) line; the scatter of log10(g_obs/g_model) in the legend."""
    models = _models(curves)
    colors = model_colors(models)
    fig, axes = panel_grid(len(models), ncols, (3.4, 3.2), sharex=True, sharey=True)
    ok_all = positive(curves["g_bar"], curves["g_obs"])
    lg = np.log10(curves.loc[ok_all, ["g_bar", "g_obs"]].to_numpy(float)) if ok_all.any() else np.zeros((0, 2))
    lo = float(lg.min()) - 0.1 if lg.size else -12.0
    hi = float(lg.max()) + 0.1 if lg.size else -8.0
    edges = np.linspace(lo, hi, bins + 1)
    from matplotlib.colors import LogNorm

    for ax, m in zip(axes, models):
        d = curves[curves["model"] == m]
        ok = positive(d["g_bar"], d["g_obs"])
        gb, go = d["g_bar"].to_numpy(float)[ok], d["g_obs"].to_numpy(float)[ok]
        if ok.sum() >= HIST_MIN_POINTS:
            e = np.linspace(lo, hi, 60)
            H, _, _ = np.histogram2d(np.log10(gb), np.log10(go), bins=[e, e])
            ax.pcolormesh(10.0**e, 10.0**e, np.ma.masked_equal(H.T, 0), cmap="Greys", norm=LogNorm(vmin=1),
                          rasterized=True)
            ax.plot([], [], "s", color="0.5", label=f"data ({ok.sum()} points)")
        else:
            ax.scatter(gb, go, s=3, color="0.6", linewidths=0, label=f"data ({ok.sum()} points)")
        ax.plot(10.0 ** edges[[0, -1]], 10.0 ** edges[[0, -1]], color="k", lw=0.8, ls="--", label="1:1 (Newtonian)")
        if ok.any():
            bx, by = _binned_median(np.log10(gb), np.log10(go), edges)
            ax.plot(10.0**bx, 10.0**by, "o", color="k", ms=4, label="data, binned median")
        okm = positive(d["g_bar"], d["g_model"])
        if okm.any():
            bx, by = _binned_median(np.log10(d["g_bar"].to_numpy(float)[okm]),
                                    np.log10(d["g_model"].to_numpy(float)[okm]), edges)
            lr = _log_ratio(d)
            ax.plot(10.0**bx, 10.0**by, "-", color=colors[m], lw=2,
                    label="model, binned median" + (f"; scatter {np.std(lr):.3f} dex" if lr.size else ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(10.0**lo, 10.0**hi)
        ax.set_ylim(10.0**lo, 10.0**hi)
        ax.set_title(m, fontsize="medium")
        ax.set_xlabel(rf"$g_\mathrm{{bar}}$ {MS2}")
        ax.set_ylabel(rf"$g_\mathrm{{obs}}$ {MS2}")
        ax.legend(fontsize="x-small", loc="lower right")  # the data lie above the 1:1 line
    return fig


def plot_residuals(curves: pd.DataFrame, ncols: int = 3, bins: int = 40):
    """Histograms of log10(g_obs/g_model) [dex], one panel per model, on common bins, with the scatter (standard
    deviation, as ``compare.json``'s ``rar_scatter_dex``) and the median in the legend."""
    models = _models(curves)
    colors = model_colors(models)
    lr_all = _log_ratio(curves)
    half = max(0.1, float(np.percentile(np.abs(lr_all), 99.5))) if lr_all.size else 0.5
    edges = np.linspace(-half, half, bins + 1)
    fig, axes = panel_grid(len(models), ncols, (3.2, 2.6), sharex=True)
    for ax, m in zip(axes, models):
        lr = _log_ratio(curves[curves["model"] == m])
        label = (f"scatter {np.std(lr):.3f} dex\nmedian {np.median(lr):+.3f} dex\n{lr.size} points" if lr.size
                 else "no point with g_obs, g_model > 0")
        ax.hist(np.clip(lr, edges[0], edges[-1]), bins=edges, color=colors[m], alpha=0.8, label=label)
        ax.axvline(0.0, color="k", lw=0.8, ls="--")
        ax.set_title(m, fontsize="medium")
        ax.set_xlabel(rf"log$_{{10}}$($g_\mathrm{{obs}}$ / $g_\mathrm{{model}}$) {DEX}")
        ax.set_ylabel("points")
        ax.legend(fontsize="x-small", loc="upper left", handlelength=1.0)
    return fig
