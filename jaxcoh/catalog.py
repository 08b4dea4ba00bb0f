"""A galaxy sample as one padded JAX pytree.

Rotation curves are ragged (SPARC: 4 to 115 points), kernels want rectangles. A :class:`Catalog` stores every
per-point quantity as ``[g, n]`` (g galaxies, padded to n points) with a boolean ``mask``, every per-galaxy quantity as
``[g]``, and the galaxy names as static metadata (they never enter traced code). Padded entries hold values for which
every kernel is finite in value and gradient (:data:`POINT_PAD`), and kernels mask again before any arithmetic, so a
user-built catalog with garbage padding is safe too.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .config import canonical_dtype, default_dtype

if TYPE_CHECKING:  # pandas is imported where tables are made, not with jaxcoh
    import pandas as pd

POINT_FIELDS: tuple[str, ...] = ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "SB_disk", "SB_bul")
"""Per-point fields, each ``[g, n]``. Units: R kpc; speeds km/s; surface brightnesses Lsun/pc^2.
``V_disk`` and ``V_bul`` are for a mass-to-light ratio of 1 at 3.6 micron; ``V_gas`` keeps SPARC's sign."""

GALAXY_FIELDS: tuple[str, ...] = (
    "distance", "e_distance", "inclination", "e_inclination", "L36", "e_L36", "R_eff", "SB_eff",
    "R_disk", "SB_disk0", "M_HI", "R_HI", "V_flat", "e_V_flat", "hubble_type", "distance_method", "quality",
)
"""Per-galaxy fields, each ``[g]`` (SPARC table1). Units: distance Mpc; inclination degrees; L36 1e9 Lsun;
R_eff, R_disk, R_HI kpc; SB_eff, SB_disk0 Lsun/pc^2; M_HI 1e9 Msun; V_flat km/s (0 means not measured)."""

INT_FIELDS = frozenset({"hubble_type", "distance_method", "quality"})

POINT_PAD: Mapping[str, float] = {
    "R": 1.0, "V_obs": 1.0, "e_V_obs": 1.0, "V_gas": 0.0, "V_disk": 1.0, "V_bul": 0.0, "SB_disk": 0.0, "SB_bul": 0.0,
}
"""Values of padded points: positive radius, speeds and errors, so divisions, logs and powers stay finite."""

GALAXY_PAD: Mapping[str, float] = {
    "distance": 10.0, "e_distance": 1.0, "inclination": 60.0, "e_inclination": 5.0, "L36": 1.0, "e_L36": 0.1,
    "R_eff": 1.0, "SB_eff": 1.0, "R_disk": 1.0, "SB_disk0": 1.0, "M_HI": 1.0, "R_HI": 1.0, "V_flat": 0.0,
    "e_V_flat": 0.0, "hubble_type": 0, "distance_method": 0, "quality": 3, "L_bul": 0.0,
}
"""Values of padding galaxies (rows with no real point, added to fill a device mesh)."""


class GalaxyNames(Sequence[str]):
    """Galaxy names as hashable static metadata.

    ``jax.jit`` hashes and compares static metadata on every call; a plain tuple of a million names would be hashed
    each time, so the hash is computed once. Mock catalogs get numbered names generated on demand.
    """

    __slots__ = ("_names", "_prefix", "_n", "_hash")

    def __init__(self, names: Iterable[str] = (), *, prefix: str | None = None, n: int = 0):
        if prefix is None:
            self._names: tuple[str, ...] | None = tuple(str(x) for x in names)
            self._prefix, self._n = None, len(self._names)
        else:
            self._names, self._prefix, self._n = None, prefix, int(n)
        # Hash the length and the ends only: cheap for any size, equal for equal contents in either form.
        self._hash = hash((self._n, self._name(0), self._name(self._n - 1)) if self._n else 0)

    @classmethod
    def numbered(cls, prefix: str, n: int) -> GalaxyNames:
        """Names ``f"{prefix}{i:07d}"`` for ``i < n``, never all held in memory at once."""
        return cls(prefix=prefix, n=n)

    def _name(self, i: int) -> str:
        return self._names[i] if self._names is not None else f"{self._prefix}{i:07d}"

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._name(j) for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._name(i)

    def take(self, index: np.ndarray) -> GalaxyNames:
        return GalaxyNames(self._name(int(i)) for i in index)

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        return (self._name(i) for i in range(self._n))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self):
        # Rebuilt, not copied: the cached hash is Python's string hash, which differs between processes.
        if self._names is None:
            return (GalaxyNames.numbered, (self._prefix, self._n))
        return (GalaxyNames, (self._names,))

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, GalaxyNames) or self._hash != other._hash or self._n != other._n:
            return False
        if self._prefix is not None and self._prefix == other._prefix:
            return True
        return all(a == b for a, b in zip(self, other, strict=True))

    def __repr__(self) -> str:
        head = ", ".join(self[: min(3, self._n)])
        return f"GalaxyNames([{head}{', ...' if self._n > 3 else ''}], n={self._n})"


