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
    truth = mock_truth(values, dtype, list(cat.names)) if data["kind"] == "mock" else {}
    write_run(values["out"], "export", OPTIONS, values, dtype=dtype.name, data=data,
              files={**truth, "export.json": {"cuts": values["cuts"], "sample": report, "n_galaxies": cat.n_galaxies,
                                              "n_points": cat.n_points,
                                              "files": [*(p.name for p in written), *truth]}})
    log.info(f"wrote {cat.n_galaxies} galaxies and {cat.n_points} points to {', '.join(map(str, written))}"
             + (" and the mock's truth to truth.json, truth.csv" if truth else ""))
    return 0


def mock_truth(values: dict, dtype, names: list[str]) -> dict:
    """``{"truth.json": what the mock was made from, "truth.csv": each exported galaxy's true values}``: the same
    mock made again with its truth (deterministic in its seed), so that fits of the exported tables, by jaxcoh or
    any other code, can be scored against it."""
    import numpy as np
    import pandas as pd

    from ..mock import mock_catalog

    cat, truth = mock_catalog(values["mock_galaxies"], seed=values["mock_seed"], kernel=values["mock_kernel"],
                              scatter_dex=values["mock_scatter"], dtype=dtype, return_truth=True)
    per_galaxy = {"galaxy": list(cat.names)}
    for f in dataclasses.fields(truth):
        v = getattr(truth, f.name)
        if isinstance(v, np.ndarray):
            per_galaxy[f.name] = v
    per_galaxy.update(truth.local)
    table = pd.DataFrame(per_galaxy).set_index("galaxy").loc[names].reset_index()
    doc = {"kernel": truth.kernel, "model": truth.model, "params": dict(truth.params),
           "hyperparameters": truth.hyper._asdict(), "recipe": truth.recipe, "scatter_dex": truth.scatter_dex,
           "columns": {"upsilon_disk": "true disk mass-to-light ratio", "upsilon_bulge": "true bulge one",
                       "distance": "true distance [Mpc] (galaxies.csv has the reported one)",
                       "inclination": "true inclination [deg] (galaxies.csv has the reported one)",
                       "A_gal": "the coherence kernel's amplitude (NaN for a curve model's truth)",
                       "F_true": "the F_missing model's F (NaN for a curve model's truth)",
                       **{k: "the curve model's per-galaxy truth" for k in truth.local}}}
    return {"truth.json": doc, "truth.csv": table}


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
