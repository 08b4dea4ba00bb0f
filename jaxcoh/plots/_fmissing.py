"""The seed's comparison: each galaxy's F_missing against each model's prediction (``jaxcoh reproduce``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._common import model_colors, panel_grid, plain_log_ticks, spans_decades

PREDICTION_COLUMNS = ("galaxy", "model", "F_missing", "F_pred")


def _rms_r(obs: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    if obs.size < 2:
        return float("nan"), float("nan")
    rms = float(np.sqrt(np.mean((pred - obs) ** 2)))
    sx, sy = np.std(pred), np.std(obs)
    r = float(np.mean((pred - pred.mean()) * (obs - obs.mean())) / (sx * sy)) if sx > 0 and sy > 0 else float("nan")
    return rms, r


def _stat(entry: Mapping | None, label: str) -> str | None:
    if not isinstance(entry, Mapping) or entry.get("rms") is None:
        return None
    r = entry.get("r")
    return f"{label}: RMS {entry['rms']:.3g}" + (f", r {r:.3f}" if r is not None else "")


def plot_f_missing(predictions: pd.DataFrame, reproduce: Mapping | None = None, ncols: int = 3):
    """F_missing (observed, per galaxy) against F_pred, one panel per model, with the 1:1 line.

    ``predictions``: columns ``galaxy, model, F_missing, F_pred`` (one row per in-sample galaxy per model, at
    jaxcoh's best fit). ``reproduce``: the ``reproduce.json`` content; its ``fit`` RMS and r (and the seed's and the
    cross-validated ones) go in each legend; without it RMS and r are computed from the rows. Both axes are
    logarithmic when every value is positive and they span more than a decade."""
    models = list(dict.fromkeys(predictions["model"]))
    if not models:
        raise ValueError("predictions table has no rows")
    info = (reproduce or {}).get("models", {}) or {}
    colors = model_colors(models)
    fig, axes = panel_grid(len(models), ncols, (4.0, 3.8))
    for ax, name in zip(axes, models):
        rows = predictions[predictions["model"] == name]
        obs, pred = rows["F_missing"].to_numpy(float), rows["F_pred"].to_numpy(float)
        ok = np.isfinite(obs) & np.isfinite(pred)
        obs, pred = obs[ok], pred[ok]
        both = np.concatenate([obs, pred])
        log = spans_decades(both)
        ax.scatter(pred, obs, s=12, color=colors[name], alpha=0.75, linewidths=0, label=f"galaxies ({obs.size})")
        if both.size:
            lo, hi = float(both.min()), float(both.max())
            pad = (hi / lo) ** 0.05 if log else 0.05 * (hi - lo or 1.0)
            lo, hi = (lo / pad, hi * pad) if log else (lo - pad, hi + pad)
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--", label="1:1")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            plain_log_ticks(ax.xaxis, both)
            plain_log_ticks(ax.yaxis, both)
        entry = info.get(name, {}) if isinstance(info, Mapping) else {}
        stats = [_stat(entry.get("fit"), "jaxcoh fit"), _stat(entry.get("cv"), "cross-validated"),
                 _stat(entry.get("seed"), "seed (published)")]
        stats = [s for s in stats if s]
        if not stats:
            rms, r = _rms_r(obs, pred)
            stats = [f"RMS {rms:.3g}, r {r:.3f}"]
        for s in stats:  # text-only legend entries
            ax.plot([], [], ls="none", label=s)
        ax.legend(fontsize="x-small", loc="upper left", handlelength=1.2, framealpha=0.7)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(r"$F_\mathrm{pred}$ (model)")
        ax.set_ylabel(r"$F_\mathrm{missing}$ (from the curves)")
    return fig
