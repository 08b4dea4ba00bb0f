"""``jaxcoh compare``: every rotation-curve model fitted jointly on the same points with the same loss."""

from __future__ import annotations

from .commands import Command, register
from .common import DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, load_data, log, out_option, progress
from .options import ConfigError, Option
from .rundir import write_run

# Options of every joint rotation-curve fit (shared with `jaxcoh fit`).
JOINT_OPTIONS = (
    Option("cuts", "standard", "sample cuts: standard (McGaugh, Lelli & Schombert 2016: quality < 3, i >= 30 deg, "
           "errV/Vobs < 0.1) or none", choices=("standard", "none")),
    Option("nuisance", "full", "per-galaxy Upsilon, D and i: full (fitted with priors) or none (0.5 / 0.7, table D, i)",
           choices=("full", "none")),
    Option("recipe", "sparc", "galaxy-property recipe of the missing part", choices=("sparc", "legacy")),
    Option("loss", "chi2", "per-point loss", choices=("chi2", "student_t", "huber")),
    Option("error_floor", 0.0, "km/s added in quadrature to errV", type="nonneg_float", metavar="KMS"),
    Option("solver", "auto", "auto (L-BFGS then block LM), block_lm, lbfgs, lm (dense) or adam",
           choices=("auto", "block_lm", "lbfgs", "lm", "adam", "lbfgs+block_lm")),
    Option("n_starts", 4, "starts of the shared parameters (Sobol design), solved side by side", type="int"),
    Option("seed", 0, "seed of the start design", type="nonneg_int"),
    Option("errors", True, "standard errors from the Hessian (marginalised over the per-galaxy parameters)",
           type="bool"),
)


def joint_options(values: dict):
    from ..joint import JointOptions

    return JointOptions(nuisance=values["nuisance"] == "full", loss=values["loss"],
                        error_floor=values["error_floor"], recipe=values["recipe"])


def prepared_data(values: dict):
    """``(catalog after cuts, cuts report, data provenance, dtype)``."""
    from ..compare import apply_cuts
    from ..config import set_precision

    dtype = set_precision(values["dtype"])
    cat, data = load_data(values, dtype)
    cut, report = apply_cuts(cat, values["cuts"])
    log.info(f"cuts {values['cuts']}: {report['n_galaxies']} galaxies, {report['n_points']} points remain")
    return cut, report, data, dtype


OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("compare"),
    Option("models", ["newtonian", "rar", "unified_additive", "unified_multiplicative", "per_galaxy_amplitude", "nfw"],
           "comma-separated models", type="list", metavar="NAMES"),
    *JOINT_OPTIONS, *VERBOSITY_OPTIONS,
)


def validate(values: dict) -> None:
    from ..compare import COMPARE_MODELS

    bad = [m for m in values["models"] if m not in COMPARE_MODELS]
    if bad:
        raise ConfigError(f"'models': unknown {', '.join(bad)}; choose among {', '.join(COMPARE_MODELS)}")


def run(values: dict) -> int:
    from ..compare import compare, format_compare

    cat, report, data, _ = prepared_data(values)
    models = values["models"]
    with progress(len(set(models) | {"newtonian"}), "fitting models", not values["quiet"]) as bar:
        def step(name):
            bar.set_postfix_str(name)
            bar.update(1)

        summary, per_galaxy, curves = compare(
            cat, models=models, options=joint_options(values), n_starts=values["n_starts"], seed=values["seed"],
            solver=values["solver"], errors=values["errors"], progress=step, out=values["out"])
    summary = {"cuts": values["cuts"], "sample": report, **summary, "data_kind": data["kind"]}
    out = write_run(values["out"], "compare", OPTIONS, values, dtype=summary["dtype"], data=data,
                    files={"compare.json": summary, "per_galaxy.csv": per_galaxy, "curves.csv": curves})
    if not values["quiet"]:
        print(format_compare(summary))
        print(f"\nwrote {out}/compare.json, per_galaxy.csv, curves.csv, config.toml and provenance.json")
    return 0


register(Command(
    name="compare",
    summary="Fit the unified kernel and the standard baselines jointly to every rotation curve and compare them.",
    examples="examples:\n  jaxcoh compare --sparc ../shared/data/sparc --out results/compare\n"
             "  jaxcoh compare --sparc DIR --nuisance none --models rar,nfw   # fixed Upsilon, table D and i\n"
             "  jaxcoh compare --sparc DIR --loss student_t --error-floor 2\n"
             "  jaxcoh compare                                  # on the mock catalog",
    options=OPTIONS, run=run, validate=validate,
))
