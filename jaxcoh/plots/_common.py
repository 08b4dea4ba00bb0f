"""What every figure shares: the lazy matplotlib import, figures without pyplot, atomic saving, labels and colours.

matplotlib is an optional extra (``pip install "jaxcoh[plots]"``). It is imported only when a figure is made, never at
``import jaxcoh``; figures are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas, so no global backend
or pyplot state is touched.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..results import ResultFormatError, atomic_write_bytes  # noqa: F401 (re-exported)

INSTALL_HINT = 'pip install "jaxcoh[plots]"'
FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 150

# Units of the quantities jaxcoh plots; dimensionless quantities carry no bracket.
KPC, KMS, MS2, DEX = "[kpc]", "[km/s]", r"[m s$^{-2}$]", "[dex]"
# Units of the derivation's hyperparameters (coherence.Hyperparameters); the others are pure numbers.
HYPERPARAMETER_UNITS = {"ell0": "kpc", "delta_R": "kpc"}

# One colour per model, the same in every figure (models jaxcoh knows first, in a fixed order).
KNOWN_MODELS = ("newtonian", "rar", "unified_additive", "unified_multiplicative", "per_galaxy_amplitude", "nfw",
                "mass_coherence", "velocity_coherence", "power_law", "power_law_sigma")
_PALETTE = ("#7f7f7f", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22")


class PlotsUnavailable(ImportError):
    """matplotlib (the ``plots`` extra) is not installed."""


def require_matplotlib():
    """The ``matplotlib`` module, or :class:`PlotsUnavailable` telling the user how to install it."""
    try:
        import matplotlib
    except ImportError as e:
        raise PlotsUnavailable(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from e
    return matplotlib


def new_figure(width: float, height: float):
    """A constrained-layout :class:`~matplotlib.figure.Figure` (inches) attached to an Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path_without_suffix: str | Path, formats: Sequence[str] = ("png", "pdf"),
                dpi: int = DEFAULT_DPI) -> list[Path]:
    """Writes ``fig`` as ``PATH.png``, ``PATH.pdf`` ... , each atomically (rendered in memory, then written to a
    temporary file in the same directory and renamed into place). Returns the paths written."""
    base = Path(path_without_suffix)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown figure format(s) {', '.join(bad)}; choose among {', '.join(FORMATS)}")
    written = []
    for fmt in dict.fromkeys(formats):
        buf = io.BytesIO()
        # No creation date in the PDF/SVG: the same result gives byte-identical figures.
        metadata = {"Creator": "jaxcoh", "CreationDate": None} if fmt == "pdf" else \
            {"Creator": "jaxcoh", "Date": None} if fmt == "svg" else {"Software": "jaxcoh"}
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata)
        written.append(atomic_write_bytes(base.with_name(f"{base.name}.{fmt}"), buf.getvalue()))
    return written


def model_colors(models: Iterable[str]) -> dict[str, str]:
    """A colour per model: fixed for the models jaxcoh knows, the unused ones of the palette for the rest."""
    models = list(dict.fromkeys(models))
    out = {m: _PALETTE[KNOWN_MODELS.index(m) % len(_PALETTE)] for m in models if m in KNOWN_MODELS}
    free = [c for c in _PALETTE if c not in out.values()] or list(_PALETTE)
    for i, m in enumerate(m for m in models if m not in out):
        out[m] = free[i % len(free)]
    return {m: out[m] for m in models}


def bracket(unit: str) -> str:
    return f" [{unit}]" if unit else ""


def parameter_label(name: str, model: str | None = None) -> str:
    """``name [unit]`` for a model parameter (unit from the model's declaration) or a derivation hyperparameter."""
    name = name.removesuffix("_fixed")  # a profile table's column of the profiled values
    unit = HYPERPARAMETER_UNITS.get(name, "")
    if model is not None and not unit:
        from ..fmissing.models import get_model

        try:
            spec = get_model(model).parameters
        except KeyError:  # a model this version does not register: no unit known
            return name
        if name in spec.names:
            unit = spec[name].unit
    return name + bracket(unit)


def spans_decades(values: np.ndarray) -> bool:
    """True when ``values`` are all positive and span more than a factor 10 (then a log axis reads better)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return v.size > 1 and bool(np.all(v > 0)) and float(v.max()) > 10 * float(v.min())


def is_geometric(values: np.ndarray) -> bool:
    """True when sorted distinct positive ``values`` are evenly spaced in log (a ``START:STOP:NUM:log`` axis)."""
    v = np.unique(np.asarray(values, float))
    if v.size < 3 or not np.all(v > 0):
        return False
    d = np.diff(np.log(v))
    return bool(np.allclose(d, d[0], rtol=1e-6)) and not bool(np.allclose(np.diff(v), v[1] - v[0], rtol=1e-6))


def plain_log_ticks(axis, values: np.ndarray) -> None:
    """Log-axis ticks at 1, 2, 5 x 10^k written as plain numbers (0.5, 1, 2) when ``values`` span under three
    decades (matplotlib's default then labels minor ticks as 6x10^-1); wider spans keep the 10^k labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or v.max() > 1e3 * v.min():
        return
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def positive(*arrays: np.ndarray) -> np.ndarray:
    """Mask of the entries where every array is finite and positive (what a log axis can show)."""
    ok = np.ones(np.shape(arrays[0]), bool)
    for a in arrays:
        a = np.asarray(a, float)
        ok &= np.isfinite(a) & (a > 0)
    return ok


def grid_shape(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return -(-n // ncols), ncols


def panel_grid(n: int, ncols: int, panel: tuple[float, float], extra: tuple[float, float] = (0.0, 0.0),
               **subplots):
    """A figure of ``n`` panels in rows of at most ``ncols``, each ``panel`` (width, height) inches plus ``extra`` for
    the whole (legends, colour bars); ``(fig, axes [n])``, the grid's unused places removed. ``subplots``: passed to
    :meth:`~matplotlib.figure.Figure.subplots` (``sharex``, ``sharey``)."""
    nrows, ncols = grid_shape(n, ncols)
    fig = new_figure(panel[0] * ncols + extra[0], panel[1] * nrows + extra[1])
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplots).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def finish_curve_grid(fig, axes, panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], legend_ncols: int,
                      legend_fontsize: str) -> None:
    """Finishes a grid of rotation curves: in each panel (``axes`` in the order of ``panels``, one
    ``(galaxy, R [kpc], V_obs [km/s], e_V_obs [km/s])`` each) the observed speeds with their errors over what is
    drawn, the galaxy as title, the axis labels; then one legend for the figure, each label once (at most
    ``legend_ncols`` columns)."""
    for ax, (galaxy, R, V_obs, e_V_obs) in zip(axes, panels):
        ax.errorbar(R, V_obs, yerr=e_V_obs, fmt="o", ms=2.5, color="k", elinewidth=0.8, capsize=0, label="observed",
                    zorder=3)
        ax.set_title(galaxy, fontsize="small")
        ax.set_xlabel(f"R {KPC}")
        ax.set_ylabel(f"V {KMS}")
        ax.set_xlim(left=0)
        ax.tick_params(labelsize="x-small")
    handles = {}
    for ax in axes[:len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=min(len(handles), legend_ncols),
               fontsize=legend_fontsize, frameon=False)
