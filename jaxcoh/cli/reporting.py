"""What a user sees while a long solve runs: the solvers' per-iteration reports (:mod:`jaxcoh.progress`) as one
status line rewritten in place when stderr is a terminal, or as a log line per solver stage otherwise (and a
heartbeat line every minute, so that a long fit never looks hung in a log)."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator

from .. import progress
from .common import log

REFRESH_S = 0.2  # the terminal line at most this often
HEARTBEAT_S = 60.0  # a log line at least this often


class _Reporter:
    def __init__(self, label: str, terminal: bool):
        self.label, self.terminal = label, terminal
        self.stage, self.shown, self.width = None, 0.0, 0
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, iteration: int, objective: float, grad_norm: float) -> None:
        now = time.perf_counter()
        text = (f"{self.label}{stage}: iteration {iteration}, objective {objective:.6g}, gradient norm "
                f"{grad_norm:.3g}" if math.isfinite(objective) else f"{self.label}{stage}: iteration {iteration}")
        new_stage = stage != self.stage
        self.stage = stage
        if self.terminal:
            if new_stage or now - self.shown >= REFRESH_S:
                sys.stderr.write("\r" + text.ljust(self.width))
                sys.stderr.flush()
                self.width, self.shown = len(text), now
        elif new_stage or now - self.shown >= HEARTBEAT_S:
            log.info(f"{text} ({now - self.t0:.0f} s)")
            self.shown = now

    def close(self) -> None:
        if self.terminal and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


@contextlib.contextmanager
def solver_progress(values: dict, label: str = "") -> Iterator[_Reporter | None]:
    """Shows the solvers' reports made inside the block (nothing with --quiet); yields the reporter, whose
    ``label`` prefixes every line."""
    if values.get("quiet", False):  # (curve_settings asks the solvers for no reports then: they cost a host call)
        yield None
        return
    reporter = _Reporter(label, sys.stderr.isatty())
    try:
        with progress.listening(reporter):
            yield reporter
    finally:
        reporter.close()
