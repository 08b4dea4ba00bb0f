"""The unified coherence kernel on the rotation curves, ``V^2 = V_bar^2 (1 + A_gal C(R/ell0))``, registered as the
curve models ``unified_additive`` and ``unified_multiplicative``.

``C`` is the Burr-XII window, ``A_gal = K_rough + K_missing`` (additive) or ``K_rough F_pred`` (multiplicative): K_rough
from the roughness derivation (geometric and noise coherence times, the exposure), K_missing / F_pred from an
F_missing model (mass-coherence by default) on the galaxy properties of a recipe. Every shared parameter is fittable,
with gradients through the whole derivation.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ..coherence import burr_xii_window, exposure_mean_from_times, roughness_amplitude
from ..fmissing.models import Model, get_model
from ..parameters import Parameter, ParameterSpec
from .baselines import BURR_SHAPE
from .inputs import CurveInputs
from .models import CurveModel, builtin, register_model

ROUGHNESS_HYPER = ParameterSpec([
    Parameter("A0", 0.774, 0.01, 20.0, scale="log", description="roughness amplitude normalisation"),
    Parameter("gamma_rough", 0.1, 0.0, 1.0, description="roughness exponent on the exposure"),
    Parameter("beta_sigma", 1.5, 0.1, 4.0, description="power of sigma_v in the noise coherence time"),
])


def unified_kernel_amplitude(kind: str, missing: Model, shared, x: CurveInputs) -> Array:
    """``A_gal [g]``: ``K_rough + K_missing`` (additive) or ``K_rough * F_pred`` (multiplicative)."""
    Xi_mean = exposure_mean_from_times(x.times, jnp.where(x.mask, x.R, 1.0), x.mask, x.properties.sigma_v,
                                       shared["beta_sigma"])
    K_rough = roughness_amplitude(Xi_mean, shared["A0"], shared["gamma_rough"])
    F = missing.predict({k: shared[k] for k in missing.parameters.names}, x.x)
    return K_rough + F if kind == "additive" else K_rough * F


def unified_model(kind: str, missing: str | Model = "mass_coherence") -> CurveModel:
    """The unified kernel with ``kind`` "additive" or "multiplicative" and an F_missing model ``missing``."""
    if kind not in ("additive", "multiplicative"):
        raise ValueError(f"kind must be 'additive' or 'multiplicative', got {kind!r}")
    m = get_model(missing)
    clash = set(m.parameters.names) & set(BURR_SHAPE.names + ROUGHNESS_HYPER.names)
    if clash:
        raise ValueError(f"model {m.name} has parameters named like the kernel's: {sorted(clash)}")

    def speed2(shared, local, x: CurveInputs) -> Array:
        A = unified_kernel_amplitude(kind, m, shared, x)
        C = burr_xii_window(jnp.where(x.mask, x.R, 1.0), shared["ell0"], shared["p"], shared["n_coh"])
        return x.V_bar2 * (1 + A[:, None] * C)

    derived = dict(m.derived)
    if kind == "multiplicative":
        derived["A0_times_" + m.parameters.names[0]] = (
            lambda p, first=m.parameters.names[0]: p["A0"] * p[first])  # A_gal depends on A0 and the amplitude via their product
    return CurveModel(
        name=f"unified_{kind}" if m.name == "mass_coherence" else f"unified_{kind}_{m.name}",
        shared=ParameterSpec([*m.parameters, *ROUGHNESS_HYPER, *BURR_SHAPE]),
        local=ParameterSpec([]),
        speed2=speed2,
        description=(f"V^2 = V_bar^2 (1 + A_gal C(R/ell0)), A_gal = "
                     f"{'K_rough + K_missing' if kind == 'additive' else 'K_rough * F_pred'}, F from {m.name}"),
        derived=derived, family="kernel",
    )


UNIFIED_ADDITIVE = register_model(builtin(unified_model("additive")))
UNIFIED_MULTIPLICATIVE = register_model(builtin(unified_model("multiplicative")))
