"""``jaxcoh compare``: every rotation-curve model fitted jointly on the same points with the same loss."""

from __future__ import annotations

from .command import Command
from .common import (CURVE_OPTIONS, DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, curve_model_names,
                     curve_settings, load_cut_data, log, out_option)
from .options import Option
from .reporting import solver_progress
from .rundir import write_run

OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("compare"),
    Option("models", None, "comma-separated curve models (default: every registered baseline and kernel model)",
           type="list", metavar="NAMES", choices=curve_model_names),
    *CURVE_OPTIONS, *VERBOSITY_OPTIONS,
)


def run(values: dict) -> int:
    from ..curves import compare, default_models
    from ..curves.tables import format_compare

    cat, report, data, _ = load_cut_data(values)
    models = values["models"] or default_models()
    n = len(set(models) | {"newtonian"})
    done = []
    settings = curve_settings(values)
    with solver_progress(values, f"[0/{n} models] ") as reporter:
        def step(name):
            done.append(name)
            if reporter is not None:
                reporter.relabel(f"[{len(done)}/{n} models] ")
            log.info(f"fitted {name} ({len(done)} of {n} models)")

        summary, per_galaxy, curves = compare(cat, models, settings, progress=step, out=values["out"])
    summary = {"cuts": values["cuts"], "sample": report, **summary, "data_kind": data["kind"]}
    out = write_run(values["out"], "compare", OPTIONS, values, dtype=summary["dtype"], data=data,
                    files={"compare.json": summary, "per_galaxy.csv": per_galaxy, "curves.csv": curves})
    if not values["quiet"]:
        print(format_compare(summary))
        print(f"\nwrote {out}/compare.json, per_galaxy.csv, curves.csv, config.toml and provenance.json")
    return 0


COMMAND = Command(
    name="compare",
    summary="Fit the unified kernel and the standard baselines jointly to every rotation curve and compare them.",
    examples="examples:\n  jaxcoh compare --sparc ../shared/data/sparc --out results/compare\n"
             "  jaxcoh compare --sparc DIR --nuisance none --models rar,nfw   # fixed Upsilon, table D and i\n"
             "  jaxcoh compare --sparc DIR --loss student_t --error-floor 2\n"
             "  jaxcoh compare                                  # on the mock catalog",
    options=OPTIONS, run=run,
)
