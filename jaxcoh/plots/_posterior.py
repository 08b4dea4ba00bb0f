"""Figures of ``jaxcoh sample``: chain traces and a corner plot of the shared parameters (from ``posterior.nc``), and
the posterior bands of the model curves (``posterior_curves.csv``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import new_figure, panel_grid, spans_decades
from ._curves import select_galaxies
from ._sweeps import plot_corner

POSTERIOR_CURVE_COLUMNS = ("galaxy", "R_kpc", "V_obs", "e_V_obs", "V_model_q05", "V_model_q16", "V_model_q50",
                           "V_model_q84", "V_model_q95")


def read_shared_draws(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """``({name: [chain, draw]}, attrs)``: the posterior's variables without a galaxy dimension (the shared
    parameters and sigma_int) from a ``posterior.nc`` of ``jaxcoh sample``."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        import arviz as az

        idata = az.from_netcdf(str(path))
    post = idata.posterior
    shared = {name: np.asarray(v) for name, v in post.data_vars.items() if v.dims == ("chain", "draw")}
    return shared, dict(post.attrs)


def plot_traces(draws: Mapping[str, np.ndarray], model: str | None = None):
    """One row per parameter: every chain's trace (left) and its histogram (right); log axes for parameters whose
    draws span more than a decade. ``draws``: ``{name: [chain, draw]}``."""
    names = list(draws)
    if not names:
        raise ValueError("trace plot: no shared parameters in the posterior")
    fig = new_figure(9.0, 1.9 * len(names) + 0.5)
    axes = fig.subplots(len(names), 2, squeeze=False, gridspec_kw={"width_ratios": (3, 1)})
    for row, name in zip(axes, names):
        x = np.asarray(draws[name], float)
        log = spans_decades(x[np.isfinite(x)])
        edges = np.histogram_bin_edges(np.log10(x) if log else x, bins=30)
        for c, chain in enumerate(x):
            row[0].plot(np.arange(chain.size), chain, lw=0.6, alpha=0.8, color=f"C{c % 10}", label=f"chain {c}")
            row[1].hist(chain, bins=10**edges if log else edges, histtype="step", color=f"C{c % 10}",
                        orientation="horizontal")
        row[0].set_ylabel(name)
        if log:
            row[0].set_yscale("log")
            row[1].set_yscale("log")
        row[1].set_yticklabels([])
        row[1].set_xlabel("draws" if row is axes[-1] else "")
    axes[-1][0].set_xlabel("draw")
    axes[0][0].legend(fontsize="x-small", ncols=min(x.shape[0], 4), loc="upper right")
    fig.suptitle(f"{model}: chains after warm-up" if model else "chains after warm-up")
    return fig


def plot_posterior_corner(draws: Mapping[str, np.ndarray], model: str | None = None):
    """A corner plot of the shared parameters' draws (all chains), medians and 16/84% quantiles marked."""
    names = list(draws)
    if not names:
        raise ValueError("corner plot: no shared parameters in the posterior")
    table = pd.DataFrame({n: np.asarray(draws[n], float).reshape(-1) for n in names})
    return plot_corner(table, names, count_label="draws", title=f"{model}: posterior" if model else "posterior")


def plot_posterior_curves(curves: pd.DataFrame, galaxies: int | Sequence[str] | None = 8, ncols: int = 4):
    """Per galaxy: the observed speeds with their errors, the posterior median of the model curve and its 68% and
    90% bands (the model's spread over the draws, at the table's radii and inclination)."""
    shown = select_galaxies(curves, galaxies)
    fig, axes = panel_grid(len(shown), ncols, (3.0, 2.5), (0.0, 0.4))
    for ax, name in zip(axes, shown):
        g = curves[curves["galaxy"].astype(str) == name].sort_values("R_kpc")
        r = g["R_kpc"].to_numpy(float)
        if len(r) > 1:
            ax.fill_between(r, g["V_model_q05"], g["V_model_q95"], color="C0", alpha=0.2, lw=0, label="90%")
            ax.fill_between(r, g["V_model_q16"], g["V_model_q84"], color="C0", alpha=0.4, lw=0, label="68%")
            ax.plot(r, g["V_model_q50"], color="C0", lw=1.2, label="median")
        else:  # one point: bands have no width to fill; draw them as bars beside it
            x = r + 0.02 * max(abs(r[0]), 1e-3)
            for lo, hi, a in (("q05", "q95", 0.35), ("q16", "q84", 0.7)):
                ax.vlines(x, g[f"V_model_{lo}"], g[f"V_model_{hi}"], color="C0", alpha=a, lw=4)
            ax.plot(x, g["V_model_q50"], "_", color="C0", ms=10)
        ax.errorbar(r, g["V_obs"], yerr=g["e_V_obs"], fmt="o", ms=2.5, color="k", lw=0.8, label="observed")
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("R [kpc]")
        ax.set_ylabel("V [km/s]")
    axes[0].legend(fontsize="x-small")
    fig.suptitle("posterior of the model curves")
    return fig