def _static(default=dataclasses.MISSING):
    return dataclasses.field(default=default, metadata={"static": True})


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Catalog:
    """A padded galaxy sample. Every array field is a pytree leaf; ``names`` and ``source`` are static.

    Shapes: ``[g, n]`` for :data:`POINT_FIELDS` and ``mask``; ``[g]`` for :data:`GALAXY_FIELDS`.
    Invariant (checked by :meth:`validate`): within a galaxy, real points come first, in increasing radius.
    ``SB_disk`` and ``SB_bul`` may be ``None`` (mock catalogs).
    """

    R: Array
    V_obs: Array
    e_V_obs: Array
    V_gas: Array
    V_disk: Array
    V_bul: Array
    SB_disk: Array | None
    SB_bul: Array | None
    mask: Array
    distance: Array
    e_distance: Array
    inclination: Array
    e_inclination: Array
    L36: Array
    e_L36: Array
    R_eff: Array
    SB_eff: Array
    R_disk: Array
    SB_disk0: Array
    M_HI: Array
    R_HI: Array
    V_flat: Array
    e_V_flat: Array
    hubble_type: Array
    distance_method: Array
    quality: Array
    names: GalaxyNames = _static()
    source: str = _static("")
    # The bulge's light [1e9 Lsun] at 3.6 micron of the galaxy each row belongs to, for rows that are not whole curves
    # (:func:`jaxcoh.curves.folding.folded_rows`); None (every loaded catalog): taken from the curve itself
    # (:func:`jaxcoh.curves.inputs.bulge_luminosity`).
    L_bul: Array | None = None

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_ragged(
        cls,
        curves: Sequence[Mapping[str, np.ndarray]],
        galaxies: Mapping[str, np.ndarray],
        names: Sequence[str] | GalaxyNames,
        *,
        source: str = "",
        dtype=None,
        n_max: int | None = None,
    ) -> Catalog:
        """Pads ragged curves into a catalog.

        Args:
          curves: one mapping per galaxy from point field to a 1-d array (``SB_*`` optional).
          galaxies: per-galaxy field -> array ``[g]``; missing fields get :data:`GALAXY_PAD`.
          names: one name per galaxy.
          n_max: pad to this many points (default: the longest curve).
        """
        g = len(curves)
        lengths = np.array([len(c["R"]) for c in curves], dtype=np.int64)
        n = int(n_max if n_max is not None else (lengths.max() if g else 1))
        if g and lengths.max() > n:
            raise ValueError(f"n_max={n} is shorter than the longest curve ({lengths.max()} points)")
        mask = np.arange(n)[None, :] < lengths[:, None]
        point = {}
        for f in POINT_FIELDS:
            if f.startswith("SB_") and not all(f in c for c in curves):
                point[f] = None
                continue
            a = np.full((g, n), POINT_PAD[f], dtype=np.float64)
            a[mask] = np.concatenate([np.asarray(c[f], dtype=np.float64) for c in curves]) if g else []
            point[f] = a
        gal = {f: np.asarray(galaxies[f]) if f in galaxies else np.full(g, GALAXY_PAD[f]) for f in GALAXY_FIELDS}
        unknown = set(galaxies) - set(GALAXY_FIELDS)
        if unknown:
            raise ValueError(f"unknown galaxy fields {sorted(unknown)}")
        names = names if isinstance(names, GalaxyNames) else GalaxyNames(names)
        return cls.from_arrays({**point, "mask": mask, **gal}, names=names, source=source, dtype=dtype)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], *, names, source: str = "", dtype=None) -> Catalog:
        """A catalog from rectangular arrays, cast to ``dtype`` (default :func:`jaxcoh.default_dtype`)."""
        dt = canonical_dtype(dtype) if dtype is not None else default_dtype()
        out = {}
        for f in (*POINT_FIELDS, *GALAXY_FIELDS):
            a = arrays.get(f)
            out[f] = None if a is None else jnp.asarray(a, dtype=jnp.int32 if f in INT_FIELDS else dt)
        out["mask"] = jnp.asarray(arrays["mask"], dtype=bool)
        names = names if isinstance(names, GalaxyNames) else GalaxyNames(names)
        if len(names) != out["mask"].shape[0]:
            raise ValueError(f"{len(names)} names for {out['mask'].shape[0]} galaxies")
        return cls(**out, names=names, source=source)

    # ---- shape and summary -------------------------------------------------------------------------------------
    @property
    def n_galaxies(self) -> int:
        """Number of rows (galaxies), padding rows included."""
        return self.mask.shape[0]

    @property
    def n_max(self) -> int:
        """Padded curve length."""
        return self.mask.shape[1]

    @property
    def n_points(self) -> int:
        """Number of real (unmasked) points. Reads the mask back to the host."""
        return int(np.asarray(self.mask).sum())

    @property
    def points_per_galaxy(self) -> Array:
        """``[g]`` number of real points of each galaxy."""
        return jnp.sum(self.mask, axis=1)

    @property
    def galaxy_mask(self) -> Array:
        """``[g]`` True for galaxies with at least one real point (False for padding rows)."""
        return jnp.any(self.mask, axis=1)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.R.dtype)

    @property
    def padding_fraction(self) -> float:
        cells = self.mask.size
        return 1.0 - self.n_points / cells if cells else 0.0

    def devices(self) -> set:
        return self.R.devices() if hasattr(self.R, "devices") else set()

    def summary(self) -> str:
        devs = ", ".join(sorted(str(d) for d in self.devices())) or "host"
        return (
            f"Catalog({self.source or 'unnamed'}: {self.n_galaxies} galaxies, {self.n_points} points, "
            f"padded to {self.n_max} ({self.padding_fraction:.1%} padding), {self.dtype.name}, on {devs})"
        )

    __repr__ = summary

    def __str__(self) -> str:
        return self.summary()

    # ---- conversions --------------------------------------------------------------------------------------------
    def astype(self, dtype) -> Catalog:
        """The same catalog with every float field in ``dtype``."""
        dt = canonical_dtype(dtype)

        def cast(x):
            return x.astype(dt) if jnp.issubdtype(x.dtype, jnp.floating) else x

        return jax.tree_util.tree_map(cast, self)

    def to_pandas(self, kind: str = "points") -> pd.DataFrame:
        """A long table of the real points (``kind="points"``) or one row per galaxy (``kind="galaxies"``)."""
        import pandas as pd  # at the edges only: importing jaxcoh does not pay for pandas

        mask = np.asarray(self.mask)
        names = np.asarray(list(self.names), dtype=object)
        if kind == "points":
            g_idx, _ = np.nonzero(mask)
            cols = {"galaxy": names[g_idx]}
            for f in POINT_FIELDS:
                a = getattr(self, f)
                if a is not None:
                    cols[f] = np.asarray(a)[mask]
            return pd.DataFrame(cols)
        if kind == "galaxies":
            cols = {"galaxy": names, "n_points": mask.sum(axis=1)}
            cols.update({f: np.asarray(getattr(self, f)) for f in GALAXY_FIELDS})
            return pd.DataFrame(cols)
        raise ValueError(f"kind must be 'points' or 'galaxies', got {kind!r}")

    def validate(self) -> None:
        """Checks shapes and the invariants kernels rely on (host-side; raises ValueError naming the galaxy)."""
        g, n = self.mask.shape
        for f in POINT_FIELDS:
            a = getattr(self, f)
            if a is not None and a.shape != (g, n):
                raise ValueError(f"field {f} has shape {a.shape}, expected {(g, n)}")
        for f in GALAXY_FIELDS:
            if getattr(self, f).shape != (g,):
                raise ValueError(f"field {f} has shape {getattr(self, f).shape}, expected {(g,)}")
        mask = np.asarray(self.mask)
        counts = mask.sum(axis=1)
        if not np.array_equal(mask, np.arange(n)[None, :] < counts[:, None]):
            bad = int(np.nonzero((mask != (np.arange(n)[None, :] < counts[:, None])).any(axis=1))[0][0])
            raise ValueError(f"galaxy {self.names[bad]}: real points must come before padding")
        R = np.asarray(self.R)
        step_ok = (np.diff(R, axis=1) > 0) | ~mask[:, 1:]
        if not step_ok.all():
            bad = int(np.nonzero(~step_ok.all(axis=1))[0][0])
            raise ValueError(f"galaxy {self.names[bad]}: radii must increase")
        for f in POINT_FIELDS:
            a = getattr(self, f)
            if a is not None and not np.isfinite(np.asarray(a)[mask]).all():
                raise ValueError(f"field {f} has non-finite real points")

    def anonymous(self) -> Catalog:
        """The same data under numbered names and no source: what jitted code is given. Names and source are static
        metadata, part of every trace's key, so catalogs of one shape then share traced and compiled programs."""
        return dataclasses.replace(self, names=GalaxyNames.numbered("galaxy", self.n_galaxies), source="")

    # ---- selection ----------------------------------------------------------------------------------------------
    def take(self, index: np.ndarray | Sequence[int]) -> Catalog:
        """The galaxies at ``index`` (host-side integer positions), in that order, re-padded to their longest curve."""
        index = np.asarray(index, dtype=np.int64)
        n_keep = int(np.asarray(self.points_per_galaxy)[index].max()) if index.size else 1
        leaves, tree = jax.tree_util.tree_flatten(self)
        taken = jax.tree_util.tree_unflatten(tree, _take_rows(leaves, index.astype(np.int32), max(n_keep, 1)))
        return dataclasses.replace(taken, names=self.names.take(index), source=self.source)

    def select(
        self,
        names: Iterable[str] | None = None,
        mask: np.ndarray | Sequence[bool] | None = None,
        *,
        quality_max: int | None = None,
        inclination_min: float | None = None,
        min_points: int | None = None,
    ) -> Catalog:
        """Galaxies by name list, boolean mask and/or cuts (all given criteria must hold).

        ``quality_max=2`` keeps SPARC quality 1 and 2 (the usual ``Qual < 3``); ``inclination_min=30`` keeps
        i >= 30 degrees. Unknown names are an error.
        """
        keep = np.ones(self.n_galaxies, dtype=bool)
        if names is not None:
            wanted = list(names)
            pos = {nm: i for i, nm in enumerate(self.names)}
            missing = [nm for nm in wanted if nm not in pos]
            if missing:
                raise KeyError(f"galaxies not in catalog: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
            by_name = np.zeros(self.n_galaxies, dtype=bool)
            by_name[[pos[nm] for nm in wanted]] = True
            keep &= by_name
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            if m.shape != (self.n_galaxies,):
                raise ValueError(f"mask has shape {m.shape}, expected ({self.n_galaxies},)")
            keep &= m
        if quality_max is not None:
            keep &= np.asarray(self.quality) <= quality_max
        if inclination_min is not None:
            keep &= np.asarray(self.inclination) >= inclination_min
        if min_points is not None:
            keep &= np.asarray(self.points_per_galaxy) >= min_points
        return self.take(np.nonzero(keep)[0])

    def select_points(self, keep: np.ndarray) -> Catalog:
        """Keeps the points where ``keep`` (``[g, n]``, host-side) holds, compacting each curve to the front.

        Galaxies left with no point stay as rows with an empty mask; use :meth:`select` with ``min_points`` to
        drop them.
        """
        keep = np.asarray(keep, dtype=bool) & np.asarray(self.mask)
        # A stable argsort of "not kept" moves kept points to the front in their original (increasing R) order.
        order = np.argsort(~keep, axis=1, kind="stable")
        n_keep = max(int(keep.sum(axis=1).max()) if keep.size else 1, 1)
        order = order[:, :n_keep]
        new_mask = np.take_along_axis(keep, order, axis=1)
        fields = {}
        for f in POINT_FIELDS:
            a = getattr(self, f)
            if a is None:
                fields[f] = None
                continue
            a = np.take_along_axis(np.asarray(a), order, axis=1)
            fields[f] = jnp.asarray(np.where(new_mask, a, POINT_PAD[f]), dtype=self.dtype)
        fields["mask"] = jnp.asarray(new_mask)
        return dataclasses.replace(self, **fields)

    def pad_points(self, n_max: int) -> Catalog:
        """Every curve padded to ``n_max`` points (masked): catalogs of other samples in one shape, so that they
        share compiled programs."""
        extra = n_max - self.n_max
        if extra < 0:
            raise ValueError(f"n_max={n_max} is shorter than the longest curve ({self.n_max} points)")
        if extra == 0:
            return self
        fields = {f: jnp.concatenate([x, jnp.full((x.shape[0], extra), False if f == "mask" else POINT_PAD[f],
                                                  dtype=x.dtype)], axis=1)
                  for f in (*POINT_FIELDS, "mask") if (x := getattr(self, f)) is not None}
        return dataclasses.replace(self, **fields)

    def pad_galaxies(self, multiple: int) -> Catalog:
        """Appends padding rows (empty masks) so that ``n_galaxies`` is a multiple of ``multiple`` (device meshes)."""
        extra = (-self.n_galaxies) % multiple
        if extra == 0:
            return self

        def grow(name, x):
            if x is None:
                return None
            pad = False if name == "mask" else POINT_PAD.get(name, GALAXY_PAD.get(name))
            block = jnp.full((extra, *x.shape[1:]), pad, dtype=x.dtype)
            return jnp.concatenate([x, block], axis=0)

        fields = {f.name: grow(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                  if not f.metadata.get("static")}
        names = GalaxyNames([*self.names, *(f"<pad{i}>" for i in range(extra))])
        return dataclasses.replace(self, **fields, names=names)


@functools.partial(jax.jit, static_argnames="n_keep")
def _take_rows(leaves: list[Array], index: Array, n_keep: int) -> list[Array]:
    """Every leaf's rows at ``index [k]``, the per-point ones cut to their first ``n_keep`` points. One program per
    catalog shape: indexed leaf by leaf, each of the ~26 leaves compiled its own eager gather and slice."""
    return [x[index, :n_keep] if x.ndim == 2 else x[index] for x in leaves]
