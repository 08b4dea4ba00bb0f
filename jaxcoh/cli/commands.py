"""The registry of subcommands (each declared in its own module)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .options import Option


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    summary: str
    examples: str
    options: tuple[Option, ...]
    run: Callable[[dict], int | None]
    validate: Callable[[dict], None] = lambda values: None
    positional: tuple[str, str] | None = None  # (name, help)


COMMANDS: dict[str, Command] = {}


def register(cmd: Command) -> Command:
    COMMANDS[cmd.name] = cmd
    return cmd


from . import bench, compare, fit, info, plot, reproduce, sweep  # noqa: E402,F401  (each module registers its command)
