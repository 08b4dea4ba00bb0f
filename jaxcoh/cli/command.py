"""A subcommand: its options, what it runs, and its help. Each command module exports one as ``COMMAND``; the
:mod:`jaxcoh.cli` package builds the table of commands from them."""

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
