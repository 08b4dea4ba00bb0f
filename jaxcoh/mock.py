"""Deterministic mock catalogs whose observed curves come from a known kernel, so fits can be checked against truth.

Each galaxy is built in its true frame (the numpy side, at the edge, because JAX has no modified Bessel K):

- an exponential stellar disk (Freeman 1970) of luminosity ``(1 - B/T) L`` and scale length ``R_d`` from a
  size-luminosity relation, an optional Hernquist bulge (more likely in bright galaxies), and an exponential gas
  disk of mass ``1.33 M_HI`` with a scale length ``~2.5 R_d`` (most of them with a central hole, where the gas pulls
  outward and Vgas is negative, as SPARC tabulates it), M_HI from a gas-fraction relation that makes dwarfs gas
  rich; rotation speeds at Upsilon = 1 as SPARC tabulates them;
- true mass-to-light ratios log-normal around 0.5 (disk) and 0.7 (bulge) with 0.1 dex, a true distance and
  inclination;
- the true curve ``V^2 = V_bar^2 (1 + A_gal C(R/ell0))``, with ``A_gal`` from the roughness derivation and an
  F_missing model at known parameters (``kernel="multiplicative"``: ``K_rough F``; ``"additive"``: ``K_rough + F``;
  ``"newtonian"``: 0) evaluated with the ``sparc`` property recipe (jaxcoh's own kernels, on the JAX side);
- ``V_flat`` solved self-consistently: the kernel depends on it (through sigma_v), and it is set to the median of the
  outer noiseless model speeds by a few fixed-point iterations;
- radii evenly spaced to 3-8 disk scale lengths, errors of 2-6% plus 1-3 km/s, Gaussian noise (a rare
  non-positive draw at a tiny radius keeps the true speed).

The table then reports what an observer would: a distance and an inclination off the truth by their quoted errors,
with radii, luminosities, masses and speeds scaled accordingly (radii with D, baryonic speeds with sqrt(D), observed
speeds with 1/sin i). With ``nuisance=False`` the table holds the truth and Upsilon is exactly 0.5 / 0.7.

Galaxies are generated in fixed chunks of :data:`CHUNK` from ``SeedSequence([seed, chunk])``, so a catalog is the
first ``n`` galaxies of any larger one with the same seed, and 10^6 galaxies never need more than one chunk of
temporaries.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .catalog import GALAXY_FIELDS, Catalog, GalaxyNames
from .coherence import Hyperparameters, burr_xii_window, roughness
from .config import canonical_dtype, default_dtype
from .constants import G_NEWTON, HELIUM_FACTOR, UPSILON_BULGE, UPSILON_DISK
from .curves.inputs import curve_inputs
from .curves.models import CurveModel
from .curves.models import get_model as get_curve_model
from .fmissing.models import ModelInputs, get_model
from .numerics import safe_sqrt
from .properties import FLAT_POINTS, SIGMA_FRACTION
from .seed import SEED_R_REF, SEED_SIGMA_REF

CHUNK = 4096
KERNELS = ("multiplicative", "additive", "newtonian")
DEFAULT_TRUTH = {"K_max": 12.0, "Psi0": 2e-8, "gamma": 0.8, "f_R": 2.0}  # mass_coherence: F spans ~2.5-12 (sparc recipe)
BTFR_A = 47.0  # Msun (km/s)^-4: baryonic Tully-Fisher normalisation (McGaugh 2012), starts the V_flat iteration
FLAT_ITERATIONS = 4
HOLE_FRACTION = 0.8  # of gas disks with a central hole (negative Vgas inside it)


@dataclasses.dataclass(frozen=True)
class MockTruth:
    """What a mock catalog was made from. Per-galaxy arrays are ``[g]`` numpy arrays."""

    kernel: str
    model: str
    params: Mapping[str, float]
    hyper: Hyperparameters
    recipe: str
    upsilon_disk: np.ndarray
    upsilon_bulge: np.ndarray
    distance: np.ndarray  # Mpc, true
    inclination: np.ndarray  # degrees, true
    A_gal: np.ndarray  # the kernel amplitude of each galaxy (NaN for a curve model's truth)
    F_true: np.ndarray  # the model's F for each galaxy (NaN for a curve model's truth)
    local: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)  # a curve model's per-galaxy truth
    scatter_dex: float = 0.0  # intrinsic log-normal scatter of V^2 about the model

    def per_galaxy(self) -> dict[str, np.ndarray]:
        """Every per-galaxy truth ``[g]``: the nuisance values, A_gal and F_true, then a curve model's own."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}, **self.local}

    def take(self, index) -> MockTruth:
        """The truth of the galaxies at ``index`` (host-side positions, as :meth:`Catalog.take`)."""
        index = np.asarray(index, dtype=np.int64)
        arrays = {k: v[index] for k, v in self.per_galaxy().items() if k not in self.local}
        return dataclasses.replace(self, **arrays, local={k: v[index] for k, v in self.local.items()})

    def summary(self) -> dict:
        return {"kernel": self.kernel, "model": self.model, "params": dict(self.params),
                "hyper": {k: float(v) for k, v in self.hyper._asdict().items()}, "recipe": self.recipe,
                "scatter_dex": self.scatter_dex}


