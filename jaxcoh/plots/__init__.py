"""Figures from jaxcoh's results (needs the optional extra: ``pip install "jaxcoh[plots]"``).

Each ``plot_*`` function takes the tables and summaries a command writes and returns a
:class:`matplotlib.figure.Figure` (made without pyplot, on an Agg canvas: no global state); :func:`save_figure` writes
it as PNG, PDF (or SVG) atomically; :func:`plot_result_dir` makes every figure a result directory allows. matplotlib is
imported when the first figure is made, so importing this module never needs it.

    from jaxcoh.plots import plot_rar, save_figure
    from jaxcoh.results import read_table
    save_figure(plot_rar(read_table("results/compare/curves.csv")), "rar", ("png", "pdf"))
"""

from ._common import FORMATS, PlotsUnavailable, ResultFormatError, require_matplotlib, save_figure
from ._curves import CURVE_COLUMNS, UnknownGalaxies, plot_rar, plot_residuals, plot_rotation_curves, select_galaxies
from ._fmissing import PREDICTION_COLUMNS, plot_f_missing
from ._halos import HALO_COLUMNS, HALO_CURVE_COLUMNS, plot_halo_chi2, plot_halo_curves, plot_halo_wins
from ._posterior import POSTERIOR_CURVE_COLUMNS, plot_posterior_corner, plot_posterior_curves, plot_traces
from ._resultdir import PLOTS, available_plots, plot_result_dir
from ._sweeps import SWEEP_COLUMNS, plot_corner, plot_profile, plot_sweep_heatmaps

__all__ = [
    "CURVE_COLUMNS", "FORMATS", "HALO_COLUMNS", "HALO_CURVE_COLUMNS", "PLOTS", "POSTERIOR_CURVE_COLUMNS",
    "PREDICTION_COLUMNS", "SWEEP_COLUMNS",
    "PlotsUnavailable", "ResultFormatError", "UnknownGalaxies", "available_plots", "plot_corner", "plot_f_missing",
    "plot_halo_chi2", "plot_halo_curves", "plot_halo_wins", "plot_posterior_corner", "plot_posterior_curves",
    "plot_profile",
    "plot_rar", "plot_residuals", "plot_result_dir", "plot_rotation_curves", "plot_sweep_heatmaps", "plot_traces",
    "require_matplotlib", "save_figure", "select_galaxies",
]
