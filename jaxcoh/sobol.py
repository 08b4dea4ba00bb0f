"""Scrambled Sobol points from scipy (``scipy.stats.qmc.Sobol``), kept beside JAX's compiled programs.

Every multi-start fit draws its starts from a Sobol design, and ``qmc`` comes with the whole of ``scipy.stats``: about
a second to import, a fifth of the main job's run once its programs are cached. The points are a function of the
dimension, the power of two drawn, the seed and scipy's version, so with JAX's persistent cache on
(:mod:`jaxcoh.compilation_cache`) they are stored there at the first draw and read back afterwards (``jaxcoh-sobol/``).
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path

import jax
import numpy as np

from .results import atomic_write_bytes

log = logging.getLogger("jaxcoh")
SUBDIR = "jaxcoh-sobol"


def _cache_root() -> str | None:
    return jax.config.jax_compilation_cache_dir


def _stored_at(d: int, m: int, seed: int) -> Path | None:
    root = _cache_root()
    if not root or not isinstance(seed, (int, np.integer)):
        return None
    import scipy  # the top-level package only (light): its version keys the file

    return Path(root) / SUBDIR / f"d{d}-m{m}-seed{int(seed)}-scipy{scipy.__version__}.npy"


def sobol_points(d: int, n: int, seed: int) -> np.ndarray:
    """The first ``n`` points ``[n, d]`` in [0, 1) of scipy's scrambled Sobol sequence drawn with ``seed`` (the
    next power of two drawn, Sobol's balanced sizes, and the first ``n`` kept)."""
    m = max(0, math.ceil(math.log2(max(n, 1))))
    path = _stored_at(d, m, seed)
    if path is not None and path.is_file():
        try:
            u = np.load(path, allow_pickle=False)
            if u.shape == (2**m, d) and u.dtype == np.float64 and np.all((u >= 0) & (u < 1)):
                return u[:n]
        except (OSError, ValueError) as e:  # unreadable or not an array: drawn again below
            log.debug(f"stored Sobol points {path} not used ({e})")
    from scipy.stats import qmc

    u = qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)
    if path is not None:
        buf = io.BytesIO()
        np.save(buf, u, allow_pickle=False)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError as e:  # an unwritable cache: drawn again next time
            log.debug(f"Sobol points not stored: {e}")
    return u[:n]
