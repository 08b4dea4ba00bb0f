"""Running one computation over many devices and processes with ``jax.sharding``.

Two axes can be split: the *batch* axis of sweeps (bootstrap replicates, grid points, profile values), where every
row is independent, and the *galaxy* axis of joint fits, where reductions over galaxies become all-reduces. The code
that runs is the same on one CPU, one GPU, several GPUs or several hosts: inputs are placed (or constrained inside
``jit``) with a :class:`~jax.sharding.NamedSharding` over a one-dimensional :class:`~jax.sharding.Mesh`, and XLA
partitions the program. Across processes (``jax.distributed.initialize``) results are gathered with
``multihost_utils.process_allgather`` before they reach numpy.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .catalog import Catalog

BATCH = "batch"
GALAXIES = "galaxies"


def mesh(axis: str = BATCH, devices=None) -> Mesh:
    """A one-dimensional mesh over ``devices`` (default: every device of every process)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (axis,))


def padded_size(n: int) -> int:
    """``n`` rounded up to a multiple of the device count (the batch axis must divide evenly)."""
    d = jax.device_count()
    return -(-n // d) * d


def shard_leading(x: jax.Array) -> jax.Array:
    """Inside ``jit``: split the leading axis of ``x`` over all devices (a no-op on one device or when the axis does
    not divide evenly; callers pad with :func:`padded_size`)."""
    d = jax.device_count()
    if d == 1 or x.shape[0] % d:
        return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh(), PartitionSpec(BATCH)))


def pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` with its last row repeated to ``n`` rows (padding rows are computed and dropped)."""
    x = np.asarray(x)
    if len(x) >= n:
        return x
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def gather(tree):
    """Every leaf as a host numpy array holding all rows, from any sharding and any number of processes."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.asarray, tree)


def shard_catalog(cat: Catalog, devices=None) -> Catalog:
    """``cat`` padded to a multiple of the device count and split over devices along the galaxy axis.

    Jitted functions of the result (derivations, joint objectives and their gradients) then run with each device
    holding ``1/n`` of the galaxies; sums over galaxies become all-reduces. Padding rows have empty masks.
    """
    m = mesh(GALAXIES, devices)
    n_dev = m.devices.size
    cat = cat.pad_galaxies(n_dev)
    rows = NamedSharding(m, PartitionSpec(GALAXIES))

    def place(x):
        if x is None:
            return None
        if jax.process_count() > 1:
            return jax.make_array_from_callback(x.shape, rows, lambda idx: np.asarray(x)[idx])
        return jax.device_put(x, rows)

    leaves = {f.name: place(getattr(cat, f.name)) for f in dataclasses.fields(cat)
              if f.name not in ("names", "source")}
    return dataclasses.replace(cat, **leaves)
