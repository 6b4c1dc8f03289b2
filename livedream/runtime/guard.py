"""What keeps the live loop alive through run-time faults of the dream engine.

`GuardedModel` holds the `LoadedModel` a show dreams with and hands out `model`: the same
declared object with each engine and runner wrapped, so that a run-time ONNX Runtime
failure on a frame becomes an `EngineFault`. That frame is skipped and logged; after `restart_after`
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

from livedream.errors import UserError
from livedream.runtime.engine import GradientEngine
from livedream.runtime.model import FrameDreaming, LoadedModel, StepAscent

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
    """A run-time failure of the session inside one frame; `GuardedModel.run_frame` catches it."""


class GuardedModel:
    """A model that cannot take the loop down. Dream with `model`, through `run_frame`:

        guard = GuardedModel(lambda: load_model(name, models_dir, device, CpuThreads(threads)))
        dreamed = guard.run_frame(lambda model: dreamer.dream_frame(frame.image, params, model))  # None = skipped

    The factory runs once here, so a `UserError` (missing model, bad file) raises at start
    as before. Later restarts that fail are logged and retried with back-off.
    """

    def __init__(
        self,
        factory: Callable[[], LoadedModel],
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
        self._loaded: LoadedModel | None = None
        self._model = _NO_MODEL
        self._use(factory())
        self._min_size = self.guarded.min_size
        self._failed_in_a_row = 0
        self._restart_at: float | None = None  # set while a restart is due
        self._next_backoff = 0.0  # the first restart after a good frame is immediate
        self.frames_skipped = 0
        self.restarts = 0
        self.last_error = ""

    @property
    def guarded(self) -> LoadedModel:
        """The loaded model with every engine and runner guarded; while a failed restart
        waits for its retry, one whose gradient raises `EngineFault`."""
        return self._model

    @property
    def loaded(self) -> LoadedModel | None:
        """The model as loaded, unguarded (None while a failed restart waits for its retry)."""
        return self._loaded

    @property
    def min_size(self) -> int:
        return self._min_size

    @property
    def provider(self) -> str:
        return self._loaded.provider if self._loaded is not None else "none"

    def _use(self, loaded: LoadedModel | None) -> None:
        self._loaded = loaded
        if loaded is None:
            self._model = _NO_MODEL
            return
        self._model = guarded(loaded)

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

    def run_frame(self, dream: Callable[[LoadedModel], T]) -> T | None:
        """`dream(model)` with the guarded model (after a restart that is due, the new one),
        or None when this frame is skipped (an engine fault, or a restart is pending)."""
        if self._restart_at is not None:
            if self._clock() < self._restart_at:
                self.frames_skipped += 1
                return None
            self._restart()
            if self._loaded is None:
                self.frames_skipped += 1
                return None
        try:
            result = dream(self._model)
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


class _GuardedGradient:
    """An engine whose gradient raises `EngineFault` for a run-time fault."""

    def __init__(self, engine: GradientEngine) -> None:
        self._engine = engine
        self.min_size = engine.min_size

    def gradient(self, image: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        return _guarded(self._engine.gradient, image, mask)


def guarded(loaded: LoadedModel) -> LoadedModel:
    """`loaded` (and its deep graph) with every run raising `EngineFault` for a run-time fault;
    the objective inputs are the same arrays, so an objective set here reaches the sessions."""
    features = loaded.features
    return LoadedModel(
        engine=_GuardedGradient(loaded.engine),
        step_runner=_GuardedSteps(loaded.step_runner) if loaded.step_runner is not None else None,
        frame_runners={ascent: _GuardedFrames(runner) for ascent, runner in loaded.frame_runners.items()},
        provider=loaded.provider,
        layers=loaded.layers,
        objective=loaded.objective,
        deeper=guarded(loaded.deeper) if loaded.deeper is not None else None,
        features=(lambda image: _guarded(features, image)) if features is not None else None,
        placement=loaded.placement,
        interrupt=loaded.interrupt,  # it only raises a flag: nothing to guard
    )


class _GuardedSteps:
    """A step runner whose runs raise `EngineFault` for a run-time fault."""

    def __init__(self, runner: StepAscent) -> None:
        self._runner = runner
        self.steps_per_run = runner.steps_per_run
        self.gradient_norm = runner.gradient_norm

    def ascend(self, image: np.ndarray, steps: int, step_size: float, mask: np.ndarray) -> float:
        return _guarded(self._runner.ascend, image, steps, step_size, mask)


class _GuardedFrames:
    """A frame runner whose runs raise `EngineFault` for a run-time fault."""

    def __init__(self, runner: FrameDreaming) -> None:
        self._runner = runner
        self.min_size = runner.min_size

    def reset(self) -> None:
        _guarded(self._runner.reset)

    def dream_frame(
        self, frame_rgb: np.ndarray, flow: np.ndarray, confidence: np.ndarray, feedback: np.ndarray, decay: float,
        step_size: float, mask: np.ndarray, shown_rgb: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        return _guarded(self._runner.dream_frame, frame_rgb, flow, confidence, feedback, decay, step_size, mask,
                        shown_rgb)


class _NoSession:
    """The engine while a restart is pending: every gradient is a fault, so the frame is skipped."""

    min_size = 0

    def gradient(self, image: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        raise EngineFault("no session (a restart is pending)")


_NO_MODEL = LoadedModel(_NoSession(), provider="none")


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