def _disk_speed2(mass: np.ndarray, scale: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Freeman exponential disk: ``V^2 = 2 G M / R_d y^2 [I0 K0 - I1 K1](y)``, ``y = R / 2R_d`` [(km/s)^2]."""
    y = R / (2 * scale[:, None])
    # i*e(y) k*e(y) = i*(y) k*(y): the exponential scalings cancel, and the scaled forms never overflow.
    from scipy import special  # imported on use: jaxcoh's import stays light

    bessel = special.i0e(y) * special.k0e(y) - special.i1e(y) * special.k1e(y)
    return 2 * G_NEWTON * mass[:, None] / scale[:, None] * y**2 * bessel


def _gas_speed(rng: np.random.Generator, mass: np.ndarray, scale: np.ndarray, R: np.ndarray) -> np.ndarray:
    """The gas disk's signed speed ``sign(V^2) sqrt(|V^2|)`` (SPARC's Vgas convention) [km/s].

    A fraction :data:`HOLE_FRACTION` of the disks have a central hole, ``Sigma ~ exp(-R/R_g) - h exp(-R/(r R_g))``
    with ``h`` in [0.7, 1] and ``r`` in [0.3, 0.7] (non-negative everywhere): inside the hole the gas pulls outward,
    ``V^2 < 0``, as at 361 of SPARC's 3391 points (chosen so that ~10% of the mock's points are negative too; holes
    that the stars cannot outweigh are filled by the caller). ``V^2`` is linear in the surface density, so it is the
    outer disk's minus the hole's. The hole's parameters come from their own generator (a child of the chunk's), so
    the other draws are unchanged.
    """
    n = mass.shape[0]
    h = np.where(rng.uniform(size=n) < HOLE_FRACTION, rng.uniform(0.7, 1.0, n), 0.0)
    r = rng.uniform(0.3, 0.7, n)
    outer = mass / (1 - h * r**2)  # the exponential disk the hole is cut from, so that the total stays ``mass``
    V2 = _disk_speed2(outer, scale, R) - _disk_speed2(h * r**2 * outer, r * scale, R)
    return np.sign(V2) * np.sqrt(np.abs(V2))


def _baryons(rng: np.random.Generator, n: int, n_max: int, min_points: int, nuisance: bool) -> dict:
    """True-frame galaxies: luminosities, sizes, gas, radii and component speeds (numpy, ``[n]`` / ``[n, n_max]``)."""
    logL = rng.uniform(-1.5, 2.5, n)  # L[3.6] in 1e9 Lsun
    L = 10**logL
    has_bulge = rng.uniform(size=n) < np.clip(0.1 + 0.15 * logL, 0.0, 0.6)
    bt = np.where(has_bulge, rng.uniform(0.05, 0.35, n), 0.0)
    R_d = 10 ** (0.3 + 0.35 * logL + rng.normal(0, 0.12, n))  # kpc
    M_HI = 10 ** (-0.2 + 0.55 * logL + rng.normal(0, 0.25, n))  # 1e9 Msun
    R_g = 2.5 * R_d * 10 ** rng.normal(0, 0.1, n)
    a_bul = 0.2 * R_d
    ud = UPSILON_DISK * 10 ** rng.normal(0, 0.1, n) if nuisance else np.full(n, UPSILON_DISK)
    ub = UPSILON_BULGE * 10 ** rng.normal(0, 0.1, n) if nuisance else np.full(n, UPSILON_BULGE)
    counts = np.floor(np.exp(rng.uniform(np.log(min_points), np.log(n_max + 1), n))).astype(np.int64)
    counts = np.clip(counts, min_points, n_max)
    R_max = R_d * rng.uniform(3.0, 8.0, n)
    idx = np.arange(n_max)[None, :]
    mask = idx < counts[:, None]
    R = np.where(mask, R_max[:, None] * (idx + 1) / counts[:, None], 1.0)
    V_disk = np.sqrt(_disk_speed2((1 - bt) * L * 1e9, R_d, R))
    V_bul = np.sqrt(G_NEWTON * (bt * L * 1e9)[:, None] * R / (R + a_bul[:, None]) ** 2)
    V_gas = _gas_speed(np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]), HELIUM_FACTOR * M_HI * 1e9,
                       R_g, R)
    # A hole where the stars cannot outweigh it (an outward net pull, V_bar^2 < 0 at some point, which no rotating
    # disk shows) is filled: that galaxy's gas is a plain exponential disk.
    V_bar2 = V_gas * np.abs(V_gas) + ud[:, None] * V_disk**2 + ub[:, None] * V_bul**2
    filled = np.any(mask & (V_bar2 <= 0), axis=1)
    V_gas[filled] = np.sqrt(_disk_speed2(HELIUM_FACTOR * M_HI[filled] * 1e9, R_g[filled], R[filled]))
    distance = 10 ** rng.uniform(0.0, 2.0, n)  # Mpc
    inclination = np.degrees(np.arccos(rng.uniform(np.cos(np.radians(85)), np.cos(np.radians(25)), n)))
    return dict(L=L, bt=bt, R_d=R_d, M_HI=M_HI, R_g=R_g, ud=ud, ub=ub, mask=mask, R=R, V_disk=V_disk, V_gas=V_gas,
                V_bul=V_bul, distance=distance, inclination=inclination, counts=counts)


@functools.partial(jax.jit, static_argnames=("model", "kernel"))
def _true_curve(model, kernel, params, hyper, R, V_bar2, mask, M_b, R_d, v_flat):
    """``(V_true [g, n], A_gal [g], F [g])`` of the truth kernel with the ``sparc`` recipe (JAX, jitted)."""
    sigma_v = SIGMA_FRACTION * v_flat
    x = ModelInputs(M_b, R_d, v_flat, sigma_v, jnp.asarray(SEED_SIGMA_REF, R.dtype), jnp.asarray(SEED_R_REF, R.dtype))
    F = model.predict(params, x)
    V_bar = safe_sqrt(V_bar2)
    K_rough = jax.vmap(roughness, in_axes=(None, 0, 0, 0, 0))(hyper, R, V_bar, mask, sigma_v)
    A_gal = {"multiplicative": K_rough * F, "additive": K_rough + F, "newtonian": jnp.zeros_like(F)}[kernel]
    K = A_gal[:, None] * burr_xii_window(R, hyper.ell0, hyper.p, hyper.n_coh)
    return safe_sqrt(V_bar2 * (1 + K)), A_gal, F


def _outer_median(V: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = mask.sum(axis=1, keepdims=True)
    idx = np.arange(mask.shape[1])[None, :]
    return np.nanmedian(np.where(mask & (idx >= n - FLAT_POINTS), V, np.nan), axis=1)


def _chunk(seed: int, k: int, n_max: int, min_points: int, nuisance: bool, noise: bool, model, kernel: str,
           params, hyper) -> tuple[dict, dict]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, k]))
    b = _baryons(rng, CHUNK, n_max, min_points, nuisance)
    mask = b["mask"]
    V_bar2 = b["V_gas"] * np.abs(b["V_gas"]) + b["ud"][:, None] * b["V_disk"] ** 2 + b["ub"][:, None] * b["V_bul"] ** 2
    M_b = (b["ud"] * b["L"] + HELIUM_FACTOR * b["M_HI"]) * 1e9
    v_flat = (M_b / BTFR_A) ** 0.25
    args = [jnp.asarray(a) for a in (b["R"], V_bar2, mask, M_b, b["R_d"])]
    for _ in range(FLAT_ITERATIONS):  # V_flat consistent with the outer model curve it helps to make
        V_true, A_gal, F = _true_curve(model, kernel, params, hyper, *args, jnp.asarray(v_flat))
        v_flat = _outer_median(np.asarray(V_true), mask)
    V_true, A_gal, F = (np.asarray(a) for a in _true_curve(model, kernel, params, hyper, *args, jnp.asarray(v_flat)))
    # The observer's frame: distance and inclination off by their quoted errors.
    e_D_frac = rng.uniform(0.05, 0.25, CHUNK)
    e_i = rng.uniform(2.0, 8.0, CHUNK)
    if nuisance:
        D_obs = b["distance"] * np.exp(e_D_frac * rng.standard_normal(CHUNK))
        i_obs = np.clip(b["inclination"] + e_i * rng.standard_normal(CHUNK), 15.0, 89.0)
    else:
        D_obs, i_obs = b["distance"], b["inclination"]
    arrays = _observe(rng, b, V_true, v_flat, D_obs, i_obs, e_D_frac, e_i, noise)
    truth = dict(upsilon_disk=b["ud"], upsilon_bulge=b["ub"], distance=b["distance"], inclination=b["inclination"],
                 A_gal=A_gal, F_true=F)
    return arrays, truth


@functools.partial(jax.jit, static_argnames=("model",))
def _model_speed2(model: CurveModel, shared, local, cat: Catalog, upsilon_disk, upsilon_bulge):
    """``V^2 [g, n]`` of a curve model on a true-frame catalog with the ``sparc`` recipe (JAX, jitted)."""
    refs = (jnp.asarray(SEED_SIGMA_REF, cat.dtype), jnp.asarray(SEED_R_REF, cat.dtype))
    return model.speed2(shared, local, curve_inputs(cat, upsilon_disk, upsilon_bulge, "sparc", refs))


def _draw_local(model: CurveModel, rng, M_b: np.ndarray, v_flat: np.ndarray) -> dict[str, np.ndarray]:
    if model.draw_local is not None:
        return {k: np.asarray(v, float) for k, v in model.draw_local(rng, M_b, v_flat).items()}
    return {p.name: np.asarray(p.start_value(jnp.asarray(rng.uniform(size=M_b.shape)))) for p in model.local}


def _chunk_model(seed: int, k: int, n_max: int, min_points: int, nuisance: bool, noise: bool, model: CurveModel,
                 shared: dict, scatter_dex: float) -> tuple[dict, dict]:
    """A chunk whose curves come from a curve model, with every nuisance value drawn from the fit's own priors
    around the table's: the table's D and i are drawn first, the true ones from N(D, e_D) and N(i, e_i), Upsilon
    log-normal around 0.5 / 0.7; the curve is made in the true frame and tabulated at the table's values."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, k, 7]))
    b = _baryons(rng, CHUNK, n_max, min_points, nuisance)
    e_D_frac, e_i = rng.uniform(0.05, 0.25, CHUNK), rng.uniform(2.0, 8.0, CHUNK)
    D_table, i_table = b["distance"], b["inclination"]
    if nuisance:
        D_true = np.maximum(D_table * (1 + e_D_frac * rng.standard_normal(CHUNK)), 0.1 * D_table)
        i_true = np.clip(i_table + e_i * rng.standard_normal(CHUNK), 5.0, 89.9)
    else:
        D_true, i_true = D_table, i_table
    true = {**b, "distance": D_true, "inclination": i_true}
    M_b = (b["ud"] * b["L"] + HELIUM_FACTOR * b["M_HI"]) * 1e9
    v_flat = (M_b / BTFR_A) ** 0.25
    local = _draw_local(model, rng, M_b, v_flat)
    arrays = {"R": b["R"], "V_obs": np.zeros_like(b["R"]), "e_V_obs": np.ones_like(b["R"]), "V_gas": b["V_gas"],
              "V_disk": b["V_disk"], "V_bul": b["V_bul"], "mask": b["mask"], "distance": D_true,
              "inclination": i_true, "L36": b["L"], "M_HI": b["M_HI"], "R_disk": b["R_d"], "R_eff": 1.678 * b["R_d"]}
    jl = {k: jnp.asarray(v) for k, v in local.items()}
    ups = (jnp.asarray(b["ud"]), jnp.asarray(b["ub"]))
    for _ in range(FLAT_ITERATIONS):  # V_flat consistent with the outer curve it helps to make (the unified kernel)
        cat = Catalog.from_arrays({**arrays, "V_flat": v_flat}, names=GalaxyNames.numbered("T", CHUNK))
        V_true = np.sqrt(np.maximum(np.asarray(_model_speed2(model, shared, jl, cat, *ups)), 0.0))
        v_flat = _outer_median(V_true, b["mask"])
    if scatter_dex > 0:  # log-normal in V^2: sigma_int dex
        V_true = V_true * 10 ** (0.5 * scatter_dex * rng.standard_normal(V_true.shape))
    out = _observe(rng, true, V_true, v_flat, D_table, i_table, e_D_frac, e_i, noise)
    nan = np.full(CHUNK, np.nan)
    truth = dict(upsilon_disk=b["ud"], upsilon_bulge=b["ub"], distance=D_true, inclination=i_true, A_gal=nan,
                 F_true=nan, **{f"local:{k}": v for k, v in local.items()})
    return out, truth


