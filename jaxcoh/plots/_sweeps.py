"""Sweeps (``jaxcoh sweep``): grid heatmaps, loss profiles, and corner plots of bootstrap or multi-start fits.

Each function takes the sweep table (one row per replicate or grid point: the input axis columns, the fitted
parameters, ``loss``, ``rms``, ``r``, ``status``) and, where it needs it, the ``sweep.json`` summary.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._common import is_geometric, new_figure, panel_grid, parameter_label, plain_log_ticks, spans_decades

SWEEP_COLUMNS = ("loss", "rms", "r", "status")
SCATTER_MAX_ROWS = 2000  # corner panels show points up to this many rows, a 2D histogram above


def _metric(table: pd.DataFrame) -> tuple[str, str]:
    # A grid point's rms is in units of its own F_missing (which scales as 1/A0): rms_rel compares points fairly.
    if "rms_rel" in table:
        return "rms_rel", "RMS / mean F_missing"
    return "rms", "RMS of F_missing"


def _edges(centers: np.ndarray, log: bool) -> np.ndarray:
    c = np.log(centers) if log else np.asarray(centers, float)
    if c.size == 1:
        half = 0.5 if not log and c[0] == 0 else (0.1 if log else 0.5 * abs(c[0]))
        e = np.array([c[0] - half, c[0] + half])
    else:
        mid = 0.5 * (c[1:] + c[:-1])
        e = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _grid_ticks(axis, values: np.ndarray, max_ticks: int = 8) -> None:
    """Ticks at the grid's own values (at most ``max_ticks`` of them), written plainly, also on log axes."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    v = np.unique(values)
    v = v[:: -(-v.size // max_ticks)]
    axis.set_major_locator(FixedLocator(v))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
    axis.set_minor_locator(NullLocator())


def _check(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"{what}: the table has no column {', '.join(missing)} (it has {', '.join(table.columns)})")


def plot_sweep_heatmaps(table: pd.DataFrame, summary: Mapping, ncols: int = 3):
    """For each pair of a grid's axes, the lowest RMS over the other axes as a heatmap (one colour scale, one colour
    bar), the grid's best point starred. ``rms_rel`` (RMS / mean F_missing) is mapped when the table has it, as the
    sweep's own ranking does. A one-axis grid is drawn as the lowest RMS against that axis."""
    names = list(summary.get("axes") or [])
    if not names:
        raise ValueError("the sweep summary names no grid axes")
    metric, what = _metric(table)
    _check(table, [*names, metric], "grid heatmaps")
    t = table[np.isfinite(table[metric].to_numpy(float))]
    if t.empty:
        raise ValueError(f"grid heatmaps: no row has a finite {metric}")
    best = t.loc[t[metric].idxmin()]
    model = summary.get("model", "")
    logs = {a: is_geometric(t[a].to_numpy(float)) for a in names}
    if len(names) == 1:
        a = names[0]
        s = t.groupby(a)[metric].min()
        fig = new_figure(4.2, 3.2)
        ax = fig.subplots()
        ax.plot(s.index.to_numpy(float), s.to_numpy(float), "o-", color="C0")
        ax.plot([best[a]], [best[metric]], "*", color="C3", ms=12, label="best")
        ax.set_xscale("log" if logs[a] else "linear")
        ax.set_xlabel(parameter_label(a, model))
        ax.set_ylabel(what)
        ax.legend(fontsize="small")
        ax.set_title(f"grid of {model}", fontsize="medium")
        return fig
    pairs = list(itertools.combinations(names, 2))
    fig, axes = panel_grid(len(pairs), ncols, (3.6, 3.0), (0.8, 0.4))
    vmin, vmax = float(t[metric].min()), float(t[metric].max())
    mesh = None
    for ax, (a, b) in zip(axes, pairs):
        z = t.groupby([a, b])[metric].min().unstack(b)  # rows: a's values, columns: b's values
        xa, yb = z.index.to_numpy(float), z.columns.to_numpy(float)
        mesh = ax.pcolormesh(_edges(xa, logs[a]), _edges(yb, logs[b]), np.ma.masked_invalid(z.to_numpy(float).T),
                             cmap="viridis", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12)
        ax.plot([best[a]], [best[b]], "*", color="w", mec="k", ms=12)
        ax.set_xscale("log" if logs[a] else "linear")
        ax.set_yscale("log" if logs[b] else "linear")
        _grid_ticks(ax.xaxis, xa)
        _grid_ticks(ax.yaxis, yb)
        ax.set_xlabel(parameter_label(a, model))
        ax.set_ylabel(parameter_label(b, model))
    fig.colorbar(mesh, ax=list(axes[:len(pairs)]), label=f"lowest {what}")
    others = "" if len(names) == 2 else ", lowest over the other axes"
    fig.suptitle(f"grid of {model}: {len(table)} points{others}; star: best point", fontsize="medium")
    return fig


def plot_profile(table: pd.DataFrame, summary: Mapping):
    """The loss profile along one parameter (the others refitted at each value): the loss, and below it
    Delta chi^2 with the 68% level (Delta chi^2 = 1) and the interval on the grid when the table has ``delta_chi2``.
    Rows that did not converge are drawn open."""
    name = (summary.get("axes") or [None])[0] or summary.get("param")
    if not name:
        raise ValueError("the sweep summary names no profiled parameter")
    x_col = f"{name}_fixed" if f"{name}_fixed" in table else name
    _check(table, [x_col, "loss"], "profile")
    model = summary.get("model")
    t = table.sort_values(x_col)
    x = t[x_col].to_numpy(float)
    ok = (t["status"] == "CONVERGED").to_numpy() if "status" in t else np.ones(len(t), bool)
    panels = [("loss", "loss (least-squares objective)")]
    if "delta_chi2" in t:
        panels.append(("delta_chi2", r"$\Delta\chi^2$ (profile likelihood)"))
    fig = new_figure(4.4, 2.6 * len(panels) + 0.3)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    log = is_geometric(x)  # a START:STOP:NUM:log range
    for ax, (col, label) in zip(axes, panels):
        y = t[col].to_numpy(float)
        ax.plot(x, y, "-", color="C0", lw=1)
        ax.plot(x[ok], y[ok], "o", color="C0", ms=4, label="converged")
        if (~ok).any():
            ax.plot(x[~ok], y[~ok], "o", mfc="none", color="C3", ms=5, label="not converged")
        if col == "delta_chi2":
            ax.axhline(1.0, color="k", lw=0.8, ls="--", label=r"$\Delta\chi^2 = 1$ (68%)")
            interval = summary.get("interval_68_on_grid")
            if interval:
                ax.axvspan(*interval, color="C0", alpha=0.12, label="68% interval on the grid")
        ax.set_xscale("log" if log else "linear")
        if log:
            plain_log_ticks(ax.xaxis, x)
        ax.set_xlabel(parameter_label(name, model))
        ax.set_ylabel(label)
        ax.legend(fontsize="x-small")
    axes[0].set_title(f"profile of {model} along {name}", fontsize="medium")
    return fig


def plot_corner(table: pd.DataFrame, params: Sequence[str], model: str | None = None, bins: int = 20,
                count_label: str = "replicates", title: str | None = None):
    """A corner-style pair plot of fitted parameters (bootstrap replicates or multi-start end points): histograms on
    the diagonal with the median (solid) and the 16% and 84% quantiles (dashed), every pair below as points (a 2D
    histogram above 2000 rows). Parameters whose values span more than a decade get log axes. Only converged rows
    are used when the table has a ``status`` column and any row converged."""
    params = list(params)
    if not params:
        raise ValueError("corner plot: no parameters named")
    _check(table, params, "corner plot")
    t = table
    if "status" in table and (table["status"] == "CONVERGED").any():
        t = table[table["status"] == "CONVERGED"]
    vals = {p: t[p].to_numpy(float) for p in params}
    logs = {p: spans_decades(v) for p, v in vals.items()}
    lims = {}
    for p, v in vals.items():
        f = v[np.isfinite(v)]
        lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 1.0)
        if logs[p]:
            pad = (hi / lo) ** 0.03
            lims[p] = (lo / pad, hi * pad)
        else:
            pad = 0.03 * (hi - lo) if hi > lo else (0.05 * abs(lo) or 0.5)
            lims[p] = (lo - pad, hi + pad)
    edges = {p: (np.geomspace(*lims[p], bins + 1) if logs[p] else np.linspace(*lims[p], bins + 1)) for p in params}
    d = len(params)
    size = max(1.7, min(2.4, 9.0 / d))
    fig = new_figure(size * d + 0.3, size * d + 0.4)
    for i, j in itertools.product(range(d), range(d)):
        if j > i:
            continue
        ax = fig.add_subplot(d, d, i * d + j + 1)
        px, py = params[j], params[i]
        x = vals[px]
        if i == j:
            f = x[np.isfinite(x)]
            ax.hist(np.clip(f, *lims[px]), bins=edges[px], color="C0", alpha=0.75)
            if f.size:
                q16, q50, q84 = np.percentile(f, [16, 50, 84])
                ax.axvline(q50, color="k", lw=1.2)
                for q in (q16, q84):
                    ax.axvline(q, color="k", lw=0.9, ls="--")
                ax.set_title(f"{px} = {q50:.3g} (+{q84 - q50:.2g} / -{q50 - q16:.2g})", fontsize="x-small")
        else:
            y = vals[py]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() > SCATTER_MAX_ROWS:
                H, _, _ = np.histogram2d(np.clip(x[ok], *lims[px]), np.clip(y[ok], *lims[py]),
                                         bins=[edges[px], edges[py]])
                ax.pcolormesh(edges[px], edges[py], np.ma.masked_equal(H.T, 0), cmap="Blues", rasterized=True)
            else:
                ax.scatter(x[ok], y[ok], s=4, color="C0", alpha=0.6, linewidths=0)
            for p, line in ((px, ax.axvline), (py, ax.axhline)):
                f = vals[p][np.isfinite(vals[p])]
                if f.size:
                    line(np.median(f), color="k", lw=0.8)
            ax.set_yscale("log" if logs[py] else "linear")
            if logs[py]:
                plain_log_ticks(ax.yaxis, vals[py])
            ax.set_ylim(*lims[py])
        ax.set_xscale("log" if logs[px] else "linear")
        if logs[px]:
            plain_log_ticks(ax.xaxis, vals[px])
        ax.set_xlim(*lims[px])
        ax.tick_params(labelsize="x-small")
        if i == d - 1:
            ax.set_xlabel(parameter_label(px, model))
        else:
            ax.tick_params(labelbottom=False)
        if j == 0:
            ax.set_ylabel(count_label if i == 0 else parameter_label(py, model))
        else:
            ax.tick_params(labelleft=False)
    if title is None:
        title = f"{model or 'fit'}: " + (f"{len(t)} of {len(table)} rows converged" if t is not table
                                          else f"{len(table)} rows")
    fig.suptitle(title, fontsize="medium")
    return fig
