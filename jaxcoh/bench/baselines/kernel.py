"""B4: the unified multiplicative kernel's chi^2 loss on the rotation curves, in numpy.

``V_model^2 = V_bar^2 (1 + K_rough F_pred C(R/ell0))`` with the ``sparc`` property recipe at Upsilon 0.5 / 0.7 and
table1's distance and inclination (no nuisance), F_pred from the mass-coherence model; the loss is
``sum r^2 / 2`` with ``r = (V_obs - V_model) / errV`` over the real points: the quantity jaxcoh's
``joint.objective`` computes for ``unified_multiplicative`` with ``JointOptions(nuisance=False, loss="chi2",
recipe="sparc")``. Two versions, so the harness can time both "before" styles: vectorised over padded ``[g, n]``
arrays, and a Python loop over galaxies.

``arrays`` is a dict of numpy arrays under jaxcoh's Catalog field names: point fields ``R, V_obs, e_V_obs, V_gas,
V_disk, V_bul, mask`` ``[g, n]`` (real points first in each row) and galaxy fields ``L36, M_HI, R_disk, V_flat``
``[g]`` (:data:`KERNEL_FIELDS`). ``params`` is a dict with the names of :data:`SHARED`. The power-law references
(``refs`` of jaxcoh's ``joint_data``) do not enter the mass-coherence F model, so an ``arrays["refs"]`` is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .seed_pipeline import C_KMS, G_MASS_MODEL, MASS_MODEL_ELL0, burr_window, exposure, roughness_amplitude

KERNEL_FIELDS = ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "mask", "L36", "M_HI", "R_disk", "V_flat")
SHARED = ("K_max", "Psi0", "gamma", "f_R", "A0", "gamma_rough", "beta_sigma", "ell0", "p", "n_coh")
UPSILON_DISK, UPSILON_BULGE, HELIUM_FACTOR = 0.5, 0.7, 1.33
DERIVATION_FIXED = {"delta_R": 0.1, "alpha_geom": 1.0}  # kpc, 1: the seed's values, not fitted
FLAT_POINTS = 10
SIGMA_FRACTION = 0.15
# What jaxcoh substitutes for a galaxy the sparc recipe cannot describe (no R_disk, mass or flat speed).
NO_PROPERTIES = {"M_b": 1e10, "R_d": 1.0, "v_flat": 100.0, "sigma_v": 15.0}


def mass_coherence_f(params: Mapping[str, float], M_b, R_d):
    """F_pred of the mass-coherence model, ``-K_max expm1(-(Psi/Psi0)^gamma)`` (jaxcoh's form of the seed's
    ``K_max (1 - exp(...))``, exact for shallow wells)."""
    Psi = G_MASS_MODEL * M_b * MASS_MODEL_ELL0**2 / (np.maximum(params["f_R"] * R_d, 1e-4) ** 3 * C_KMS**2)
    x = Psi / max(params["Psi0"], 1e-12)
    return -params["K_max"] * np.expm1(-np.where(x > 0, np.where(x > 0, x, 1.0) ** params["gamma"], 0.0))


def _flat_speed_padded(V_obs, mask):
    """``[g]`` median of the last 10 real speeds of each row (all of them for shorter curves; NaN for empty rows)."""
    n = mask.sum(axis=1)
    idx = np.arange(mask.shape[1])[None, :]
    last = mask & (idx >= (n - FLAT_POINTS)[:, None])
    s = np.sort(np.where(last, V_obs, np.inf), axis=1)
    k = last.sum(axis=1)
    lo, hi = np.maximum((k - 1) // 2, 0), np.maximum(k // 2, 0)
    med = 0.5 * (np.take_along_axis(s, lo[:, None], 1)[:, 0] + np.take_along_axis(s, hi[:, None], 1)[:, 0])
    return np.where(k > 0, med, np.nan)


def _sparc_scalars(L36, M_HI, R_disk, V_flat, v_curve, has_points):
    """The recipe's per-galaxy ``M_b, R_d, v_flat, sigma_v`` with jaxcoh's substitutes where undefined (any shape)."""
    v_flat = np.where(V_flat <= 0, v_curve, V_flat)
    M_b = (UPSILON_DISK * L36 + HELIUM_FACTOR * M_HI) * 1e9
    with np.errstate(invalid="ignore"):
        has = has_points & (R_disk > 0) & (M_b > 0) & np.isfinite(v_flat) & (v_flat > 0)
    return (np.where(has, M_b, NO_PROPERTIES["M_b"]), np.where(has, R_disk, NO_PROPERTIES["R_d"]),
            np.where(has, SIGMA_FRACTION * np.where(has, v_flat, 0.0), NO_PROPERTIES["sigma_v"]))


def _baryonic_speed2(V_gas, V_disk, V_bul):
    """SPARC's signed ``Vgas|Vgas| + Ud Vdisk^2 + Ub Vbul^2`` [(km/s)^2]."""
    return V_gas * np.abs(V_gas) + UPSILON_DISK * V_disk**2 + UPSILON_BULGE * V_bul**2


