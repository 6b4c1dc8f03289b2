"""GuardedModel: a failed frame is skipped and logged, the loop goes on, K in a row restart the
session with back-off; FrameWatchdog: late frames are flagged. All with fake engines and clocks."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, RuntimeException

from livedream.errors import UserError
from livedream.live.watchdog import FrameWatchdog
from livedream.params import Params
from livedream.runtime.engine import NO_VISITORS
from livedream.pipeline.dreamer import LiveDreamer
from livedream.runtime.guard import GuardedModel
from livedream.runtime.model import LoadedModel
from tests.conftest import as_model

IMAGE = np.zeros((1, 3, 80, 80), np.float32)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FlakyEngine:
    """Fails (with ORT's own exception type) on the calls in `fail_on`, or on every
    `fail_every`th call; otherwise returns a small gradient."""

    min_size = 75
    provider = "CPU"

    def __init__(self, fail_every: int = 0, fail_on: set[int] | None = None, always: bool = False) -> None:
        self.fail_every = fail_every
        self.fail_on = fail_on or set()
        self.always = always
        self.calls = 0

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        self.calls += 1
        if self.always or self.calls in self.fail_on or (self.fail_every and self.calls % self.fail_every == 0):
            raise Fail("[ONNXRuntimeError] : 1 : FAIL : injected CUDA failure")
        return 1.0, np.full(image.shape, 0.01, np.float32)


class EngineFactory:
    """Hands out the given engines in order (the last one again and again); counts calls."""

    def __init__(self, *engines: object) -> None:
        self.engines = list(engines)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        item = self.engines[min(self.calls, len(self.engines)) - 1]
        if isinstance(item, BaseException):
            raise item
        return item if isinstance(item, LoadedModel) else as_model(item)


def one_frame(guard: GuardedModel):
    """What the dreamer does with its engine, in miniature: one gradient through the guard."""
    return guard.run_frame(lambda model: model.engine.gradient(IMAGE, NO_VISITORS)[0])


def test_ort_error_on_one_frame_skips_only_that_frame_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    engine = FlakyEngine(fail_on={3})
    guard = GuardedModel(EngineFactory(engine), restart_after=3)
    with caplog.at_level(logging.WARNING, logger="livedream.runtime.guard"):
        results = [one_frame(guard) for _ in range(6)]
    assert results == [1.0, 1.0, None, 1.0, 1.0, 1.0]
    assert guard.frames_skipped == 1 and guard.restarts == 0
    assert any("skipping it" in r.getMessage() and "injected CUDA failure" in r.getMessage() for r in caplog.records)


def test_real_dreamer_keeps_dreaming_after_an_engine_error_mid_run() -> None:
    engine = FlakyEngine(fail_every=4)  # one gradient per frame (1 step, 1 octave)
    guard = GuardedModel(EngineFactory(engine), restart_after=3)
    dreamer = LiveDreamer()
    params = Params(steps=1, octaves=1, dream_height=80, dream_width=96, half_life=0.0)
    frame = np.full((120, 160, 3), 128, np.uint8)
    outputs = [guard.run_frame(lambda model: dreamer.dream_frame(frame, params, model)) for _ in range(9)]
    skipped = [i for i, out in enumerate(outputs) if out is None]
    assert skipped == [3, 7]
    assert all(out.shape == (120, 160, 3) for out in outputs if out is not None)  # shown at the frame's size
    assert guard.restarts == 0 and guard.state == ""


def test_k_failed_frames_in_a_row_restart_the_session_once(caplog: pytest.LogCaptureFixture) -> None:
    broken, fresh = FlakyEngine(always=True), FlakyEngine()
    factory = EngineFactory(broken, fresh)
    guard = GuardedModel(factory, restart_after=4)
    with caplog.at_level(logging.WARNING, logger="livedream.runtime.guard"):
        results = [one_frame(guard) for _ in range(6)]
    assert results == [None, None, None, None, 1.0, 1.0]  # the 5th frame runs on the new session
    assert factory.calls == 2 and guard.restarts == 1 and guard.loaded.engine is fresh
    assert broken.calls == 4 and fresh.calls == 2
    assert any("restarting the dream engine" in r.getMessage() for r in caplog.records)


def test_a_good_frame_resets_the_count_towards_a_restart() -> None:
    factory = EngineFactory(FlakyEngine(fail_on={1, 2, 4, 5, 7, 8}))
    guard = GuardedModel(factory, restart_after=3)
    results = [one_frame(guard) for _ in range(9)]
    assert results.count(None) == 6 and factory.calls == 1 and guard.restarts == 0


def test_restarts_that_do_not_help_back_off_without_blocking_the_loop() -> None:
    clock = FakeClock()
    factory = EngineFactory(FlakyEngine(always=True))  # every new session fails too
    guard = GuardedModel(factory, restart_after=2, backoff_initial_s=2.0, backoff_max_s=5.0, clock=clock)
    for _ in range(3):
        one_frame(guard)  # 2 failures, then an immediate restart and its first failure
    assert factory.calls == 2
    one_frame(guard)  # second failure on the new session: the next restart waits 2 s
    assert "restarting in 2 s" in guard.state
    calls_before = factory.engines[0].calls
    assert [one_frame(guard) for _ in range(5)] == [None] * 5  # skipped without touching the engine
    assert factory.calls == 2 and factory.engines[0].calls == calls_before
    clock.now += 2.0
    one_frame(guard)
    assert factory.calls == 3
    one_frame(guard)
    clock.now += 3.9
    one_frame(guard)
    assert factory.calls == 3  # back-off doubled to 4 s
    clock.now += 0.1
    one_frame(guard)
    assert factory.calls == 4


def test_back_off_is_capped() -> None:
    clock = FakeClock()
    factory = EngineFactory(FlakyEngine(always=True))
    guard = GuardedModel(factory, restart_after=1, backoff_initial_s=2.0, backoff_max_s=5.0, clock=clock)
    for _ in range(40):
        one_frame(guard)
        clock.now += 5.0  # the cap: every wait is over by now
    assert factory.calls == 40


def test_a_restart_that_fails_is_logged_and_retried_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    healthy = FlakyEngine()
    factory = EngineFactory(FlakyEngine(always=True), UserError("model file models/x.onnx is missing"), healthy)
    guard = GuardedModel(factory, restart_after=1, backoff_initial_s=1.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="livedream.runtime.guard"):
        assert one_frame(guard) is None  # fails → restart due at once
        assert one_frame(guard) is None  # the restart raises UserError: logged, retried later
    assert guard.loaded is None and guard.provider == "none"
    assert any("restart failed" in r.getMessage() and "models/x.onnx" in r.getMessage() for r in caplog.records)
    clock.now += 1.0
    assert one_frame(guard) == 1.0 and guard.loaded.engine is healthy


def test_user_error_when_the_first_session_is_made_still_raises() -> None:
    with pytest.raises(UserError, match="run `livedream export`"):
        GuardedModel(EngineFactory(UserError("the default model is not exported yet; run `livedream export`")))


def test_a_bug_in_the_frame_code_is_not_swallowed() -> None:
    guard = GuardedModel(EngineFactory(FlakyEngine()))

    def buggy_frame(model: LoadedModel) -> None:
        raise ValueError("a programming error")

    with pytest.raises(ValueError, match="programming error"):
        guard.run_frame(buggy_frame)


def test_runtime_exception_from_the_step_graph_is_guarded_too() -> None:
    class Stepper:
        steps_per_run = 1
        gradient_norm = "std"

        def ascend(self, image: np.ndarray, steps: int, step_size: float, mask: np.ndarray) -> float:
            raise RuntimeException("CUDA error: an illegal memory access")

    guard = GuardedModel(EngineFactory(as_model(FlakyEngine(), step_runner=Stepper())))
    assert guard.run_frame(lambda model: model.step_runner.ascend(IMAGE, 2, 0.01, NO_VISITORS)) is None  # type: ignore[union-attr]
    assert "illegal memory access" in guard.last_error


def test_watchdog_flags_gaps_over_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = FrameWatchdog(max_gap_s=2.0)
    with caplog.at_level(logging.WARNING, logger="livedream.live.watchdog"):
        gaps = [watchdog.frame(t) for t in (10.0, 10.5, 11.0, 14.0, 14.5)]
    assert gaps == [0.0, 0.5, 0.5, 3.0, 0.5]
    assert watchdog.largest_gap == 3.0 and watchdog.late_frames == 1
    assert [r.getMessage() for r in caplog.records] == ["frame gap of 3.0 s (limit 2.0 s)"]


def test_watchdog_banner_while_a_frame_is_overdue() -> None:
    watchdog = FrameWatchdog(max_gap_s=2.0)
    assert watchdog.banner(5.0) is None  # nothing shown yet: nothing late
    watchdog.frame(9.5)
    watchdog.frame(10.0)  # the usual pace is known: 0.5 s
    assert watchdog.banner(11.9) is None and watchdog.late_by(11.9) == 0.0
    assert watchdog.banner(13.0) == "no new frame for 3 s" and watchdog.late_by(13.0) == pytest.approx(1.0)


def test_watchdog_monitor_logs_a_stall_once_with_the_loop_stack(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = FrameWatchdog(max_gap_s=2.0)
    watchdog.frame(9.5)  # called from this thread: it is "the loop"
    watchdog.frame(10.0)  # frames every 0.5 s: the usual pace, so the 2 s limit holds
    with caplog.at_level(logging.WARNING, logger="livedream.live.watchdog"):
        results = [watchdog.check(t) for t in (11.0, 12.5, 13.0, 20.0)]
        watchdog.frame(21.0)
        after_recovery = watchdog.check(24.0)
    assert results == [False, True, False, False] and after_recovery is True
    stall = caplog.records[0].getMessage()
    assert "no frame for 2.5 s" in stall and "test_watchdog_monitor_logs_a_stall_once" in stall


def test_watchdog_monitor_thread_has_ended_when_stop_returns() -> None:
    """Stopped in the middle of a check (its clock is slow), the monitor has ended by the time
    `stop` returns: the app's `close` leaves no thread behind, however loaded the machine."""
    checking = threading.Event()

    def slow_clock() -> float:
        checking.set()
        threading.Event().wait(0.2)
        return 0.0

    watchdog = FrameWatchdog(max_gap_s=2.0, clock=slow_clock)
    before = set(threading.enumerate())
    watchdog.start(interval_s=0.01)
    assert checking.wait(5)
    watchdog.stop()
    assert set(threading.enumerate()) <= before


def test_watchdog_gives_the_first_frames_time_to_load() -> None:
    watchdog = FrameWatchdog(max_gap_s=2.0)
    watchdog.frame(0.0)
    assert watchdog.check(5.0) is False  # first frames: sessions and buffers are made
    assert watchdog.check(9.0) is True


def test_watchdog_limit_follows_slow_but_steady_frames() -> None:
    """A CPU that dreams a frame a second is slow, not stalled; a frame 4x later than usual is."""
    watchdog = FrameWatchdog(max_gap_s=2.0)
    for second in range(0, 40, 2):  # steady 2 s frames (e.g. a big dream on 2 cores)
        watchdog.frame(float(second))
    assert watchdog.late_frames == 0 and watchdog.limit_s > 7.0
    assert watchdog.check(38.0 + 5.0) is False
    assert watchdog.check(38.0 + 9.0) is True
