"""``jaxcoh reproduce``: the seed's table from the raw files, beside jaxcoh's own fits."""

from __future__ import annotations

from .command import Command
from .common import (DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, f_missing_model_names, load_data, log,
                     out_option, progress, sparc_dir)
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
    # Cross-validation by galaxy needs a galaxy of the fit sample in every fold.
    if not values.get("data") and sparc_dir(values) is None and values["mock_galaxies"] < values["cv_folds"]:
        raise ConfigError(f"'mock_galaxies': {values['mock_galaxies']} galaxies cannot fill {values['cv_folds']} "
                          f"cross-validation folds; reproduce needs --mock-galaxies {values['cv_folds']} or more "
                          "(at least --cv-folds)")


def check_sample(values: dict, cat, data: dict) -> None:
    """The fit sample (known once F_missing is derived, before any fit) must fill every cross-validation fold."""
    import numpy as np

    from ..coherence import Hyperparameters
    from ..fmissing import derive_f_missing

    n = int(np.sum(np.asarray(derive_f_missing(Hyperparameters(), cat, values["recipe"]).in_sample)))
    if n < values["cv_folds"]:
        more = " or more --mock-galaxies" if data["kind"] == "mock" else ""
        raise ConfigError(f"'cv_folds': {n} of {cat.n_galaxies} galaxies are in the fit sample, too few for "
                          f"{values['cv_folds']} cross-validation folds; give fewer --cv-folds{more}")


def run(values: dict) -> int:
    from ..config import set_precision
    from ..fmissing import FitSettings
    from ..fmissing.reproduce import format_table, reproduce
    from ..solvers import SolverOptions

    dtype = set_precision(values["dtype"])
    cat, data = load_data(values, dtype)
    check_sample(values, cat, data)
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
        result["note"] = ("mock catalog: a check of the pipeline end to end against a known truth; the seed's "
                          "columns are its published SPARC figures, shown for reference only, not comparable")
    elif data["kind"] == "tables":
        result["note"] = ("galaxies from --data tables: the seed's columns are its published SPARC figures, shown for "
                          "reference only, comparable only if the tables hold SPARC itself")
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
