"""Numerical precision, chosen by configuration rather than at import time.

float64 reproduces published numbers; float32 is faster on accelerators. JAX only creates float64 arrays when
``jax_enable_x64`` is on, so asking for float64 turns it on (once, before arrays are made). Code never sets it at
import time: the engine (the command line, or a user) calls :func:`set_precision`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_VALID = {"float32": np.float32, "float64": np.float64}


def set_precision(dtype: str | type | np.dtype = "float64") -> np.dtype:
    """Makes ``dtype`` the default floating dtype of jaxcoh and returns it.

    float64 turns on ``jax_enable_x64``; float32 leaves it as it is (float32 arrays stay float32 either way,
    because every kernel keeps its constants weakly typed).
    """
    dt = _parse(dtype)
    if dt == np.float64 and not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)
    global _DEFAULT
    _DEFAULT = dt
    return dt


def _parse(dtype) -> np.dtype:
    try:
        dt = np.dtype(_VALID.get(dtype, dtype) if isinstance(dtype, str) else dtype)
    except TypeError as e:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from e
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def canonical_dtype(dtype) -> np.dtype:
    """``"float32"``, ``"float64"`` or a numpy float dtype, as a numpy dtype; anything else is an error."""
    dt = _parse(dtype)
    if dt == np.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError("float64 needs JAX's x64 mode: call jaxcoh.set_precision('float64') first")
    return dt


_DEFAULT: np.dtype | None = None


def default_dtype() -> np.dtype:
    """The dtype set by :func:`set_precision`, else float64 if x64 is on, else float32."""
    if _DEFAULT is not None and (_DEFAULT == np.float32 or jax.config.read("jax_enable_x64")):
        return _DEFAULT
    return np.dtype(jnp.zeros(()).dtype)  # float64 iff x64 is enabled


def precision_name(dtype=None) -> str:
    """``"float32"`` or ``"float64"``, for outputs that must state the precision used."""
    return np.dtype(dtype if dtype is not None else default_dtype()).name
