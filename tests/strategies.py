"""Hypothesis strategies and fixed edge inputs for ``test_properties.py``.

Every strategy draws *values* into arrays of a fixed shape (:data:`G` galaxies padded to :data:`N` points), so a
function jitted once is never recompiled while hypothesis searches. Scale quantities are drawn log-uniformly, so
each decade of a wide range is explored as often as any other.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxcoh.catalog import GALAXY_FIELDS, POINT_PAD, Catalog
from jaxcoh.coherence import Hyperparameters
from jaxcoh.parameters import Parameter

G, N = 4, 8  # derivation batches: [G, N] curves, always
POINT_SPEEDS = ("V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul")

# (lower, upper, log-uniform): the plausible ranges of the derivation's hyperparameters.
HYPER_RANGES = {
    "ell0": (0.3, 100.0, True),  # kpc
    "p": (0.1, 5.0, False),
    "n_coh": (0.05, 5.0, True),
    "A0": (0.01, 20.0, True),
    "gamma_rough": (0.0, 1.0, False),
    "beta_sigma": (0.1, 4.0, False),
    "delta_R": (0.01, 1.0, True),  # kpc
    "alpha_geom": (0.1, 10.0, True),
}
# Padding may hold anything; these are what users plausibly leave there, and worse.
GARBAGE = (0.0, -1.0, 1e300, math.nan, math.inf, -math.inf)


def bounded(lower: float, upper: float, log: bool) -> st.SearchStrategy[float]:
    """Floats in ``[lower, upper]``, uniform in log space when ``log`` (the bounds themselves included)."""
    if not log:
        return st.floats(lower, upper)
    return st.floats(math.log(lower), math.log(upper)).map(lambda y: min(max(math.exp(y), lower), upper))


def log_uniform(lower: float, upper: float) -> st.SearchStrategy[float]:
    return bounded(lower, upper, True)


def hyperparameters() -> st.SearchStrategy[Hyperparameters]:
    return st.builds(Hyperparameters, **{k: bounded(*r) for k, r in HYPER_RANGES.items()})


def parameter_value(p: Parameter) -> st.SearchStrategy[float]:
    """A value of ``p`` within its declared bounds (log-uniform for log-scale parameters); half-bounded or
    unbounded parameters within twelve decades (log) or +-1e6 (linear) of their finite side."""
    if p.bounded and not (p.scale == "log" and p.lower == 0):
        return bounded(p.lower, p.upper, p.scale == "log")
    if p.scale == "log":
        return log_uniform(max(p.lower, 1e-6), min(p.upper, 1e6))
    return st.floats(max(p.lower, -1e6), min(p.upper, 1e6))


def parameter_values(spec) -> st.SearchStrategy[dict[str, float]]:
    return st.fixed_dictionaries({p.name: parameter_value(p) for p in spec})


# ---- derivation batches ---------------------------------------------------------------------------------------------
def _points(elements, n=N):
    return hnp.arrays(np.float64, n, elements=elements)


@st.composite
def curve_batches(draw) -> dict[str, np.ndarray]:
    """``{R, V_obs, V_bar, mask, sigma_v}``: ``[G, N]`` curves and ``[G]`` dispersions over wide ranges.

    Each galaxy has 0 to N real points (0: an all-padding row), optionally only tiny radii (1e-4 to 1e-2 kpc) or no
    baryons at all; single points may have V_bar = 0 or V_obs = 0; padding is filled with drawn garbage.
    """
    rows = {k: [] for k in ("R", "V_obs", "V_bar", "mask")}
    for _ in range(G):
        n = draw(st.integers(0, N))
        lo, hi = (-4.0, -2.0) if draw(st.booleans()) else (-4.0, 3.0)
        R = np.sort(10 ** draw(_points(st.floats(lo, hi))))
        V_obs = draw(_points(st.one_of(st.just(0.0), log_uniform(1e-2, 1e3))))
        V_bar = draw(_points(st.one_of(st.just(0.0), log_uniform(1e-3, 1e3))))
        if draw(st.booleans()):
            V_bar[:] = 0.0  # no baryons: K_req rests on the 1e-6 km/s floor
        mask = np.arange(N) < n
        junk = draw(st.sampled_from(GARBAGE))
        for k, v in (("R", R), ("V_obs", V_obs), ("V_bar", V_bar)):
            rows[k].append(np.where(mask, v, junk))
        rows["mask"].append(mask)
    batch = {k: np.stack(v) for k, v in rows.items()}
    batch["sigma_v"] = np.asarray(draw(st.lists(log_uniform(1e-3, 1e4), min_size=G, max_size=G)))
    return batch


def _edge_batch() -> dict[str, np.ndarray]:
    """Fixed edge rows: no baryons at tiny and ordinary radii, a one-point galaxy, an all-padding row (NaN padding),
    and a galaxy with V_bar = 0 or V_obs = 0 at some points and a dispersion at the floor."""
    nan = math.nan
    R = np.array([[1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0, 30.0],
                  [1e-4, nan, nan, nan, nan, nan, nan, nan],
                  [nan] * N,
                  [1e-4, 2e-4, 0.5, 1.0, 2.0, 0.0, 0.0, 0.0]])
    V_obs = np.array([[5.0, 20.0, 40.0, 60.0, 80.0, 90.0, 95.0, 100.0],
                      [50.0, nan, nan, nan, nan, nan, nan, nan],
                      [nan] * N,
                      [0.0, 30.0, 1e3, 50.0, 0.0, 0.0, 0.0, 0.0]])
    V_bar = np.array([[0.0] * N,
                      [0.0, nan, nan, nan, nan, nan, nan, nan],
                      [nan] * N,
                      [0.0, 40.0, 0.0, 1e-3, 60.0, 0.0, 0.0, 0.0]])
    mask = np.arange(N)[None, :] < np.array([N, 1, 0, 5])[:, None]
    return dict(R=R, V_obs=V_obs, V_bar=V_bar, mask=mask, sigma_v=np.array([1e4, 1e-3, 25.0, 1e-3]))


EDGE_BATCH = _edge_batch()


def batches() -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Drawn batches, and the fixed :data:`EDGE_BATCH` about half the time (so every edge row is always exercised)."""
    return st.one_of(st.just(EDGE_BATCH), curve_batches())


