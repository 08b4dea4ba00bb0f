"""Several F_missing models as one set of compiled programs: what the main job fits.

An F_missing model is a few elementwise operations; its fits compile to programs made almost entirely of the solver
(the Levenberg-Marquardt loop, the bijections, the metrics). Fitting the seed's four models with one program per
model and task compiled that solver eight times (each model's fit and cross-validation), most of a first
``jaxcoh reproduce``. A :class:`ModelUnion` packs each model's parameters into one vector as long as the largest
model's (the entries a model does not use touch no residual: the solver's steps leave them at zero) and picks the
model by an index that is data, not structure (``lax.switch``), so every model of the union runs the same programs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..tracecache import persistent
from .models import Model
from .objective import FitData, _metrics_compiled, model_residuals


@dataclasses.dataclass(frozen=True)  # hashed by its models (themselves by identity): a static argument of programs
class ModelUnion:
    """Models whose parameters are packed into vectors ``[..., width]`` (in each model's declared order, zeros
    after), the model chosen by its position in :attr:`models`."""

    models: tuple[Model, ...]

    @property
    def width(self) -> int:
        return max(len(m.parameters) for m in self.models)

    def index(self, model: Model) -> int:
        return self.models.index(model)

    def pack(self, model: Model, tree: Mapping[str, Array]) -> Array:
        """``{name: [...]}`` of ``model`` -> ``[..., width]`` (on the host: no program per shape)."""
        packed = np.stack([np.asarray(tree[n]) for n in model.parameters.names], axis=-1)
        pad = [(0, 0)] * (packed.ndim - 1) + [(0, self.width - packed.shape[-1])]
        return jnp.asarray(np.pad(packed, pad))

    @staticmethod
    def unpack(model: Model, packed: Array) -> dict[str, Array]:
        """``[..., width]`` -> ``{name: [...]}`` of ``model``."""
        return {n: packed[..., i] for i, n in enumerate(model.parameters.names)}

    def switch(self, index: Array, fn, packed: Array, *args):
        """``fn(model, {name: value}, *args)`` of the model at ``index`` (traced), one branch per model."""
        branches = [functools.partial(lambda m, p, *a: fn(m, self.unpack(m, p), *a), m) for m in self.models]
        return jax.lax.switch(index, branches, packed, *args)

    def unconstrained_residuals(self, index: Array, z: Array, data: FitData, weights: Array) -> Array:
        """:func:`~.objective.model_residuals` at the packed unconstrained parameters ``z [width]``."""
        return self.switch(index, lambda m, zz, d, w: model_residuals(m, m.parameters.to_values(zz), d, w), z,
                           data, weights)

    def trace_token(self) -> str | None:
        """The models' tokens (:meth:`Model.trace_token`): None when one of them cannot be keyed."""
        tokens = [m.trace_token() for m in self.models]
        return None if None in tokens else f"ModelUnion({', '.join(tokens)})"


def union_of(model: Model) -> ModelUnion:
    """The union of ``model`` alone (its programs are then that model's)."""
    return ModelUnion((model,))


@functools.partial(jax.jit, static_argnames="union")
def predict(union: ModelUnion, index: Array, values: Array, data: FitData) -> Array:
    """``F_pred [g]`` of the model at ``index`` at its packed parameter values ``[width]``."""
    return union.switch(index, lambda m, v, x: m.predict(v, x), values, data.x)


def evaluate_compiled(union: ModelUnion, model: Model, values: Mapping[str, Array], data: FitData, weights: Array
                      ) -> dict:
    """RMS, Pearson r, Spearman rho and count of ``model`` at ``values`` as two compiled programs shared by every
    model of ``union``: the prediction and the metrics (whose sort for Spearman's ranks costs more to compile than
    most predictions)."""
    dtype = data.target.dtype
    packed = union.pack(model, {k: np.asarray(v, dtype) for k, v in values.items()})
    return _metrics_compiled(predict(union, union.index(model), packed, data), data, weights)


@persistent(("union",))
@functools.partial(jax.jit, static_argnames="union")
def nll_hessian(union: ModelUnion, index: Array, log: Array, q0: Array, data: FitData, weights: Array,
                s2: Array) -> Array:
    """The Hessian ``[width, width]`` of ``SSR / (2 s2)`` of the model at ``index`` in the coordinates ``q0``
    (``log [width]`` where a coordinate is the parameter's logarithm), one program for every model of ``union``
    (op by op, ``jax.hessian`` made ~150 tiny compilations on a first run). The rows and columns of unused entries
    are zero."""
    def nll(q):
        v = jnp.where(log, jnp.exp(jnp.where(log, q, 0.0)), q)  # double where: exp of an unused linear q may overflow
        return union.switch(index, lambda m, vv, d, w: jnp.sum(model_residuals(m, vv, d, w) ** 2), v, data,
                            weights) / (2 * s2)

    # forward over forward: a few parameters, so as cheap to run as forward over reverse and cheaper to compile (the
    # four seed models' union: 1.1 s against 2.7 s, the same Hessian to rounding)
    return jax.jacfwd(jax.jacfwd(nll))(q0)
