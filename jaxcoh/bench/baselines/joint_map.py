"""B5: a joint MAP fit of the radial acceleration relation with per-galaxy nuisance parameters, by finite differences.

``g_obs = g_bar / (1 - exp(-sqrt(g_bar / g_dagger)))`` with one shared ``g_dagger``, and per galaxy the disk and bulge
mass-to-light ratios (log-normal priors, 0.1 dex around 0.5 / 0.7), the distance (Gaussian, table1's D and e_D) and
the inclination (Gaussian, i and e_i). The residuals are the data residuals ``(V_obs - V_model) / errV`` plus the
priors' pseudo-residuals, so ``0.5 sum(res^2)`` is the negative log posterior that jaxcoh's ``joint.objective``
computes for model ``"rar"`` with ``JointOptions(nuisance=True, loss="chi2", recipe="sparc")`` (neither includes
constants). It is solved the way a scipy user would: ``scipy.optimize.least_squares`` (trust-region reflective) with a
finite-difference Jacobian, one residual evaluation per parameter per Jacobian, which is what jaxcoh's autodiff
Jacobian replaces.

Rescaling by the nuisance values, as SPARC tabulates at table1's ``D_t`` and ``i_t``: radii by ``D/D_t``, baryonic
speeds by ``sqrt(D/D_t)``, observed speeds and their errors by ``sin(i_t)/sin(i)``.

``arrays`` is a dict of numpy arrays under jaxcoh's Catalog field names (:data:`JOINT_FIELDS`): ``[g, n]`` point
fields with ``mask`` (real points first), ``[g]`` ``distance, e_distance, inclination, e_inclination``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix

JOINT_FIELDS = ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "mask", "distance", "e_distance", "inclination",
                "e_inclination")
NUISANCE_NAMES = ("upsilon_disk", "upsilon_bulge", "distance", "inclination")
UPSILON_DISK, UPSILON_BULGE, UPSILON_SCATTER_DEX = 0.5, 0.7, 0.1
KMS2_PER_KPC_TO_MS2 = 1e6 / 3.0856775814913673e19  # (km/s)^2/kpc -> m/s^2
G_DAGGER_INIT, G_DAGGER_BOUNDS = 1.2e-10, (1e-12, 1e-8)  # m/s^2
INCLINATION_BOUNDS = (1.0, 90.0)  # degrees


def table_nuisance(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The priors' centres ``{name: [g]}``: Upsilon 0.5 / 0.7, table1's distance and inclination."""
    one = np.ones(np.shape(arrays["distance"]))
    return {"upsilon_disk": UPSILON_DISK * one, "upsilon_bulge": UPSILON_BULGE * one,
            "distance": np.asarray(arrays["distance"], float), "inclination": np.asarray(arrays["inclination"], float)}


