"""An independent, plain numpy reference of the seed pipeline, one galaxy at a time.

Written from ``SEED_PIPELINE.md`` line by line, sharing no code with jaxcoh, so that tests compare two
implementations rather than one with itself. Deliberately slow and literal.
"""

from __future__ import annotations

import numpy as np

C = 299792.458
KPC = 3.086e16
G = 4.302e-6
G_MASS = 4.30091e-6

DEFAULT_HYPER = dict(ell0=5.0, p=0.757, n_coh=0.5, A0=0.774, gamma_rough=0.1, beta_sigma=1.5, delta_R=0.1,
                     alpha_geom=1.0)


def legacy_properties(R, Vobs, Vgas, Vdisk, Vbul):
    """Section 1 for one galaxy: dict with V_bar, and v_flat/R_d/M_b/sigma_v (None when n <= 5)."""
    n = len(R)
    V_bar = np.sqrt(np.maximum(Vgas**2 + Vdisk**2 + Vbul**2, 0.0))
    if n > 5:
        v_flat = float(np.median(Vobs[-10:]))
        return dict(V_bar=V_bar, v_flat=v_flat, R_d=float(R[-1]), M_b=v_flat**2 * R[-1] / G, sigma_v=0.15 * v_flat)
    return dict(V_bar=V_bar, v_flat=None, R_d=None, M_b=None, sigma_v=25.0)


def sparc_properties(R, Vobs, Vgas, Vdisk, Vbul, L36, M_HI, R_disk, V_flat, ud=0.5, ub=0.7):
    """The physical recipe for one galaxy (table1 values)."""
    V_bar = np.sqrt(np.maximum(Vgas * np.abs(Vgas) + ud * Vdisk**2 + ub * Vbul**2, 0.0))
    v_flat = V_flat if V_flat > 0 else float(np.median(Vobs[-10:]))
    return dict(V_bar=V_bar, v_flat=v_flat, R_d=R_disk, M_b=(ud * L36 + 1.33 * M_HI) * 1e9, sigma_v=0.15 * v_flat)


def derive(R, Vobs, V_bar, sigma_v, ell0=5.0, p=0.757, n_coh=0.5, A0=0.774, gamma_rough=0.1, beta_sigma=1.5,
           delta_R=0.1, alpha_geom=1.0):
    """Section 2 for one galaxy; None when it is skipped (n < 4)."""
    if len(R) < 4:
        return None
    Xi = np.empty(len(R))
    for i in range(len(R)):  # literally per point
        g_bar = V_bar[i] ** 2 / (R[i] * 1e3)
        rho = g_bar / (G * R[i] * 1e3) * 1e-9
        dphi = max(G * rho * delta_R**2 / C**2, 1e-10)
        v_c = np.sqrt(max(g_bar * R[i] * 1e3, 1e-6))
        T_orb = 2 * np.pi * R[i] * KPC / (v_c * 1e3)
        tau_geom = min(max(alpha_geom * (2 * np.pi / dphi) * T_orb, 1e6), 1e20)
        tau_noise = min(max(R[i] * KPC / (max(sigma_v, 1e-3) ** beta_sigma * 1e3), 1e6), 1e20)
        tau_coh = 1.0 / max(1.0 / tau_geom + 1.0 / tau_noise, 1e-20)
        v_c2 = np.sqrt(max(g_bar * R[i] * 1e3, 1e-12))
        T2 = max(2 * np.pi * R[i] * KPC / (v_c2 * 1e3), 1e10)
        Xi[i] = tau_coh / T2
    Xi_mean = float(np.mean(Xi))
    K_rough = A0 * max(Xi_mean, 0.0) ** gamma_rough
    C_win = np.clip(1 - (1 + (R / ell0) ** p) ** (-n_coh), 0, 1)
    C_mean = float(np.mean(C_win))
    K_req = np.maximum((Vobs / np.maximum(V_bar, 1e-6)) ** 2 - 1, 0)
    K_req_mean = float(np.mean(K_req[K_req > 0])) if np.any(K_req > 0) else np.nan
    A_emp = K_req_mean / C_mean if C_mean > 1e-6 else K_req_mean
    F = A_emp / K_rough if K_rough > 1e-6 else np.nan
    return dict(Xi_mean=Xi_mean, K_rough=K_rough, C_mean=C_mean, K_req_mean=K_req_mean, A_emp=A_emp, F_missing=F,
                sigma_v=sigma_v)


def mass_coherence(K_max, Psi0, gamma, f_R, M_b, R_d, ell0=5.0):
    Psi = G_MASS * M_b * ell0**2 / (np.maximum(f_R * R_d, 1e-4) ** 3 * C**2)
    return K_max * (1 - np.exp(-((Psi / max(Psi0, 1e-12)) ** gamma)))


def velocity_coherence(F_max, Psi0, delta, v_ref, v_flat):
    return F_max * (1 - np.exp(-(((v_flat / v_ref) ** 2 / Psi0) ** delta)))


def power_law(A, alpha, beta, sigma_v, R_d, s_ref, R_ref):
    return A * (s_ref / sigma_v) ** alpha * (R_ref / R_d) ** beta


def power_law_sigma(A, alpha, sigma_v, s_ref):
    return A * (s_ref / sigma_v) ** alpha


def rms_and_r(F_pred, F):
    """The seed's loss: RMS and Pearson r over points with a finite, positive prediction."""
    ok = np.isfinite(F_pred) & (F_pred > 0)
    d = F_pred[ok] - F[ok]
    return float(np.sqrt(np.mean(d**2))), float(np.corrcoef(F_pred[ok], F[ok])[0, 1])


def legacy_table(curves, **hyper):
    """Per galaxy (dict name -> 2-d array of rotmod columns): properties and derivation, seed recipe."""
    rows = {}
    for name, a in curves.items():
        R, Vobs, _, Vgas, Vdisk, Vbul = a[:, :6].T
        props = legacy_properties(R, Vobs, Vgas, Vdisk, Vbul)
        d = derive(R, Vobs, props["V_bar"], props["sigma_v"], **hyper)
        rows[name] = (props, d)
    return rows
