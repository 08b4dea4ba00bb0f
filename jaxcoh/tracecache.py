"""Traced programs kept on disk between processes, beside JAX's persistent compilation cache.

JAX's persistent compilation cache (``jax_compilation_cache_dir``) keeps compiled executables, but a fresh process
still traces every jitted function in Python before it can look the executable up, and for the vmapped solvers that
tracing (batching a ``while_loop`` twice) is most of a short job's time: the seed's table in a fresh process spent
~1 s tracing four fits that run in ~0.05 s. :func:`persistent` stores each traced and lowered program with
:mod:`jax.export` (StableHLO, serialised) and a fresh process calls it without tracing; XLA then finds the
executable in JAX's cache. Written here because neither JAX nor a library keeps traces across processes.

It is on only where JAX's persistent compilation cache is (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", DIR)``), unless ``$JAXCOH_TRACE_CACHE`` is 0; programs go to
``DIR/jaxcoh-traced/``. A program is reused
only for the same jaxcoh source (a digest of every module), JAX version, backend, precision mode, static arguments
and argument shapes, dtypes and tree structure. Calls from inside other transformations (tracers), on several
devices, or with models defined outside jaxcoh go straight to the jitted function. Every change of jaxcoh or JAX
makes the programs stored before it unreachable: whenever a program is stored, those neither loaded nor stored for
:data:`MAX_IDLE_DAYS` are removed (:func:`evict_idle`).

Nothing read from that directory can run code: a stored file is the serialised export (flatbuffers, data) after a
JSON description of the output pytree, rebuilt only from containers, ``None`` and jaxcoh's own NamedTuples and
registered dataclasses already imported (never pickle, never an import). Anything else is rejected, logged, and the
program traced and stored again. (JAX's own cache beside it holds compiled executables: whoever can write to the
directory can change what runs, so keep it as private as the code itself.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

log = logging.getLogger("jaxcoh")

SUBDIR = "jaxcoh-traced"
ENV = "JAXCOH_TRACE_CACHE"  # 0: traced programs are not kept
SUFFIX = ".exported"
MAX_IDLE_DAYS = 30  # a stored program neither loaded nor stored for this long is removed
MAGIC = b"jaxcoh-traced 2\n"  # then one line of JSON (the output tree), then the jax.export bytes
_SCALARS = (int, float, bool, complex, np.generic)
_JSON_SCALARS = (str, int, float, bool, type(None))
_QUALNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


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
    """``<jax_compilation_cache_dir>/jaxcoh-traced``, or None when JAX's persistent cache is off or
    ``$JAXCOH_TRACE_CACHE`` is ``0`` (traced programs not kept, compiled ones still are)."""
    root = jax.config.jax_compilation_cache_dir
    if os.environ.get(ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return None
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


# ---- tree structures: hashed for the key, described in JSON for the stored outputs --------------------------------
def _hash_aux(h, value) -> bool:
    """Feeds a node's auxiliary data (dict keys, static fields) to ``h`` in full, never as a shortened repr; False
    when it has no exact text (then the cache is bypassed)."""
    if isinstance(value, _JSON_SCALARS):
        h.update(f"{value!r};".encode())
        return True
    if isinstance(value, (tuple, list)):
        if all(type(v) in _JSON_SCALARS for v in value):  # the exact text of every element, at C speed
            h.update(f"{type(value).__qualname__}:{value!r};".encode())
            return True
        h.update(f"{type(value).__qualname__}[{len(value)}]".encode())
        return all(_hash_aux(h, v) for v in value)
    if type(value).__reduce__ is not object.__reduce__:  # how the object says it is rebuilt (galaxy names:
        try:  # numbered ones as prefix and count, not a million strings)
            rebuild, args = value.__reduce__()[:2]
        except Exception:  # noqa: BLE001 -- whatever a foreign object does: not keyable, not an error
            return False
        h.update(f"{getattr(rebuild, '__module__', '?')}.{getattr(rebuild, '__qualname__', '?')}".encode())
        return isinstance(args, tuple) and _hash_aux(h, args)
    return False


def _hash_structure(h, treedef) -> bool:
    """Feeds ``treedef`` (every node's type, by module and name, and its auxiliary data) to ``h``; False when some
    auxiliary data cannot be keyed exactly (then the cache is bypassed)."""
    node = treedef.node_data()
    if node is None:
        h.update(b"*")
        return True
    cls, aux = node
    h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    if not _hash_aux(h, aux):
        return False
    h.update(b"(")
    ok = all(_hash_structure(h, c) for c in treedef.children())
    h.update(b")")
    return ok


def _is_namedtuple(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)


def describe_tree(treedef) -> dict | None:
    """A JSON description of an output structure, or None when it holds something :func:`rebuild_tree` would not
    accept (then the program is kept in this process only)."""
    node = treedef.node_data()
    if node is None:
        return {"node": "leaf"}
    cls, aux = node
    children = [describe_tree(c) for c in treedef.children()]
    if any(c is None for c in children):
        return None
    if cls in (tuple, list, type(None)):
        return {"node": cls.__name__ if cls is not type(None) else "none", "children": children}
    if cls is dict:
        keys = list(aux)
        return {"node": "dict", "keys": keys, "children": children} if all(type(k) is str for k in keys) else None
    if _is_namedtuple(cls) or dataclasses.is_dataclass(cls):
        if not cls.__module__.startswith("jaxcoh.") or "<" in cls.__qualname__:
            return None
        d = {"node": "namedtuple" if _is_namedtuple(cls) else "dataclass", "module": cls.__module__,
             "qualname": cls.__qualname__, "children": children}
        if d["node"] == "dataclass":
            if not isinstance(aux, tuple) or not all(isinstance(v, _JSON_SCALARS) for v in aux):
                return None
            d["static"] = list(aux)
        return d
    return None


class Rejected(ValueError):
    """A stored file that is not a program this module wrote: never used."""


def _jaxcoh_class(module: object, qualname: object) -> type:
    """The class ``module.qualname`` if it is jaxcoh's own, already imported, a NamedTuple or a dataclass."""
    if not (isinstance(module, str) and module.startswith("jaxcoh.") and isinstance(qualname, str)
            and _QUALNAME.fullmatch(qualname)):
        raise Rejected(f"{module}.{qualname} is not a jaxcoh class")
    obj = sys.modules.get(module)  # looked up, never imported: an import would run the module
    for part in qualname.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    if not (isinstance(obj, type) and obj.__module__ == module and obj.__qualname__ == qualname
            and (_is_namedtuple(obj) or dataclasses.is_dataclass(obj))):
        raise Rejected(f"{module}.{qualname} is not a jaxcoh NamedTuple or dataclass")
    return obj


def rebuild_tree(desc: object):
    """The tree structure a :func:`describe_tree` description names; :class:`Rejected` for anything else."""
    registry = jax.tree_util.default_registry
    make = jax.tree_util.PyTreeDef.from_node_data_and_children
    if not isinstance(desc, dict):
        raise Rejected("a tree node is not an object")
    kind = desc.get("node")
    if kind == "leaf":
        return jax.tree_util.tree_structure(0)
    children = desc.get("children")
    if not isinstance(children, list):
        raise Rejected(f"node {kind!r} has no list of children")
    children = [rebuild_tree(c) for c in children]
    if kind in ("tuple", "list", "none"):
        if kind == "none" and children:
            raise Rejected("None has children")
        return make(registry, ({"tuple": tuple, "list": list, "none": type(None)}[kind], None), children)
    if kind == "dict":
        keys = desc.get("keys")
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and len(keys) == len(children)):
            raise Rejected("dict keys are not strings, one per child")
        return make(registry, (dict, keys), children)
    if kind in ("namedtuple", "dataclass"):
        cls = _jaxcoh_class(desc.get("module"), desc.get("qualname"))
        if kind == "namedtuple":
            if not _is_namedtuple(cls) or len(children) != len(cls._fields):
                raise Rejected(f"{cls.__qualname__} does not have {len(children)} fields")
            return make(registry, (cls, None), children)
        static = desc.get("static")
        if _is_namedtuple(cls) or not (isinstance(static, list) and all(isinstance(v, _JSON_SCALARS) for v in static)):
            raise Rejected(f"{cls.__qualname__}: static fields are not plain values")
        try:
            return make(registry, (cls, tuple(static)), children)
        except RuntimeError as e:  # not registered with JAX
            raise Rejected(str(e)) from None
    raise Rejected(f"unknown node {kind!r}")