def rar_residuals(g_dagger: float, nuisance: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """All residuals ``[m]``: the real points' ``(V_obs - V_model)/errV`` (row-major), then the priors ``[g, 4]``
    (Upsilon_disk, Upsilon_bulge, D, i) of the galaxies that have points. ``nuisance``: ``{name: [g]}``."""
    mask = np.asarray(arrays["mask"], bool)
    has = mask.any(axis=1)
    ud, ub = nuisance["upsilon_disk"], nuisance["upsilon_bulge"]
    D, inc = nuisance["distance"], nuisance["inclination"]
    d = (D / arrays["distance"])[:, None]
    s = (np.sin(np.deg2rad(arrays["inclination"])) / np.sin(np.deg2rad(inc)))[:, None]
    R = np.where(mask, arrays["R"], 1.0) * d
    sd = np.sqrt(d)
    V_gas = arrays["V_gas"] * sd
    V_bar2 = np.where(mask, V_gas * np.abs(V_gas) + ud[:, None] * (arrays["V_disk"] * sd) ** 2
                      + ub[:, None] * (arrays["V_bul"] * sd) ** 2, 1.0)
    g_bar = V_bar2 / R * KMS2_PER_KPC_TO_MS2
    pos = g_bar > 0
    nu = np.where(pos, -1.0 / np.expm1(-np.sqrt(np.where(pos, g_bar, 1.0) / g_dagger)), 1.0)
    V2 = V_bar2 * nu
    V_model = np.sign(V2) * np.sqrt(np.abs(V2))
    err = np.sqrt(np.where(mask, (arrays["e_V_obs"] * s) ** 2, 1.0))
    r = (arrays["V_obs"] * s - V_model) / err
    prior = np.stack([(np.log10(ud) - np.log10(UPSILON_DISK)) / UPSILON_SCATTER_DEX,
                      (np.log10(ub) - np.log10(UPSILON_BULGE)) / UPSILON_SCATTER_DEX,
                      (D - arrays["distance"]) / arrays["e_distance"],
                      (inc - arrays["inclination"]) / arrays["e_inclination"]], axis=1)
    return np.concatenate([r[mask], prior[has].ravel()])


def rar_cost(g_dagger: float, nuisance: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> float:
    """``0.5 sum(res^2)``: the negative log posterior (jaxcoh's ``joint.objective`` at the same values)."""
    return float(0.5 * np.sum(rar_residuals(g_dagger, nuisance, arrays) ** 2))


def pack(g_dagger: float, nuisance: Mapping[str, np.ndarray], has: np.ndarray) -> np.ndarray:
    """The solver's vector ``[1 + 4 k]`` (k galaxies with points): ``ln g_dagger``, then per kind ``ln Upsilon_disk,
    ln Upsilon_bulge, ln D, i`` (degrees) over the k galaxies."""
    return np.concatenate([[np.log(g_dagger)], np.log(nuisance["upsilon_disk"][has]),
                           np.log(nuisance["upsilon_bulge"][has]), np.log(nuisance["distance"][has]),
                           nuisance["inclination"][has]])


def unpack(x: np.ndarray, start: Mapping[str, np.ndarray], has: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Inverse of :func:`pack`; galaxies without points keep their ``start`` values."""
    k = int(has.sum())
    parts = x[1:].reshape(4, k)
    nu = {name: np.array(start[name], dtype=float, copy=True) for name in NUISANCE_NAMES}
    for j, name in enumerate(NUISANCE_NAMES):
        nu[name][has] = parts[j] if name == "inclination" else np.exp(parts[j])
    return float(np.exp(x[0])), nu


def jacobian_sparsity(mask: np.ndarray) -> lil_matrix:
    """Which residual depends on which parameter: a galaxy's points on g_dagger and its 4 nuisance values, each
    prior on its own value. ``[m, 1 + 4 k]``."""
    has = mask.any(axis=1)
    k = int(has.sum())
    gal = np.cumsum(has) - 1  # column offset of each galaxy among those with points
    rows_g = np.nonzero(mask)[0]
    n_data = rows_g.size
    S = lil_matrix((n_data + 4 * k, 1 + 4 * k), dtype=int)
    S[:n_data, 0] = 1
    for j in range(4):
        S[np.arange(n_data), 1 + j * k + gal[rows_g]] = 1
        S[n_data + 4 * np.arange(k) + j, 1 + j * k + np.arange(k)] = 1
    return S


def joint_map_rar(arrays: Mapping[str, np.ndarray], *, g_dagger0: float = G_DAGGER_INIT,
                  nuisance0: Mapping[str, np.ndarray] | None = None, sparse_jacobian: bool = False,
                  **least_squares_kwargs) -> dict:
    """MAP fit of the RAR with nuisance parameters by ``scipy.optimize.least_squares``.

    Defaults are scipy's (``method="trf"``, ``jac="2-point"``, tolerances 1e-8); keyword arguments go to
    ``least_squares``. Starts from ``g_dagger0`` and the priors' centres (or ``nuisance0``). ``sparse_jacobian``
    passes the block sparsity (grouped finite differences, lsmr with tolerances 1e-12): a stronger baseline than the
    default dense one.

    Returns ``dict(g_dagger, nuisance={name: [g]}, cost, nfev, njev, status, message, n_params, n_residuals)``, with
    ``cost = 0.5 sum(res^2)`` at the solution (comparable with jaxcoh's ``JointFit.objective``).
    """
    mask = np.asarray(arrays["mask"], bool)
    has = mask.any(axis=1)
    start = dict(table_nuisance(arrays) if nuisance0 is None else nuisance0)
    k = int(has.sum())
    lo = np.concatenate([[np.log(G_DAGGER_BOUNDS[0])], np.full(3 * k, -np.inf), np.full(k, INCLINATION_BOUNDS[0])])
    hi = np.concatenate([[np.log(G_DAGGER_BOUNDS[1])], np.full(3 * k, np.inf), np.full(k, INCLINATION_BOUNDS[1])])

    def fun(x):
        g, nu = unpack(x, start, has)
        return rar_residuals(g, nu, arrays)

    if sparse_jacobian:
        least_squares_kwargs.setdefault("jac_sparsity", jacobian_sparsity(mask))
        # lsmr's default tolerances (1e-8) leave steps too inexact to reach the optimum (2e-5 high in cost on SPARC)
        least_squares_kwargs.setdefault("tr_options", {"atol": 1e-12, "btol": 1e-12})
    res = least_squares(fun, pack(g_dagger0, start, has), bounds=(lo, hi), **least_squares_kwargs)
    g, nu = unpack(res.x, start, has)
    return {"g_dagger": g, "nuisance": nu, "cost": float(res.cost), "nfev": int(res.nfev),
            "njev": int(res.njev) if res.njev is not None else None, "status": int(res.status),
            "message": res.message, "n_params": int(res.x.size), "n_residuals": int(res.fun.size)}
