"""``jaxcoh sweep``: bootstrap, hyperparameter grids, profiles and multi-start, chunked and resumable."""

from __future__ import annotations

import numpy as np

from .command import Command
from .common import (DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, f_missing_model_names, load_data, log,
                     out_option, progress)
from .options import ConfigError, Option
from .rundir import write_run

OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("sweep"),
    Option("kind", "bootstrap", "what to sweep", choices=("bootstrap", "grid", "profile", "multistart")),
    Option("model", "mass_coherence", "F_missing model to fit", choices=f_missing_model_names),
    Option("recipe", "legacy", "galaxy-property recipe", choices=("legacy", "sparc")),
    Option("n_boot", 1000, "bootstrap replicates", type="int"),
    Option("axes", ["ell0=2:10:4", "A0=0.5:1.5:4", "gamma_rough=0.05:0.2:4", "beta_sigma=1:2:4"],
           "grid axes, NAME=START:STOP:NUM[:log], comma-separated (derivation hyperparameters)", type="list",
           metavar="AXES"),
    Option("param", "gamma", "profiled parameter (kind=profile)"),
    Option("values", "0.1:3:30", "profiled values, START:STOP:NUM[:log]", metavar="RANGE"),
    Option("n_starts", 4, "starts per fit (bootstrap: 1 = from the full-sample fit, plus n-1 Sobol starts)",
           type="int"),
    Option("chunk_size", 1024, "rows per jitted call (and per resumable chunk file)", type="int"),
    Option("solver", "lm", "solver: lm (least squares), lbfgs or adam", choices=("lm", "lbfgs", "adam")),
    Option("max_iter", 200, "iterations per fit", type="int"),
    Option("seed", 0, "seed of the replicates and the start design", type="nonneg_int"),
    Option("format", "parquet", "table format (parquet needs pyarrow; falls back to csv)", choices=("parquet", "csv")),
    *VERBOSITY_OPTIONS,
)


def parse_range(text: str, where: str) -> np.ndarray:
    """``START:STOP:NUM[:log]`` as values (linear or logarithmic spacing)."""
    parts = text.split(":")
    try:
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
            raise ValueError
        start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(f"'{where}': {text!r} is not START:STOP:NUM[:log]") from None
    if num < 1:
        raise ConfigError(f"'{where}': {text!r} needs NUM >= 1")
    if len(parts) == 4:
        if start <= 0 or stop <= 0:
            raise ConfigError(f"'{where}': log spacing needs positive START and STOP, got {text!r}")
        return np.geomspace(start, stop, num)
    return np.linspace(start, stop, num)


def parse_axes(values: dict) -> dict[str, np.ndarray]:
    from ..fmissing.sweeps import GRID_AXES

    axes = {}
    for item in values["axes"]:
        name, sep, rng = item.partition("=")
        if not sep or name not in GRID_AXES:
            raise ConfigError(f"'axes': {item!r} must be NAME=START:STOP:NUM[:log] with NAME among "
                              f"{', '.join(GRID_AXES)}")
        axes[name] = parse_range(rng, "axes")
    return axes


def validate(values: dict) -> None:
    from ..fmissing import get_model

    if values["kind"] == "grid":
        parse_axes(values)
    if values["kind"] == "profile":
        names = get_model(values["model"]).parameters.names
        if values["param"] not in names:
            raise ConfigError(f"'param': {values['model']} has no parameter {values['param']!r}; it has "
                              f"{', '.join(names)}")
        parse_range(values["values"], "values")


def run(values: dict) -> int:
    from ..coherence import Hyperparameters
    from ..config import set_precision
    from ..fmissing import FitSettings, derive_f_missing, sweeps
    from ..solvers import SolverOptions

    dtype = set_precision(values["dtype"])
    cat, data = load_data(values, dtype)
    kind, model, out = values["kind"], values["model"], values["out"]
    settings = FitSettings(solver=values["solver"], n_starts=values["n_starts"], seed=values["seed"],
                           options=SolverOptions(max_iter=values["max_iter"]))
    fm = derive_f_missing(Hyperparameters(), cat, values["recipe"]) if kind != "grid" else None
    if kind == "bootstrap":
        n = values["n_boot"]
    elif kind == "grid":
        axes = parse_axes(values)
        n = int(np.prod([len(v) for v in axes.values()]))
    elif kind == "profile":
        grid = parse_range(values["values"], "values")
        n = len(grid)
    else:
        n = values["n_starts"]
    log.info(f"{kind} of {model}: {n} rows in chunks of {values['chunk_size']}; finished chunks go to {out}/chunks")
    with progress(n, f"{kind} {model}", not values["quiet"]) as bar:
        def step(done):
            bar.update(done - bar.n)

        chunked = dict(settings=settings, chunk_size=values["chunk_size"], out=out, progress=step)
        if kind == "bootstrap":
            table, summary = sweeps.bootstrap(model, fm, n_boot=n, **chunked)
        elif kind == "grid":
            table, summary = sweeps.hyperparameter_grid(model, cat, axes, recipe=values["recipe"], **chunked)
        elif kind == "profile":
            table, summary = sweeps.profile(model, fm, values["param"], grid, **chunked)
        else:
            table, summary = sweeps.multistart(model, fm, settings)
    name = "sweep.parquet"
    if values["format"] == "csv" or not _has_pyarrow():
        name = "sweep.csv"
    summary = {**summary, "n_rows": len(table), "table": name, "recipe": values["recipe"],
               "dtype": str(np.dtype(dtype)), "data_kind": data["kind"]}
    out = write_run(out, "sweep", OPTIONS, values, dtype=summary["dtype"], data=data,
                    files={name: table, "sweep.json": summary})
    if not values["quiet"]:
        print(format_summary(summary))
        print(f"\nwrote {out}/{name}, sweep.json, config.toml and provenance.json")
    return 0


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def format_summary(summary: dict) -> str:
    lines = [f"{summary['kind']} of {summary['model']}: {summary['n_rows']} rows"]
    if summary["kind"] == "bootstrap":
        lines[0] += f" ({summary['n_converged']} converged)"
        for p, q in summary["intervals"].items():
            lines.append(f"  {p:<10} median {q['median']:.4g}  68% [{q['interval_68'][0]:.4g}, "
                         f"{q['interval_68'][1]:.4g}]  95% [{q['interval_95'][0]:.4g}, {q['interval_95'][1]:.4g}]")
    if "best" in summary:
        best = summary["best"]
        lines.append("  best row: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in best.items()))
    if summary.get("interval_68_on_grid"):
        lo, hi = summary["interval_68_on_grid"]
        lines.append(f"  profile 68% interval on the grid: [{lo:.4g}, {hi:.4g}]")
    return "\n".join(lines)


COMMAND = Command(
    name="sweep",
    summary="Bootstrap, hyperparameter grids, loss profiles and multi-start fits in batched, resumable calls.",
    examples="examples:\n  jaxcoh sweep --sparc ../shared/data/sparc --kind bootstrap --n-boot 1000\n"
             "  jaxcoh sweep --sparc DIR --kind grid --axes ell0=2:10:8,A0=0.5:1.5:8,gamma_rough=0.05:0.2:8,"
             "beta_sigma=1:2:8\n"
             "  jaxcoh sweep --sparc DIR --kind profile --param Psi0 --values 1e-10:1e-6:40:log\n"
             "  (interrupt with Ctrl-C and run the same command again: finished chunks are not recomputed)",
    options=OPTIONS, run=run, validate=validate,
)
