"""B7's baseline: the RAR with nuisance and intrinsic scatter written as a user would write it in numpyro.

One ``numpyro.sample`` per parameter, a plate over galaxies for the nuisance, a plate over the real points of every
galaxy (flattened with a galaxy index: no padding), numpyro's NUTS. The same model as
``jaxcoh.curves.posterior.log_density(RAR, data, Likelihood(nuisance=True, intrinsic_scatter=True))``:

- ``g_dagger`` and ``sigma_int`` log-uniform within the bounds jaxcoh declares (flat in the log, as jaxcoh's prior);
- Upsilon_disk, Upsilon_bulge log-normal, 0.1 dex around 0.5 and 0.7 (jaxcoh: Gaussian in log10 Upsilon);
- distance Gaussian around table1's D with its error, truncated at 0; inclination Gaussian around table1's i with
  its error, truncated to (1, 179) deg (jaxcoh: Gaussian in D and i within those bounds);
- the data in the table's frame: ``V_obs ~ N(V_model / s, sqrt(e^2 + (ln(10) sigma_int V_model / (2 s))^2))`` with
  ``s = sin(i_t) / sin(i)`` and ``V_model^2 = V_bar^2 nu(g_bar / g_dagger)``, ``V_bar^2`` scaled by ``D / D_t``
  (jaxcoh writes the same residual in the rescaled frame; its dropped normalisation ``ln e`` is constant there).

Densities agree up to a constant once numpyro's are taken over jaxcoh's prior coordinates (numpyro's densities over
Upsilon, g_dagger and sigma_int carry ``1/x`` more): see :func:`log_joint` and :mod:`jaxcoh.bench.b7_sampling`.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

KMS2_PER_KPC_TO_MS2 = 1e6 / 3.0856775814913673e19  # (km/s)^2/kpc -> m/s^2, as jaxcoh.constants
LN10 = math.log(10.0)
UPSILON_SD = 0.1 * LN10  # 0.1 dex, in ln


def flatten(arrays: dict) -> dict:
    """Real points of a padded catalog (numpy ``[g, n]`` fields R, V_obs, e_V_obs, V_gas, V_disk, V_bul, mask and
    ``[g]`` distance, e_distance, inclination, e_inclination) as flat ``[N]`` arrays with a galaxy index."""
    mask = np.asarray(arrays["mask"], bool)
    out = {k: np.asarray(arrays[k])[mask] for k in ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul")}
    out["galaxy"] = np.nonzero(mask)[0].astype(np.int32)
    for k in ("distance", "e_distance", "inclination", "e_inclination"):
        out[k] = np.asarray(arrays[k])
    return out


def rar_model(d: dict) -> None:
    """The numpyro model; ``d`` from :func:`flatten` (jax or numpy arrays)."""
    n_gal = d["distance"].shape[0]
    g_dagger = numpyro.sample("g_dagger", dist.LogUniform(1e-12, 1e-8))
    sigma_int = numpyro.sample("sigma_int", dist.LogUniform(1e-4, 1.0))
    with numpyro.plate("galaxies", n_gal):
        ud = numpyro.sample("upsilon_disk", dist.LogNormal(math.log(0.5), UPSILON_SD))
        ub = numpyro.sample("upsilon_bulge", dist.LogNormal(math.log(0.7), UPSILON_SD))
        D = numpyro.sample("distance", dist.TruncatedNormal(d["distance"], d["e_distance"], low=0.0))
        inc = numpyro.sample("inclination", dist.TruncatedNormal(d["inclination"], d["e_inclination"], low=1.0,
                                                                 high=179.0))
    j = d["galaxy"]
    s = jnp.sin(jnp.deg2rad(d["inclination"][j])) / jnp.sin(jnp.deg2rad(inc[j]))
    V_bar2 = (D / d["distance"])[j] * (d["V_gas"] * jnp.abs(d["V_gas"]) + ud[j] * d["V_disk"] ** 2
                                       + ub[j] * d["V_bul"] ** 2)
    g_bar = V_bar2 / d["R"] * KMS2_PER_KPC_TO_MS2 / (D / d["distance"])[j]  # R scales with D too
    pos = g_bar > 0
    root = jnp.sqrt(jnp.where(pos, g_bar, 1.0) / g_dagger)  # double where: no NaN gradient at g_bar <= 0
    V2 = V_bar2 * jnp.where(pos, -1.0 / jnp.expm1(-root), 1.0)
    V_model = jnp.sign(V2) * jnp.sqrt(jnp.abs(V2))
    sigma = jnp.sqrt(d["e_V_obs"] ** 2 + (0.5 * LN10 * sigma_int * V_model / s) ** 2)
    with numpyro.plate("points", j.shape[0]):
        numpyro.sample("V_obs", dist.Normal(V_model / s, sigma), obs=d["V_obs"])


def log_joint(d: dict, values: dict) -> float:
    """numpyro's log joint at constrained ``values`` (densities over Upsilon, D, i, g_dagger, sigma_int)."""
    from numpyro.infer.util import log_density

    return log_density(rar_model, (d,), {}, values)[0]