def _model_speed(V2):
    """``sign(V^2) sqrt(|V^2|)``."""
    return np.sign(V2) * np.sqrt(np.abs(V2))


def unified_loss_numpy(params: Mapping[str, float], arrays: Mapping[str, np.ndarray]) -> float:
    """The loss (``sum r^2 / 2`` over real points) vectorised over all galaxies of padded ``[g, n]`` arrays."""
    p = {k: float(params[k]) for k in SHARED}
    mask = np.asarray(arrays["mask"], bool)
    R = np.where(mask, arrays["R"], 1.0)
    V2_bar = np.where(mask, _baryonic_speed2(arrays["V_gas"], arrays["V_disk"], arrays["V_bul"]), 1.0)
    V_bar = np.sqrt(np.maximum(V2_bar, 0.0))
    n = mask.sum(axis=1)
    M_b, R_d, sigma_v = _sparc_scalars(arrays["L36"], arrays["M_HI"], arrays["R_disk"], arrays["V_flat"],
                                       _flat_speed_padded(arrays["V_obs"], mask), n > 0)
    Xi = exposure(R, np.where(mask, V_bar, 1.0), sigma_v[:, None], beta_sigma=p["beta_sigma"], **DERIVATION_FIXED)
    Xi_mean = np.where(mask, Xi, 0.0).sum(axis=1) / np.maximum(n, 1)
    A_gal = roughness_amplitude(Xi_mean, p["A0"], p["gamma_rough"]) * mass_coherence_f(p, M_b, R_d)
    V2 = V2_bar * (1 + A_gal[:, None] * burr_window(R, p["ell0"], p["p"], p["n_coh"]))
    err = np.sqrt(np.where(mask, arrays["e_V_obs"] ** 2, 1.0))
    r = np.where(mask, (arrays["V_obs"] - _model_speed(V2)) / err, 0.0)
    return float(0.5 * np.sum(r**2))


def unified_loss_loop(params: Mapping[str, float], arrays: Mapping[str, np.ndarray]) -> float:
    """The same loss, a Python loop over galaxies (numpy over the real points of one galaxy)."""
    p = {k: float(params[k]) for k in SHARED}
    mask = np.asarray(arrays["mask"], bool)
    total = 0.0
    for i in range(mask.shape[0]):
        m = mask[i]
        if not m.any():
            continue
        R, V_obs, e_V = arrays["R"][i][m], arrays["V_obs"][i][m], arrays["e_V_obs"][i][m]
        V2_bar = _baryonic_speed2(arrays["V_gas"][i][m], arrays["V_disk"][i][m], arrays["V_bul"][i][m])
        V_bar = np.sqrt(np.maximum(V2_bar, 0.0))
        M_b, R_d, sigma_v = _sparc_scalars(arrays["L36"][i], arrays["M_HI"][i], arrays["R_disk"][i],
                                           arrays["V_flat"][i], np.median(V_obs[-FLAT_POINTS:]), True)
        Xi_mean = np.mean(exposure(R, V_bar, sigma_v, beta_sigma=p["beta_sigma"], **DERIVATION_FIXED))
        A_gal = roughness_amplitude(Xi_mean, p["A0"], p["gamma_rough"]) * mass_coherence_f(p, M_b, R_d)
        V2 = V2_bar * (1 + A_gal * burr_window(R, p["ell0"], p["p"], p["n_coh"]))
        total += 0.5 * float(np.sum(((V_obs - _model_speed(V2)) / np.sqrt(e_V**2)) ** 2))
    return total


def unified_loss_loop_value_and_grad(params: Mapping[str, float], arrays: Mapping[str, np.ndarray],
                                     ) -> tuple[float, dict[str, float]]:
    """The loop's loss and its gradient in the shared parameters by forward differences, as the seed's scripts get
    gradients (scipy's minimisers without a gradient use 2-point differences): ``len(SHARED) + 1`` loop passes, with
    relative steps ``sqrt(eps) |x|`` (Psi0 ~ 1e-7 needs a step far below scipy's default ``sqrt(eps) max(|x|, 1)``)."""
    p = {k: float(params[k]) for k in SHARED}
    f0 = unified_loss_loop(p, arrays)
    grad = {}
    for k in SHARED:
        h = np.sqrt(np.finfo(float).eps) * (abs(p[k]) or 1.0)
        grad[k] = (unified_loss_loop({**p, k: p[k] + h}, arrays) - f0) / h
    return f0, grad
