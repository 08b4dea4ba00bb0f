"""Options declared once per command: they make the argparse flags, validate TOML configs, and are written back.

Precedence: built-in defaults < ``--config FILE`` < flags given on the command line. Every key of a config file must
be an option of the command it runs (an unknown or mistyped key is rejected, by name, before any compute starts), and
every value must have the option's type: TOML values are not coerced (``true`` is not 1, ``1.5`` is not an integer,
``"2"`` is not a number), while flags, which are text, are parsed (``--seed 3``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomli_w


class ConfigError(ValueError):
    """A bad configuration value or key; the message names it."""


# Each converter takes the value and whether it is text (a flag from argv, to be parsed) or a TOML value (already
# typed: it must have the right type, since int(True) and int(1.5) would pass silently).
def _integer(x, text: bool) -> int:
    if text and isinstance(x, str):
        try:
            return int(x.strip())
        except ValueError:
            raise ValueError(f"{x!r} is not an integer") from None
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    if isinstance(x, float) and math.isfinite(x) and x.is_integer():  # 3.0 is 3; 1.5 is not an integer
        return int(x)
    raise ValueError(f"{x!r} is not an integer")


def _number(x, text: bool) -> float:
    if text and isinstance(x, str):
        try:
            v = float(x.strip())
        except ValueError:
            raise ValueError(f"{x!r} is not a number") from None
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        v = float(x)
    else:
        raise ValueError(f"{x!r} is not a number")
    if not math.isfinite(v):
        raise ValueError(f"{x!r} is not a finite number")
    return v


def _positive_int(x, text: bool) -> int:
    v = _integer(x, text)
    if v < 1:
        raise ValueError(f"{x!r} is not a positive integer")
    return v


def _nonneg_int(x, text: bool) -> int:
    v = _integer(x, text)
    if v < 0:
        raise ValueError(f"{x!r} is negative")
    return v


def _positive_float(x, text: bool) -> float:
    v = _number(x, text)
    if not v > 0:
        raise ValueError(f"{x!r} is not positive")
    return v


def _nonneg_float(x, text: bool) -> float:
    v = _number(x, text)
    if not v >= 0:
        raise ValueError(f"{x!r} is negative")
    return v


def _str(x, text: bool) -> str:
    if not isinstance(x, str):
        raise ValueError(f"{x!r} is not a string")
    return x


def _str_list(x, text: bool) -> list[str]:
    if isinstance(x, str):
        items = [s.strip() for s in x.split(",") if s.strip()]
    elif isinstance(x, list) and all(isinstance(s, str) for s in x):
        items = list(x)
    else:
        raise ValueError(f"{x!r} is not a list of names")
    return items


def _path(x, text: bool) -> str:
    if not isinstance(x, str) or not x:
        raise ValueError(f"{x!r} is not a path")
    return str(Path(x).expanduser().resolve())


def _bool(x, text: bool) -> bool:
    if isinstance(x, bool):
        return x
    raise ValueError(f"{x!r} is not true or false")


TYPES: dict[str, Callable[[Any, bool], Any]] = {
    "int": _positive_int, "nonneg_int": _nonneg_int, "float": _positive_float,
    "nonneg_float": _nonneg_float, "str": _str, "list": _str_list,
    "path": _path, "bool": _bool, "any_float": _number,
}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a command: its config key (``name``), flag (``--name-with-dashes``), type, default and help."""

    name: str
    default: Any
    help: str
    type: str = "str"
    choices: tuple | Callable[[], Sequence] | None = None  # a callable is asked when needed (a model registry)
    cli_only: bool = False  # not written to or read from configs (presentation: --quiet, --config)
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def valid_choices(self) -> tuple | None:
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def convert(self, value: Any, where: str, text: bool = False) -> Any:
        """``value`` checked and converted; ``text``: it comes from the command line (parsed, not type-checked)."""
        try:
            v = TYPES[self.type](value, text)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{where}: '{self.name}' {e}") from None
        choices = self.valid_choices()
        if choices is not None:
            vals = v if isinstance(v, list) else [v]
            bad = [x for x in vals if x not in choices]
            if bad:
                raise ConfigError(f"{where}: '{self.name}' must be one of {', '.join(map(str, choices))}; "
                                  f"got {', '.join(map(str, bad))}")
        return v


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """Adds ``options`` as flags whose absence leaves no attribute (so configs can fill them)."""
    for o in options:
        if o.type == "bool":
            parser.add_argument(o.flag, dest=o.name, action="store_true", default=argparse.SUPPRESS, help=o.help)
            if o.default is True:
                parser.add_argument("--no-" + o.flag[2:], dest=o.name, action="store_false",
                                    default=argparse.SUPPRESS, help=f"turn off {o.flag}")
            continue
        choices = o.valid_choices()
        default = ",".join(map(str, o.default)) if isinstance(o.default, list) else o.default
        help_text = (o.help + (f"; one of: {', '.join(map(str, choices))}" if choices else "")
                     + (f" (default: {default})" if o.default not in (None, "", []) else ""))
        parser.add_argument(o.flag, dest=o.name, default=argparse.SUPPRESS, metavar=o.metavar or o.name.upper(),
                            help=help_text, choices=None)


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: not valid TOML: {e}") from None


def resolve(command: str, options: Sequence[Option], given: dict, config_path: str | None) -> dict:
    """Resolved option values for ``command``: defaults, then the config file, then flags (converted, checked)."""
    known = {o.name: o for o in options}
    values = {o.name: o.default for o in options}
    if config_path:
        cfg = load_config(config_path)
        where = str(config_path)
        cfg_command = cfg.pop("command", command)
        if cfg_command != command:
            raise ConfigError(f"{where}: written for 'jaxcoh {cfg_command}', not 'jaxcoh {command}'")
        cfg.pop("provenance", None)
        for key, value in cfg.items():
            o = known.get(key)
            if o is None or o.cli_only:
                hint = difflib.get_close_matches(key, [n for n, x in known.items() if not x.cli_only], n=1)
                raise ConfigError(f"{where}: unknown key '{key}' for 'jaxcoh {command}'"
                                  + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            values[key] = o.convert(value, where)
    for key, value in given.items():
        if key in known:
            values[key] = known[key].convert(value, f"option {known[key].flag}", text=True)
    return values


def write_config(path: Path, command: str, options: Sequence[Option], values: dict, extra: dict | None = None) -> str:
    """The resolved configuration as TOML (``None`` values are left out: absent means the default)."""
    doc = {"command": command}
    for o in options:
        v = values.get(o.name)
        if not o.cli_only and v is not None:
            doc[o.name] = v
    if extra:
        doc.update(extra)
    return tomli_w.dumps(doc)
