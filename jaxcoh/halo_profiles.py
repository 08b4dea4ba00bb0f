"""Dark-matter halo kernels of Li, Lelli, McGaugh & Schombert 2020 (ApJS 247, 31; "Li+20"): the seven profiles.

Physics only: dimensionless enclosed masses ``mu(x)`` (``x = r/rs``, ``M(<r) = 4 pi rho_s rs^3 mu(x)``), the halo
speed in the V200/C200 parameterisation, the derived quantities of the published table, the shape relations and
the LCDM priors. Every ``mu`` is exact, keeps its relative accuracy as ``x -> 0`` (series below ``x = 0.1`` where a
closed form cancels) and has finite gradients wherever it is finite, ``x = 0`` included (double-where).

Sources. Only the abstract of Li+20 was reachable from here, not its text (no equation or section of it is cited
for that reason). Its conventions were instead checked against Li+20's own machine-readable table (VizieR
J/ApJS/247/31/table1, "the catalogue") together with the SPARC data (table1 luminosities, R_eff, rotmods):

- V200/C200 (spec): ``R200 = V200/(10 H0)``, ``H0 = 73`` km/s/Mpc, ``rs = R200/C200`` for *every* profile,
  ``M200 = V200^3/(10 G H0)``, ``rho_s = M200/(4 pi rs^3 mu(C200))``. CONFIRMED: rs, log10 rho_s and log10 M200
  of catalogue rows are reproduced to its rounding (0.005 dex) for all seven profiles.
- pISO ``1/(1+x^2)``, Burkert ``1/((1+x)(1+x^2))``, NFW ``1/(x(1+x)^2)``, Lucky13 ``1/(1+x)^3`` [verify]:
  CONFIRMED: rho_s, and the reduced chi^2 of catalogue rows (CamB, DDO154, D631-7) recomputed from the SPARC
  rotmods with the tabulated Upsilon, D, i, V200, C200, agree to rounding (e.g. Lucky13 CamB 2.94 vs 2.98).
- Einasto ``exp(-(2/alpha)(x^alpha - 1))``, rs = r_-2 (so C200 = R200/r_-2): CONFIRMED (rho_s of 10 rows).
  ``mu = e^(2/alpha) alpha^-1 (alpha/2)^(3/alpha) Gamma(3/alpha) P(3/alpha, (2/alpha) x^alpha)`` with P the
  regularised lower incomplete gamma; ``jax.scipy.special.gammainc`` is differentiable in its shape argument in
  JAX 0.10.2 (XLA's igamma_grad_a; matches finite differences in the tests), so no custom derivative is needed.
- DC14 (Di Cintio et al. 2014, MNRAS 441, 2986): ``1/(x^g (1+x^a)^((b-g)/a))``, (a, b, g) from
  ``X = log10(M_star/M200)`` clipped to [-4.1, -1.3], formulas as in the spec (CONFIRMED through the rho_s and
  chi^2 of catalogue rows). CORRECTED [verify]: the catalogue takes C200 = R200/rs with rs the scale radius *of
  this formula* (not r_-2) and no ``1 + 1e-5 exp(3.4 (X + 4.5))`` factor: D512-2 DC14-Flat (X = -1.75, factor 1.12)
  gives log rho_s = -1.975 so, -1.859 with the factor, -1.59 with C200 = R200/r_-2; table -1.98. M_halo in X is
  M200 (8 rows). Clipping below -4.1 (rather than switching to NFW, ~ the same shape): unconfirmed. ``mu`` = exact
  series ``x^(3-g) sum_k binom(-c, k) x^(ak)/(3-g+ak)`` while ``x^a <= 0.1``, composite Gauss-Legendre in ``ln r``
  beyond; never the incomplete beta, whose second argument ``(b-3)/a`` is negative over much of the range.
- coreNFW (Read, Agertz & Collins 2016, MNRAS 459, 2573): ``mu = mu_NFW(x) tanh(r/r_c)^n``, ``r_c = eta R_1/2``,
  ``eta = 1.75``, ``n = tanh(kappa t_SF/t_dyn)``, ``kappa = 0.04``, ``t_dyn = 2 pi sqrt(rs^3/(G M_NFW(<rs)))``.
  CORRECTED [verify]: the catalogue's coreNFW chi^2 (7 rows, Flat and LCDM) is reproduced to rounding with
  ``R_1/2 = R_eff`` of SPARC (scaled with D) and ``t_SF = 14`` Gyr (best t_SF per row 13.8-14.3 Gyr);
  ``R_1/2 = 1.68 R_disk`` misses by up to 40%, ``n = 1`` by up to a factor of 3.
- Flat priors: ``V200`` in [10, 500] km/s, ``C200`` in [1, 1000], Einasto ``alpha`` in [0, 2] [verify]:
  consistent with the catalogue's column ranges (10/500, 1/999.3, 0/2); the text stating them was not seen.
- LCDM priors, reconstructed: Dutton & Maccio 2014 (MNRAS 441, 3359), z = 0, Delta = 200c:
  ``log c = A + B log10(M200/(1e12/h Msun))``, (A, B) = (0.905, -0.101) for NFW fits, (0.977, -0.130) for Einasto
  fits, 0.11 dex; ``alpha = 0.0095 nu^2 + 0.155``, ``log10 nu = -0.11 + 0.146 m + 0.0138 m^2 + 0.00123 m^3``.
  Moster et al. 2013 (MNRAS 428, 3121), z = 0: ``M*/M200 = 2N/((M200/M1)^-beta + (M200/M1)^gamma)``,
  log10 M1 = 11.590, N = 0.0351, beta = 1.376, gamma = 0.608. What the catalogue shows: data-poor galaxies
  (D512-2, F561-1, F563-V1, F567-2, F574-2) have Einasto-LCDM alpha = 0.17-0.19 +- 0.06-0.07, i.e. a log-normal
  alpha prior at DM14's ~0.16 with ~0.16 dex; their Einasto-LCDM C200 sit 0.13-0.17 dex above NFW-LCDM (the
  Einasto c-M relation); their DC14-LCDM C200 sit 0.02-0.08 dex above NFW-LCDM (the NFW relation applied to
  C200 = R200/rs; on R200/r_-2 it would be ~0.2 dex). UNCONFIRMED: h in the mass unit (0.73 here; 0.671 moves
  log c by 0.004 dex), the alpha scatter (0.16 dex), the SHMR scatter (0.15 dex, Moster's own; the catalogue's
  e_log M200 of data-poor galaxies suggests 0.15-0.2), whether DC14's c-M mean carries Katz et al.'s factor
  (``z_concentration(log10_offset=...)``), and whether Jacobians were added for priors Gaussian in a logarithm
  while the sampled parameter is linear (``+ ln C200``, ``+ ln alpha`` in -ln p; not included in any ``z``).

The catalogue's Einasto chi^2 column repeats NFW-LCDM's for the same galaxy (CamB: 7.92 for Einasto-Flat,
Einasto-LCDM and NFW-LCDM; recomputed Einasto-Flat 4.03): do not compare against it.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.nn import softplus
from jax.scipy.special import gammainc, gammaln

from jaxcoh.constants import G_NEWTON
from jaxcoh.numerics import clip, safe_div, safe_log, safe_pow

H0 = 73.0  # km/s/Mpc (Li+20; SPARC's Hubble-flow distances)
TEN_H0 = 10 * H0 / 1000  # 10 H0 [km/s/kpc]: R200 = V200 / TEN_H0
H_LITTLE = H0 / 100  # h in the 1e12/h Msun mass unit of Dutton & Maccio (2014) [unconfirmed: Li+20 may use 0.671]
GYR_PER_KPC_KMS = 3.0856775814913673e16 / (365.25 * 86400 * 1e9)  # 1 kpc/(km/s) in Gyr (Julian years)
LN10 = math.log(10.0)

V200_RANGE = (10.0, 500.0)  # km/s, Flat prior (catalogue column range)
C200_RANGE = (1.0, 1000.0)  # Flat prior (catalogue column range 1/999.3)
EINASTO_ALPHA_RANGE = (0.0, 2.0)  # Flat prior on alpha (catalogue column range); mu is tested for alpha >= 0.05
DC14_X_RANGE = (-4.1, -1.3)  # Di Cintio et al. (2014): validity range of the (a, b, g)(X) fits; X is clipped to it
CM_SCATTER_DEX = 0.11  # Dutton & Maccio (2014) log c scatter at fixed M200
ALPHA_SCATTER_DEX = 0.16  # log alpha scatter [unconfirmed value; consistent with the catalogue]
SHMR_SCATTER_DEX = 0.15  # log M* scatter at fixed M200 (Moster et al. 2013) [unconfirmed as Li+20's]
DM14_CM = {"NFW": (0.905, -0.101), "Einasto": (0.977, -0.130)}  # Dutton & Maccio (2014) z = 0, 200c: (A, B)
MOSTER13 = (11.590, 0.0351, 1.376, 0.608)  # log10 M1 [Msun], N, beta, gamma (Moster et al. 2013, z = 0)
CORENFW_ETA, CORENFW_KAPPA, CORENFW_T_SF = 1.75, 0.04, 14.0  # Read+16 eta, kappa; t_SF [Gyr] reproduces Li+20
SERIES_BELOW = 0.1  # x under which the closed forms cancel and the series is used


def _dtype(x) -> np.dtype:
    x = jnp.asarray(x)
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)


def _split(x: Array, below: float = SERIES_BELOW) -> tuple[Array, Array, Array]:
    """``(small, x_series, x_closed)``: each branch sees only arguments where it is accurate and finite."""
    small = x < below
    return small, jnp.where(small, x, 0.0), jnp.where(small, below, x)


def _poly(z: Array, coefs) -> Array:
    """``sum_k coefs[k] z^k`` by Horner."""
    out = coefs[-1]
    for c in coefs[-2::-1]:
        out = out * z + c
    return out


# ---------------------------------------------------------------------------------------------------------- mu(x)

def mu_piso(x: Array) -> Array:
    """pISO ``rho = rho_s/(1+x^2)``: ``mu = x - arctan x`` (series ``x^3 sum (-x^2)^k/(2k+3)`` below 0.1)."""
    small, xs, xc = _split(x)
    series = xs**3 * _poly(-xs * xs, [1.0 / (2 * k + 3) for k in range(10)])
    return jnp.where(small, series, xc - jnp.arctan(xc))


def mu_burkert(x: Array) -> Array:
    """Burkert ``rho = rho_s/((1+x)(1+x^2))``: ``mu = [ln(1+x) + ln(1+x^2)/2 - arctan x]/2``.

    Series: the integrand is ``t^2 (1-t)/(1-t^4)``, so ``mu = sum_j x^(4j+3)/(4j+3) - x^(4j+4)/(4j+4)``.
    """
    small, xs, xc = _split(x)
    coefs = [c for j in range(6) for c in (1.0 / (4 * j + 3), -1.0 / (4 * j + 4), 0.0, 0.0)]
    series = xs**3 * _poly(xs, coefs)
    return jnp.where(small, series, 0.5 * (jnp.log1p(xc) + 0.5 * jnp.log1p(xc * xc) - jnp.arctan(xc)))


def mu_nfw(x: Array) -> Array:
    """NFW ``rho = rho_s/(x(1+x)^2)``: ``mu = ln(1+x) - x/(1+x) = sum_{k>=2} y^k/k``, ``y = x/(1+x)``."""
    small, xs, xc = _split(x)
    ys = xs / (1 + xs)
    return jnp.where(small, ys * ys * _poly(ys, [1.0 / k for k in range(2, 20)]), jnp.log1p(xc) - xc / (1 + xc))


def mu_lucky13(x: Array) -> Array:
    """Lucky13 ``rho = rho_s/(1+x)^3`` (Li+20): ``mu = ln(1+x) + 2/(1+x) - 1/(2(1+x)^2) - 3/2``.

    Written ``ln(1+x) - y - y^2/2`` (``y = x/(1+x)``), i.e. ``sum_{k>=3} y^k/k``: the four O(1) terms cancel to
    ``x^3/3`` at small x.
    """
    small, xs, xc = _split(x)
    ys, yc = xs / (1 + xs), xc / (1 + xc)
    return jnp.where(small, ys**3 * _poly(ys, [1.0 / k for k in range(3, 21)]), jnp.log1p(xc) - yc - 0.5 * yc * yc)


def mu_einasto(x: Array, alpha: Array) -> Array:
    """Einasto ``rho = rho_s exp(-(2/alpha)(x^alpha - 1))`` (rs = r_-2); ``alpha > 0``.

    ``mu = e^(2/alpha) alpha^-1 (alpha/2)^(3/alpha) Gamma(3/alpha) P(3/alpha, (2/alpha) x^alpha)``; the prefactor is
    formed in logs (each factor overflows for small alpha). P keeps its relative accuracy as x -> 0 (series branch).
    """
    a = 3.0 / alpha
    log_norm = 2.0 / alpha - jnp.log(alpha) + a * jnp.log(0.5 * alpha) + gammaln(a)
    pos = x > 0
    u = 2.0 / alpha * safe_pow(jnp.where(pos, x, 1.0), alpha)
    return jnp.where(pos, jnp.exp(log_norm) * gammainc(a, u), 0.0)


# Composite Gauss-Legendre on [0, 1] for the DC14 integral in ln r, and the terms of its binomial series, by
# precision (keyed by the float's byte size). The integrand exp((3-g)u - c softplus(a u)) is analytic within pi/a of
# the real axis: in float64, 8 panels x 8 nodes, measured error < 1e-13 for x <= 1e3 (6 panels: 1e-12; 4: 1e-9), and
# 25 series terms. In float32, 4 panels and 10 terms (|binom(-c, k)| 0.1^k ~ k^2 0.1^k < 1e-8) stay below float32's
# own rounding: on 7300 points over DC14's range, 3.4e-6 relative from a 24-panel float64 reference with this rule,
# 3.5e-6 with the float64 one; value and X-derivative 5.5 -> 2.5 ms (the halo catalogue's float32 starts).
DC14_SERIES_R = 0.1  # the binomial series runs while x^a <= 0.1


def _gauss_legendre_panels(panels: int, order: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``panels`` equal panels of ``order``-point Gauss-Legendre on [0, 1]."""
    t, w = np.polynomial.legendre.leggauss(order)
    return ((np.arange(panels)[:, None] + 0.5 * (t + 1)) / panels).ravel(), np.tile(w / (2 * panels), panels)


