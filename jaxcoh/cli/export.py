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
    cat, data, truth = load_data(values, dtype, with_truth=True)
    before = {n: i for i, n in enumerate(cat.names)}
    cat, report = apply_cuts(cat, values["cuts"])
    written = write_galaxy_tables(cat, values["out"])
    truth = {} if truth is None else truth_files(truth.take([before[n] for n in cat.names]), list(cat.names))
    write_run(values["out"], "export", OPTIONS, values, dtype=dtype.name, data=data,
              files={**truth, "export.json": {"cuts": values["cuts"], "sample": report, "n_galaxies": cat.n_galaxies,
                                              "n_points": cat.n_points,
                                              "files": [*(p.name for p in written), *truth]}})
    log.info(f"wrote {cat.n_galaxies} galaxies and {cat.n_points} points to {', '.join(map(str, written))}"
             + (" and the mock's truth to truth.json, truth.csv" if truth else ""))
    return 0


def truth_files(truth, names: list[str]) -> dict:
    """``{"truth.json": what the mock was made from, "truth.csv": the true values of the galaxies ``names``}``
    (:class:`jaxcoh.mock.MockTruth` of those galaxies), so that a fit of the exported tables, by jaxcoh or any other
    code, can be scored against it."""
    import pandas as pd

    doc = {**truth.summary(), "columns": {
        "upsilon_disk": "true disk mass-to-light ratio", "upsilon_bulge": "true bulge one",
        "distance": "true distance [Mpc] (galaxies.csv has the reported one)",
        "inclination": "true inclination [deg] (galaxies.csv has the reported one)",
        "A_gal": "the coherence kernel's amplitude (NaN for a curve model's truth)",
        "F_true": "the F_missing model's F (NaN for a curve model's truth)",
        **{k: "the curve model's per-galaxy truth" for k in truth.local}}}
    return {"truth.json": doc, "truth.csv": pd.DataFrame({"galaxy": names, **truth.per_galaxy()})}


COMMAND = Command(
    name="export",
    summary="Write a galaxy sample (SPARC, a mock, or --data tables; after --cuts) as galaxies.csv and points.csv: "
            "the format --data reads, for your own galaxies (one row per galaxy, one row per point; columns and "
            "units in the README); a mock's truth too (truth.json, truth.csv), to score any fit of it.",
    examples="examples:\n  jaxcoh export --out mydata                          # the mock catalog, as a template\n"
             "  jaxcoh export --sparc ../shared/data/sparc --out sparc-csv\n"
             "  jaxcoh fit --data mydata --model rar",
    options=OPTIONS, run=run,
)
