"""``jaxcoh table``: every table a result directory allows, for a paper (LaTeX and plain text)."""

from __future__ import annotations

from pathlib import Path

from .command import Command
from .common import EXIT_DATA, VERBOSITY_OPTIONS, log
from .options import Option
from .rundir import check_out_dir, write_derived_provenance

OPTIONS = (
    Option("out", None, "directory for the tables (default: RESULT_DIR/tables)", type="path", metavar="DIR"),
    Option("format", ["tex", "txt"], "comma-separated table formats: tex (a booktabs tabular), txt (aligned text)",
           type="list", choices=("tex", "txt"), metavar="FORMATS"),
    *VERBOSITY_OPTIONS,
)


def validate(values: dict) -> None:
    default_out = Path(values["result_dir"]).expanduser() / "tables"
    if values["out"] is None and default_out.parent.is_dir():  # --out itself is checked with every command's
        check_out_dir(default_out)


def run(values: dict) -> int:
    from ..results import ResultFormatError
    from ..tables import write_tables

    result_dir = Path(values["result_dir"]).expanduser()
    if not result_dir.is_dir():
        log.error(f"jaxcoh table: {result_dir} is not a directory of results")
        return EXIT_DATA
    out = Path(values["out"]) if values["out"] else result_dir / "tables"
    try:
        written = write_tables(result_dir, out, values["format"])
    except ResultFormatError as e:
        log.error(f"jaxcoh table: {e}")
        return EXIT_DATA
    write_derived_provenance(out, result_dir, f"jaxcoh table {result_dir} --out {out} "
                                              f"--format {','.join(values['format'])}")
    if not values["quiet"]:
        for name, paths in written.items():
            print(f"wrote {name}: {', '.join(str(p) for p in paths)}")
        for path in (p for paths in written.values() for p in paths if p.suffix == ".txt"):
            print(f"\n{path.stem}:\n{path.read_text()}", end="")
    return 0


COMMAND = Command(
    name="table",
    summary="Make every table a result directory allows, for a paper: LaTeX (booktabs) and plain text, each "
            "measurement rounded to its uncertainty (model comparison, fit, halo catalogue, posterior, F_missing, "
            "sweep intervals).",
    examples="examples:\n  jaxcoh table results/compare                      # into results/compare/tables\n"
             "  jaxcoh table results/halos --format tex --out paper/tables",
    options=OPTIONS, run=run, validate=validate,
    positional=("result_dir", "a directory written by jaxcoh reproduce, compare, fit, halos, sample or sweep"),
)
