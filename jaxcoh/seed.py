"""The seed's published numbers (``MASS_COHERENCE_MODEL_SUMMARY.md`` and ``SEED_PIPELINE.md`` section 4).

Used by ``jaxcoh reproduce`` to print the seed's table beside jaxcoh's, and by the tests that check reproduction.
"""

SEED_SAMPLE_SIZE = 158
SEED_SIGMA_REF = 14.764  # km/s, median sigma_v of the fit sample (as printed)
SEED_R_REF = 12.35  # kpc, median legacy R_d of the fit sample

SEED_FITS: dict[str, dict] = {
    "mass_coherence": {
        "params": {"K_max": 19.58, "Psi0": 7.34e-8, "gamma": 0.136, "f_R": 1.33},
        "rms": 11.05, "r": 0.225, "method": "scipy differential_evolution (maxiter 100, popsize 10, seed 42, polish)",
    },
    "velocity_coherence": {
        "params": {"F_max": 10.38, "Psi0": 9.80e-3, "delta": 2.04, "v_ref": 125.5},
        "rms": 11.20, "r": 0.061, "method": "scipy differential_evolution (maxiter 100, popsize 10, seed 42, polish)",
    },
    "power_law": {
        "params": {"A": 10.02, "alpha": 0.100, "beta": 0.312},
        "rms": 10.28, "r": 0.405, "method": "scipy curve_fit",
    },
    "power_law_sigma": {
        "params": {"A": 10.05, "alpha": 0.401},
        "rms": 10.49, "r": 0.362, "method": "scipy curve_fit",
    },
}
