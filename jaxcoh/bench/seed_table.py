"""B1's jaxcoh side: the seed's table end to end. A module of its own, importing only jax and jaxcoh, so that B1's
fresh-process timing pays for jaxcoh's imports and not for the baselines' (pandas, scipy.optimize)."""

from __future__ import annotations

import jax.numpy as jnp


def b1_jaxcoh(sparc_dir: str) -> dict:
    """Load, derive and fit the four models (the same work as the baseline: best fits, no errors, no CV)."""
    from jaxcoh.coherence import Hyperparameters
    from jaxcoh.fmissing import (
        FitSettings,
        derive_f_missing,
        fit_data,
        get_model,
        starts,
    )
    from jaxcoh.fmissing.fitting import best_of_starts, solve_batch
    from jaxcoh.solvers import SolverOptions
    from jaxcoh.sparc import load_sparc

    cat = load_sparc(sparc_dir)
    fm = derive_f_missing(Hyperparameters(), cat, "legacy")
    data = fit_data(fm)
    w = jnp.ones_like(data.target)[None]
    out = {}
    for name in ("mass_coherence", "velocity_coherence", "power_law", "power_law_sigma"):
        model = get_model(name)
        z0 = starts(model, FitSettings(n_starts=32), cat.dtype)
        _, best = best_of_starts(solve_batch(model, "lm", SolverOptions(), z0, data, w))
        out[name] = float(jnp.sqrt(best.loss[0] / jnp.sum(data.sample)))
    return out
