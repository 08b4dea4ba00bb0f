"""``jaxcoh bench``: the benchmarks B1-B7 (:mod:`jaxcoh.bench`), jaxcoh beside the seed-style baselines, ratios printed
and saved."""

from __future__ import annotations

from ..bench import BENCHMARKS
from .command import Command
from .common import DATA_OPTIONS, VERBOSITY_OPTIONS, out_option, progress, sparc_dir
from .options import ConfigError, Option
from .rundir import write_run

OPTIONS = (
    DATA_OPTIONS[0], out_option("bench"),
    Option("quick", False, "smaller sizes and fewer repeats (finishes in about 2 minutes)", type="bool"),
    Option("only", [], f"run only these benchmarks ({BENCHMARKS[0]}..{BENCHMARKS[-1]}), comma-separated", type="list",
           metavar="IDS"),
    *VERBOSITY_OPTIONS,
)


def validate(values: dict) -> None:
    bad = [b for b in values["only"] if b not in BENCHMARKS]
    if bad:
        raise ConfigError(f"'only': unknown {', '.join(bad)}; choose among {', '.join(BENCHMARKS)}")


def load_suite():
    """:mod:`jaxcoh.bench.suite` (imported on demand: it loads scipy and every baseline)."""
    from ..bench import suite

    return suite


def run(values: dict) -> int:
    from ..compilation_cache import disable

    # The benchmarks time compilation (first call minus a warm one; B1 fills a cache of its own in fresh processes):
    # compiled programs from the persistent cache would make those times meaningless, so this command runs without it.
    disable("jaxcoh bench times compilation")
    suite = load_suite()
    path = sparc_dir(values)
    only = values["only"] or None
    n = len(only) if only else len(BENCHMARKS)
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
             "  jaxcoh bench --only B4 --quick                        # kernel scaling on mock catalogs only\n"
             "  jaxcoh bench --sparc DIR --only B6                    # the halo catalogue against a scipy loop\n"
             "(the benchmarks' extra dependencies: pip install 'jaxcoh[bench]')",
    options=OPTIONS, run=run, validate=validate,
)