DC14_RULES = {8: (*_gauss_legendre_panels(8), 25), 4: (*_gauss_legendre_panels(4), 10)}  # (nodes, weights, terms)


def mu_abg(x: Array, a: Array, b: Array, g: Array) -> Array:
    """Zhao (alpha, beta, gamma) ``rho = rho_s/(x^g (1+x^a)^((b-g)/a))`` for ``g < 3``, any ``b`` (b < 3 allowed).

    ``mu(x) = S(min(x, x0)) + int_{ln x0}^{ln max(x, x0)} r^(3-g) (1+r^a)^(-c) d ln r``, ``c = (b-g)/a``,
    ``x0 = 0.1^(1/a)``, with the exact series ``S(m) = m^(3-g) sum_k binom(-c, k) m^(ak)/(3-g+ak)``. Relative error
    in float64 < 1e-13 for ``x <= 1e3`` over DC14's range (measured against quad), slowly more beyond as the panels
    widen; in float32 (:data:`DC14_RULES`' shorter rule) within float32's rounding.
    """
    dt = _dtype(x)
    nodes, weights, n_terms = DC14_RULES[8 if jnp.dtype(dt).itemsize >= 8 else 4]
    x, a, b, g = jnp.broadcast_arrays(x, a, b, g)  # one shape: the quadrature axis is appended to it
    p, c = 3.0 - g, (b - g) / a
    lo = math.log(DC14_SERIES_R) / a  # ln x0
    x0 = jnp.exp(lo)
    m = jnp.where(x < x0, x, x0)
    k = jnp.arange(n_terms, dtype=dt).reshape((1,) * x.ndim + (-1,))  # series axis, appended
    col = lambda v: v[..., None]  # noqa: E731
    # binom(-c, k) (m^a)^k as one running product: one power per point, not one per term (DC14 evaluates this at
    # every point of every iteration; 25 exponentials were a ninth of its cost)
    ratio = -(col(c) + k - 1) / jnp.where(k > 0, k, 1.0) * col(safe_pow(m, a))
    terms = jnp.cumprod(jnp.where(k > 0, ratio, 1.0), axis=-1)
    series = safe_pow(m, p) * jnp.sum(terms / (col(p) + col(a) * k), axis=-1)
    above = x > x0
    hi = jnp.where(above, jnp.log(jnp.where(above, x, 1.0)), lo)  # exactly lo (no quadrature) while x <= x0
    u = col(lo) + col(hi - lo) * jnp.asarray(nodes, dt).reshape((1,) * hi.ndim + (-1,))
    h = jnp.exp(col(p) * u - col(c) * softplus(col(a) * u))
    return series + (hi - lo) * (h @ jnp.asarray(weights, dt))


