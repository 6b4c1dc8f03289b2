"""What keeps the live loop alive through run-time faults of the dream engine.

`GuardedEngine` stands in for the `Engine` the dreamer uses. A run-time ONNX Runtime
failure on one frame makes that frame skipped and logged; after `restart_after`
consecutive failed frames the session is dropped and created afresh through the factory,
with exponential back-off between restarts that do not help. Nothing of this raises into
the loop. Mistakes the user can fix (a missing model at start) still raise `UserError`.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

import numpy as np
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from livedream.runtime.engine import GradientEngine
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
