"""Declared parameters and the bijections that keep them in bounds.

Optimisers only ever see unconstrained values ``z``; a parameter's value is a smooth function of ``z`` (numpyro's
``biject_to`` idea): sigmoid then affine for an interval, on log scale for scale parameters spanning decades, softplus
or exp for half-bounded ones. Bounds hold by construction, never by clipping (which kills the gradient at the bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .sobol import sobol_points

_EPS = {np.dtype(np.float32): 1e-7, np.dtype(np.float64): 1e-15}


def _clipped_sigmoid(z: Array) -> Array:
    # Keeps u strictly inside (0, 1) so the inverse (logit) and the bounds' log stay finite (numpyro's clipped expit).
    eps = _EPS.get(np.dtype(jnp.result_type(z)), 1e-7)
    return jnp.clip(jax.nn.sigmoid(z), eps, 1.0 - eps)


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One named parameter: initial value, bounds, scale (``"linear"`` or ``"log"``), unit and meaning.

    ``shape`` is ``()`` for a shared parameter or e.g. ``("galaxies",)`` for one value per galaxy (its size is set
    when the parameter is initialised for a catalog).
    """

    name: str
    init: float
    lower: float = -math.inf
    upper: float = math.inf
    scale: str = "linear"
    unit: str = ""
    description: str = ""
    per_galaxy: bool = False
    start_range: tuple[float, float] | None = None  # where multi-start designs look (default: the bounds)
    prior_scale: str | None = None  # where the prior density is flat or written ("linear"/"log"; default: scale)

    def __post_init__(self):
        if self.scale not in ("linear", "log"):
            raise ValueError(f"parameter {self.name}: scale must be 'linear' or 'log', got {self.scale!r}")
        if not self.lower < self.upper:
            raise ValueError(f"parameter {self.name}: lower bound {self.lower} must be below upper {self.upper}")
        if self.scale == "log" and self.lower < 0:
            raise ValueError(f"parameter {self.name}: a log-scale parameter needs lower >= 0, got {self.lower}")
        if not self.lower <= self.init <= self.upper:
            raise ValueError(f"parameter {self.name}: init {self.init} outside [{self.lower}, {self.upper}]")
        if self.prior_scale not in (None, "linear", "log"):
            raise ValueError(f"parameter {self.name}: prior_scale must be 'linear' or 'log', got {self.prior_scale!r}")

    def log_abs_det_jacobian(self, z: Array) -> Array:
        """``log |dq/dz|`` elementwise, ``q`` the coordinate the prior density is written in (the value, or its log
        for ``prior_scale="log"``): what a density over ``q`` gains when a sampler works in ``z``."""
        log_prior = (self.prior_scale or self.scale) == "log"

        def q(zz):
            v = self.to_value(zz)
            return jnp.log(v) if log_prior else v

        z = jnp.asarray(z)
        return jnp.log(jnp.abs(jax.jvp(q, (z,), (jnp.ones_like(z),))[1]))

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lower) and math.isfinite(self.upper)

    def _space(self) -> tuple[float, float]:
        """Bounds in the space the sigmoid is affine in (log space for scale parameters)."""
        if self.scale == "log":
            return (math.log(self.lower) if self.lower > 0 else -math.inf), math.log(self.upper)
        return self.lower, self.upper

    def to_value(self, z: Array) -> Array:
        """The parameter's value for unconstrained ``z``."""
        lo, hi = self._space()
        if math.isfinite(lo) and math.isfinite(hi):
            y = lo + (hi - lo) * _clipped_sigmoid(z)
        elif math.isfinite(lo):
            y = lo + jax.nn.softplus(z)
        elif math.isfinite(hi):
            y = hi - jax.nn.softplus(-z)
        else:
            y = z
        return jnp.exp(y) if self.scale == "log" else y

    def to_unconstrained(self, x) -> Array:
        """Inverse of :meth:`to_value` (values on a bound map to a large finite ``z``)."""
        x = jnp.asarray(x)
        y = jnp.log(x) if self.scale == "log" else x
        lo, hi = self._space()
        if math.isfinite(lo) and math.isfinite(hi):
            eps = _EPS.get(np.dtype(y.dtype), 1e-7)
            u = jnp.clip((y - lo) / (hi - lo), eps, 1.0 - eps)
            return jnp.log(u) - jnp.log1p(-u)
        if math.isfinite(lo):
            return _softplus_inverse(jnp.maximum(y - lo, 1e-30))
        if math.isfinite(hi):
            return -_softplus_inverse(jnp.maximum(hi - y, 1e-30))
        return y

    def start_value(self, u):
        """The value at design point ``u`` in (0, 1): uniform over :attr:`start_range` (or the bounds), log-uniform
        for scale parameters."""
        lo, hi = self.start_range if self.start_range is not None else (self.lower, self.upper)
        if not (math.isfinite(lo) and math.isfinite(hi)) or (self.scale == "log" and lo <= 0):
            raise ValueError(f"parameter {self.name}: give a finite start_range to draw starts from")
        if self.scale == "log":
            return jnp.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)
        return lo + (hi - lo) * u

    def unit_to_unconstrained(self, u: np.ndarray) -> np.ndarray:
        """Maps design points ``u`` in (0, 1) to ``z``, uniform over the bounds (log-uniform for scale parameters)."""
        if not self.bounded:
            raise ValueError(f"parameter {self.name} is unbounded: it cannot be sampled over its bounds")
        u = np.clip(np.asarray(u, dtype=np.float64), 1e-12, 1 - 1e-12)
        return np.log(u) - np.log1p(-u)


