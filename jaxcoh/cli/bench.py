"""``jaxcoh bench``: the benchmarks B1-B5, jaxcoh beside the seed-style baselines, ratios printed and saved."""

from __future__ import annotations

import sys
from pathlib import Path

from .command import Command
from .common import VERBOSITY_OPTIONS, DATA_OPTIONS, out_option, progress, sparc_dir
from .options import ConfigError, Option
from .rundir import write_run

OPTIONS = (
    DATA_OPTIONS[0], out_option("bench"),
    Option("quick", False, "smaller sizes and fewer repeats (finishes in about 2 minutes)", type="bool"),
    Option("only", [], "run only these benchmarks (B1..B5), comma-separated", type="list", metavar="IDS"),
    *VERBOSITY_OPTIONS,
)


def validate(values: dict) -> None:
    bad = [b for b in values["only"] if b not in ("B1", "B2", "B3", "B4", "B5")]
    if bad:
        raise ConfigError(f"'only': unknown {', '.join(bad)}; choose among B1, B2, B3, B4, B5")


def load_suite():
    """``benchmarks/suite.py`` of the source checkout (the benchmarks are not part of the installed package)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "suite.py").is_file():
        raise FileNotFoundError(f"benchmarks/suite.py not found next to the jaxcoh package ({root}); run jaxcoh bench "
                                "from a source checkout installed with `pip install -e .`")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import suite

    return suite


def run(values: dict) -> int:
    suite = load_suite()
    path = sparc_dir(values)
    only = values["only"] or None
    n = len(only) if only else 5
    with progress(n, "benchmarks", not values["quiet"]) as bar:
        res = suite.run_suite(path, values["quick"], only, progress=lambda name: (bar.set_postfix_str(name),
                                                                                  bar.update(1)))
    data = {"kind": "sparc" if path else "mock", "path": path}
    out = write_run(values["out"], "bench", OPTIONS, values, dtype=res["dtype"], data=data,
                    files={"bench.json": res})
    if not values["quiet"]:
        print(suite.format_results(res))
        print(f"\nwrote {out}/bench.json")
    return 0


COMMAND = Command(
    name="bench",
    summary="Run the benchmarks (jaxcoh beside numpy/scipy baselines in the same run) and save bench.json.",
    examples="examples:\n  jaxcoh bench --sparc ../shared/data/sparc --quick\n"
             "  jaxcoh bench --sparc DIR --out results/bench          # the full suite (tens of minutes on 2 cores)\n"
             "  jaxcoh bench --only B4 --quick                        # kernel scaling on mock catalogs only",
    options=OPTIONS, run=run, validate=validate,
)
