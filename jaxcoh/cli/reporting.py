"""What a user sees while a long solve runs: the solvers' per-iteration reports (:mod:`jaxcoh.progress`) as one
status line rewritten in place when stderr is a terminal, or, with --verbose in a log, as log lines: one when a solver
stage starts, one with its last iteration when it ends, and a heartbeat line every minute
(:func:`jaxcoh.cli.common.per_iteration` says when the solvers report)."""

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
        self.last: tuple[int, str, float] | None = None  # the stage's latest iteration, its line and time, until logged
        self.started = 0  # the iteration the stage's first line showed
        self.solves = 1  # the stage's solves so far (a lax.map of solves, as of a galaxy's starts, runs one by one)
        self.t0 = time.perf_counter()

    def end_of_stage(self) -> None:
        """The current stage has ended (:func:`jaxcoh.progress.finished`, the next stage's first report, or the end):
        a log shows its last iteration, with that iteration's time, unless its first line showed it already."""
        if self.terminal:
            self._clear()  # what the host logs next starts on a line of its own
        elif self.last is not None and self.last[0] > self.started:
            log.info(f"{self.last[1]}, stage done ({self.last[2] - self.t0:.0f} s)")
        self.last = None

    def _clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
            self.width = 0

    def restart_clock(self) -> None:
        """Times the lines from now (:func:`jaxcoh.progress.started`: a fit has begun, and times its own lines so)."""
        self.t0 = time.perf_counter()

    def relabel(self, label: str) -> None:
        """A new prefix for the lines to come (the next model of a comparison): the current stage has ended."""
        self.end_of_stage()
        self.label, self.stage = label, None

    def __call__(self, stage: str, iteration: int, objective: float, grad_norm: float) -> None:
        now = time.perf_counter()
        new_stage = stage != self.stage or self.last is None  # (a stage the host said had ended starts again)
        if new_stage and self.stage is not None:
            self.end_of_stage()
        if new_stage:
            self.solves = 1
        elif iteration < self.last[0] and iteration <= 1:  # the stage's next solve has begun (from iteration 0 or 1)
            self.solves += 1
        self.stage = stage
        head = f"{self.label}{stage}{f', solve {self.solves}' if self.solves > 1 else ''}: iteration {iteration}"
        text = f"{head}, objective {objective:.6g}, gradient norm {grad_norm:.3g}" if math.isfinite(objective) else head
        self.last = (iteration, text, now)
        if self.terminal:
            if new_stage or now - self.shown >= REFRESH_S:
                sys.stderr.write("\r" + text.ljust(self.width))
                sys.stderr.flush()
                self.width, self.shown = len(text), now
        elif new_stage or now - self.shown >= HEARTBEAT_S:
            log.info(f"{text} ({now - self.t0:.0f} s)")
            self.shown = now
            if new_stage:
                self.started = iteration

    def close(self) -> None:
        self.end_of_stage()


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
