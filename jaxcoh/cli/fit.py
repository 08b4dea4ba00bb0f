"""``jaxcoh fit``: one rotation-curve model fitted jointly, with parameters optionally held fixed."""

from __future__ import annotations

from .command import Command
from .common import (CURVE_OPTIONS, DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, curve_model_names,
                     curve_settings, load_cut_data, out_option)
from .options import ConfigError, Option
from .reporting import solver_progress
from .rundir import write_run


OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("fit"),
    Option("model", "unified_multiplicative", "the model to fit", choices=curve_model_names),
    Option("fix", [], "shared parameters held fixed, as NAME=VALUE pairs, comma-separated", type="list",
           metavar="NAME=VALUE"),
    Option("max_iter", 0, "iterations per solver stage (0: the solver's default)", type="nonneg_int"),
    *CURVE_OPTIONS, *VERBOSITY_OPTIONS,
)


def parse_fixed(values: dict) -> dict[str, float]:
    from ..curves import get_model

    names = get_model(values["model"]).shared.names
    fixed = {}
    for item in values["fix"]:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"'fix': {item!r} is not NAME=VALUE")
        if name not in names:
            raise ConfigError(f"'fix': {values['model']} has no shared parameter {name!r}; it has {', '.join(names)}")
        try:
            fixed[name] = float(value)
        except ValueError:
            raise ConfigError(f"'fix': {name}={value!r} is not a number") from None
    return fixed


def run(values: dict) -> int:
    from ..curves import fit, fix_parameters, get_model
    from ..curves.fitting import DEFAULT_SOLVER_OPTIONS, choose_solver
    from ..curves.likelihood import curve_data
    from ..curves.tables import curves_table, format_fit, per_galaxy_table

    cat, report, data, _ = load_cut_data(values)
    fixed = parse_fixed(values)
    model = fix_parameters(values["model"], **fixed) if fixed else get_model(values["model"])
    settings = curve_settings(values)
    if values["max_iter"]:
        solver = settings.solver
        if solver == "auto":
            solver = choose_solver(model, curve_data(cat, settings.likelihood.recipe), settings.likelihood)
        settings = settings._replace(solver=solver, solver_options=tuple(
            DEFAULT_SOLVER_OPTIONS[s]._replace(max_iter=values["max_iter"]) for s in solver.split("+")))
    with solver_progress(values, f"{model.name} "):
        result = fit(model, cat, settings)
    doc = {"cuts": values["cuts"], "sample": report, "n_galaxies": cat.n_galaxies, "n_points": cat.n_points,
           "dtype": result.dtype, "model": result.model, "fixed": fixed, "description": result.description,
           "options": settings.likelihood._asdict(), "solver": settings.solver, "params": result.params,
           "stderr": result.stderr, **result.statistics(), "objective": result.objective,
           "rar_scatter_dex": result.rar_scatter_dex, "status": result.status, "n_iter": result.n_iter,
           "convergence": result.convergence.to_dict(),
           "galaxy_starts": result.galaxy_starts.to_dict(),
           "marginal": "laplace" if result.laplace else "joint", "marginal_requested": settings.marginal,
           "laplace": result.laplace.to_dict() if result.laplace else None,
           "wall_s": result.wall_s, "errors": result.errors.to_dict() if result.errors is not None else None,
           "data_kind": data["kind"]}
    if doc["errors"] is not None:  # per-galaxy coordinates are in per_galaxy.csv
        doc["errors"]["stderr"] = {k: v for k, v in doc["errors"]["stderr"].items() if k in result.params}
    out = write_run(values["out"], "fit", OPTIONS, values, dtype=result.dtype, data=data,
                    files={"fit.json": doc, "per_galaxy.csv": per_galaxy_table(result, list(cat.names)),
                           "curves.csv": curves_table(result, cat)})
    if not values["quiet"]:
        print(format_fit(doc))
        print(f"\nwrote {out}/fit.json, per_galaxy.csv, curves.csv, config.toml and provenance.json")
    return 0


COMMAND = Command(
    name="fit",
    summary="Fit one rotation-curve model (shared, per-galaxy and nuisance parameters jointly).",
    examples="examples:\n  jaxcoh fit --sparc ../shared/data/sparc --model rar\n"
             "  jaxcoh fit --sparc DIR --model unified_multiplicative --fix ell0=5,p=0.757,n_coh=0.5\n"
             "  jaxcoh fit --model nfw --loss huber --solver lbfgs --max-iter 5000   # on the mock catalog",
    options=OPTIONS, run=run, validate=parse_fixed,
)
