"""Models of F_missing from galaxy properties, and the registry they live in.

A model is a pure ``predict(params, x) -> [g]`` plus a declared :class:`~jaxcoh.parameters.ParameterSpec`. Adding one
takes a few lines::

    from jaxcoh.fmissing import Model, register_model
    from jaxcoh.parameters import Parameter, ParameterSpec

    def predict_linear_vflat(params, x):
        return params["a"] + params["b"] * x.v_flat / 100.0

    register_model(Model(
        name="linear_vflat",
        predict=predict_linear_vflat,
        parameters=ParameterSpec([Parameter("a", 5.0, -50.0, 50.0), Parameter("b", 1.0, -20.0, 20.0)]),
        formula="F = a + b v_flat / 100 km/s",
    ))

Formulas and bounds of the built-in models are the seed's (``SEED_PIPELINE.md`` section 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from ..constants import C_KMS, G_MASS_MODEL
from ..registry import Registry
from .derivation import FMissing
from ..numerics import safe_pow
from ..parameters import Parameter, ParameterSpec

MASS_MODEL_ELL0 = 5.0  # kpc: the coherence scale inside Psi (degenerate with Psi0, kept at the seed's value)


class ModelInputs(NamedTuple):
    """What an F_missing model sees of each galaxy (``[g]``) and of the sample (scalars, or broadcast to ``[g]``)."""

    M_b: Array  # Msun
    R_d: Array  # kpc
    v_flat: Array  # km/s
    sigma_v: Array  # km/s
    sigma_ref: Array  # km/s, median sigma_v of the fit sample
    R_ref: Array  # kpc, median R_d of the fit sample


def model_inputs(fm: FMissing, sample: Array | None = None) -> ModelInputs:
    """Inputs for every galaxy of ``fm``, with references (medians) taken over ``sample`` (default: the fit sample).

    Galaxies without properties get NaN inputs; models are only evaluated where a sample mask says so.
    """
    p = fm.properties
    sample = fm.in_sample if sample is None else sample

    def median(x):
        return jnp.nanmedian(jnp.where(sample, x, jnp.nan))

    return ModelInputs(p.M_b, p.R_d, p.v_flat, p.sigma_v, median(p.sigma_v), median(p.R_d))


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a static argument of jitted fits
class Model:
    """An F_missing model: ``predict(params, inputs) -> F_pred [g]`` and its parameters.

    ``derived`` names functions of the parameters that stay identifiable when the parameters themselves are not
    (a degeneracy); fits report them with standard errors.
    """

    name: str
    predict: Callable[[Mapping[str, Array], ModelInputs], Array]
    parameters: ParameterSpec
    formula: str = ""
    derived: Mapping[str, Callable[[Mapping[str, Array]], Array]] = dataclasses.field(default_factory=dict)

    def __call__(self, params: Mapping[str, Array], x: ModelInputs) -> Array:
        return self.predict(params, x)

    def trace_token(self) -> str | None:
        """A stable text identifying the program this model makes (:mod:`jaxcoh.tracecache`), or None when it cannot
        be keyed: only a module-level function of jaxcoh's is covered by jaxcoh's source digest. The bounds and
        scales are part of the program (the bijections), so a model re-registered with other bounds gets its own."""
        module, qualname = getattr(self.predict, "__module__", ""), getattr(self.predict, "__qualname__", "<")
        if not module.startswith("jaxcoh.") or "<" in qualname:
            return None
        spec = [(p.name, p.init, p.lower, p.upper, p.scale) for p in self.parameters]
        return f"Model({self.name}, {module}.{qualname}, {spec!r})"


MODELS: Registry[Model] = Registry("F_missing model", Model)
register_model = MODELS.register
get_model = MODELS.get
list_models = MODELS.names


# ---- the seed's models --------------------------------------------------------------------------------------------
def saturating_response(amplitude: Array, depth: Array, scale: Array, sharpness: Array) -> Array:
    """``amplitude (1 - exp(-(depth/scale)^sharpness))``: the number of resonant modes saturating with depth.

    Written with ``expm1`` so that shallow wells give a small positive value rather than 0 in floating point.
    """
    return -amplitude * jnp.expm1(-safe_pow(depth / scale, sharpness))


def potential_depth(M_b: Array, R_d: Array, f_R: Array, ell0: float = MASS_MODEL_ELL0) -> Array:
    """Dimensionless depth per coherence volume ``Psi = G M_b ell0^2 / ((f_R R_d)^3 c^2)``."""
    return G_MASS_MODEL * M_b * ell0**2 / (jnp.maximum(f_R * R_d, 1e-4) ** 3 * C_KMS**2)


def predict_mass_coherence(params, x: ModelInputs) -> Array:
    psi = potential_depth(x.M_b, x.R_d, params["f_R"])
    return saturating_response(params["K_max"], psi, jnp.maximum(params["Psi0"], 1e-12), params["gamma"])


def predict_velocity_coherence(params, x: ModelInputs) -> Array:
    psi = (x.v_flat / params["v_ref"]) ** 2
    return saturating_response(params["F_max"], psi, params["Psi0"], params["delta"])


def predict_power_law(params, x: ModelInputs) -> Array:
    return (params["A"] * safe_pow(x.sigma_ref / x.sigma_v, params["alpha"])
            * safe_pow(x.R_ref / x.R_d, params["beta"]))


def predict_power_law_sigma(params, x: ModelInputs) -> Array:
    return params["A"] * safe_pow(x.sigma_ref / x.sigma_v, params["alpha"])


MASS_COHERENCE = register_model(Model(
    name="mass_coherence",
    predict=predict_mass_coherence,
    parameters=ParameterSpec([
        Parameter("K_max", 10.0, 0.1, 20.0, description="saturation amplitude"),
        Parameter("Psi0", 1e-7, 1e-10, 1e-4, scale="log", description="depth scale where modes turn on"),
        Parameter("gamma", 0.5, 0.1, 3.0, description="sharpness of the turn-on"),
        Parameter("f_R", 2.0, 1.0, 5.0, description="R_eff = f_R R_d"),
    ]),
    formula="F = K_max [1 - exp(-(Psi/Psi0)^gamma)], Psi = G M_b ell0^2 / ((f_R R_d)^3 c^2), ell0 = 5 kpc",
    # Psi/Psi0 depends on Psi0 and f_R only through Psi0 f_R^3.
    derived={"Psi0_fR3": lambda p: p["Psi0"] * p["f_R"] ** 3},
))

VELOCITY_COHERENCE = register_model(Model(
    name="velocity_coherence",
    predict=predict_velocity_coherence,
    parameters=ParameterSpec([
        Parameter("F_max", 10.0, 1.0, 50.0, description="saturation amplitude"),
        Parameter("Psi0", 3e-2, 1e-3, 1.0, scale="log", description="depth scale"),
        Parameter("delta", 1.0, 0.1, 3.0, description="sharpness"),
        Parameter("v_ref", 200.0, 50.0, 500.0, unit="km/s", scale="log", description="reference speed"),
    ]),
    formula="F = F_max [1 - exp(-(Psi/Psi0)^delta)], Psi = (v_flat/v_ref)^2",
    # Psi/Psi0 depends on Psi0 and v_ref only through Psi0 v_ref^2.
    derived={"Psi0_vref2": lambda p: p["Psi0"] * p["v_ref"] ** 2},
))

POWER_LAW = register_model(Model(
    name="power_law",
    predict=predict_power_law,
    parameters=ParameterSpec([
        Parameter("A", 10.0, 0.1, 100.0, scale="log", description="amplitude at the sample medians"),
        Parameter("alpha", 0.5, 0.1, 5.0, description="power of s_ref/sigma_v"),
        Parameter("beta", 0.5, 0.1, 5.0, description="power of R_ref/R_d"),
    ]),
    formula="F = A (s_ref/sigma_v)^alpha (R_ref/R_d)^beta, s_ref and R_ref the sample medians",
))

POWER_LAW_SIGMA = register_model(Model(
    name="power_law_sigma",
    predict=predict_power_law_sigma,
    parameters=ParameterSpec([
        Parameter("A", 10.0, 0.1, 100.0, scale="log", description="amplitude at the sample median"),
        Parameter("alpha", 0.5, 0.1, 5.0, description="power of s_ref/sigma_v"),
    ]),
    formula="F = A (s_ref/sigma_v)^alpha, s_ref the sample median",
))
