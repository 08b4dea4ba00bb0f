"""Physical constants, once, with units.

The seed pipeline used two values of G; both are kept under names that say where each is used
(``SEED_PIPELINE.md``, "Units").
"""

C_KMS = 299792.458
"""Speed of light [km/s]."""

KPC_KM = 3.086e16
"""One kiloparsec [km] (the seed's rounded value)."""

G_DERIVATION = 4.302e-6
"""G [kpc (km/s)^2 / Msun] as used by the F_missing derivation and the legacy galaxy properties."""

G_MASS_MODEL = 4.30091e-6
"""G [kpc (km/s)^2 / Msun] as used by the mass-coherence model."""

G_NEWTON = G_MASS_MODEL
"""G [kpc (km/s)^2 / Msun] for everything jaxcoh computes outside the seed's pipeline."""

KMS2_PER_KPC_TO_MS2 = 1e6 / 3.0856775814913673e19
"""Converts an acceleration in (km/s)^2/kpc to m/s^2."""

G_DAGGER_MLS16 = 1.20e-10
"""Acceleration scale of the radial acceleration relation [m/s^2] (McGaugh, Lelli & Schombert 2016)."""

G_DAGGER_MLS16_ERR = 0.26e-10
"""Its published uncertainty [m/s^2]: 0.02 random plus 0.24 systematic (McGaugh, Lelli & Schombert 2016)."""

RAR_SCATTER_MLS16_DEX = 0.13
"""Observed scatter of the radial acceleration relation [dex] (McGaugh, Lelli & Schombert 2016)."""

UPSILON_DISK = 0.5
"""Stellar mass-to-light ratio of disks at 3.6 micron [Msun/Lsun] (Lelli, McGaugh & Schombert 2016)."""

UPSILON_BULGE = 0.7
"""Stellar mass-to-light ratio of bulges at 3.6 micron [Msun/Lsun]."""

HELIUM_FACTOR = 1.33
"""M_gas = HELIUM_FACTOR * M_HI (cosmological helium; SPARC's Vgas includes it)."""

RAR_SCATTER_LI18_DEX = 0.057
"""Scatter of the RAR with Upsilon, distance and inclination fitted per galaxy [dex] (Li, Lelli, McGaugh &
Schombert 2018)."""