# ---- stored programs ----------------------------------------------------------------------------------------------
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
            if key is None:
                return jitted(*args, **kwargs)
            program = _LOADED.get(key, False)
            if program is False:
                program = _LOADED[key] = _load_or_export(directory / f"{key}{SUFFIX}", jitted, static, in_tree,
                                                         leaves)
            if program is None:
                return jitted(*args, **kwargs)
            return jax.tree_util.tree_unflatten(program.out_tree, program.call(*leaves))

        wrapper.jitted = jitted
        for attr in ("lower", "trace", "eval_shape", "_cache_size", "clear_cache"):  # the jitted function's API
            if hasattr(jitted, attr):
                setattr(wrapper, attr, getattr(jitted, attr))
        return wrapper

    return decorate


def _key(name: str, tokens: dict, in_tree, leaves) -> str | None:
    """The stored program's name, or None when the arguments' structure cannot be keyed exactly."""
    h = hashlib.sha256()
    dev = jax.devices()[0]
    for part in (source_digest(), jax.__version__, jax.lib.__version__, dev.platform, getattr(dev, "device_kind", ""),
                 str(jax.config.jax_enable_x64), name, repr(sorted(tokens.items()))):
        h.update(part.encode())
        h.update(b"\0")
    if not _hash_structure(h, in_tree):  # the full structure, auxiliary data included (names, static fields)
        return None
    for x in leaves:
        h.update(f"{x.shape}{x.dtype}{getattr(x, 'weak_type', False)};".encode())
    return h.hexdigest()[:32]


