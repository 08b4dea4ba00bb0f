"""What the commands share: data and precision options, the rotation-curve fit options, loading the data, the result
directory, logging, progress and exit codes."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .options import ConfigError, Option

log = logging.getLogger("jaxcoh")

# Exit codes a user (or a script) can act on.
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: please report it (run with --verbose for the traceback)
EXIT_USAGE = 2  # a bad flag, config key or value: nothing was computed
EXIT_DATA = 3  # input data missing or malformed: the message names the file, line and field
EXIT_NUMERICAL = 4  # a fit diverged or produced non-finite values: the message names what
EXIT_INTERRUPTED = 130  # Ctrl-C: no partial result file was left behind

DATA_OPTIONS = (
    Option("sparc", None, "SPARC directory (table1.dat and rotmod/); default $JAXCOH_SPARC_DIR, else a mock catalog",
           type="path", metavar="DIR"),
    Option("data", None, "directory of your own galaxies: galaxies.csv and points.csv (`jaxcoh export` writes the "
           "format); instead of SPARC or the mock", type="path", metavar="DIR"),
    Option("mock_galaxies", 175, "galaxies in the mock catalog used when no SPARC directory is given", type="int",
           metavar="N"),
    Option("mock_seed", 0, "seed of the mock catalog", type="nonneg_int", metavar="SEED"),
    Option("mock_kernel", "multiplicative", "the mock's truth: the coherence kernel (multiplicative, additive, "
           "newtonian) or any curve model (its shared parameters at their declared values, e.g. rar with g_dagger "
           "1.2e-10; nuisance drawn from the priors)", choices=lambda: mock_kernels(), metavar="KERNEL"),
    Option("mock_scatter", 0.0, "intrinsic log-normal scatter of V^2 about a curve-model truth [dex]",
           type="nonneg_float", metavar="DEX"),
    Option("lenient", False, "skip malformed galaxies (of SPARC or --data) with a warning instead of stopping",
           type="bool"),
    Option("galaxies", [], "only these galaxies of the data, by name, comma-separated (e.g. NGC3198,DDO154; before "
           "any --cuts)", type="list", metavar="NAMES"),
)
PRECISION_OPTIONS = (
    Option("dtype", "float64", "floating precision: float64 reproduces published numbers, float32 is faster",
           choices=("float64", "float32")),
)
VERBOSITY_OPTIONS = (
    Option("quiet", False, "print only errors", type="bool", cli_only=True),
    Option("verbose", False, "print debugging detail and full tracebacks", type="bool", cli_only=True),
)


def mock_kernels() -> list[str]:
    """The truths a mock can be made from: the coherence kernel's compositions, then every other curve model
    ("newtonian", K = 0, is both)."""
    from ..mock import KERNELS

    return [*KERNELS, *(m for m in curve_model_names() if m not in KERNELS)]


def curve_model_names() -> list[str]:
    """The registered rotation-curve models (the choices of ``--model`` and ``--models``)."""
    from ..curves import list_models

    return list_models()


def f_missing_model_names() -> list[str]:
    """The registered F_missing models."""
    from ..fmissing import list_models

    return list_models()


def out_option(command: str) -> Option:
    return Option("out", f"results/{command}", "directory for the results", type="path", metavar="DIR")


def setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def sparc_dir(values: dict) -> str | None:
    """The SPARC directory: ``--sparc``, else ``$JAXCOH_SPARC_DIR``, else None (use the mock)."""
    from ..sparc import SPARC_ENV

    return values.get("sparc") or os.environ.get(SPARC_ENV) or None


def load_data(values: dict, dtype, with_truth: bool = False):
    """``(catalog, data_provenance)`` from the data options: SPARC, ``--data`` tables or the mock, then only the
    ``--galaxies`` named (recorded in the provenance as ``galaxies``). The provenance lists the galaxies
    ``--lenient`` skipped, with their reasons (``skipped_galaxies``), for every result file to carry.
    ``with_truth``: ``(catalog, data_provenance, the mock's MockTruth or None)``, the truth of every galaxy made."""
    cat, data, truth = _load_source(values, dtype, with_truth)
    names = list(values.get("galaxies") or [])
    if not names:
        return (cat, data, truth) if with_truth else (cat, data)
    known = set(cat.names)
    if missing := [n for n in names if n not in known]:
        import difflib

        hints = [f"{n} (did you mean {', '.join(close)}?)" if (close := difflib.get_close_matches(
            n, list(cat.names), n=3, cutoff=0.6)) else n for n in missing]
        raise ConfigError(f"'galaxies': not in the data ({cat.n_galaxies} galaxies): {'; '.join(hints)}")
    wanted = set(names)
    index = [i for i, n in enumerate(cat.names) if n in wanted]  # in the data's order
    cat, truth = cat.take(index), None if truth is None else truth.take(index)
    log.info(f"data: {cat.n_galaxies} galaxies selected by --galaxies ({cat.n_points} points)")
    data = {**data, "galaxies": list(cat.names)}
    return (cat, data, truth) if with_truth else (cat, data)


def _load_source(values: dict, dtype, with_truth: bool):
    from ..mock import KERNELS, mock_catalog
    from ..sparc import read_sparc, sparc_checksum

    lenient = values.get("lenient", False)
    if values.get("data"):
        from ..galaxy_tables import read_galaxy_tables, tables_checksum

        if values.get("sparc"):
            raise ConfigError("'data' and 'sparc': give one data source, not both")
        path = values["data"]
        return (*_from_files("tables", path, *read_galaxy_tables(path, lenient=lenient, dtype=dtype),
                             tables_checksum(path)), None)
    path = sparc_dir(values)
    if path:
        return (*_from_files("sparc", path, *read_sparc(path, lenient=lenient, dtype=dtype), sparc_checksum(path)),
                None)
    n, seed = values["mock_galaxies"], values["mock_seed"]
    kernel, scatter = values.get("mock_kernel", "multiplicative"), values.get("mock_scatter", 0.0)
    if scatter and kernel in KERNELS:
        raise ConfigError(f"'mock_scatter': an intrinsic scatter needs a curve-model truth (--mock-kernel rar, nfw, "
                          f"...), not the coherence kernel's {kernel!r}")
    made = mock_catalog(n, seed=seed, kernel=kernel, scatter_dex=scatter, dtype=dtype, return_truth=with_truth)
    cat, truth = made if with_truth else (made, None)
    log.info(f"data: no SPARC directory given (--sparc or $JAXCOH_SPARC_DIR): using jaxcoh's mock catalog "
             f"({n} galaxies, seed {seed})")
    import hashlib

    import numpy as np

    h = hashlib.sha256(np.ascontiguousarray(np.asarray(cat.V_obs)).tobytes()).hexdigest()
    return cat, {"kind": "mock", "n_galaxies": n, "seed": seed, "kernel": kernel, "scatter_dex": scatter, "sha256": h,
                 "skipped_galaxies": []}, truth


def _from_files(kind: str, path, cat, report, sha256: str):
    """``(catalog, data_provenance)`` of data read from files (SPARC, ``--data`` tables), with what ``--lenient``
    skipped."""
    skipped = [{"galaxy": name, "reason": why} for name, why in report.skipped]
    log.info(f"data: {'SPARC' if kind == 'sparc' else kind} from {path} ({cat.n_galaxies} galaxies, {cat.n_points} "
             "points" + (f"; {len(skipped)} skipped by --lenient, listed in the results as skipped_galaxies)"
                         if skipped else ")"))
    return cat, {"kind": kind, "path": str(Path(path).resolve()), "sha256": sha256, "skipped_galaxies": skipped}


@contextlib.contextmanager
def progress(total: int, desc: str, enabled: bool = True) -> Iterator:
    """A tqdm progress bar on stderr (silent with --quiet or when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=not enabled or not sys.stderr.isatty(), leave=False, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


# Options of every rotation-curve fit (`fit`, `compare`; `halos` and `sample` take some of them).
CUTS_OPTION = Option("cuts", "standard", "sample cuts: standard (McGaugh, Lelli & Schombert 2016: quality < 3, "
                     "i >= 30 deg, errV/Vobs < 0.1) or none", choices=("standard", "none"))
LIKELIHOOD_OPTIONS = (
    Option("nuisance", "full", "per-galaxy Upsilon, D and i: full (fitted with priors) or none (0.5 / 0.7, table D, i)",
           choices=("full", "none")),
    Option("recipe", "sparc", "galaxy-property recipe of the missing part", choices=("sparc", "legacy")),
    Option("loss", "chi2", "per-point loss", choices=("chi2", "student_t", "huber")),
    Option("error_floor", 0.0, "km/s added in quadrature to errV", type="nonneg_float", metavar="KMS"),
    Option("intrinsic_scatter", False, "fit a shared intrinsic scatter sigma_int [dex]: log-normal scatter of V_obs^2 "
           "about V_model^2 (of g_obs about g_model), added to each point's error", type="bool"),
)
CURVE_OPTIONS = (
    CUTS_OPTION, *LIKELIHOOD_OPTIONS,
    Option("solver", "auto", "auto (L-BFGS then block LM), block_lm, lbfgs, lm (dense) or adam",
           choices=("auto", "block_lm", "lbfgs", "lm", "adam", "lbfgs+block_lm")),
    Option("n_starts", 4, "starts of the shared parameters (Sobol design), solved side by side", type="int"),
    Option("seed", 0, "seed of the start design", type="nonneg_int"),
    Option("errors", True, "standard errors from the Hessian (marginalised over the per-galaxy parameters)",
           type="bool"),
    Option("galaxy_starts", None, "starts of every galaxy's own and nuisance parameters, the best kept per galaxy "
           "(per-galaxy problems are multimodal; default: 32 for the halo profiles, 8 for the other models)",
           type="int"),
    Option("marginal", "auto", "what the shared parameters maximise: joint (the posterior with every galaxy's "
           "parameters), laplace (their marginal posterior, every galaxy's own and nuisance parameters integrated "
           "out by Laplace's approximation; the joint MAP's bias exceeds its errors at 10^4 galaxies) or auto "
           "(fit: laplace beyond 1000 galaxies, joint up to it; compare: joint)", choices=("auto", "joint", "laplace")),
)


def likelihood(values: dict):
    """The :class:`jaxcoh.curves.Likelihood` of the likelihood options."""
    from ..curves import Likelihood

    return Likelihood(nuisance=values["nuisance"] == "full", loss=values["loss"], error_floor=values["error_floor"],
                      recipe=values["recipe"], intrinsic_scatter=values.get("intrinsic_scatter", False))


def per_iteration(values: dict) -> bool:
    """Whether the solvers should report every iteration: on a terminal (the line rewritten in place), or in a log
    with --verbose. Not otherwise: a report is a host callback inside the compiled solver, and JAX's persistent
    compilation cache cannot keep such a program (the callback's address is part of it), so every run compiles the
    solvers again (measured: `jaxcoh halos` on SPARC, cache filled, 71 s with reports against 29 s without). The
    fits log a line per stage from the host instead (:func:`jaxcoh.curves.fit`)."""
    return not values.get("quiet", False) and (sys.stderr.isatty() or values.get("verbose", False))


def curve_settings(values: dict, solver_options=None):
    """The :class:`jaxcoh.curves.CurveSettings` of the rotation-curve options (the solvers report every iteration
    when :func:`per_iteration` says so: :mod:`jaxcoh.cli.reporting` shows them)."""
    from ..curves import CurveSettings

    return CurveSettings(likelihood=likelihood(values), n_starts=values["n_starts"], seed=values["seed"],
                         solver=values["solver"], solver_options=solver_options, errors=values["errors"],
                         galaxy_starts=values["galaxy_starts"], report=per_iteration(values),
                         marginal=values.get("marginal", "auto"))


def load_cut_data(values: dict):
    """``(catalog after the cuts, cuts report, data provenance, dtype)``."""
    from ..config import set_precision
    from ..selection import apply_cuts

    dtype = set_precision(values["dtype"])
    cat, data = load_data(values, dtype)
    cut, report = apply_cuts(cat, values["cuts"])
    log.info(f"cuts {values['cuts']}: {report['n_galaxies']} galaxies, {report['n_points']} points remain")
    if report["n_galaxies"] == 0:  # nothing to fit: a choice of options, not a bug
        more = "more --mock-galaxies, another --mock-seed or " if data["kind"] == "mock" else ""
        raise ConfigError(f"'cuts': --cuts {values['cuts']} leaves no galaxy of {cat.n_galaxies}; give {more}"
                          "--cuts none")
    return cut, report, data, dtype
