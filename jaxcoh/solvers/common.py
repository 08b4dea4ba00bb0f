"""What every solver returns and the options they share."""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.custom_batching import custom_vmap

from .. import progress
from ..tracecache import persistent


class Status(enum.IntEnum):
    """How a solve ended. Failures are data (one code per fit), never exceptions inside jit."""

    CONVERGED = 0  # a tolerance was met
    MAX_ITER = 1  # ran out of iterations first
    NONFINITE = 2  # the objective was not finite at the start or became non-finite
    STALLED = 3  # no step could decrease the objective, but the gradient is not small


RUNNING = -1  # status of a solve still in its loop
CHANGE_WINDOW = 10  # iterations over which SolverResult.change measures the objective's relative decrease


class SolverResult(NamedTuple):
    """Result of one solve (every field a scalar or the parameter pytree; batched fields under vmap)."""

    z: Any  # unconstrained parameters
    loss: Array  # objective at z
    grad_norm: Array  # l2 norm of the objective's gradient at z
    n_iter: Array  # int
    status: Array  # int, a Status
    change: Array  # relative decrease of the loss over its last iterations (see relative_change)

    @property
    def converged(self) -> Array:
        return self.status == Status.CONVERGED


class SolverOptions(NamedTuple):
    """Shared options (static under jit). ``ftol``: relative objective change; ``gtol``: gradient norm."""

    max_iter: int = 200
    ftol: float = 1e-12
    gtol: float = 1e-9
    learning_rate: float = 0.05  # Adam only
    memory_size: int = 10  # L-BFGS only
    report: str = ""  # a stage name: report every iteration to jaxcoh.progress under it ("" : silent)


# Numeric options enter the compiled programs as arguments, not constants: a solve with other iterations or
# tolerances (the phases of a sweep, the stages of a fit, a user's --max-iter) reuses the same program. Measured:
# one compilation of a joint solve costs from several seconds to a minute on a 2-core CPU, more than most solves.
DYNAMIC_FIELDS = ("max_iter", "ftol", "gtol", "learning_rate")


def _as_arrays(values: tuple) -> tuple[Array, ...]:
    return tuple(jnp.asarray(v, jnp.int32 if f == "max_iter" else None) for f, v in zip(DYNAMIC_FIELDS, values))


_OPTION_ARRAYS: dict[tuple, tuple[Array, ...]] = {}  # see _option_arrays
_OPTION_ARRAYS_MAX = 64


def _option_arrays(arg: SolverOptions) -> tuple[Array, ...]:
    """The numbers of ``arg`` as arrays, made once per distinct numbers (each solve would otherwise pay a few
    hundred microseconds of host work): keyed on each number's type (1 and 1.0 give other dtypes) and on what sets
    the arrays' dtype and placement (x64, the default device). Unhashable numbers (arrays) are converted every
    time, and arrays made inside a trace (tracers) are never kept."""
    values = tuple(getattr(arg, f) for f in DYNAMIC_FIELDS)
    key = (tuple((type(v), v) for v in values), jax.config.jax_enable_x64, jax.config.jax_default_device)
    try:
        arrays = _OPTION_ARRAYS.get(key)
    except TypeError:
        return _as_arrays(values)
    if arrays is None:
        arrays = _as_arrays(values)
        if len(_OPTION_ARRAYS) < _OPTION_ARRAYS_MAX and not any(isinstance(a, jax.core.Tracer) for a in arrays):
            _OPTION_ARRAYS[key] = arrays
    return arrays


def split_options(arg: Any) -> tuple[Any, Any]:
    """``(static skeleton, numbers)`` of a :class:`SolverOptions` or a tuple of them (anything else: ``(arg, None)``);
    :func:`join_options` puts them back together."""
    if isinstance(arg, SolverOptions):
        return arg._replace(**dict.fromkeys(DYNAMIC_FIELDS)), _option_arrays(arg)
    if isinstance(arg, tuple) and arg and all(isinstance(a, SolverOptions) for a in arg):
        parts = [split_options(a) for a in arg]
        return tuple(p[0] for p in parts), tuple(p[1] for p in parts)
    return arg, None


def join_options(skeleton: Any, values: Any) -> Any:
    if isinstance(skeleton, SolverOptions):
        return skeleton._replace(**dict(zip(DYNAMIC_FIELDS, values, strict=True)))
    if values is not None:
        return tuple(join_options(s, v) for s, v in zip(skeleton, values, strict=True))
    return skeleton


