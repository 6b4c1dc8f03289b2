"""What keeps the live loop alive through run-time faults: a guarded engine and a frame watchdog.

`GuardedEngine` stands in for the `Engine` the dreamer uses. A run-time ONNX Runtime
failure on one frame makes that frame skipped and logged; after `restart_after`
consecutive failed frames the session is dropped and created afresh through the factory,
with exponential back-off between restarts that do not help. Nothing of this raises into
the loop. Mistakes the user can fix (a missing model at start) still raise `UserError`.

`FrameWatchdog` notices frames that come late — a gap over `max_gap_s` — for the HUD, the
log and the soak figures; its optional monitor thread logs where the loop is stuck while
it is stuck.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from typing import Callable, TypeVar

import numpy as np
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from livedream.dreamer import GradientEngine
from livedream.errors import UserError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a failing session raises at run time: ORT's own types (they derive from Exception
# directly), and the errors CUDA and the OS surface as. Other types (ValueError,
# TypeError, …) are bugs in our code and keep their traceback.
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    kind
    for kind in vars(_ort_state).values()
    if isinstance(kind, type) and issubclass(kind, Exception)
)
RUNTIME_FAULTS: tuple[type[BaseException], ...] = (*ORT_ERRORS, RuntimeError, MemoryError, OSError)


class EngineFault(Exception):
    """A run-time failure of the session inside one frame; `GuardedEngine.run_frame` catches it."""


class GuardedEngine:
    """An engine that cannot take the loop down. Use it as the dreamer's engine, and run
    each frame through `run_frame`:

        guard = GuardedEngine(lambda: load_engine(model, models_dir, device, threads))
        dreamer = LiveDreamer(guard)
        dreamed = guard.run_frame(dreamer.dream_frame, frame.image, params)  # None = skipped

    The factory runs once here, so a `UserError` (missing model, bad file) raises at start
    as before. Later restarts that fail are logged and retried with back-off.
    """

    def __init__(
        self,
        factory: Callable[[], GradientEngine],
        restart_after: int = 5,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self.restart_after = restart_after
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._clock = clock
        self._engine: GradientEngine | None = None
        self._stepper: _Guarded | None = None
        self._frame_runners: dict[int, _Guarded] = {}
        self._use(factory())
        self._min_size = self._engine.min_size  # type: ignore[union-attr]
        self._failed_in_a_row = 0
        self._restart_at: float | None = None  # set while a restart is due
        self._next_backoff = 0.0  # the first restart after a good frame is immediate
        self.frames_skipped = 0
        self.restarts = 0
        self.last_error = ""

    # the Engine surface the dreamer and the HUD use

    @property
    def min_size(self) -> int:
        return self._min_size

    @property
    def provider(self) -> str:
        return getattr(self._engine, "provider", "") if self._engine is not None else "none"

    @property
    def engine(self) -> GradientEngine | None:
        """The session now in use (None while a failed restart waits for its retry)."""
        return self._engine

    @property
    def stepper(self) -> "_Guarded | None":
        """The engine's step graph runner (GPU), guarded the same way; `dream.ascend` uses it."""
        return self._stepper

    @property
    def frame_runners(self) -> "dict[int, _Guarded]":
        """The engine's frame graph runners by steps per frame (GPU), guarded the same way."""
        return self._frame_runners

    def gradient(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        engine = self._engine
        if engine is None:
            raise EngineFault("no session (a restart is pending)")
        return _guarded(engine.gradient, image)

    def _use(self, engine: GradientEngine | None) -> None:
        self._engine = engine
        stepper = getattr(engine, "stepper", None)
        self._stepper = _Guarded(stepper) if stepper is not None else None
        runners = getattr(engine, "frame_runners", {})
        self._frame_runners = {steps: _Guarded(runner) for steps, runner in runners.items()}

    # the loop's side

    @property
    def state(self) -> str:
        """"" while frames dream; otherwise a short line for the HUD or a banner."""
        if self._restart_at is not None:
            wait = max(0.0, self._restart_at - self._clock())
            return f"dream engine failed — restarting in {wait:.0f} s"
        if self._failed_in_a_row:
            return f"dream engine error — {self._failed_in_a_row} frame(s) skipped"
        return ""

    def run_frame(self, dream: Callable[..., T], *args: object) -> T | None:
        """`dream(*args)`, or None when this frame is skipped (an engine fault, or a restart
        is pending). `dream` must reach the session only through this guard's `gradient`."""
        if self._restart_at is not None:
            if self._clock() < self._restart_at:
                self.frames_skipped += 1
                return None
            self._restart()
            if self._engine is None:
                self.frames_skipped += 1
                return None
        try:
            result = dream(*args)
        except EngineFault as fault:
            self._note_failure(fault)
            return None
        if self._failed_in_a_row:
            log.info("dream engine recovered after %d skipped frame(s)", self._failed_in_a_row)
        self._failed_in_a_row = 0
        self._next_backoff = 0.0
        return result

    def _note_failure(self, fault: EngineFault) -> None:
        self.frames_skipped += 1
        self._failed_in_a_row += 1
        self.last_error = str(fault)
        if self._failed_in_a_row == 1:
            log.warning("dream engine failed on a frame; skipping it: %s", fault, exc_info=fault.__cause__)
        else:
            log.debug("dream engine failed again (%d in a row): %s", self._failed_in_a_row, fault)
        if self._failed_in_a_row >= self.restart_after:
            self._schedule_restart()

    def _schedule_restart(self) -> None:
        self._restart_at = self._clock() + self._next_backoff
        # A restart that does not help waits longer before the next one.
        self._next_backoff = min(self._backoff_max, max(self._backoff_initial, self._next_backoff * 2))

    def _restart(self) -> None:
        self.restarts += 1
        log.warning(
            "restarting the dream engine (restart %d) after %d failed frame(s): %s",
            self.restarts, self._failed_in_a_row, self.last_error,
        )
        self._use(None)  # release the old session first: a GPU out of memory needs it gone
        self._restart_at = None
        self._failed_in_a_row = 0
        try:
            self._use(self._factory())
        except Exception as error:  # noqa: BLE001 - any failure here is retried, never fatal
            self.last_error = _one_line(error)
            log.error("dream engine restart failed: %s", self.last_error)
            self._schedule_restart()


class _Guarded:
    """A runner (`engine.StepRunner`, `engine.FrameRunner`) whose methods turn run-time faults
    into `EngineFault`; plain attributes (steps_per_run, provider) pass through."""

    def __init__(self, runner: object) -> None:
        self._runner = runner

    def __getattr__(self, name: str) -> object:
        value = getattr(self._runner, name)
        if callable(value):
            return lambda *args: _guarded(value, *args)
        return value


def _guarded(call: Callable[..., T], *args: object) -> T:
    try:
        return call(*args)
    except UserError:
        raise
    except RUNTIME_FAULTS as error:
        raise EngineFault(_one_line(error)) from error


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- frame gaps ----------------------------------------------------------------------------


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
        self._stop.set()

    def _watch(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.check(self._clock())


def _stack_of(thread_id: int | None) -> str:
    frame = sys._current_frames().get(thread_id) if thread_id is not None else None  # noqa: SLF001
    return "".join(traceback.format_stack(frame)) if frame is not None else "  (stack unavailable)"
