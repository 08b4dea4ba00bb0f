"""``jaxcoh reproduce``: the seed's table from the raw files, beside jaxcoh's own fits."""

from __future__ import annotations

from .command import Command
from .common import (DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, f_missing_model_names, load_data, log,
                     out_option, progress)
from .options import ConfigError, Option
from .rundir import write_run

OPTIONS = (
    *DATA_OPTIONS,
    *PRECISION_OPTIONS,
    out_option("reproduce"),
    Option("recipe", "legacy", "galaxy-property recipe", choices=("legacy", "sparc")),
    Option("models", None, "comma-separated F_missing models (default: every registered one)", type="list",
           metavar="NAMES", choices=f_missing_model_names),
    Option("solver", "lm", "solver: lm (least squares), lbfgs or adam", choices=("lm", "lbfgs", "adam")),
    Option("n_starts", 128, "starts of the global multi-start fit", type="int"),
    Option("max_iter", 200, "iterations per start", type="int"),
    Option("cv_folds", 5, "folds of the cross-validation by galaxy", type="int"),
    Option("cv_repeats", 5, "repeats of the cross-validation", type="int"),
    Option("seed", 0, "seed of the start design and the folds", type="nonneg_int"),
    *VERBOSITY_OPTIONS,
)


def validate(values: dict) -> None:
    if values["cv_folds"] < 2:
        raise ConfigError("'cv_folds' must be at least 2")


def run(values: dict) -> int:
    from ..config import set_precision
    from ..fmissing import FitSettings
    from ..fmissing.reproduce import format_table, reproduce
    from ..solvers import SolverOptions

    dtype = set_precision(values["dtype"])
    cat, data = load_data(values, dtype)
    models = values["models"] or f_missing_model_names()
    with progress(len(models), "fitting models", not values["quiet"]) as bar:
        def step(name):
            log.debug(f"done: {name}")
            bar.set_postfix_str(name)
            bar.update(1)

        settings = FitSettings(solver=values["solver"], n_starts=values["n_starts"], seed=values["seed"],
                               options=SolverOptions(max_iter=values["max_iter"]))
        result, table, predictions = reproduce(cat, recipe=values["recipe"], models=models, settings=settings,
                                               cv_folds=values["cv_folds"], cv_repeats=values["cv_repeats"],
                                               progress=step)
    result["data_kind"] = data["kind"]
    if data["kind"] == "mock":
        result["note"] = "mock catalog: the seed's numbers refer to SPARC and are shown for the format only"
    out = write_run(values["out"], "reproduce", OPTIONS, values, dtype=result["dtype"], data=data,
                    files={"reproduce.json": result, "f_missing.csv": table,
                           "predictions.csv": predictions})
    if not values["quiet"]:
        print(format_table(result))
        print(f"\nwrote {out}/reproduce.json, f_missing.csv, predictions.csv, config.toml and provenance.json")
    return 0


COMMAND = Command(
    name="reproduce",
    summary="Reproduce the seed's F_missing table from the raw files, then fit and cross-validate each model.",
    examples="examples:\n  jaxcoh reproduce --sparc ../shared/data/sparc --out results/reproduce\n"
             "  jaxcoh reproduce                       # on the mock catalog (no SPARC given)\n"
             "  jaxcoh reproduce --config results/reproduce/config.toml",
    options=OPTIONS, run=run, validate=validate,
)
