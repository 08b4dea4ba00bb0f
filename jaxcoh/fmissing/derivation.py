"""F_missing over a whole catalog: properties, derivation and the fit sample in one jitted call."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..catalog import Catalog
from ..coherence import GalaxyDerivation, Hyperparameters, Reason, derive_curves
from ..properties import GalaxyProperties, galaxy_properties
from ..tracecache import persistent

if TYPE_CHECKING:  # pandas is imported where tables are made, not with jaxcoh
    import pandas as pd


class FMissing(NamedTuple):
    """The derivation of every galaxy, the properties it used, and the fit sample (section 3). Fields ``[g]``."""

    derivation: GalaxyDerivation
    properties: GalaxyProperties
    in_sample: Array  # bool: recipe properties defined and a finite F_missing > 0


@persistent(("recipe",))
@functools.partial(jax.jit, static_argnames=("recipe",))
def derive_f_missing(hyper: Hyperparameters, catalog: Catalog, recipe: str = "legacy") -> FMissing:
    """Derives F_missing for every galaxy of ``catalog`` at ``hyper`` (jitted; ``recipe`` is static).

    Hyperparameters are cast to the catalog's dtype, so a float32 catalog is computed in float32 throughout.
    """
    hyper = Hyperparameters(*hyper).astype(catalog.dtype)
    props = galaxy_properties(catalog, recipe)
    d = derive_curves(hyper, catalog.R, catalog.V_obs, props.V_bar, catalog.mask, props.sigma_v)
    F = d.F_missing
    in_sample = props.has_properties & (d.reason == Reason.OK) & jnp.isfinite(F) & (jnp.where(jnp.isfinite(F), F, 0) > 0)
    return FMissing(d, props, in_sample)


def f_missing_table(fm: FMissing, catalog: Catalog) -> pd.DataFrame:
    """One row per galaxy: the columns of ``f_missing.csv`` plus the properties and the reason code."""
    d, p = fm.derivation, fm.properties
    cols = {
        "galaxy": list(catalog.names),
        "n_points": np.asarray(d.n_points),
        "sigma_v": np.asarray(d.sigma_v),
        "Xi_mean": np.asarray(d.Xi_mean),
        "K_rough": np.asarray(d.K_rough),
        "C_mean": np.asarray(d.C_mean),
        "A_emp": np.asarray(d.A_emp),
        "F_missing": np.asarray(d.F_missing),
        "in_sample": np.asarray(fm.in_sample),
        "K_req_mean": np.asarray(d.K_req_mean),
        "M_b": np.asarray(p.M_b),
        "R_d": np.asarray(p.R_d),
        "v_flat": np.asarray(p.v_flat),
        "reason": [Reason(int(r)).name for r in np.asarray(d.reason)],
        "recipe": p.recipe,
    }
    import pandas as pd

    return pd.DataFrame(cols)