def dc14_x(M_star: Array, M200: Array) -> Array:
    """``X = log10(M_star/M200)`` [unclipped; -10 where M_star <= 0]. M_star = Upsilon_d L_d + Upsilon_b L_b [Msun]."""
    return safe_log(M_star / M200, fill=-10.0 * LN10) / LN10


def dc14_shape(X: Array) -> tuple[Array, Array, Array]:
    """DC14 ``(a, b, g)`` from ``X = log10(M_star/M200)``, X clipped to [-4.1, -1.3] (Di Cintio et al. 2014, eq. 3).

    ``a = 2.94 - log10[(10^(X+2.33))^-1.08 + (10^(X+2.33))^2.29]``, ``b = 4.23 + 1.34 X + 0.26 X^2``,
    ``g = -0.06 + log10[(10^(X+2.56))^-0.68 + 10^(X+2.56)]``; the log10-sums as log-add-exp (no overflow).
    """
    X = clip(X, *DC14_X_RANGE)
    za, zg = (X + 2.33) * LN10, (X + 2.56) * LN10
    a = 2.94 - jnp.logaddexp(-1.08 * za, 2.29 * za) / LN10
    g = -0.06 + jnp.logaddexp(-0.68 * zg, zg) / LN10
    return a, 4.23 + 1.34 * X + 0.26 * X * X, g


