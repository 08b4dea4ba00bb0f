"""B2: bootstrap of the mass-coherence fit, one scipy differential evolution per replicate in a Python loop.

Resampling galaxies with replacement and refitting is how a scipy user gets parameter uncertainties for a model whose
parameters are degenerate (only ``Psi0 f_R^3`` is identified); jaxcoh batches every replicate into one vmapped solve.
A replicate is a vector of frequency weights (how often each galaxy was drawn), so the baseline and jaxcoh can be
given identical replicates: the weighted RMS ``sqrt(sum w r^2 / sum w)`` equals the RMS of the resampled list.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .seed_pipeline import BOUNDS, fit_seed_model_de

PARAMS = tuple(BOUNDS["mass_coherence"])  # column order of the output: K_max, Psi0, gamma, f_R


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``[n_boot, n]`` galaxy indices drawn with replacement by ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def indices_to_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """``[B, n]`` counts of each galaxy in each resample ``indices [B, m]``."""
    indices = np.atleast_2d(np.asarray(indices, dtype=np.int64))
    return np.stack([np.bincount(ix, minlength=n) for ix in indices]).astype(float)


def bootstrap_de(F, props: Mapping[str, np.ndarray], n_boot: int | None = None, seed: int = 0, *,
                 indices: np.ndarray | None = None, weights: np.ndarray | None = None, **de_kwargs) -> np.ndarray:
    """Refits the mass-coherence model by differential evolution on each bootstrap replicate.

    Args:
      F, props: the fit sample, ``[s]`` (see ``seed_pipeline.fit_sample``).
      n_boot, seed: replicates drawn with :func:`bootstrap_indices` when neither ``indices`` nor ``weights`` is given.
      indices: ``[B, s]`` resample indices; or weights: ``[B, s]`` counts (frequency weights), as given to jaxcoh.
      de_kwargs: to ``fit_seed_model_de`` (default the seed's settings: seed 42, maxiter 100, popsize 10, polish).

    Returns ``[B, 4]`` fitted ``K_max, Psi0, gamma, f_R`` (:data:`PARAMS`), one row per replicate.
    """
    F = np.asarray(F, float)
    if weights is None:
        if indices is None:
            if n_boot is None:
                raise ValueError("give n_boot, indices or weights")
            indices = bootstrap_indices(len(F), n_boot, seed)
        weights = indices_to_weights(indices, len(F))
    weights = np.atleast_2d(np.asarray(weights, float))
    if weights.shape[1] != len(F):
        raise ValueError(f"weights have {weights.shape[1]} columns for {len(F)} galaxies")
    out = np.empty((len(weights), len(PARAMS)))
    for b, w in enumerate(weights):  # one global optimisation per replicate, as a scipy user would
        fit = fit_seed_model_de("mass_coherence", F, props, weights=w, **de_kwargs)
        out[b] = [fit["params"][k] for k in PARAMS]
    return out