def _observe(rng, b: dict, V_true, v_flat, D_obs, i_obs, e_D_frac, e_i, noise: bool) -> dict:
    """The catalog an observer tabulates: true curves ``V_true`` (true frame: ``b``'s distance and inclination) seen
    at the table's ``D_obs`` and ``i_obs``: radii with D, luminosities and masses with D^2, baryonic speeds with
    sqrt(D), observed speeds with sin(i_true)/sin(i_obs); errors of 2-6% plus 1-3 km/s and, with ``noise``, Gaussian
    noise of that size."""
    mask = b["mask"]
    d = D_obs / b["distance"]
    sin_ratio = np.sin(np.radians(b["inclination"])) / np.sin(np.radians(i_obs))
    V_table = V_true * sin_ratio[:, None]
    frac, floor = rng.uniform(0.02, 0.06, CHUNK), rng.uniform(1.0, 3.0, CHUNK)
    e_V = np.sqrt(floor[:, None] ** 2 + (frac[:, None] * V_table) ** 2)
    V_obs = V_table + e_V * rng.standard_normal(V_table.shape) if noise else V_table
    V_obs = np.where(V_obs > 0, V_obs, V_table)  # speeds are magnitudes: a rare non-positive draw keeps the truth
    L_obs, M_HI_obs, R_d_obs = b["L"] * d**2, b["M_HI"] * d**2, b["R_d"] * d
    R_eff = 1.678 * R_d_obs  # half-light radius of an exponential disk
    sigma_HI0 = M_HI_obs * 1e9 / (2 * np.pi * (b["R_g"] * d * 1e3) ** 2)  # Msun/pc^2 at the centre
    logL = np.log10(b["L"])
    point = dict(
        R=b["R"] * d[:, None], V_obs=V_obs, e_V_obs=e_V, V_gas=b["V_gas"] * np.sqrt(d)[:, None],
        V_disk=b["V_disk"] * np.sqrt(d)[:, None], V_bul=b["V_bul"] * np.sqrt(d)[:, None], mask=mask,
    )
    table = dict(
        distance=D_obs, e_distance=e_D_frac * D_obs, inclination=i_obs, e_inclination=e_i,
        L36=L_obs, e_L36=0.05 * L_obs, R_eff=R_eff, SB_eff=L_obs * 1e9 / 2 / (2 * np.pi * (R_eff * 1e3) ** 2),
        R_disk=R_d_obs, SB_disk0=(1 - b["bt"]) * L_obs * 1e9 / (2 * np.pi * (R_d_obs * 1e3) ** 2),
        M_HI=M_HI_obs, R_HI=b["R_g"] * d * np.log(np.maximum(sigma_HI0, 1.0)),  # where Sigma_HI = 1 Msun/pc^2
        V_flat=v_flat * sin_ratio, e_V_flat=0.05 * v_flat * sin_ratio,
        hubble_type=np.clip(np.round(9 - 2.5 * logL + rng.normal(0, 1.0, CHUNK)), 0, 11).astype(np.int32),
        distance_method=np.ones(CHUNK, np.int32),
        quality=rng.choice([1, 2, 3], size=CHUNK, p=[0.5, 0.4, 0.1]).astype(np.int32),
    )
    return {**point, **table}