def _softplus_inverse(y: Array) -> Array:
    return y + jnp.log(-jnp.expm1(-y))


class ParameterSpec(Sequence[Parameter]):
    """An ordered set of :class:`Parameter`; maps between value dicts and unconstrained dicts (both pytrees)."""

    def __init__(self, parameters: Sequence[Parameter]):
        self._params = tuple(parameters)
        names = [p.name for p in self._params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")

    def __getitem__(self, i):
        if isinstance(i, str):
            for p in self._params:
                if p.name == i:
                    return p
            raise KeyError(f"no parameter {i!r}; have {self.names}")
        return self._params[i]

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params)

    def __add__(self, other: ParameterSpec) -> ParameterSpec:
        return ParameterSpec((*self._params, *other))

    def __repr__(self) -> str:
        return f"ParameterSpec({', '.join(self.names)})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._params)

    def init_values(self, n_galaxies: int | None = None, dtype=None) -> dict[str, Array]:
        """Initial values; per-galaxy parameters get ``[n_galaxies]`` copies of their init."""
        out = {}
        for p in self._params:
            shape = (n_galaxies,) if p.per_galaxy else ()
            if p.per_galaxy and n_galaxies is None:
                raise ValueError(f"parameter {p.name} is per galaxy: pass n_galaxies")
            out[p.name] = jnp.full(shape, p.init, dtype=dtype)
        return out

    def to_values(self, z: Mapping[str, Array]) -> dict[str, Array]:
        return {p.name: p.to_value(z[p.name]) for p in self._params}

    def to_values_compiled(self, z: Mapping[str, Array]) -> dict[str, Array]:
        """:meth:`to_values` as one compiled program, for callers outside ``jit`` (op by op, every operation of every
        bijection is a program of its own to compile or load)."""
        return _to_values(self, z)

    def to_unconstrained_compiled(self, values: Mapping[str, Array]) -> dict[str, Array]:
        """:meth:`to_unconstrained` as one compiled program (see :meth:`to_values_compiled`)."""
        return _to_unconstrained(self, values)

    def to_unconstrained(self, values: Mapping[str, Array]) -> dict[str, Array]:
        missing = [p.name for p in self._params if p.name not in values]
        if missing:
            raise KeyError(f"values missing for parameters {missing}")
        return {p.name: p.to_unconstrained(values[p.name]) for p in self._params}

    def design(self, n: int, seed: int = 0, dtype=None) -> dict[str, Array]:
        """``n`` quasi-random starts, a scrambled Sobol design over the bounds of the shared parameters.

        Returns unconstrained values ``{name: [n]}``. Scale parameters are spread uniformly in log space, which is
        what lets a multi-start search find optima that a linear-space differential evolution misses.
        """
        shared = [p for p in self._params if not p.per_galaxy]
        if shared:
            u = sobol_points(len(shared), n, seed)
        else:
            u = np.zeros((n, 0))
        return {p.name: jnp.asarray(p.unit_to_unconstrained(u[:, j]), dtype=dtype) for j, p in enumerate(shared)}

    def lower_upper(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([p.lower for p in self._params]), np.array([p.upper for p in self._params])


_to_values = jax.jit(ParameterSpec.to_values, static_argnums=0)  # the spec is hashed by identity
_to_unconstrained = jax.jit(ParameterSpec.to_unconstrained, static_argnums=0)
