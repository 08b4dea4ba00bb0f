"""``jaxcoh info``: versions, devices, precision, where SPARC is looked for, the compilation cache, registered
models."""

from __future__ import annotations

import os
from pathlib import Path

from .command import Command
from .common import PRECISION_OPTIONS, VERBOSITY_OPTIONS
from .options import Option

OPTIONS = (
    Option("sparc", None, "SPARC directory to check", type="path", metavar="DIR"),
    Option("data", None, "directory of galaxies.csv and points.csv to check (read and validated)", type="path",
           metavar="DIR"),
    *PRECISION_OPTIONS,
    *VERBOSITY_OPTIONS,
)


def run(values: dict) -> int:
    import jax

    from ..config import set_precision
    from .. import curves, fmissing
    from ..results import versions
    from ..sparc import SPARC_ENV

    dtype = set_precision(values["dtype"])
    lines = ["jaxcoh " + versions()["jaxcoh"], "versions: " + ", ".join(f"{k} {v}" for k, v in versions().items())]
    lines.append(f"backend: {jax.default_backend()}; devices: {', '.join(str(d) for d in jax.devices())}")
    lines.append(f"precision: {dtype.name} (jax_enable_x64={jax.config.read('jax_enable_x64')})")
    env = os.environ.get(SPARC_ENV)
    where = values.get("sparc") or env
    if where:
        p = Path(where)
        ok = (p / "table1.dat").is_file() and (p / "rotmod").is_dir()
        src = "--sparc" if values.get("sparc") else f"${SPARC_ENV}"
        lines.append(f"SPARC: {p} (from {src}): {'found' if ok else 'NOT FOUND (needs table1.dat and rotmod/)'}")
    else:
        lines.append(f"SPARC: not configured (give --sparc DIR or set ${SPARC_ENV}); commands use the mock catalog")
    if values.get("data"):
        lines.append(_data_line(values["data"], dtype))
    lines.append(_cache_line())
    lines.append("F_missing models: " + ", ".join(f"{m} ({', '.join(fmissing.get_model(m).parameters.names)})"
                                                  for m in fmissing.list_models()))
    lines.append("curve models: " + ", ".join(curves.list_models()))
    print("\n".join(lines))
    return 0


def _data_line(path: str, dtype) -> str:
    """Whether ``--data`` tables load: their size, or the first problem (file, line, column)."""
    from ..galaxy_tables import read_galaxy_tables
    from ..sparc_layout import DataFormatError

    try:
        cat, _ = read_galaxy_tables(path, dtype=dtype)
    except (DataFormatError, FileNotFoundError) as e:
        return f"data: {path}: NOT READABLE: {e}"
    return f"data: {path}: {cat.n_galaxies} galaxies, {cat.n_points} points (longest curve {cat.n_max} points)"


def _cache_line() -> str:
    from ..compilation_cache import ENV, current, usage
    from ..tracecache import ENV as TRACE_ENV
    from ..tracecache import SUBDIR, cache_directory

    state = current()
    if state.directory is None:
        return (f"compilation cache: off ({state.source}; on by default in ~/.cache/jaxcoh/jax unless "
                f"${ENV}=0 or --compilation-cache off)")
    files, size = usage(state.directory)
    traced, _ = usage(state.directory / SUBDIR)
    kept = "" if cache_directory() is not None else f", none kept now: ${TRACE_ENV}=0"
    return (f"compilation cache: on, {state.directory} (from {state.source}): {files} files, {size / 2**20:.1f} MiB "
            f"(compiled programs, and {traced} traced ones in {SUBDIR}/{kept}); turn off with ${ENV}=0 or "
            "--compilation-cache off")


COMMAND = Command(
    name="info",
    summary="Show versions, devices, precision, where SPARC is looked for (and whether --data tables read), the "
            "compilation cache and the registered models.",
    examples="examples:\n  jaxcoh info\n  jaxcoh info --sparc ../shared/data/sparc\n  jaxcoh info --data mydata",
    options=OPTIONS, run=run,
)
