"""``jaxcoh fit``: one rotation-curve model fitted jointly, with parameters optionally held fixed."""

from __future__ import annotations

from .commands import Command, register
from .common import DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, out_option
from .compare import JOINT_OPTIONS, joint_options, prepared_data
from .options import ConfigError, Option
from .rundir import write_run

OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("fit"),
    Option("model", "unified_multiplicative", "the model to fit",
           choices=("newtonian", "rar", "unified_additive", "unified_multiplicative", "per_galaxy_amplitude", "nfw")),
    Option("fix", [], "shared parameters held fixed, as NAME=VALUE pairs, comma-separated", type="list",
           metavar="NAME=VALUE"),
    Option("max_iter", 0, "iterations per solver stage (0: the solver's default)", type="nonneg_int"),
    *JOINT_OPTIONS, *VERBOSITY_OPTIONS,
)


def parse_fixed(values: dict) -> dict[str, float]:
    from ..curves import get_curve_model

    names = get_curve_model(values["model"]).shared.names
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
    from ..compare import curves_table, format_fit, per_galaxy_table
    from ..curves import fix_parameters
    from ..joint import DEFAULT_SOLVER_OPTIONS, choose_solver, fit_curves, joint_data

    cat, report, data, _ = prepared_data(values)
    fixed = parse_fixed(values)
    model = fix_parameters(values["model"], **fixed) if fixed else values["model"]
    opts = joint_options(values)
    solver = values["solver"]
    solver_options = None
    if values["max_iter"]:
        from ..curves import get_curve_model

        if solver == "auto":
            solver = choose_solver(get_curve_model(model), joint_data(cat, opts.recipe), opts)
        solver_options = tuple(DEFAULT_SOLVER_OPTIONS[s]._replace(max_iter=values["max_iter"])
                               for s in solver.split("+"))
    fit = fit_curves(model, cat, options=opts, n_starts=values["n_starts"], seed=values["seed"], solver=solver,
                     solver_options=solver_options, errors=values["errors"])
    result = {"cuts": values["cuts"], "sample": report, "n_galaxies": cat.n_galaxies, "n_points": cat.n_points,
              "dtype": fit.dtype, "model": fit.model, "fixed": fixed, "description": fit.description,
              "options": opts._asdict(), "solver": solver, "params": fit.params, "stderr": fit.stderr,
              **fit.statistics(), "objective": fit.objective, "rar_scatter_dex": fit.rar_scatter_dex,
              "status": fit.status, "n_iter": fit.n_iter, "wall_s": fit.wall_s,
              "errors": fit.errors.to_dict() if fit.errors is not None else None, "data_kind": data["kind"]}
    if result["errors"] is not None:  # per-galaxy coordinates are in per_galaxy.csv
        result["errors"]["stderr"] = {k: v for k, v in result["errors"]["stderr"].items() if k in fit.params}
    out = write_run(values["out"], "fit", OPTIONS, values, dtype=fit.dtype, data=data,
                    files={"fit.json": result, "per_galaxy.csv": per_galaxy_table(fit, list(cat.names)),
                           "curves.csv": curves_table(fit, cat)})
    if not values["quiet"]:
        print(format_fit(result))
        print(f"\nwrote {out}/fit.json, per_galaxy.csv, curves.csv, config.toml and provenance.json")
    return 0


register(Command(
    name="fit",
    summary="Fit one rotation-curve model (shared, per-galaxy and nuisance parameters jointly).",
    examples="examples:\n  jaxcoh fit --sparc ../shared/data/sparc --model rar\n"
             "  jaxcoh fit --sparc DIR --model unified_multiplicative --fix ell0=5,p=0.757,n_coh=0.5\n"
             "  jaxcoh fit --model nfw --loss huber --solver lbfgs --max-iter 5000   # on the mock catalog",
    options=OPTIONS, run=run, validate=parse_fixed,
))
