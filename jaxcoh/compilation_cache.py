"""JAX's persistent compilation cache, on by default for the command line, in a per-user directory.

A fresh ``jaxcoh`` process spends most of a short job compiling (and tracing) the same programs as the last one. With
the cache on, JAX keeps every compiled executable under the directory, and :mod:`jaxcoh.tracecache` keeps the traced
programs beside them (``DIR/jaxcoh-traced/``), so a later process neither traces nor compiles them again.

Where it goes, first match wins:

1. ``configure(setting)`` with a setting (the command line's ``--compilation-cache DIR|off``);
2. ``$JAXCOH_COMPILATION_CACHE``: ``0``/``off``/``false``/``no`` turns it off, ``1``/``on``/``true``/``yes`` is the
   default directory, anything else is the directory;
3. JAX's own setting, if something set it already (``$JAX_COMPILATION_CACHE_DIR`` or
   ``jax.config.update("jax_compilation_cache_dir", ...)``);
4. the default, ``$XDG_CACHE_HOME/jaxcoh/jax`` (``~/.cache/jaxcoh/jax`` without it).

Every program is kept, however small or quick to compile (JAX's defaults keep only those that took a second or more:
the main job compiles about 150 programs, most of them well under a second, and together they are most of its
first run). The directory is created private to the user (mode 0700): whoever can write to it can change what runs.

``import jaxcoh`` does not call :func:`configure`: a library does not change a process-wide JAX setting, or write
under the user's home, because it was imported (a program embedding jaxcoh may keep its own cache, or none). The
command line calls it before any command runs, so every command benefits; library users call it themselves.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

import jax

log = logging.getLogger("jaxcoh")

ENV = "JAXCOH_COMPILATION_CACHE"
_OFF = ("0", "off", "false", "no")
_ON = ("1", "on", "true", "yes", "")


class CacheState(NamedTuple):
    """Where compiled (and traced) programs are kept, or ``directory=None`` when the cache is off; ``source`` says
    which setting decided it."""

    directory: Path | None
    source: str

    @property
    def enabled(self) -> bool:
        return self.directory is not None


def default_directory() -> Path:
    """``$XDG_CACHE_HOME/jaxcoh/jax``, or ``~/.cache/jaxcoh/jax`` when ``$XDG_CACHE_HOME`` is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "jaxcoh" / "jax"


def resolve(setting: str | None = None) -> CacheState:
    """The directory the settings ask for (see the module's docstring), without changing anything."""
    for value, source in ((setting, "--compilation-cache"), (os.environ.get(ENV), f"${ENV}")):
        if value is None:
            continue
        text = str(value).strip()
        if text.lower() in _OFF:
            return CacheState(None, source)
        if text.lower() in _ON:
            return CacheState(default_directory(), source)
        return CacheState(Path(text).expanduser(), source)
    current = jax.config.jax_compilation_cache_dir
    if current:
        return CacheState(Path(current), "JAX's jax_compilation_cache_dir")
    return CacheState(default_directory(), "default")


_STATE: CacheState | None = None  # what configure() or disable() last decided in this process


def configure(setting: str | None = None) -> CacheState:
    """Turns JAX's persistent compilation cache on in the directory the settings name (off if they say so) and
    returns where it is. Call it before compiling anything; later calls switch the cache over for later programs."""
    state = resolve(setting)
    if state.directory is not None:
        try:
            state.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:  # an unwritable home: run without the cache rather than fail
            log.warning(f"compilation cache off: cannot create {state.directory} ({e})")
            state = CacheState(None, f"{state.source} (directory not writable)")
    _apply(state)
    return state


def disable(reason: str) -> None:
    """Turns the cache off for this process (a command that times compilation runs without it)."""
    if jax.config.jax_compilation_cache_dir:
        log.debug(f"compilation cache off: {reason}")
    _apply(CacheState(None, reason))


def current() -> CacheState:
    """What this process uses now, and which setting decided it."""
    d = jax.config.jax_compilation_cache_dir
    if _STATE is not None and str(_STATE.directory or "") == (d or ""):
        return _STATE
    return CacheState(Path(d) if d else None, "JAX's jax_compilation_cache_dir" if d else "not configured")


def _apply(state: CacheState) -> None:
    from jax.experimental.compilation_cache import compilation_cache

    global _STATE
    _STATE = state
    new = str(state.directory) if state.directory is not None else None
    if jax.config.jax_compilation_cache_dir == new:
        return
    jax.config.update("jax_compilation_cache_dir", new)
    if new is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    # JAX decides once per process, at its first compilation, whether a cache is in use: make it look again.
    compilation_cache.reset_cache()


def usage(directory: Path | None) -> tuple[int, int]:
    """``(files, bytes)`` under ``directory`` (0, 0 when it is None or absent)."""
    if directory is None or not directory.is_dir():
        return 0, 0
    files = size = 0
    for p in directory.rglob("*"):
        try:
            if p.is_file():
                files += 1
                size += p.stat().st_size
        except OSError:  # removed meanwhile (another process evicting entries)
            continue
    return files, size
