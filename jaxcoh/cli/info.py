"""``jaxcoh info``: versions, devices, precision, where SPARC is looked for, registered models."""

from __future__ import annotations

import os
from pathlib import Path

from .command import Command
from .common import PRECISION_OPTIONS, VERBOSITY_OPTIONS
from .options import Option

OPTIONS = (
    Option("sparc", None, "SPARC directory to check", type="path", metavar="DIR"),
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
    cache = jax.config.jax_compilation_cache_dir
    lines.append(f"compilation cache: {cache + ' (compiled code; traced programs in its jaxcoh-traced/)' if cache else 'off (set JAX_COMPILATION_CACHE_DIR to keep compiled code and traced programs between runs)'}")
    lines.append("F_missing models: " + ", ".join(f"{m} ({', '.join(fmissing.get_model(m).parameters.names)})"
                                                  for m in fmissing.list_models()))
    lines.append("curve models: " + ", ".join(curves.list_models()))
    print("\n".join(lines))
    return 0


COMMAND = Command(
    name="info",
    summary="Show versions, devices, precision, where SPARC is looked for, and the registered models.",
    examples="examples:\n  jaxcoh info\n  jaxcoh info --sparc ../shared/data/sparc",
    options=OPTIONS, run=run,
)
