"""The ``jaxcoh`` command: one entry point, subcommands that share option names."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from . import bench, compare, export, fit, halos, info, plot, reproduce, sample, sweep, table
from .common import (EXIT_DATA, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NUMERICAL, EXIT_OK, EXIT_USAGE, log,
                     setup_logging)
from .options import ConfigError, add_options, resolve
from .rundir import check_out_dir

COMMANDS = {m.COMMAND.name: m.COMMAND for m in (reproduce, fit, compare, halos, sample, sweep, plot, table, export,
                                                       info, bench)}

EPILOG = textwrap.dedent("""\
    exit codes: 0 done; 2 bad flag or config (nothing computed); 3 input data missing or malformed;
    4 a fit failed numerically; 130 interrupted (no partial files left); 1 internal error.
    Every command accepts --config FILE (TOML; flags override it); every command that computes results writes
    its resolved config.toml next to them, so `jaxcoh CMD --config RESULTS/config.toml` runs it again.""")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxcoh",
        description="GPU-accelerated, differentiable fitting of galaxy coherence gravity kernels.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ..version import __version__

    parser.add_argument("--version", action="version", version=f"jaxcoh {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.summary, description=cmd.summary, epilog=cmd.examples + "\n\n" + EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--config", metavar="FILE", default=None, help="read options from this TOML file")
        p.add_argument("--compilation-cache", metavar="DIR|off", default=None,
                       help="keep compiled programs in DIR, or 'off' (default: $JAXCOH_COMPILATION_CACHE, else "
                            "~/.cache/jaxcoh/jax; `jaxcoh info` shows it)")
        if cmd.positional:
            p.add_argument(cmd.positional[0], help=cmd.positional[1])
        add_options(p, cmd.options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    name = args.pop("command")
    if name is None:
        parser.print_help()
        return EXIT_USAGE
    cmd = COMMANDS[name]
    config = args.pop("config")
    cache = args.pop("compilation_cache")
    positional = args.pop(cmd.positional[0], None) if cmd.positional else None
    setup_logging(args.get("quiet", False), args.get("verbose", False))
    try:
        values = resolve(name, cmd.options, args, config)
        if cmd.positional:
            values[cmd.positional[0]] = positional
        cmd.validate(values)
        if values.get("out") is not None:  # every command that writes results: a bad --out fails now, not after
            check_out_dir(values["out"])
    except ConfigError as e:
        log.error(f"jaxcoh {name}: {e}")
        return EXIT_USAGE
    # Every command, the main job included, keeps compiled and traced programs between runs (set here, before
    # anything is compiled, and not at `import jaxcoh`: see jaxcoh.compilation_cache).
    from ..compilation_cache import configure

    configure(cache)
    try:
        return cmd.run(values) or EXIT_OK
    except KeyboardInterrupt:
        log.error(f"jaxcoh {name}: interrupted; finished files are complete, no partial file was written")
        return EXIT_INTERRUPTED
    except ConfigError as e:
        log.error(f"jaxcoh {name}: {e}")
        return EXIT_USAGE
    except (FileNotFoundError, NotADirectoryError) as e:
        log.error(f"jaxcoh {name}: {e}")
        return EXIT_DATA
    except Exception as e:  # classified below; anything else is a bug
        from ..sparc_layout import DataFormatError

        if isinstance(e, DataFormatError):
            log.error(f"jaxcoh {name}: {e}")
            return EXIT_DATA
        if isinstance(e, FloatingPointError):
            log.error(f"jaxcoh {name}: numerical failure: {e}")
            return EXIT_NUMERICAL
        if values.get("verbose"):
            raise
        log.error(f"jaxcoh {name}: internal error: {type(e).__name__}: {e} (run with --verbose for the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