def mu_dc14(x: Array, X: Array) -> Array:
    """DC14 ``mu(x)`` with the shape set by ``X = log10(M_star/M200)`` (clipped to [-4.1, -1.3])."""
    return mu_abg(x, *dc14_shape(X))


def mu_corenfw(x: Array, xc: Array, n: Array) -> Array:
    """coreNFW ``mu = mu_NFW(x) tanh(x/xc)^n``, ``xc = r_c/rs``, ``0 <= n <= 1`` (Read, Agertz & Collins 2016)."""
    pos = xc > 0  # xc = 0: no core, NFW
    f = jnp.tanh(x / jnp.where(pos, xc, 1.0))
    return mu_nfw(x) * jnp.where(pos, safe_pow(f, n), 1.0)


# ------------------------------------------------------------------------------------------- V200/C200 helpers

def r200(V200: Array) -> Array:
    """``R200 = V200/(10 H0)`` [kpc] for V200 [km/s]."""
    return V200 / TEN_H0


def scale_radius(V200: Array, C200: Array) -> Array:
    """``rs = R200/C200`` [kpc] (all seven profiles; r_-2 for NFW and Einasto, the formula's rs for DC14)."""
    return V200 / (TEN_H0 * C200)


def m200(V200: Array) -> Array:
    """``M200 = V200^3/(10 G H0)`` [Msun]."""
    return V200**3 / (TEN_H0 * G_NEWTON)


