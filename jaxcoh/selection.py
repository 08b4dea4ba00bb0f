"""Sample selection: which galaxies and points of a catalog a fit uses, with a report of what each cut removed."""

from __future__ import annotations

import numpy as np

from .catalog import Catalog

CUTS = ("standard", "none")
MAX_RELATIVE_ERROR = 0.1  # standard cuts keep points with errV / Vobs < 0.1
MLS16_SAMPLE = {"n_galaxies": 153, "n_points": 2693}  # what McGaugh, Lelli & Schombert (2016) kept


def apply_cuts(cat: Catalog, cuts: str = "standard") -> tuple[Catalog, dict]:
    """The sample of ``cuts`` and a report of what each cut removed.

    ``standard``: quality < 3, inclination >= 30 degrees, then points with ``errV / Vobs < 0.1`` (galaxies left
    without a point are dropped). ``none``: every galaxy and point.
    """
    if cuts not in CUTS:
        raise ValueError(f"cuts must be one of {CUTS}, got {cuts!r}")
    report = {"cuts": cuts, "input": {"n_galaxies": cat.n_galaxies, "n_points": cat.n_points}, "steps": []}
    if cuts == "standard":
        def step(label, new):
            report["steps"].append({"cut": label, "n_galaxies": new.n_galaxies, "n_points": new.n_points})
            return new

        cat = step("quality < 3", cat.select(quality_max=2))
        cat = step("inclination >= 30 deg", cat.select(inclination_min=30.0))
        V, e = np.asarray(cat.V_obs), np.asarray(cat.e_V_obs)
        precise = e < MAX_RELATIVE_ERROR * np.abs(np.where(V != 0, V, np.inf))
        cat = cat.select_points(precise)
        cat = step("errV / Vobs < 0.1", cat.select(min_points=1))
        report["published"] = {"reference": "McGaugh, Lelli & Schombert 2016", **MLS16_SAMPLE}
    report.update(n_galaxies=cat.n_galaxies, n_points=cat.n_points)
    return cat, report