def jit_with_options(*, static_argnames: tuple[str, ...], options_argnames: tuple[str, ...],
                     persist: bool = False) -> Callable:
    """``jax.jit`` with ``static_argnames`` static, except the numbers of the :class:`SolverOptions` arguments
    ``options_argnames`` (:data:`DYNAMIC_FIELDS`), which are traced: their structure (solver-specific sizes, the
    progress label) stays static. The decorated function keeps its signature; ``.jitted`` is the compiled one.
    ``persist``: its traced programs are kept between processes (:mod:`jaxcoh.tracecache`), the options' numbers
    still arguments, where the static arguments can be keyed and no stage reports its iterations (a host callback
    cannot be kept)."""

    def decorate(fun: Callable) -> Callable:
        sig = inspect.signature(fun)
        names = list(sig.parameters)
        option_idx = [names.index(n) for n in options_argnames]
        static = (*static_argnames, *options_argnames)
        # what is jitted: the options' numbers, then the function's own arguments, all by name (for the trace cache)
        signature = inspect.Signature([inspect.Parameter("option_values", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                                       *(p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                         for p in sig.parameters.values())])

        def inner(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            a = [bound.arguments[n] for n in names]
            for i, v in zip(option_idx, bound.arguments["option_values"], strict=True):
                a[i] = join_options(a[i], v)
            return fun(*a)

        inner.__signature__ = signature
        inner.__name__, inner.__qualname__, inner.__module__ = fun.__name__, fun.__qualname__, fun.__module__
        compiled = jax.jit(inner, static_argnames=static)
        kept = persistent(static)(compiled) if persist else compiled

        @functools.wraps(fun)
        def call(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            a = list(bound.arguments.values())
            values = []
            reports = False
            for i in option_idx:
                a[i], v = split_options(a[i])
                values.append(v)
                reports |= any(o.report for o in (a[i] if isinstance(a[i], tuple) else (a[i],))
                               if isinstance(o, SolverOptions))
            return (compiled if reports else kept)(tuple(values), *a)

        call.jitted = compiled
        call._cache_size = compiled._cache_size
        return call

    return decorate


def report_iteration(options: SolverOptions, running: Array, now: tuple[Array, Array, Array],
                     before: tuple[Array, Array, Array]) -> None:
    """Inside a solver loop's body: hands ``now = (iteration, objective, gradient norm)`` to
    :func:`jaxcoh.progress.report` when asked to. Under ``vmap`` the body also runs for lanes that have stopped
    (``running`` false at the iteration's start) and their result is discarded: those report ``before``, their
    figures at the iteration's start, which are their final ones."""
    if options.report:
        _lanes_report(options.report)(*(jnp.where(running, a, b) for a, b in zip(now, before, strict=True)))


def _lanes_report(stage: str) -> Callable[[Array, Array, Array], Array]:
    """:func:`jaxcoh.progress.report` for ``stage`` as one host callback per iteration, under ``vmap`` too, with the
    lanes' figures as arrays. (``jax.debug.callback`` alone unrolls a vmapped callback into one call per lane, which
    the host cannot tell apart: the progress line mixed the lanes.)"""

    @custom_vmap
    def lanes(i, loss, grad_norm):
        jax.debug.callback(functools.partial(progress.report, stage), i, loss, grad_norm)
        return i

    @lanes.def_vmap
    def _batched(axis_size, in_batched, *args):
        args = [a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a))) for a, b in zip(args, in_batched)]
        return lanes(*args), True

    return lanes


def finite_or_inf(x: Array) -> Array:
    return jnp.where(jnp.isfinite(x), x, jnp.inf)


def loss_history(loss0: Array) -> Array:
    """The loss after each of the last :data:`CHANGE_WINDOW` iterations ``[W + 1]``, oldest first (the last entry is
    the current loss), before any iteration."""
    return jnp.full((CHANGE_WINDOW + 1,), finite_or_inf(loss0))


def push_loss(history: Array, loss: Array) -> Array:
    return jnp.concatenate([history[1:], finite_or_inf(loss)[None]])


def relative_change(history: Array, loss: Array, n_iter: Array) -> Array:
    """How much the loss fell over its last ``min(CHANGE_WINDOW, ceil(n_iter / 2))`` iterations, relative to its size
    (floored at 1: objectives near 0). Half the run at most, so that a short solve is judged by how it ended, not by
    its first steps."""
    back = jnp.clip((n_iter + 1) // 2, 1, CHANGE_WINDOW)
    return (history[CHANGE_WINDOW - back] - loss) / jnp.maximum(jnp.abs(loss), 1.0)