def log10_m200(V200: Array) -> Array:
    """``log10 M200`` [Msun]."""
    return 3.0 * jnp.log10(V200) - math.log10(TEN_H0 * G_NEWTON)


def log10_rho_s(mu: Callable, V200: Array, C200: Array, *shape: Array) -> Array:
    """``log10 rho_s`` [Msun/pc^3] from ``M200 = 4 pi rho_s rs^3 mu(C200)``, as in Li+20's table."""
    rs = scale_radius(V200, C200)
    return log10_m200(V200) - jnp.log10(4 * math.pi * rs**3 * mu(C200, *shape)) - 9.0


def v2_halo(mu: Callable, R: Array, V200: Array, C200: Array, *shape: Array) -> Array:
    """Halo ``V^2(R) = V200^2 mu(C200 x)/(x mu(C200))`` [(km/s)^2], ``x = R/R200``; 0 at R = 0.

    ``R: [g, n]`` kpc; ``V200: [g]`` km/s; ``C200: [g]``; ``shape``: the profile's ``mu`` arguments, each ``[g]``
    (``alpha``; ``X``; ``(xc, n)``, see :func:`corenfw_shape`).
    """
    col = lambda v: jnp.expand_dims(v, -1)  # noqa: E731  [g] -> [g, 1]
    shape = tuple(col(s) for s in shape)
    x = R / col(r200(V200))
    mu_c = mu(col(C200), *shape)
    return col(V200**2) * safe_div(mu(col(C200) * x, *shape), x) / mu_c