# ---- catalogs -------------------------------------------------------------------------------------------------------
EDGE_GALAXY = dict(distance=5.0, e_distance=0.5, inclination=60.0, e_inclination=5.0, L36=0.5, e_L36=0.05, R_eff=1.5,
                   SB_eff=50.0, R_disk=1.0, SB_disk0=100.0, M_HI=0.3, R_HI=3.0, V_flat=0.0, e_V_flat=0.0)


def edge_catalog(mock: Catalog, pad: float | None = None) -> Catalog:
    """``mock`` (``[g, N]``) plus four edge rows: a one-point galaxy; an all-padding row; a galaxy with V_bar = 0 at
    some points and a negative V_gas (V_bar^2 < 0) at one; one with no baryons at all, at tiny radii, seen edge-on
    (i = 90, the bound of the inclination's bijection). Padding holds :data:`POINT_PAD`, or ``pad`` when given."""
    assert mock.n_max == N
    rows = [  # (n, R, V_obs, e_V_obs, V_gas, V_disk, V_bul, table overrides)
        (1, [2.0], [50.0], [3.0], [10.0], [30.0], [0.0], dict(V_flat=50.0)),
        (0, [], [], [], [], [], [], {}),
        (5, [0.5, 1.0, 2.0, 3.0, 4.0], [20.0, 40.0, 50.0, 55.0, 60.0], [2.0] * 5, [0.0, -5.0, 0.0, 10.0, 12.0],
         [0.0, 0.0, 20.0, 25.0, 20.0], [0.0, 0.0, 0.0, 5.0, 0.0], {}),
        (6, [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], [1.0, 2.0, 4.0, 6.0, 8.0, 10.0], [0.5] * 6, [0.0] * 6, [0.0] * 6,
         [0.0] * 6, dict(inclination=90.0, V_flat=10.0)),
    ]
    a = {f: np.asarray(getattr(mock, f)) for f in (*GALAXY_FIELDS, "R", *POINT_SPEEDS, "mask")}
    for n, R, V_obs, e_V, V_gas, V_disk, V_bul, table in rows:
        for f, vals in zip(("R", *POINT_SPEEDS), (R, V_obs, e_V, V_gas, V_disk, V_bul), strict=True):
            row = np.full(N, POINT_PAD[f])
            row[:n] = vals
            a[f] = np.concatenate([a[f], row[None]])
        a["mask"] = np.concatenate([a["mask"], (np.arange(N) < n)[None]])
        for f in GALAXY_FIELDS:
            a[f] = np.concatenate([a[f], [{**EDGE_GALAXY, **table}.get(f, a[f][0])]])
    if pad is not None:
        for f in ("R", *POINT_SPEEDS):
            a[f] = np.where(a["mask"], a[f], pad)
    names = [*mock.names, "one_point", "all_padding", "vbar_zero_negative_gas", "no_baryons_tiny_radii"]
    return Catalog.from_arrays({**a, "SB_disk": None, "SB_bul": None}, names=names, source="edge", dtype=mock.dtype)
