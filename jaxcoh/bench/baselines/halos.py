"""B6: the halo catalogue of Li et al. (2020) the way per-galaxy tools fit it: a Python loop over galaxies and models,
``scipy.optimize.least_squares`` (trust-region reflective, finite-difference Jacobian, bounds) from several starts
each, the best start kept (as pyROTMOD and most rotation-curve scripts do).

The same problem as ``jaxcoh.curves.halo_catalog``: ``V^2 = V_bar^2 + V_halo^2(R; V200, C200[, alpha])`` with the
seven profiles of Li et al. (2020) in the V200/C200 parameterisation (H0 = 73 km/s/Mpc), per galaxy the stellar
mass-to-light ratios (log-normal priors, 0.1 dex around 0.5 / 0.7; Upsilon_bul only for galaxies with a bulge),
the distance and the inclination (Gaussian priors, table1's values and errors), and for LCDM the Dutton & Maccio
(2014) c-M relation (0.11 dex), Moster et al. (2013)'s stellar-to-halo mass relation (0.15 dex) and Einasto's
alpha(M200) (0.16 dex). Enclosed masses in closed form; Einasto from scipy's regularised incomplete gamma; DC14
from the hypergeometric function ``x^(3-g)/(3-g) 2F1((b-g)/a, (3-g)/a; (3-g)/a + 1; -x^a)``; coreNFW with
``r_c = 1.75 R_eff`` and ``n = tanh(0.04 x 14 Gyr / t_dyn)``. ``M_star = Upsilon_d (L36 - L_bul) + Upsilon_b L_bul``,
``L_bul = V_bul^2 R / G`` at the last point.

It imports nothing from jaxcoh. ``arrays``: numpy arrays under jaxcoh's Catalog field names (:data:`FIELDS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares
from scipy.special import gammainc, gammaln, hyp2f1

FIELDS = ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "mask", "distance", "e_distance", "inclination",
          "e_inclination", "L36", "R_eff")
G = 4.30091e-6  # kpc (km/s)^2 / Msun
TEN_H0 = 0.73  # 10 H0 [km/s/kpc]
H = 0.73
GYR_PER_KPC_KMS = 3.0856775814913673e16 / (365.25 * 86400 * 1e9)
PROFILES = ("pISO", "Burkert", "NFW", "Einasto", "DC14", "coreNFW", "Lucky13")
MODELS = tuple((p, prior) for p in PROFILES for prior in (("Flat",) if p in ("pISO", "Burkert") else ("Flat", "LCDM")))
V200_BOUNDS, C200_BOUNDS, ALPHA_BOUNDS = (10.0, 500.0), (1.0, 1000.0), (0.05, 2.0)


def mu_nfw(x):
    return np.log1p(x) - x / (1 + x)


def mu(profile: str, x, shape=()):
    """Dimensionless enclosed mass ``M(<r) = 4 pi rho_s rs^3 mu(r/rs)``."""
    if profile == "pISO":
        return x - np.arctan(x)
    if profile == "Burkert":
        return 0.5 * (np.log1p(x) + 0.5 * np.log1p(x * x) - np.arctan(x))
    if profile == "NFW":
        return mu_nfw(x)
    if profile == "Lucky13":
        y = x / (1 + x)
        return np.log1p(x) - y - 0.5 * y * y
    if profile == "Einasto":
        (alpha,) = shape
        a = 3.0 / alpha
        log_norm = 2.0 / alpha - math.log(alpha) + a * math.log(0.5 * alpha) + gammaln(a)
        return math.exp(log_norm) * gammainc(a, 2.0 / alpha * x**alpha)
    if profile == "DC14":
        a, b, g = shape
        return x ** (3 - g) / (3 - g) * hyp2f1((b - g) / a, (3 - g) / a, (3 - g) / a + 1, -(x**a))
    if profile == "coreNFW":
        xc, n = shape
        return mu_nfw(x) * np.tanh(x / xc) ** n
    raise ValueError(profile)


def dc14_abg(X: float) -> tuple[float, float, float]:
    X = min(max(X, -4.1), -1.3)
    a = 2.94 - math.log10((10 ** (X + 2.33)) ** -1.08 + (10 ** (X + 2.33)) ** 2.29)
    return a, 4.23 + 1.34 * X + 0.26 * X * X, -0.06 + math.log10((10 ** (X + 2.56)) ** -0.68 + 10 ** (X + 2.56))


def halo_shape(profile: str, V200: float, C200: float, alpha: float, M_star: float, R_eff: float) -> tuple:
    if profile == "Einasto":
        return (alpha,)
    M200 = V200**3 / (TEN_H0 * G)
    if profile == "DC14":
        return dc14_abg(math.log10(M_star / M200))
    if profile == "coreNFW":
        rs = V200 / TEN_H0 / C200
        t_dyn = 2 * math.pi * math.sqrt(rs**3 / (G * M200 * (math.log(2) - 0.5) / mu_nfw(C200))) * GYR_PER_KPC_KMS
        return 1.75 * R_eff / rs, math.tanh(0.04 * 14.0 / t_dyn)
    return ()


def v2_halo(profile: str, R, V200: float, C200: float, shape) -> np.ndarray:
    x = R / (V200 / TEN_H0)
    return V200**2 * mu(profile, C200 * x, shape) / (x * mu(profile, C200, shape))


def galaxy(arrays: Mapping[str, np.ndarray], j: int) -> dict:
    """Galaxy ``j``'s real points and table values."""
    m = np.asarray(arrays["mask"][j], bool)
    g = {k: np.asarray(arrays[k][j], float)[m] for k in ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul")}
    g.update({k: float(arrays[k][j]) for k in ("distance", "e_distance", "inclination", "e_inclination", "L36",
                                                 "R_eff")})
    g["L_bul"] = min(max(g["V_bul"][-1] ** 2 * g["R"][-1] / G * 1e-9, 0.0), g["L36"]) if len(g["R"]) else 0.0
    g["bulge"] = bool(np.any(g["V_bul"] != 0))
    return g


def _unpack(theta, profile: str, gal: dict):
    i = 0
    V200, C200 = 10 ** theta[0], 10 ** theta[1]
    alpha = 0.0
    if profile == "Einasto":
        alpha, i = theta[2], 1
    ud = 10 ** theta[2 + i]
    ub = 10 ** theta[3 + i] if gal["bulge"] else 0.7
    D, inc = theta[-2], theta[-1]
    return V200, C200, alpha, ud, ub, D, inc


def residuals(theta, profile: str, prior: str, gal: dict) -> np.ndarray:
    """Data residuals ``(V_obs - V_model)/errV`` at the nuisance values, then every prior term."""
    V200, C200, alpha, ud, ub, D, inc = _unpack(theta, profile, gal)
    d = D / gal["distance"]
    s = math.sin(math.radians(gal["inclination"])) / math.sin(math.radians(inc))
    R = gal["R"] * d
    V_bar2 = (gal["V_gas"] * np.abs(gal["V_gas"]) + ud * gal["V_disk"] ** 2 + ub * gal["V_bul"] ** 2) * d
    M_star = 1e9 * d * d * (ud * (gal["L36"] - gal["L_bul"]) + ub * gal["L_bul"])
    V2 = V_bar2 + v2_halo(profile, R, V200, C200, halo_shape(profile, V200, C200, alpha, M_star, gal["R_eff"] * d))
    V = np.sign(V2) * np.sqrt(np.abs(V2))
    r = [(gal["V_obs"] * s - V) / (gal["e_V_obs"] * s), [(math.log10(ud) - math.log10(0.5)) / 0.1]]
    if gal["bulge"]:
        r.append([(math.log10(ub) - math.log10(0.7)) / 0.1])
    r.append([(D - gal["distance"]) / gal["e_distance"], (inc - gal["inclination"]) / gal["e_inclination"]])
    if prior == "LCDM":
        lm = 3 * math.log10(V200) - math.log10(TEN_H0 * G)
        m = lm + math.log10(H) - 12
        A, B = (0.977, -0.130) if profile == "Einasto" else (0.905, -0.101)
        d1 = (lm - 11.590) * math.log(10)
        shmr = math.log10(2 * 0.0351) + lm - np.logaddexp(-1.376 * d1, 0.608 * d1) / math.log(10)
        r.append([(math.log10(C200) - A - B * m) / 0.11, (math.log10(M_star) - shmr) / 0.15])
        if profile == "Einasto":
            nu = 10 ** (-0.11 + m * (0.146 + m * (0.0138 + m * 0.00123)))
            r.append([(math.log10(alpha) - math.log10(0.0095 * nu * nu + 0.155)) / 0.16])
    return np.concatenate(r)


def bounds(profile: str, gal: dict) -> tuple[np.ndarray, np.ndarray]:
    lo = [math.log10(V200_BOUNDS[0]), math.log10(C200_BOUNDS[0])]
    hi = [math.log10(V200_BOUNDS[1]), math.log10(C200_BOUNDS[1])]
    if profile == "Einasto":
        lo.append(ALPHA_BOUNDS[0])
        hi.append(ALPHA_BOUNDS[1])
    n_ups = 2 if gal["bulge"] else 1
    lo += [-2.0] * n_ups + [1e-3 * gal["distance"], 1.0]
    hi += [1.0] * n_ups + [10 * gal["distance"] + 10 * gal["e_distance"], 179.0]
    return np.asarray(lo), np.asarray(hi)


def starts(profile: str, gal: dict, n_starts: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The first start at V200 = the fastest observed speed, C200 = 10 (alpha 0.5), the nuisance at the priors'
    centres; the others with V200 and C200 log-uniform over their bounds."""
    lo, hi = bounds(profile, gal)
    nuis = [math.log10(0.5)] + ([math.log10(0.7)] if gal["bulge"] else []) + [gal["distance"], gal["inclination"]]
    vmax = min(max(float(np.max(gal["V_obs"])), V200_BOUNDS[0]), V200_BOUNDS[1])
    out = []
    for k in range(n_starts):
        if k == 0:
            halo = [math.log10(vmax), 1.0] + ([0.5] if profile == "Einasto" else [])
        else:
            halo = list(rng.uniform(lo[:2], hi[:2])) + ([rng.uniform(*ALPHA_BOUNDS)] if profile == "Einasto" else [])
        out.append(np.clip(np.asarray(halo + nuis, float), lo + 1e-9, hi - 1e-9))
    return out


def fit_galaxy(profile: str, prior: str, gal: dict, n_starts: int, rng: np.random.Generator) -> dict:
    """The best of ``n_starts`` least-squares fits of one galaxy: ``{theta, cost, chi2, n_points, nfev}``."""
    lo, hi = bounds(profile, gal)
    best, nfev = None, 0
    for theta0 in starts(profile, gal, n_starts, rng):
        res = least_squares(residuals, theta0, bounds=(lo, hi), args=(profile, prior, gal), method="trf")
        nfev += res.nfev
        if best is None or res.cost < best.cost:
            best = res
    n = len(gal["R"])
    chi2 = float(np.sum(best.fun[:n] ** 2))
    return {"theta": best.x, "cost": float(best.cost), "chi2": chi2, "n_points": n, "nfev": nfev}


def halo_catalog_loop(arrays: Mapping[str, np.ndarray], galaxies: Sequence[int] | None = None,
                      models: Sequence[tuple[str, str]] = MODELS, n_starts: int = 8, seed: int = 0) -> list[dict]:
    """Every model fitted to every galaxy of ``galaxies`` (default all), one at a time; one row per pair with the
    reduced chi^2 over ``n_points - n_params`` (V200, C200, alpha, Upsilon_d, Upsilon_b with a bulge, D, i)."""
    rng = np.random.default_rng(seed)
    galaxies = range(len(arrays["mask"])) if galaxies is None else galaxies
    rows = []
    for j in galaxies:
        gal = galaxy(arrays, j)
        if not len(gal["R"]):
            continue
        for profile, prior in models:
            r = fit_galaxy(profile, prior, gal, n_starts, rng)
            k = len(bounds(profile, gal)[0])
            r.update(galaxy=j, model=f"{profile}-{prior}", n_params=k,
                     chi2_nu=r["chi2"] / (r["n_points"] - k) if r["n_points"] > k else math.nan)
            rows.append(r)
    return rows
