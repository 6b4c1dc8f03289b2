"""Notices frames that come late, for the HUD, the log and the soak figures; its monitor
thread logs where the loop is stuck while it is stuck."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from typing import Callable

STOP_S = 5.0  # `stop` waits this long for the monitor's check in flight (it takes milliseconds)

log = logging.getLogger(__name__)


class FrameWatchdog:
    """Notices late frames. Call `frame(now)` once per frame shown (now = time.monotonic()).

    `late_by(now)` / `banner(now)` say whether the current frame is overdue (for the HUD);
    `largest_gap` and `late_frames` are the figures for the log and the soak. `start()`
    runs a monitor thread that logs, once per stall, the stack of the stuck loop.

    The limit is `max_gap_s`, or STALL_FACTOR times the usual frame time when frames are
    slow anyway (a 2-core CPU dreams 640x360 at ~1 s a frame): a stall is a frame far later
    than usual, not a slow machine.
    """

    STALL_FACTOR = 4.0

    def __init__(self, max_gap_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_gap_s = max_gap_s
        self._usual_gap: float | None = None
        self._clock = clock
        self._last_frame: float | None = None
        self._loop_thread_id: int | None = None
        self._stall_reported = False
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.largest_gap = 0.0
        self.late_frames = 0

    def frame(self, now: float) -> float:
        """Record a frame; returns the gap since the previous one (0 for the first)."""
        gap = 0.0 if self._last_frame is None else now - self._last_frame
        self._last_frame = now
        self._loop_thread_id = threading.get_ident()
        self._stall_reported = False
        if gap > self.largest_gap:
            self.largest_gap = gap
        if gap > self.limit_s:
            self.late_frames += 1
            log.warning("frame gap of %.1f s (limit %.1f s)", gap, self.limit_s)
        elif gap > 0:  # a stall must not become the new normal
            self._usual_gap = gap if self._usual_gap is None else 0.9 * self._usual_gap + 0.1 * gap
        return gap

    @property
    def limit_s(self) -> float:
        if self._usual_gap is None:  # the first frames also load sessions and buffers
            return self.STALL_FACTOR * self.max_gap_s
        return max(self.max_gap_s, self.STALL_FACTOR * self._usual_gap)

    def late_by(self, now: float) -> float:
        """Seconds the next frame is overdue beyond the limit (0 when on time)."""
        if self._last_frame is None:
            return 0.0
        return max(0.0, now - self._last_frame - self.limit_s)

    def banner(self, now: float) -> str | None:
        waited = 0.0 if self._last_frame is None else now - self._last_frame
        return f"no new frame for {waited:.0f} s" if self.late_by(now) > 0 else None

    def check(self, now: float) -> bool:
        """The monitor's test: True (and one log line with the loop's stack) when a stall starts."""
        if self.late_by(now) <= 0 or self._stall_reported:
            return False
        self._stall_reported = True
        stack = _stack_of(self._loop_thread_id)
        log.warning(
            "the live loop has shown no frame for %.1f s; it is at:\n%s",
            now - self._last_frame, stack,  # type: ignore[operator]
        )
        return True

    def start(self, interval_s: float = 0.5) -> None:
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, args=(interval_s,), name="frame-watchdog", daemon=True)
            self._monitor.start()

    def stop(self) -> None:
        """End the monitor: it returns when the thread has ended (a check in flight finishes
        first), so no thread outlives the app's `close`."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(STOP_S)

    def _watch(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.check(self._clock())


def _stack_of(thread_id: int | None) -> str:
    frame = sys._current_frames().get(thread_id) if thread_id is not None else None  # noqa: SLF001
    return "".join(traceback.format_stack(frame)) if frame is not None else "  (stack unavailable)"
