"""Rotation-curve models and their registry.

A curve model maps shared parameters, per-galaxy parameters and the (nuisance-rescaled) data to ``V_model^2 [g, n]``;
``V_bar^2 = Vgas|Vgas| + Ud Vdisk^2 + Ub Vbul^2`` keeps SPARC's sign, so ``V_model^2`` can be negative at a few inner
points (the model speed is then ``sign(V^2) sqrt(|V^2|)``, as SPARC tabulates Vgas). Registering one makes it usable
everywhere (``fit``, ``compare``, sweeps, the command line)::

    import jax.numpy as jnp
    from jaxcoh.curves import CurveModel, register_model
    from jaxcoh.parameters import Parameter, ParameterSpec

    def flat_boost_speed2(shared, local, x):
        return x.V_bar2 * (1 + shared["boost"])

    register_model(CurveModel("flat_boost", ParameterSpec([Parameter("boost", 1.0, 0.0, 10.0)]),
                              ParameterSpec([]), flat_boost_speed2, description="V^2 = V_bar^2 (1 + boost)"))

The built-in models are in :mod:`~jaxcoh.curves.baselines` and :mod:`~jaxcoh.curves.unified`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array

from ..parameters import ParameterSpec
from ..registry import Registry
from .inputs import CurveInputs


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a static argument of jitted fits
class CurveModel:
    """``speed2(shared, local, inputs) -> V_model^2 [g, n]`` with declared shared and per-galaxy parameters.

    ``prior_residuals(shared, local, inputs) -> [g, k]`` are the per-galaxy parameters' Gaussian prior terms
    ``z`` (negative log prior ``sum(z^2)/2``), if any: as residuals they keep the fit a least-squares problem.
    """

    name: str
    shared: ParameterSpec
    local: ParameterSpec
    speed2: Callable[[Mapping[str, Array], Mapping[str, Array], CurveInputs], Array]
    prior_residuals: Callable[[Mapping[str, Array], Mapping[str, Array], CurveInputs], Array] | None = None
    description: str = ""
    derived: Mapping[str, Callable] = dataclasses.field(default_factory=dict)
    family: str = "baseline"  # "baseline", "kernel" (the coherence kernel) or "halo": what `compare` fits by default
    # The per-galaxy truth of mock catalogs made from this model: draw_local(rng, M_b [g] Msun, v_flat [g] km/s)
    # -> {name: [g]} (numpy, host side); None: uniform (log-uniform for scale parameters) over the start ranges.
    draw_local: Callable[..., Mapping[str, object]] | None = None
    # True when V_model^2 at a point and the prior terms of a galaxy depend only on that point's inputs, the galaxy's
    # parameters and its table values (M_star included: folded rows carry their galaxy's bulge light; no reduction
    # over the curve, such as the recipe's galaxy properties): its curves can then be cut into rows of a few points
    # (:mod:`~jaxcoh.curves.folding`). Checked for every model that claims it (tests/test_posterior_layout.py).
    pointwise: bool = False
    # Per-galaxy parameters that touch no data on some galaxies: n_galaxies -> {name: [g] bool, True where inert}
    # (a stack of models: one model's parameter on the others' rows). Their starts stay at the initial values.
    inert_local: Callable[[int], Mapping[str, np.ndarray]] | None = None
    # Where the objective has a kink (DC14's shape clipped at the edges of its range): (z, catalog, likelihood) ->
    # KinkSides of the galaxies on one, or None (jaxcoh.curves.convergence.kink_steps judges them one-sidedly).
    kinks: Callable[..., KinkSides | None] | None = None
    # A stable text naming the program this model makes, set only by jaxcoh's own builders, which know what their
    # functions hold (a halo model built for a catalog: its points); None: its programs are traced in every process.
    program: str | None = None

    def trace_token(self) -> str | None:
        """The key of this model's programs among those kept between processes (:mod:`jaxcoh.tracecache`): its
        ``program`` and its parameters' bounds and scales (the bijections are part of the program), or None."""
        if self.program is None:
            return None
        spec = [(p.name, p.init, p.lower, p.upper, p.scale, p.per_galaxy) for p in (*self.shared, *self.local)]
        return f"CurveModel({self.name}, {self.program}, {spec!r})"


class KinkSides(NamedTuple):
    """The galaxies of a solution ``z`` that sit on a kink, where a kink coordinate ``X`` (a per-galaxy function of
    ``z``) crosses a value at which the model's shape stops varying, and two copies of ``z`` just across it."""

    at: np.ndarray  # [g] bool: on a kink
    minus: dict  # z with X just below the kink on those galaxies (elsewhere z itself)
    plus: dict  # z with X just above it
    normal: dict  # grad_z X (a pytree like z): the kink's normal, pointing to larger X


def builtin(model: CurveModel) -> CurveModel:
    """``model`` as one of jaxcoh's own registered models, made at import by jaxcoh's code alone: its programs are then
    kept between processes under its name (:attr:`CurveModel.program`). Not for models made elsewhere, whose code
    jaxcoh's source digest does not cover."""
    return dataclasses.replace(model, program=f"builtin {model.name}")


MODELS: Registry[CurveModel] = Registry("curve model", CurveModel)
register_model = MODELS.register
get_model = MODELS.get
list_models = MODELS.names


@functools.cache  # one object per (model, extension): models are static arguments, hashed by identity
def extended(model: CurveModel, extra: ParameterSpec) -> CurveModel:
    """``model`` with the shared parameters ``extra`` appended (for the likelihood, not the model: the intrinsic
    scatter); its predictions are the model's."""
    if set(extra.names) & set(model.shared.names):
        return model
    return dataclasses.replace(model, shared=ParameterSpec([*model.shared, *extra]))


def fix_parameters(model: str | CurveModel, **values: float) -> CurveModel:
    """``model`` with the shared parameters in ``values`` held fixed (no longer fitted, not counted in the dof)."""
    model = get_model(model)
    unknown = set(values) - set(model.shared.names)
    if unknown:
        raise KeyError(f"{model.name} has no shared parameters {sorted(unknown)}; it has {model.shared.names}")
    free = ParameterSpec([p for p in model.shared if p.name not in values])

    def with_fixed(shared):
        dt = next(iter(shared.values())).dtype if shared else None
        return {**shared, **{k: jnp.asarray(v, dt) for k, v in values.items()}}

    prior = model.prior_residuals
    derived = {k: (lambda p, f=f: f(with_fixed(p))) for k, f in model.derived.items()
               if not all(n in values for n in model.shared.names)}
    return CurveModel(
        name=model.name, shared=free, local=model.local,
        speed2=lambda sh, lo, x: model.speed2(with_fixed(sh), lo, x),
        prior_residuals=None if prior is None else (lambda sh, lo, x: prior(with_fixed(sh), lo, x)),
        description=f"{model.description}; fixed: " + ", ".join(f"{k}={v:g}" for k, v in values.items()),
        derived=derived, family=model.family, pointwise=model.pointwise, inert_local=model.inert_local,
    )
