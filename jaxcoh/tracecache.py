"""Traced programs kept on disk between processes, beside JAX's persistent compilation cache.

JAX's persistent compilation cache (``jax_compilation_cache_dir``) keeps compiled executables, but a fresh process
still traces every jitted function in Python before it can look the executable up, and for the vmapped solvers that
tracing (batching a ``while_loop`` twice) is most of a short job's time: the seed's table in a fresh process spent
~1 s tracing four fits that run in ~0.05 s. :func:`persistent` stores each traced and lowered program with
:mod:`jax.export` (StableHLO, serialised) and a fresh process calls it without tracing; XLA then finds the
executable in JAX's cache. Written here because neither JAX nor a library keeps traces across processes.

It is on only where JAX's persistent compilation cache is (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", DIR)``); programs go to ``DIR/jaxcoh-traced/``. A program is reused
only for the same jaxcoh source (a digest of every module), JAX version, backend, precision mode, static arguments
and argument shapes, dtypes and tree structure. Calls from inside other transformations (tracers), on several
devices, or with models defined outside jaxcoh go straight to the jitted function.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

log = logging.getLogger("jaxcoh")

SUBDIR = "jaxcoh-traced"
_SCALARS = (int, float, bool, complex, np.generic)


@functools.cache
def source_digest() -> str:
    """sha256 of every module of the jaxcoh package (a changed line invalidates every stored program)."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def cache_directory() -> Path | None:
    """``<jax_compilation_cache_dir>/jaxcoh-traced``, or None when JAX's persistent cache is off."""
    root = jax.config.jax_compilation_cache_dir
    return Path(root) / SUBDIR if root else None


def _static_token(value) -> str | None:
    """A stable text for a static argument, or None when it cannot be keyed safely (then the cache is bypassed)."""
    token = getattr(value, "trace_token", None)
    if callable(token):  # models say themselves whether (and how) their program can be keyed
        return token()
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    if isinstance(value, tuple):  # NamedTuples of options included
        parts = [_static_token(v) for v in value]
        return None if None in parts else f"{type(value).__qualname__}({', '.join(parts)})"
    return None


class _Program:
    """A deserialised program and the structure of its outputs, callable on flat leaves."""

    def __init__(self, exported, out_tree):
        self.call = jax.jit(exported.call)
        self.out_tree = out_tree


_LOADED: dict[str, _Program | None] = {}  # in this process: key -> program (None: export failed, do not retry)


def persistent(static_argnames: Sequence[str]) -> Callable[[Callable], Callable]:
    """Decorates a jitted function so that, with JAX's persistent cache on, fresh processes skip its tracing.

    ``static_argnames`` are the jitted function's static arguments (they and the arguments' shapes key the store).
    Results are those of the jitted function; the wrapper keeps it as ``.jitted``.
    """
    static_argnames = tuple(static_argnames)

    def decorate(jitted: Callable) -> Callable:
        sig = inspect.signature(jitted)
        name = f"{jitted.__module__}.{jitted.__qualname__}"

        @functools.wraps(jitted)
        def wrapper(*args, **kwargs):
            directory = cache_directory()
            if directory is None or jax.device_count() > 1:
                return jitted(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            static = {k: bound.arguments[k] for k in static_argnames}
            dynamic = {k: v for k, v in bound.arguments.items() if k not in static}
            tokens = {k: _static_token(v) for k, v in static.items()}
            leaves, in_tree = jax.tree_util.tree_flatten(dynamic)
            if (None in tokens.values() or any(isinstance(x, jax.core.Tracer) for x in leaves)
                    or not all(isinstance(x, (jax.Array, np.ndarray, *_SCALARS)) for x in leaves)):
                return jitted(*args, **kwargs)
            leaves = [jnp.asarray(x) for x in leaves]
            key = _key(name, tokens, in_tree, leaves)
            program = _LOADED.get(key, False)
            if program is False:
                program = _LOADED[key] = _load_or_export(directory / f"{key}.pkl", jitted, static, in_tree, leaves)
            if program is None:
                return jitted(*args, **kwargs)
            return jax.tree_util.tree_unflatten(program.out_tree, program.call(*leaves))

        wrapper.jitted = jitted
        for attr in ("lower", "trace", "eval_shape", "_cache_size", "clear_cache"):  # the jitted function's API
            if hasattr(jitted, attr):
                setattr(wrapper, attr, getattr(jitted, attr))
        return wrapper

    return decorate


def _key(name: str, tokens: dict, in_tree, leaves) -> str:
    h = hashlib.sha256()
    dev = jax.devices()[0]
    for part in (source_digest(), jax.__version__, jax.lib.__version__, dev.platform, getattr(dev, "device_kind", ""),
                 str(jax.config.jax_enable_x64), name, repr(sorted(tokens.items()))):
        h.update(part.encode())
        h.update(b"\0")
    h.update(pickle.dumps(in_tree))  # the full structure, auxiliary data included (names, static fields)
    for x in leaves:
        h.update(f"{x.shape}{x.dtype}{getattr(x, 'weak_type', False)};".encode())
    return h.hexdigest()[:32]


def _load_or_export(path: Path, jitted, static: dict, in_tree, leaves) -> _Program | None:
    from jax import export

    from .results import atomic_write_bytes

    if path.is_file():
        try:
            stored = pickle.loads(path.read_bytes())
            return _Program(export.deserialize(bytearray(stored["exported"])), stored["out_tree"])
        except Exception as e:  # a corrupt or foreign file: export again below
            log.debug(f"stored program {path.name} unreadable ({e}); tracing again")
    out_tree = None

    def flat(*xs):
        nonlocal out_tree
        out, out_tree = jax.tree_util.tree_flatten(jitted(**static, **jax.tree_util.tree_unflatten(in_tree, xs)))
        return out

    try:
        exported = export.export(jax.jit(flat))(*leaves)
        atomic_write_bytes(path, pickle.dumps({"exported": bytes(exported.serialize()), "out_tree": out_tree}))
    except Exception as e:  # an unsupported operation or an unwritable directory: plain jit, no retry this process
        log.debug(f"not stored for later processes: {e}")
        return None
    return _Program(exported, out_tree)
