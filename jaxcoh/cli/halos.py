"""``jaxcoh halos``: the halo catalogue of Li et al. (2020), seven dark-matter profiles with Flat and LCDM priors
fitted to every galaxy."""

from __future__ import annotations

from .command import Command
from .common import (
    DATA_OPTIONS,
    PRECISION_OPTIONS,
    VERBOSITY_OPTIONS,
    load_cut_data,
    log,
    out_option,
    per_iteration,
)
from .options import Option
from .reporting import solver_progress
from .rundir import write_run


def halo_model_names() -> list[str]:
    from ..curves.halos import halo_model_names as names

    return names()


OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("halos"),
    Option("models", None, "comma-separated halo models (default: all twelve of Li et al. 2020)", type="list",
           metavar="NAMES", choices=halo_model_names),
    Option("cuts", "none", "sample cuts: none (every galaxy, as Li et al.) or standard (quality < 3, i >= 30 deg, "
           "errV/Vobs < 0.1)", choices=("standard", "none")),
    Option("nuisance", "full", "per-galaxy Upsilon, D and i: full (fitted with priors) or none (0.5 / 0.7, table D, i)",
           choices=("full", "none")),
    Option("loss", "chi2", "per-point loss", choices=("chi2", "student_t", "huber")),
    Option("error_floor", 0.0, "km/s added in quadrature to errV", type="nonneg_float", metavar="KMS"),
    Option("galaxy_starts", 32, "starts of every galaxy's halo and nuisance parameters, the best kept per galaxy "
           "(halo fits are multimodal)", type="int"),
    Option("start_iter", 20, "Levenberg-Marquardt iterations of each start of every galaxy", type="int"),
    Option("max_iter", 60, "further iterations polishing every galaxy's best start", type="int"),
    Option("seed", 0, "seed of the start design", type="nonneg_int"),
    Option("errors", True, "marginal standard errors of every fitted parameter (Hessian)", type="bool"),
    Option("start_precision", "float32", "precision the starts of every galaxy are solved in, before each is "
           "compared, tested and the best polished in --dtype (same: --dtype throughout)",
           choices=("float32", "same")),
    Option("models_per_fit", 0, "models solved together in one stacked fit, compiled once (0: groups of about equal "
           "cost, one per thread; 1: model by model, each compiled on its own, resumable model by model)",
           type="nonneg_int"),
    Option("threads", 0, "groups of models fitted side by side, each in a thread (0: one per CPU core on a CPU, one "
           "on an accelerator)", type="nonneg_int"),
    *VERBOSITY_OPTIONS,
)


def settings(values: dict):
    """The :class:`jaxcoh.curves.CurveSettings` of the options (:data:`HALO_SETTINGS` otherwise)."""
    from ..curves import Likelihood
    from ..curves.halo_catalog import HALO_SETTINGS

    (polish,) = HALO_SETTINGS.solver_options
    return HALO_SETTINGS._replace(
        likelihood=Likelihood(nuisance=values["nuisance"] == "full", loss=values["loss"],
                              error_floor=values["error_floor"]),
        galaxy_starts=values["galaxy_starts"], seed=values["seed"], errors=values["errors"],
        start_precision=None if values["start_precision"] == "same" else values["start_precision"],
        report=per_iteration(values),  # per-iteration progress (jaxcoh.cli.reporting)
        start_options=HALO_SETTINGS.start_options._replace(max_iter=values["start_iter"]),
        solver_options=(polish._replace(max_iter=values["max_iter"]),))


def run(values: dict) -> int:
    from ..curves.halo_catalog import (
        catalog_curves,
        catalog_summary,
        catalog_table,
        fit_halo_models,
        format_summary,
        halo_model_names,
    )

    cat, report, data, _ = load_cut_data(values)
    models = values["models"] or halo_model_names()
    per_fit = values["models_per_fit"] or None
    done = []

    def step(name):
        done.append(name)
        log.info(f"fitted {name} ({len(done)} of {len(models)} models)")

    with solver_progress(values, "halos "):  # every solver iteration, and a line per model
        parts = fit_halo_models(cat, models, settings(values), out=values["out"], progress=step,
                                models_per_fit=per_fit, threads=values["threads"] or None)
    summary = {"cuts": values["cuts"], "sample": report, **catalog_summary(parts, cat), "data_kind": data["kind"],
               "settings": {k: values[k] for k in ("nuisance", "loss", "error_floor", "galaxy_starts", "start_iter",
                                                   "max_iter", "seed", "errors", "start_precision",
                                                   "models_per_fit", "threads")}}
    out = write_run(values["out"], "halos", OPTIONS, values, dtype=summary["dtype"], data=data,
                    files={"halos.json": summary, "halos.csv": catalog_table(parts),
                           "halo_curves.csv": catalog_curves(parts)})
    if not values["quiet"]:
        print(format_summary(summary))
        print(f"\nwrote {out}/halos.json, halos.csv, halo_curves.csv, config.toml and provenance.json")
    return 0


COMMAND = Command(
    name="halos",
    summary="Fit the seven dark-matter halo profiles of Li et al. (2020), with Flat and LCDM priors, to every galaxy.",
    examples="examples:\n  jaxcoh halos --sparc ../shared/data/sparc --out results/halos\n"
             "  jaxcoh halos --sparc DIR --models nfw_flat,burkert_flat,dc14_lcdm --galaxy-starts 64\n"
             "  jaxcoh halos --sparc DIR --cuts standard --models-per-fit 1   # resumable model by model\n"
             "  jaxcoh halos                                   # on the mock catalog",
    options=OPTIONS, run=run,
)
