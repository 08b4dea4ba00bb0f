"""Every figure a result directory allows: which files it holds decides which plots are made.

The files read, as the commands write them (extra columns and keys are ignored):

- ``jaxcoh reproduce``: ``predictions.csv`` (``galaxy, model, F_missing, F_pred``) -> ``f_missing``; RMS and r in the
  legends from ``reproduce.json`` (``models.NAME.fit/cv/seed.rms, .r``) when present.
- ``jaxcoh compare`` or ``jaxcoh fit``: ``curves.csv`` (``galaxy, model, R_kpc, V_obs, e_V_obs, V_gas, V_disk, V_bul,
  V_bar, V_model, g_bar, g_obs, g_model``) -> ``rotation_curves``, ``rar``, ``residuals``.
- ``jaxcoh sweep``: ``sweep.json`` (``kind, model, params, axes``) and its table (``sweep.json``'s ``table``, else
  ``sweep.parquet``, else ``sweep.csv``; columns: the axes, the parameters, ``loss, rms, r, status``) ->
  ``sweep_heatmaps`` (grid: ``rms_rel`` mapped when present, else ``rms``), ``sweep_profile`` (profile: the values
  in ``PARAM_fixed``, else ``PARAM``; ``delta_chi2`` and ``interval_68_on_grid`` drawn when present) or
  ``sweep_corner`` (bootstrap, multistart: the ``params`` columns, rows with ``status`` CONVERGED).
- ``jaxcoh halos``: ``halos.csv`` (``galaxy, model, chi2_nu, bic``) -> ``halo_chi2``; ``halos.json``
  (``models.NAME.wins_by_bic``) -> ``halo_wins``; ``halo_curves.csv`` (``galaxy, model, R_kpc, V_obs, e_V_obs,
  V_gas, V_disk, V_bul, V_bar, V_model``) -> ``halo_curves``. Directories without any of them say nothing of these.
- ``jaxcoh sample``: ``posterior.nc`` (the variables without a galaxy dimension) -> ``posterior_traces``,
  ``posterior_corner``; ``posterior_curves.csv`` (``galaxy, R_kpc, V_obs, e_V_obs, V_model_q05, ..., V_model_q95``)
  -> ``posterior_curves``. Directories without either say nothing of these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..results import ResultFormatError, read_result_json, read_result_table
from ._common import DEFAULT_DPI, require_matplotlib, save_figure
from ._curves import CURVE_COLUMNS, plot_rar, plot_residuals, plot_rotation_curves, select_galaxies
from ._fmissing import PREDICTION_COLUMNS, plot_f_missing
from ._halos import HALO_COLUMNS, HALO_CURVE_COLUMNS, plot_halo_chi2, plot_halo_curves, plot_halo_wins
from ._posterior import (POSTERIOR_CURVE_COLUMNS, plot_posterior_corner, plot_posterior_curves, plot_traces,
                         read_shared_draws)
from ._sweeps import SWEEP_COLUMNS, plot_corner, plot_profile, plot_sweep_heatmaps

log = logging.getLogger("jaxcoh")

PLOTS = ("f_missing", "rotation_curves", "rar", "residuals", "sweep_heatmaps", "sweep_profile", "sweep_corner",
         "halo_chi2", "halo_wins", "halo_curves", "posterior_traces", "posterior_corner", "posterior_curves")
HALO_FILES = {"halo_chi2": "halos.csv", "halo_wins": "halos.json", "halo_curves": "halo_curves.csv"}
POSTERIOR_FILES = {"posterior_traces": "posterior.nc", "posterior_corner": "posterior.nc",
                   "posterior_curves": "posterior_curves.csv"}
SWEEP_PLOT = {"grid": "sweep_heatmaps", "profile": "sweep_profile", "bootstrap": "sweep_corner",
              "multistart": "sweep_corner"}
LOOKED_FOR = ("predictions.csv (with reproduce.json) from jaxcoh reproduce; curves.csv from jaxcoh compare or "
              "jaxcoh fit; sweep.json with sweep.parquet or sweep.csv from jaxcoh sweep; halos.csv, halos.json and "
              "halo_curves.csv from jaxcoh halos; posterior.nc and posterior_curves.csv from jaxcoh sample")


class _Plan:
    """What a result directory holds: the inputs of each plot that can be made, the reason for each that cannot."""

    def __init__(self, result_dir: Path):
        self.dir = result_dir
        self.inputs: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.other_kind: set[str] = set()  # the plots of the sweep kinds this directory is not
        self._reproduce()
        self._curves()
        self._sweep()
        self._halos()
        self._posterior()

    def _reproduce(self) -> None:
        pred, rep = self.dir / "predictions.csv", self.dir / "reproduce.json"
        reproduce = read_result_json(rep) if rep.is_file() else None
        if reproduce is not None and not isinstance(reproduce.get("models", {}), Mapping):
            raise ResultFormatError(f"{rep}: 'models' must be an object of per-model results")
        if not pred.is_file():
            self.skipped["f_missing"] = ("reproduce.json is here but predictions.csv, which jaxcoh reproduce writes "
                                         "beside it, is not" if reproduce is not None
                                         else "predictions.csv not found (written by jaxcoh reproduce)")
            return
        table = read_result_table(pred, PREDICTION_COLUMNS)
        if table.empty:
            self.skipped["f_missing"] = f"{pred} has no rows"
            return
        self.inputs["f_missing"] = {"predictions": table, "reproduce": reproduce}

    def _curves(self) -> None:
        path = self.dir / "curves.csv"
        names = ("rotation_curves", "rar", "residuals")
        if not path.is_file():
            self.skipped.update(dict.fromkeys(names, "curves.csv not found (written by jaxcoh compare and jaxcoh fit)"))
            return
        table = read_result_table(path, CURVE_COLUMNS)
        if table.empty:
            self.skipped.update(dict.fromkeys(names, f"{path} has no rows"))
            return
        for n in names:
            self.inputs[n] = {"curves": table}

    def _sweep(self) -> None:
        names = set(SWEEP_PLOT.values())
        path = self.dir / "sweep.json"
        if not path.is_file():
            self.skipped.update(dict.fromkeys(names, "sweep.json not found (written by jaxcoh sweep)"))
            return
        summary = read_result_json(path)
        kind = summary.get("kind")
        if kind not in SWEEP_PLOT:
            raise ResultFormatError(f"{path}: 'kind' must be one of {', '.join(SWEEP_PLOT)}, found {kind!r}")
        for key in ("params", "axes"):
            if not isinstance(summary.get(key, []), list):
                raise ResultFormatError(f"{path}: '{key}' must be a list of names")
        target = SWEEP_PLOT[kind]
        for n in names - {target}:
            self.skipped[n] = f"sweep.json is a {kind} sweep"
            self.other_kind.add(n)
        candidates = [summary["table"]] if isinstance(summary.get("table"), str) else ["sweep.parquet", "sweep.csv"]
        table_path = next((self.dir / c for c in candidates if (self.dir / c).is_file()), None)
        if table_path is None:
            self.skipped[target] = f"sweep.json is here but its table is not ({' or '.join(candidates)})"
            return
        params, axes = list(summary.get("params", [])), list(summary.get("axes", []))
        required = [*SWEEP_COLUMNS, *params, *(axes if kind == "grid" else [])]
        try:
            table = read_result_table(table_path, required)
        except ImportError:
            self.skipped[target] = f"reading {table_path.name} needs pyarrow: pip install \"jaxcoh[parquet]\""
            return
        if kind == "profile" and axes and not {axes[0], f"{axes[0]}_fixed"} & set(table.columns):
            raise ResultFormatError(f"{table_path}: no column {axes[0]}_fixed (or {axes[0]}) for the profiled "
                                    f"parameter named in sweep.json")
        if table.empty:
            self.skipped[target] = f"{table_path} has no rows"
        elif kind == "grid" and not axes:
            self.skipped[target] = "sweep.json names no grid axes"
        elif kind == "profile" and not axes and not summary.get("param"):
            self.skipped[target] = "sweep.json names no profiled parameter"
        elif kind in ("bootstrap", "multistart") and not params:
            self.skipped[target] = "sweep.json names no fitted parameters"
        else:
            self.inputs[target] = {"table": table, "summary": summary}

    def _present(self, files: Mapping[str, str], command: str) -> set[str]:
        """The names among ``files`` (``{plot: file}``) that are files here; each plot whose file is not is skipped,
        and every one of them is of another kind when none is here (then there is nothing to say of them)."""
        present = {f for f in set(files.values()) if (self.dir / f).is_file()}
        for name, f in files.items():
            if f not in present:
                self.skipped[name] = f"{f} not found (written by {command})"
                if not present:
                    self.other_kind.add(name)
        return present

    def _halos(self) -> None:
        present = self._present(HALO_FILES, "jaxcoh halos")
        if "halos.json" in present:
            path = self.dir / "halos.json"
            summary = read_result_json(path)
            if not isinstance(summary.get("models"), Mapping) or not summary["models"]:
                raise ResultFormatError(f"{path}: 'models' must be an object of per-model results")
            self.inputs["halo_wins"] = {"summary": summary}
        for name, columns, key in (("halo_chi2", HALO_COLUMNS, "table"), ("halo_curves", HALO_CURVE_COLUMNS, "curves")):
            path = self.dir / HALO_FILES[name]
            if path.name in present:
                table = read_result_table(path, columns)
                if table.empty:
                    self.skipped[name] = f"{path} has no rows"
                else:
                    self.inputs[name] = {key: table}

    def _posterior(self) -> None:
        present = self._present(POSTERIOR_FILES, "jaxcoh sample")
        if "posterior.nc" in present:
            try:
                draws, attrs = read_shared_draws(self.dir / "posterior.nc")
            except (OSError, ValueError) as e:
                raise ResultFormatError(f"{self.dir / 'posterior.nc'}: cannot be read by ArviZ: {e}") from None
            for name in ("posterior_traces", "posterior_corner"):
                if draws:
                    self.inputs[name] = {"draws": draws, "model": attrs.get("model")}
                else:
                    self.skipped[name] = "posterior.nc holds no shared parameter"
        if "posterior_curves.csv" in present:
            table = read_result_table(self.dir / "posterior_curves.csv", POSTERIOR_CURVE_COLUMNS)
            if table.empty:
                self.skipped["posterior_curves"] = f"{self.dir / 'posterior_curves.csv'} has no rows"
            else:
                self.inputs["posterior_curves"] = {"curves": table}


def available_plots(result_dir: str | Path) -> dict[str, str | None]:
    """For every plot jaxcoh knows (:data:`PLOTS`), ``None`` when ``result_dir`` holds what it needs, else the
    reason it does not. Raises :class:`ResultFormatError` for a file present but malformed."""
    plan = _Plan(_check_dir(result_dir))
    return {name: None if name in plan.inputs else plan.skipped.get(name, "no input") for name in PLOTS}


def _check_dir(result_dir: str | Path) -> Path:
    d = Path(result_dir)
    if not d.exists():
        raise FileNotFoundError(f"result directory {d} not found")
    if not d.is_dir():
        raise NotADirectoryError(f"{d} is not a directory (give the directory a jaxcoh command wrote with --out)")
    return d


def _renderers(galaxies) -> dict[str, Callable[..., Any]]:
    return {
        "f_missing": lambda predictions, reproduce: plot_f_missing(predictions, reproduce),
        "rotation_curves": lambda curves: plot_rotation_curves(curves, galaxies=galaxies),
        "rar": lambda curves: plot_rar(curves),
        "residuals": lambda curves: plot_residuals(curves),
        "sweep_heatmaps": lambda table, summary: plot_sweep_heatmaps(table, summary),
        "sweep_profile": lambda table, summary: plot_profile(table, summary),
        "sweep_corner": lambda table, summary: plot_corner(
            table, summary["params"], model=summary.get("model"),
            count_label="replicates" if summary["kind"] == "bootstrap" else "starts"),
        "halo_chi2": lambda table: plot_halo_chi2(table),
        "halo_wins": lambda summary: plot_halo_wins(summary),
        "halo_curves": lambda curves: plot_halo_curves(curves, galaxies=galaxies),
        "posterior_traces": lambda draws, model: plot_traces(draws, model),
        "posterior_corner": lambda draws, model: plot_posterior_corner(draws, model),
        "posterior_curves": lambda curves: plot_posterior_curves(curves, galaxies=galaxies or 8),
    }


def plot_result_dir(result_dir: str | Path, out: str | Path | None = None, formats: Sequence[str] = ("png", "pdf"),
                    galaxies: int | Sequence[str] | None = None, dpi: int = DEFAULT_DPI) -> dict[str, list[Path]]:
    """Makes every figure the files in ``result_dir`` allow, into ``out`` (default ``result_dir/plots``), each as
    ``NAME.png``, ``NAME.pdf`` ...; logs each plot skipped and why. Returns ``{plot name: [files written]}``.

    ``galaxies``: the rotation-curve panels, a number (the first N) or names. Raises :class:`FileNotFoundError`
    (naming the files looked for) when no plot can be made, :class:`ResultFormatError` for a malformed file (before
    any figure is written), :class:`PlotsUnavailable` without matplotlib."""
    require_matplotlib()
    result_dir = _check_dir(result_dir)
    plan = _Plan(result_dir)
    reasons = _grouped(plan)
    if not plan.inputs:
        found = [r for r in reasons if "not found" not in r]
        raise FileNotFoundError(f"nothing to plot in {result_dir}: looked for {LOOKED_FOR}"
                                + (f" ({'; '.join(found)})" if found else ""))
    for name in ("rotation_curves", "halo_curves", "posterior_curves"):  # a bad selection stops before any figure is written
        if name in plan.inputs:
            curves = plan.inputs[name]["curves"]
            shown = select_galaxies(curves, galaxies)
            n_all = curves["galaxy"].nunique()
            if len(shown) < n_all:
                log.info(f"{name.replace('_', ' ')}: {len(shown)} of {n_all} galaxies (choose with --galaxies N or "
                         "NAMES)")
    for reason in reasons:
        log.info(f"skipped {reason}")
    out = Path(out) if out is not None else result_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    render = _renderers(galaxies)
    written: dict[str, list[Path]] = {}
    for name in PLOTS:
        if name in plan.inputs:
            fig = render[name](**plan.inputs[name])
            written[name] = save_figure(fig, out / name, formats, dpi=dpi)
            log.info(f"wrote {', '.join(str(p) for p in written[name])}")
    return written


def _grouped(plan: _Plan) -> list[str]:
    """``"a, b: reason"`` per distinct reason a plot was skipped (the sweep plots of other kinds left out)."""
    by_reason: dict[str, list[str]] = {}
    for name in PLOTS:
        reason = plan.skipped.get(name)
        if name not in plan.inputs and reason and name not in plan.other_kind:
            by_reason.setdefault(reason, []).append(name)
    return [f"{', '.join(names)}: {reason}" for reason, names in by_reason.items()]
