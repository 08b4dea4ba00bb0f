"""``jaxcoh export``: the galaxy sample a command would fit, written as the two CSV tables ``--data`` reads."""

from __future__ import annotations

import dataclasses

from .command import Command
from .common import CUTS_OPTION, DATA_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS, load_data, log, out_option
from .rundir import write_run

OPTIONS = (*DATA_OPTIONS, *PRECISION_OPTIONS, out_option("export"),
           dataclasses.replace(CUTS_OPTION, default="none", help="sample cuts before writing: none (every galaxy) or "
                               "standard (quality < 3, i >= 30 deg, errV/Vobs < 0.1)"), *VERBOSITY_OPTIONS)


def run(values: dict) -> int:
    from ..config import set_precision
    from ..galaxy_tables import write_galaxy_tables
    from ..selection import apply_cuts

    dtype = set_precision(values["dtype"])
    cat, data = load_data(values, dtype)
    cat, report = apply_cuts(cat, values["cuts"])
    written = write_galaxy_tables(cat, values["out"])
    write_run(values["out"], "export", OPTIONS, values, dtype=dtype.name, data=data,
              files={"export.json": {"cuts": values["cuts"], "sample": report, "n_galaxies": cat.n_galaxies,
                                     "n_points": cat.n_points, "files": [p.name for p in written]}})
    log.info(f"wrote {cat.n_galaxies} galaxies and {cat.n_points} points to {', '.join(map(str, written))}")
    return 0


COMMAND = Command(
    name="export",
    summary="Write a galaxy sample (SPARC, a mock, or --data tables; after --cuts) as galaxies.csv and points.csv: "
            "the format --data reads, for your own galaxies (one row per galaxy, one row per point; columns and "
            "units in the README).",
    examples="examples:\n  jaxcoh export --out mydata                          # the mock catalog, as a template\n"
             "  jaxcoh export --sparc ../shared/data/sparc --out sparc-csv\n"
             "  jaxcoh fit --data mydata --model rar",
    options=OPTIONS, run=run,
)
