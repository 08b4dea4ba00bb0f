"""``jaxcoh plot``: every figure a result directory allows, as PNG and PDF (needs ``pip install "jaxcoh[plots]"``)."""

from __future__ import annotations

from pathlib import Path

from .command import Command
from .common import EXIT_DATA, EXIT_USAGE, VERBOSITY_OPTIONS, log
from .options import ConfigError, Option
from .rundir import check_out_dir, write_derived_provenance

OPTIONS = (
    Option("out", None, "directory for the figures (default: RESULT_DIR/plots)", type="path", metavar="DIR"),
    Option("format", ["png", "pdf"], "comma-separated figure formats", type="list", choices=("png", "pdf", "svg"),
           metavar="FORMATS"),
    Option("galaxies", None, "rotation-curve panels: a number N (the first N galaxies; default 16) or "
           "comma-separated names", type="list", metavar="N|NAMES"),
    Option("dpi", 150, "resolution of the PNG figures", type="int"),
    *VERBOSITY_OPTIONS,
)


def galaxy_selection(items: list[str] | None) -> int | list[str] | None:
    """``["12"]`` -> 12 (the first 12 galaxies); None -> the default; anything else is a list of names."""
    if items is None:
        return None
    if len(items) == 1 and items[0].isdigit():
        n = int(items[0])
        if n < 1:
            raise ConfigError("'galaxies': the number of galaxies must be at least 1")
        return n
    if not items:
        raise ConfigError("'galaxies': give a number or galaxy names")
    return items


def validate(values: dict) -> None:
    from ..plots import PlotsUnavailable, require_matplotlib

    galaxy_selection(values["galaxies"])
    default_out = Path(values["result_dir"]).expanduser() / "plots"
    if values["out"] is None and default_out.parent.is_dir():  # --out itself is checked with every command's
        check_out_dir(default_out)
    try:
        require_matplotlib()
    except PlotsUnavailable as e:
        raise ConfigError(str(e)) from None


def run(values: dict) -> int:
    from ..plots import ResultFormatError, UnknownGalaxies, plot_result_dir

    result_dir = Path(values["result_dir"]).expanduser()
    try:
        written = plot_result_dir(result_dir, out=values["out"], formats=values["format"],
                                  galaxies=galaxy_selection(values["galaxies"]), dpi=values["dpi"])
    except ResultFormatError as e:
        log.error(f"jaxcoh plot: {e}")
        return EXIT_DATA
    except UnknownGalaxies as e:
        log.error(f"jaxcoh plot: 'galaxies': {e}")
        return EXIT_USAGE
    out = Path(values["out"]) if values["out"] else result_dir / "plots"
    flags = [f"--out {out}", f"--format {','.join(values['format'])}", f"--dpi {values['dpi']}"]
    if values["galaxies"]:
        flags.append(f"--galaxies {','.join(values['galaxies'])}")
    write_derived_provenance(out, result_dir, f"jaxcoh plot {result_dir} {' '.join(flags)}")
    if not values["quiet"]:
        n = sum(len(v) for v in written.values())
        made = ", ".join(f"{k} ({', '.join(p.suffix[1:] for p in v)})" for k, v in written.items())
        print(f"wrote {n} file{'s' if n != 1 else ''} to {out}: {made}")
    return 0


COMMAND = Command(
    name="plot",
    summary="Make every figure a result directory allows (F_missing vs prediction, rotation curves, RAR, residuals, "
            "sweep heatmaps, profiles, corner plots).",
    examples="examples:\n  jaxcoh plot results/compare                       # into results/compare/plots\n"
             "  jaxcoh plot results/compare --galaxies NGC2403,NGC3198,DDO154 --format pdf\n"
             "  jaxcoh plot results/compare --galaxies 30 --out figures/compare\n"
             "  jaxcoh plot results/sweep --format png,svg --dpi 300\n"
             "(matplotlib is an optional extra: pip install \"jaxcoh[plots]\")",
    options=OPTIONS, run=run, validate=validate,
    positional=("result_dir", "a directory written by jaxcoh reproduce, compare, fit or sweep"),
)