def corenfw_core_radius(R_half: Array, eta: float = CORENFW_ETA) -> Array:
    """``r_c = eta R_1/2`` [kpc]. Li+20's fits are reproduced with ``R_1/2 = R_eff`` of SPARC (scaled with D)."""
    return eta * R_half


def corenfw_n(V200: Array, C200: Array, t_sf: float | Array = CORENFW_T_SF, kappa: float = CORENFW_KAPPA) -> Array:
    """``n = tanh(kappa t_SF/t_dyn)``, ``t_dyn = 2 pi sqrt(rs^3/(G M_NFW(rs)))`` (Read+16), t_SF [Gyr]."""
    rs = scale_radius(V200, C200)
    m_rs = m200(V200) * (math.log(2.0) - 0.5) / mu_nfw(C200)  # M_NFW(<rs), mu_NFW(1) = ln 2 - 1/2
    t_dyn = 2 * math.pi * jnp.sqrt(rs**3 / (G_NEWTON * m_rs)) * GYR_PER_KPC_KMS
    return jnp.tanh(kappa * t_sf / t_dyn)


def corenfw_shape(V200: Array, C200: Array, r_core: Array, t_sf: float | Array = CORENFW_T_SF) -> tuple[Array, Array]:
    """coreNFW ``mu`` arguments ``(xc, n)`` = ``(r_c/rs, n)`` from ``[g]`` V200, C200 and core radius [kpc]."""
    return r_core / scale_radius(V200, C200), corenfw_n(V200, C200, t_sf)


# ---------------------------------------------------------------------------------------------------- priors

def log10_c200_dm14(log10_M200: Array, relation: str = "NFW", h: float = H_LITTLE) -> Array:
    """Dutton & Maccio (2014) z = 0 mean ``log10 c200`` at ``M200`` [Msun] (``relation``: "NFW" or "Einasto")."""
    A, B = DM14_CM[relation]
    return A + B * (log10_M200 + math.log10(h) - 12.0)


