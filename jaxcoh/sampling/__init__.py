"""Posterior sampling: NUTS (blackjax) over a pytree log-density, and ArviZ output.

:mod:`.nuts` needs ``blackjax``; :mod:`.posterior` needs ``arviz`` (imported on first use of its names here).
"""

from .nuts import (
    CHAIN_METHODS,
    MASS_MATRICES,
    NutsResult,
    SampleStats,
    SamplerState,
    load_state,
    run_nuts,
    sample_chunk,
    save_state,
    shared_indices,
    structured_metric_core,
    warmup,
)

_POSTERIOR = ("convergence_warnings", "summary_table", "to_inference_data", "write_netcdf")

__all__ = [
    "CHAIN_METHODS", "MASS_MATRICES", "NutsResult", "SampleStats", "SamplerState", "load_state", "run_nuts",
    "sample_chunk", "save_state", "shared_indices", "structured_metric_core", "warmup", *_POSTERIOR,
]


def __getattr__(name: str):
    # ArviZ pulls in matplotlib and xarray: import it only when a posterior function is asked for.
    if name in _POSTERIOR:
        from . import posterior

        return getattr(posterior, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