def mock_catalog(
    n_galaxies: int,
    seed: int = 0,
    *,
    n_max: int = 64,
    min_points: int = 6,
    kernel: str | CurveModel = "multiplicative",
    model: str = "mass_coherence",
    params: Mapping[str, float] | None = None,
    hyper: Hyperparameters = Hyperparameters(),
    nuisance: bool = True,
    noise: bool = True,
    scatter_dex: float = 0.0,
    dtype=None,
    return_truth: bool = False,
) -> Catalog | tuple[Catalog, MockTruth]:
    """A mock catalog of ``n_galaxies`` (10 to 10^6 and more), deterministic in ``seed``; see the module docstring.

    Args:
      n_max: points of the longest curve (curves have ``min_points`` to ``n_max`` points, log-uniformly).
      kernel, model, params, hyper: the truth: ``A_gal`` composition (:data:`KERNELS`), F_missing model and its
        parameters (default :data:`DEFAULT_TRUTH` for mass_coherence), derivation hyperparameters. Or ``kernel``
        names any registered curve model (``"rar"``, ``"nfw"``, a halo profile, ...): the curves are that model's,
        ``params`` its shared parameters (default: their declared initial values, e.g. g_dagger = 1.2e-10), each
        galaxy's own drawn by the model's ``draw_local`` (or over its start ranges), and every nuisance value drawn
        from the fit's own priors (see :func:`_chunk_model`); the truth has the per-galaxy values in ``local``.
      scatter_dex: intrinsic log-normal scatter of V^2 about the model, in dex (curve-model truths).
      nuisance: scatter Upsilon around 0.5 / 0.7 and report distance and inclination off the truth.
      noise: add Gaussian noise of the quoted errors to the observed speeds.
      return_truth: also return the :class:`MockTruth`.
    """
    if n_galaxies < 1:
        raise ValueError(f"n_galaxies must be positive, got {n_galaxies}")
    if not 1 <= min_points <= n_max:
        raise ValueError(f"need 1 <= min_points <= n_max, got {min_points}, {n_max}")
    if kernel not in KERNELS:
        return _mock_from_curve_model(n_galaxies, seed, n_max, min_points, get_curve_model(kernel), params, nuisance,
                                      noise, scatter_dex, dtype, return_truth)
    if scatter_dex:
        raise ValueError("scatter_dex is for truths from a curve model (kernel=<curve model name>)")
    m = get_model(model)
    if params is None:
        if m.name != "mass_coherence":
            raise ValueError(f"give params for the truth model {m.name!r} (defaults exist for mass_coherence)")
        params = DEFAULT_TRUTH
    missing = set(m.parameters.names) - set(params)
    if missing:
        raise ValueError(f"truth params missing {sorted(missing)} for model {m.name!r}")
    dt = canonical_dtype(dtype) if dtype is not None else default_dtype()
    # Generate in float64 whatever the catalog's dtype, so a float32 catalog is the float64 one rounded.
    gen = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    p = {k: jnp.asarray(v, gen) for k, v in params.items()}
    h = Hyperparameters(*hyper).astype(gen)
    chunks = (_chunk(seed, k, n_max, min_points, nuisance, noise, m, kernel, p, h)
              for k in range(-(-n_galaxies // CHUNK)))
    cat, t = _assemble(chunks, n_galaxies, dt, f"mock(n={n_galaxies}, seed={seed}, kernel={kernel}, model={m.name})")
    if not return_truth:
        return cat
    return cat, MockTruth(kernel=kernel, model=m.name, params=dict(params), hyper=hyper, recipe="sparc", **t)


def _mock_from_curve_model(n_galaxies, seed, n_max, min_points, model: CurveModel, params, nuisance, noise,
                           scatter_dex, dtype, return_truth):
    unknown = set(params or {}) - set(model.shared.names)
    if unknown:
        raise ValueError(f"{model.name} has no shared parameters {sorted(unknown)}; it has {model.shared.names}")
    shared = {p.name: float((params or {}).get(p.name, p.init)) for p in model.shared}
    dt = canonical_dtype(dtype) if dtype is not None else default_dtype()
    gen = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    js = {k: jnp.asarray(v, gen) for k, v in shared.items()}
    chunks = (_chunk_model(seed, k, n_max, min_points, nuisance, noise, model, js, scatter_dex)
              for k in range(-(-n_galaxies // CHUNK)))
    cat, t = _assemble(chunks, n_galaxies, dt, f"mock(n={n_galaxies}, seed={seed}, kernel={model.name}"
                       + (f", scatter={scatter_dex} dex)" if scatter_dex else ")"))
    if not return_truth:
        return cat
    local = {k.partition(":")[2]: t.pop(k) for k in list(t) if k.startswith("local:")}
    return cat, MockTruth(kernel=model.name, model=model.name, params=shared, hyper=Hyperparameters(), recipe="sparc",
                          local=local, scatter_dex=float(scatter_dex), **t)


def _assemble(chunks, n_galaxies: int, dt, source: str) -> tuple[Catalog, dict[str, np.ndarray]]:
    """The catalog of the first ``n_galaxies`` of the chunks' galaxies, and the truths' arrays."""
    fields = [f for f in (*GALAXY_FIELDS, "R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "mask")]
    out = {f: None for f in fields}
    truth_parts: dict[str, list] = {}
    for k, (arrays, truth) in enumerate(chunks):  # chunks of CHUNK galaxies: bounded temporaries at any size
        take = min(CHUNK, n_galaxies - k * CHUNK)
        for f in fields:
            a = arrays[f][:take]
            if out[f] is None:
                out[f] = np.empty((n_galaxies, *a.shape[1:]), dtype=bool if f == "mask" else a.dtype
                                  if a.dtype.kind == "i" else dt)
            out[f][k * CHUNK:k * CHUNK + take] = a
        for f, a in truth.items():
            truth_parts.setdefault(f, []).append(a[:take])
    cat = Catalog.from_arrays({**out, "SB_disk": None, "SB_bul": None}, names=GalaxyNames.numbered("MOCK", n_galaxies),
                              source=source, dtype=dt)
    return cat, {f: np.concatenate(v) for f, v in truth_parts.items()}