def z_concentration(C200: Array, log10_M200: Array, relation: str = "NFW", sigma: float = CM_SCATTER_DEX,
                    h: float = H_LITTLE, log10_offset: Array | float = 0.0) -> Array:
    """LCDM c-M prior as a normalised residual (Gaussian in log10 C200). ``log10_offset`` shifts the mean (e.g.
    DC14's ``log10(1 + 1e-5 exp(3.4 (X + 4.5)))`` of Katz et al. 2017, which the catalogue does not favour)."""
    return (jnp.log10(C200) - log10_c200_dm14(log10_M200, relation, h) - log10_offset) / sigma


def alpha_dm14(log10_M200: Array, h: float = H_LITTLE) -> Array:
    """Dutton & Maccio (2014) Einasto shape at z = 0: ``0.0095 nu^2 + 0.155``, nu the peak height of ``M200``."""
    m = log10_M200 + math.log10(h) - 12.0
    log_nu = -0.11 + m * (0.146 + m * (0.0138 + m * 0.00123))
    return 0.0095 * 10.0 ** (2 * log_nu) + 0.155


def z_einasto_alpha(alpha: Array, log10_M200: Array, sigma: float = ALPHA_SCATTER_DEX, h: float = H_LITTLE) -> Array:
    """LCDM prior on Einasto's alpha as a normalised residual (Gaussian in log10 alpha)."""
    return (jnp.log10(alpha) - jnp.log10(alpha_dm14(log10_M200, h))) / sigma


def log10_mstar_moster13(log10_M200: Array) -> Array:
    """Moster et al. (2013) z = 0 mean ``log10 M_star`` [Msun] of a halo of mass M200 [Msun]."""
    log_m1, N, beta, gamma = MOSTER13
    d = (log10_M200 - log_m1) * LN10
    return math.log10(2 * N) + log10_M200 - jnp.logaddexp(-beta * d, gamma * d) / LN10


def z_shmr(log10_M_star: Array, log10_M200: Array, sigma: float = SHMR_SCATTER_DEX) -> Array:
    """Stellar-to-halo mass prior as a normalised residual (Gaussian in log10 M_star at fixed M200)."""
    return (log10_M_star - log10_mstar_moster13(log10_M200)) / sigma


# --------------------------------------------------------------------------------------------------- the table

class HaloProfile(NamedTuple):
    """One of Li+20's seven profiles. ``mu(x, *shape)``; ``shape_ranges`` are where ``mu`` is meant to be used
    (for Einasto's alpha, the only fitted shape parameter, also the Flat prior); ``cm_relation`` the DM14 c-M
    relation of its LCDM fit."""

    name: str
    mu: Callable[..., Array]
    priors: tuple[str, ...]
    shape_names: tuple[str, ...] = ()
    shape_ranges: tuple[tuple[float, float], ...] = ()
    shape_fitted: bool = False
    cm_relation: str | None = "NFW"


PROFILES: dict[str, HaloProfile] = {p.name: p for p in (
    HaloProfile("pISO", mu_piso, ("Flat",), cm_relation=None),
    HaloProfile("Burkert", mu_burkert, ("Flat",), cm_relation=None),
    HaloProfile("NFW", mu_nfw, ("Flat", "LCDM")),
    HaloProfile("Einasto", mu_einasto, ("Flat", "LCDM"), ("alpha",), (EINASTO_ALPHA_RANGE,), True, "Einasto"),
    HaloProfile("DC14", mu_dc14, ("Flat", "LCDM"), ("X",), (DC14_X_RANGE,)),
    HaloProfile("coreNFW", mu_corenfw, ("Flat", "LCDM"), ("xc", "n"), ((0.0, math.inf), (0.0, 1.0))),
    HaloProfile("Lucky13", mu_lucky13, ("Flat", "LCDM")),
)}
