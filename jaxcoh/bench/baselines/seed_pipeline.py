"""B1: the seed's table end to end, the way the seed's scripts computed it.

One rotmod file at a time with ``np.loadtxt``, a Python loop over galaxies (numpy over the points of one galaxy), and
scipy per fit: differential evolution for the two coherence models, ``curve_fit`` for the power laws
(``SEED_PIPELINE.md`` sections 1-4). This is the "before" that jaxcoh's vmapped derivation and batched fits are timed
against, so it is written plainly, not optimised; it shares no code with jaxcoh.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit, differential_evolution

C_KMS = 299792.458  # km/s
KPC_KM = 3.086e16  # km (the seed's rounded value)
G_DERIVATION = 4.302e-6  # kpc (km/s)^2 / Msun: derivation and legacy properties
G_MASS_MODEL = 4.30091e-6  # kpc (km/s)^2 / Msun: the mass-coherence model (the seed used both values)
MASS_MODEL_ELL0 = 5.0  # kpc: ell0 inside Psi, fixed at the seed's value (not the derivation's ell0)

DEFAULT_HYPER = dict(ell0=5.0, p=0.757, n_coh=0.5, A0=0.774, gamma_rough=0.1, beta_sigma=1.5, delta_R=0.1,
                     alpha_geom=1.0)

# table1.dat columns kept, by the CDS byte layout: key -> (first byte, last byte), 1-based and inclusive.
TABLE1_BYTES = {"D": (16, 21), "e_D": (23, 27), "Inc": (31, 34), "e_Inc": (36, 39), "L36": (41, 47),
                "Rdisk": (72, 76), "MHI": (87, 93), "Vflat": (101, 105), "Q": (113, 115)}
ROTMOD_COLUMNS = ("R", "Vobs", "errV", "Vgas", "Vdisk", "Vbul")  # the first six columns of a rotmod file

# The seed's models: parameter names and bounds (section 4).
BOUNDS = {
    "mass_coherence": {"K_max": (0.1, 20.0), "Psi0": (1e-10, 1e-4), "gamma": (0.1, 3.0), "f_R": (1.0, 5.0)},
    "velocity_coherence": {"F_max": (1.0, 50.0), "Psi0": (1e-3, 1.0), "delta": (0.1, 3.0), "v_ref": (50.0, 500.0)},
    "power_law": {"A": (0.1, 100.0), "alpha": (0.1, 5.0), "beta": (0.1, 5.0)},
    "power_law_sigma": {"A": (0.1, 100.0), "alpha": (0.1, 5.0)},
}
DE_MODELS = ("mass_coherence", "velocity_coherence")
CURVE_FIT_P0 = {"power_law": (10.0, 0.5, 0.5), "power_law_sigma": (10.0, 0.5)}
BAD_LOSS = 1e6  # the loss when no galaxy has a finite, positive prediction (keeps differential evolution finite)


# ---- loading ---------------------------------------------------------------------------------------------------------
def load_sparc_loop(sparc_dir) -> list[dict]:
    """Reads ``table1.dat`` (fixed width) and each ``rotmod/<NAME>_rotmod.dat`` one file at a time.

    Returns one dict per galaxy, in table1 order: ``name``; arrays ``R, Vobs, errV, Vgas, Vdisk, Vbul`` ``[n]``
    (kpc, km/s; Vgas signed as published); table1 scalars ``D, e_D`` (Mpc), ``Inc, e_Inc`` (deg), ``L36``
    (1e9 Lsun), ``Rdisk`` (kpc), ``MHI`` (1e9 Msun), ``Vflat`` (km/s, 0 = not measured), ``Q``.
    """
    root = Path(sparc_dir)
    galaxies = []
    with open(root / "table1.dat", encoding="ascii") as f:
        for line in f:
            if not line.strip():
                continue
            row = {"name": line[0:11].strip()}
            row.update({k: float(line[a - 1:b]) for k, (a, b) in TABLE1_BYTES.items()})
            a = np.loadtxt(root / "rotmod" / f"{row['name']}_rotmod.dat", comments="#", ndmin=2)
            row.update({c: a[:, j] for j, c in enumerate(ROTMOD_COLUMNS)})
            galaxies.append(row)
    return galaxies


# ---- section 1: legacy properties ------------------------------------------------------------------------------------
def legacy_properties(R, Vobs, Vgas, Vdisk, Vbul) -> dict:
    """The seed's proxies for one galaxy (``[n]`` arrays): ``V_bar [n]`` and scalars ``v_flat, R_d, M_b, sigma_v``.

    Only curves with more than 5 points have properties (``has_properties``); the others get NaN and
    ``sigma_v = 25`` km/s for the derivation.
    """
    V_bar = np.sqrt(np.maximum(Vgas**2 + Vdisk**2 + Vbul**2, 0.0))
    if len(R) > 5:
        v_flat = float(np.median(Vobs[-10:]))
        return dict(V_bar=V_bar, v_flat=v_flat, R_d=float(R[-1]), M_b=v_flat**2 * float(R[-1]) / G_DERIVATION,
                    sigma_v=0.15 * v_flat, has_properties=True)
    return dict(V_bar=V_bar, v_flat=np.nan, R_d=np.nan, M_b=np.nan, sigma_v=25.0, has_properties=False)


# ---- section 2: the derivation, numpy over the points of a galaxy (or broadcast over [g, n]) -------------------------
def exposure(R, V_bar, sigma_v, *, delta_R, alpha_geom, beta_sigma):
    """Steps 1-8 per point: ``Xi = tau_coh / T2``. Elementwise, so ``R, V_bar`` ``[n]`` (or ``[g, n]`` with
    ``sigma_v [g, 1]``); ``R > 0`` is required (mask padding before)."""
    g_bar = V_bar**2 / (R * 1e3)
    rho = g_bar / (G_DERIVATION * R * 1e3) * 1e-9
    dphi = np.maximum(G_DERIVATION * rho * delta_R**2 / C_KMS**2, 1e-10)
    v_c = np.sqrt(np.maximum(g_bar * R * 1e3, 1e-6))
    T_orb = 2 * np.pi * R * KPC_KM / (v_c * 1e3)
    tau_geom = np.clip(alpha_geom * (2 * np.pi / dphi) * T_orb, 1e6, 1e20)
    tau_noise = np.clip(R * KPC_KM / (np.maximum(sigma_v, 1e-3) ** beta_sigma * 1e3), 1e6, 1e20)
    tau_coh = 1.0 / np.maximum(1.0 / tau_geom + 1.0 / tau_noise, 1e-20)
    v_c2 = np.sqrt(np.maximum(g_bar * R * 1e3, 1e-12))
    T2 = np.maximum(2 * np.pi * R * KPC_KM / (v_c2 * 1e3), 1e10)
    return tau_coh / T2


def burr_window(R, ell0, p, n_coh):
    """Step 10: ``C(R) = clip(1 - (1 + (R/ell0)^p)^(-n_coh), 0, 1)``, elementwise."""
    return np.clip(1.0 - (1.0 + (R / ell0) ** p) ** (-n_coh), 0.0, 1.0)


def roughness_amplitude(Xi_mean, A0, gamma_rough):
    """Step 9: ``K_rough = A0 max(Xi_mean, 0)^gamma_rough`` (with ``0^gamma = 0``, as jaxcoh's safe power)."""
    x = np.maximum(Xi_mean, 0.0)
    return A0 * np.where(x > 0, np.where(x > 0, x, 1.0) ** gamma_rough, 0.0)


def derive_galaxy(R, Vobs, V_bar, sigma_v, hyper: Mapping[str, float]) -> dict | None:
    """Steps 1-13 for one galaxy (``[n]`` arrays, scalar ``sigma_v``); None when skipped (fewer than 4 points)."""
    if len(R) < 4:
        return None
    h = hyper
    Xi_mean = float(np.mean(exposure(R, V_bar, sigma_v, delta_R=h["delta_R"], alpha_geom=h["alpha_geom"],
                                     beta_sigma=h["beta_sigma"])))
    K_rough = float(roughness_amplitude(Xi_mean, h["A0"], h["gamma_rough"]))
    C_mean = float(np.mean(burr_window(R, h["ell0"], h["p"], h["n_coh"])))
    K_req = np.maximum((Vobs / np.maximum(V_bar, 1e-6)) ** 2 - 1, 0)
    K_req_mean = float(np.mean(K_req[K_req > 0])) if np.any(K_req > 0) else np.nan
    A_emp = K_req_mean / C_mean if C_mean > 1e-6 else K_req_mean
    F = A_emp / K_rough if K_rough > 1e-6 else np.nan
    return dict(Xi_mean=Xi_mean, K_rough=K_rough, C_mean=C_mean, K_req_mean=K_req_mean, A_emp=A_emp, F_missing=F)


def derive_f_missing_loop(galaxies: list[dict], hyper: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Sections 1-3 with the legacy recipe, a Python loop over galaxies (as the seed's scripts).

    Args:
      galaxies: from :func:`load_sparc_loop` (or any dicts with ``name, R, Vobs, Vgas, Vdisk, Vbul``).
      hyper: derivation hyperparameters; missing keys take :data:`DEFAULT_HYPER`.

    Returns one row per galaxy: ``galaxy, n_points, sigma_v, Xi_mean, K_rough, C_mean, K_req_mean, A_emp,
    F_missing, in_sample, M_b, R_d, v_flat`` (NaN where undefined; ``in_sample``: legacy properties and a finite
    ``F_missing > 0``, section 3).
    """
    h = {**DEFAULT_HYPER, **(hyper or {})}
    unknown = set(h) - set(DEFAULT_HYPER)
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}; have {sorted(DEFAULT_HYPER)}")
    nan = dict(Xi_mean=np.nan, K_rough=np.nan, C_mean=np.nan, K_req_mean=np.nan, A_emp=np.nan, F_missing=np.nan)
    rows = []
    for g in galaxies:
        props = legacy_properties(g["R"], g["Vobs"], g["Vgas"], g["Vdisk"], g["Vbul"])
        d = derive_galaxy(g["R"], g["Vobs"], props["V_bar"], props["sigma_v"], h) or nan
        F = d["F_missing"]
        rows.append(dict(galaxy=g["name"], n_points=len(g["R"]), sigma_v=props["sigma_v"], **d,
                         in_sample=bool(props["has_properties"] and np.isfinite(F) and F > 0),
                         M_b=props["M_b"], R_d=props["R_d"], v_flat=props["v_flat"]))
    return pd.DataFrame(rows)


def fit_sample(table: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(F [s], props)`` of the fit sample: F_missing and the properties ``M_b, R_d, v_flat, sigma_v`` ``[s]``."""
    s = table[table["in_sample"]]
    return s["F_missing"].to_numpy(float), {k: s[k].to_numpy(float) for k in ("M_b", "R_d", "v_flat", "sigma_v")}


# ---- section 4: the models and their fits ---------------------------------------------------------------------------
def mass_coherence(params, props):
    """``F = K_max (1 - exp(-(Psi/Psi0)^gamma))``, ``Psi = G M_b ell0^2 / ((f_R R_d)^3 c^2)``; ``params`` in
    :data:`BOUNDS` order. Returns ``[s]``."""
    K_max, Psi0, gamma, f_R = params
    Psi = G_MASS_MODEL * props["M_b"] * MASS_MODEL_ELL0**2 / (np.maximum(f_R * props["R_d"], 1e-4) ** 3 * C_KMS**2)
    return K_max * (1 - np.exp(-((Psi / max(Psi0, 1e-12)) ** gamma)))


def velocity_coherence(params, props):
    """``F = F_max (1 - exp(-(Psi/Psi0)^delta))``, ``Psi = (v_flat/v_ref)^2``. Returns ``[s]``."""
    F_max, Psi0, delta, v_ref = params
    return F_max * (1 - np.exp(-((((props["v_flat"] / v_ref) ** 2) / Psi0) ** delta)))


def power_law(params, props):
    """``F = A (s_ref/sigma_v)^alpha (R_ref/R_d)^beta``; ``props`` holds the references ``sigma_ref, R_ref``."""
    A, alpha, beta = params
    return A * (props["sigma_ref"] / props["sigma_v"]) ** alpha * (props["R_ref"] / props["R_d"]) ** beta


def power_law_sigma(params, props):
    """``F = A (s_ref/sigma_v)^alpha``."""
    A, alpha = params
    return A * (props["sigma_ref"] / props["sigma_v"]) ** alpha


PREDICT = {"mass_coherence": mass_coherence, "velocity_coherence": velocity_coherence, "power_law": power_law,
           "power_law_sigma": power_law_sigma}


def counted(F_pred) -> np.ndarray:
    """Where a prediction counts in the seed's loss: finite and positive."""
    return np.isfinite(F_pred) & (F_pred > 0)


def weighted_rms(F_pred, F, weights=None) -> float:
    """The seed's loss: ``sqrt(sum w (F_pred - F)^2 / sum w)`` over the counted galaxies (frequency weights ``w``,
    1 by default). :data:`BAD_LOSS` when nothing counts."""
    ok = counted(F_pred)
    w = np.ones_like(F) if weights is None else np.asarray(weights, float)
    sw = np.sum(w[ok])
    if sw <= 0:
        return BAD_LOSS
    return float(np.sqrt(np.sum(w[ok] * (F_pred[ok] - F[ok]) ** 2) / sw))


def weighted_pearson(F_pred, F, weights=None) -> float:
    """Pearson r of ``F_pred`` and ``F`` over the counted galaxies, with frequency weights."""
    ok = counted(F_pred)
    w = np.ones_like(F) if weights is None else np.asarray(weights, float)
    w, x, y = w[ok], F_pred[ok], F[ok]
    sw = w.sum()
    if sw <= 0:
        return np.nan
    dx, dy = x - np.sum(w * x) / sw, y - np.sum(w * y) / sw
    den = np.sqrt(np.sum(w * dx * dx) * np.sum(w * dy * dy))
    return float(np.sum(w * dx * dy) / den) if den > 0 else np.nan


def with_references(props: Mapping[str, np.ndarray]) -> dict:
    """``props`` plus ``sigma_ref, R_ref`` (medians over the given sample) unless already present."""
    out = dict(props)
    out.setdefault("sigma_ref", float(np.median(props["sigma_v"])))
    out.setdefault("R_ref", float(np.median(props["R_d"])))
    return out


def _loss(x, name, F, props, weights):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return weighted_rms(PREDICT[name](x, props), F, weights)


def fit_seed_model_de(name: str, F, props: Mapping[str, np.ndarray], *, seed: int = 42, maxiter: int = 100,
                      popsize: int = 10, weights=None, **de_kwargs) -> dict:
    """Fits one of the seed's models to ``F [s]`` from ``props`` (``M_b, R_d, v_flat, sigma_v`` ``[s]``).

    The coherence models by ``scipy.optimize.differential_evolution`` on the RMS (the seed's settings, polish on;
    extra keyword arguments go to it), the power laws by ``scipy.optimize.curve_fit`` with the seed's bounds
    (references: sample medians unless ``props`` has ``sigma_ref, R_ref``). ``weights [s]``: frequency weights of
    the RMS (differential-evolution models only).

    Returns ``dict(params={name: value}, rms, r)``.
    """
    F = np.asarray(F, float)
    names = list(BOUNDS[name])
    bounds = [BOUNDS[name][k] for k in names]
    if name in DE_MODELS:
        res = differential_evolution(_loss, bounds, args=(name, F, props, weights), seed=seed, maxiter=maxiter,
                                     popsize=popsize, polish=de_kwargs.pop("polish", True), **de_kwargs)
        x = res.x
    elif name in CURVE_FIT_P0:
        if weights is not None:
            raise ValueError("weights are for the differential-evolution models")
        props = with_references(props)
        f = lambda _, *p: PREDICT[name](p, props)  # noqa: E731  (curve_fit's model signature)
        with warnings.catch_warnings():  # the covariance is not used; a bound-active fit may not estimate it
            warnings.simplefilter("ignore", OptimizeWarning)
            x, _ = curve_fit(f, np.arange(len(F)), F, p0=CURVE_FIT_P0[name], bounds=tuple(zip(*bounds, strict=True)))
    else:
        raise KeyError(f"unknown model {name!r}; have {sorted(BOUNDS)}")
    return evaluate_seed_model(name, x, F, props, weights)


def evaluate_seed_model(name: str, params, F, props, weights=None) -> dict:
    """``dict(params, rms, r)`` of model ``name`` at ``params`` (a dict by name or a sequence in bounds order)."""
    if isinstance(params, Mapping):
        params = [params[k] for k in BOUNDS[name]]
    if name.startswith("power_law"):
        props = with_references(props)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        F_pred = PREDICT[name](params, props)
    return {"params": dict(zip(BOUNDS[name], map(float, params), strict=True)),
            "rms": weighted_rms(F_pred, F, weights), "r": weighted_pearson(F_pred, F, weights)}


def seed_table(sparc_dir, *, models=tuple(BOUNDS), hyper: Mapping[str, float] | None = None, seed: int = 42,
               maxiter: int = 100, popsize: int = 10) -> dict:
    """The seed's table from the raw files: load, derive, fit each model.

    Returns ``{"sample_size": int, "references": {"sigma_ref", "R_ref"}, "models": {model: {params, rms, r}}}``
    (``sample_size`` is 158 on SPARC).
    """
    table = derive_f_missing_loop(load_sparc_loop(sparc_dir), hyper)
    F, props = fit_sample(table)
    refs = with_references(props)
    return {
        "sample_size": int(len(F)),
        "references": {"sigma_ref": refs["sigma_ref"], "R_ref": refs["R_ref"]},
        "models": {m: fit_seed_model_de(m, F, props, seed=seed, maxiter=maxiter, popsize=popsize) for m in models},
    }
