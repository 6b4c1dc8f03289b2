"""Where the log goes, and the health line that shows a week-long run is still well.

`setup_logging` sends records to the console and to a size-rotated file (by default in
the platform's user log folder), and routes uncaught exceptions — main thread or any
other — into that file, so a crash at 3 a.m. leaves its traceback behind.

`HealthReporter.tick(now, stats)` is called once per frame shown; every
`health_interval_s` it writes one INFO line: frame rate, dream time, provider, source
state, resident memory, frames dropped, the largest frame gap and the warnings and errors
logged since the last line.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Protocol

import platformdirs

from livedream.config import LogConfig
from livedream.errors import UserError
from livedream.ops.memory import release_free_memory

LOG_FILE_NAME = "livedream.log"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(message)s"

health_log = logging.getLogger("livedream.health")


def log_dir(cfg: LogConfig) -> Path:
    """The configured folder, or the platform's user log folder when `dir` is empty."""
    if cfg.dir:
        return Path(cfg.dir).expanduser()
    return Path(platformdirs.user_log_dir("livedream", appauthor=False))


def setup_logging(cfg: LogConfig, verbose: bool = False) -> Path:
    """Console + rotating file on the root logger; returns the log file's path.

    Calling it again replaces the handlers it added before (one file, one console). A
    folder that cannot be written is a UserError naming `[log] dir`.
    """
    folder = log_dir(cfg)
    path = folder / LOG_FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=cfg.max_bytes, backupCount=cfg.backups, encoding="utf-8"
        )
    except OSError as error:
        raise UserError(
            f'[log] dir = "{folder}" cannot be written ({error.strerror or error}); '
            f'choose a writable folder, or dir = "" for the default'
        ) from None
    level = logging.DEBUG if verbose else logging.getLevelName(cfg.level.upper())
    file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
    file_handler.set_name("livedream-file")

    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "livedream-file"]:
        root.removeHandler(handler)
        handler.close()
    root.addHandler(file_handler)
    if not any(_is_console(h) for h in root.handlers):
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        console.set_name("livedream-console")
        root.addHandler(console)
    root.setLevel(level)
    logging.captureWarnings(True)
    _log_uncaught_exceptions()
    return path


def _is_console(handler: logging.Handler) -> bool:
    return type(handler) is logging.StreamHandler or handler.get_name() == "livedream-console"


def _log_uncaught_exceptions() -> None:
    """Uncaught exceptions also go to the log file; the previous hooks still run after."""
    if getattr(sys.excepthook, "livedream", False):
        return
    crash_log = logging.getLogger("livedream.crash")
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def excepthook(kind, value, traceback) -> None:  # type: ignore[no-untyped-def]
        if not issubclass(kind, KeyboardInterrupt):
            crash_log.critical("uncaught exception", exc_info=(kind, value, traceback))
        previous_hook(kind, value, traceback)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread else "?"
            crash_log.critical(
                "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
            )
        previous_thread_hook(args)

    excepthook.livedream = True  # type: ignore[attr-defined]
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


# --- health --------------------------------------------------------------------------------


def read_rss_bytes() -> int | None:
    """Resident memory of this process from /proc/self/statm (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class FrameStats(Protocol):
    """What a health line needs of a frame's stats (`live.hud.HudStats` has all of it)."""

    dream_ms: float
    provider: str
    source_state: str


class ProblemCounter(logging.Handler):
    """Counts WARNING and ERROR (and worse) records logged anywhere, for the health line."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.warnings = 0
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == health_log.name:
            return
        if record.levelno >= logging.ERROR:
            self.errors += 1
        else:
            self.warnings += 1

    def take(self) -> tuple[int, int]:
        """(warnings, errors) since the last call."""
        with self.lock:  # type: ignore[union-attr]
            counts = (self.warnings, self.errors)
            self.warnings = self.errors = 0
        return counts


class HealthReporter:
    """One health line per `interval_s`, from per-frame ticks; times come from the caller.

    Call `tick(now, stats, dropped_total=...)` once per frame shown, with `now` from
    `time.monotonic()` and `dropped_total` the running count of frames dropped (e.g.
    `ModelSet.frames_skipped`). `close()` stops counting log problems.
    """

    def __init__(self, interval_s: float = 60.0, read_rss=read_rss_bytes,
                 release_memory: Callable[[], bool] = release_free_memory) -> None:
        self.interval_s = interval_s
        self._read_rss = read_rss
        self._release_memory = release_memory
        self._problems = ProblemCounter()
        logging.getLogger().addHandler(self._problems)
        self._window_start: float | None = None
        self._last_frame: float | None = None
        self._frames = 0
        self._dream_ms_sum = 0.0
        self._largest_gap = 0.0
        self._dropped_at_start = 0
        self.last_line: str | None = None

    def tick(self, now: float, stats: FrameStats, dropped_total: int = 0) -> str | None:
        """Count one frame; when the interval is over, log and return the health line."""
        if self._window_start is None:
            self._start_window(now, dropped_total)
        if self._last_frame is not None:
            self._largest_gap = max(self._largest_gap, now - self._last_frame)
        self._last_frame = now
        self._frames += 1
        self._dream_ms_sum += stats.dream_ms
        elapsed = now - self._window_start  # type: ignore[operator]
        if elapsed < self.interval_s:
            return None
        line = self._line(elapsed, stats, dropped_total)
        health_log.info(line)
        self.last_line = line
        self._start_window(now, dropped_total)
        return line

    def close(self) -> None:
        logging.getLogger().removeHandler(self._problems)

    def _start_window(self, now: float, dropped_total: int) -> None:
        self._window_start = now
        self._frames = 0
        self._dream_ms_sum = 0.0
        self._largest_gap = 0.0
        self._dropped_at_start = dropped_total

    def _line(self, elapsed: float, stats: FrameStats, dropped_total: int) -> str:
        warnings, errors = self._problems.take()
        self._release_memory()  # so the RSS below is memory in use, not freed pages kept
        rss = self._read_rss()
        memory = f"{rss / 2**20:.0f} MB" if rss is not None else "?"
        return (
            f"health: {self._frames / elapsed:.1f} fps · dream {self._dream_ms_sum / self._frames:.0f} ms"
            f" · {stats.provider or '?'} · source {stats.source_state or '?'} · RSS {memory}"
            f" · dropped {dropped_total - self._dropped_at_start} · max gap {self._largest_gap:.2f} s"
            f" · warnings {warnings} · errors {errors}"
        )