def _read(path: Path):
    """``(exported, out_tree)`` from a stored file; :class:`Rejected` unless it is exactly what :func:`_store` writes."""
    from jax import export

    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise Rejected("not a stored program (wrong header)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise Rejected("no description line")
    try:
        head = json.loads(data[len(MAGIC):end])
    except (ValueError, RecursionError) as e:
        raise Rejected(f"description is not JSON: {e}") from None
    if not isinstance(head, dict) or head.get("key") != path.name.removesuffix(SUFFIX):
        raise Rejected("stored under another key")
    out_tree = rebuild_tree(head.get("out_tree"))
    placeholder = jax.tree_util.tree_unflatten(out_tree, [0] * out_tree.num_leaves)  # jaxcoh's constructors only
    if jax.tree_util.tree_structure(placeholder) != out_tree:
        raise Rejected("the output structure does not round-trip")
    try:
        exported = export.deserialize(bytearray(data[end + 1:]))
    except Exception as e:  # flatbuffers parsing: data only, any malformation is an error here
        raise Rejected(f"not a serialised jax.export program: {type(e).__name__}: {e}") from None
    if len(exported.out_avals) != out_tree.num_leaves:
        raise Rejected("outputs do not match their description")
    return exported, out_tree


def evict_idle(directory: Path, max_idle_s: float = MAX_IDLE_DAYS * 86400.0) -> int:
    """Removes the stored programs (``*.exported``) of ``directory`` whose modification time, which a load renews,
    is older than ``max_idle_s``; returns how many. Other files are left alone; a file another process removed first
    is skipped."""
    cutoff = time.time() - max_idle_s
    removed = 0
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    if removed:
        log.debug(f"removed {removed} stored programs unused for {max_idle_s / 86400:.0f} days from {directory}")
    return removed


def _load_or_export(path: Path, jitted, static: dict, in_tree, leaves) -> _Program | None:
    from jax import export

    from .results import atomic_write_bytes

    if path.is_file():
        try:
            program = _Program(*_read(path))
            with contextlib.suppress(OSError):
                os.utime(path)  # used: kept by evict_idle
            return program
        except Exception as e:  # a corrupt, foreign or planted file (whatever it trips): export again below
            log.info(f"stored program {path} rejected ({type(e).__name__}: {e}); tracing it again")
    out_tree = None

    def flat(*xs):
        nonlocal out_tree
        out, out_tree = jax.tree_util.tree_flatten(jitted(**static, **jax.tree_util.tree_unflatten(in_tree, xs)))
        return out

    try:
        exported = export.export(jax.jit(flat))(*leaves)
    except Exception as e:  # an unsupported operation: plain jit, no retry this process
        log.debug(f"not exported: {e}")
        return None
    desc = describe_tree(out_tree)
    try:  # stored only if a later process will rebuild exactly this structure from it
        if desc is not None and rebuild_tree(json.loads(json.dumps(desc, allow_nan=False))) != out_tree:
            desc = None
    except (Rejected, ValueError):
        desc = None
    if desc is None:
        log.debug(f"{path.name}: outputs {out_tree} are not describable; kept in this process only")
    else:
        head = json.dumps({"key": path.name.removesuffix(SUFFIX), "out_tree": desc}, allow_nan=False)
        try:
            atomic_write_bytes(path, MAGIC + head.encode() + b"\n" + bytes(exported.serialize()))
            evict_idle(path.parent)
        except OSError as e:  # an unwritable directory: this process still uses the program
            log.debug(f"not stored for later processes: {e}")
    return _Program(exported, out_tree)
