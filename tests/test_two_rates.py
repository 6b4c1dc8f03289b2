"""Two rates, one picture: the show loop never waits for a dream, the carried detail follows
the motion between dreams, still scenes deepen, the hand-over is atomic, and no thread of the
dream worker outlives a stop, a freeze or an error."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402

from livedream.config import DisplayConfig  # noqa: E402
from livedream.runtime.engine import NO_VISITORS, DreamInterrupted  # noqa: E402
from livedream.live.app import LiveApp  # noqa: E402
from livedream.live.controls import PassiveControls  # noqa: E402
from livedream.live.worker import DreamJob, DreamSlot, DreamWorker  # noqa: E402
from livedream.params import Params  # noqa: E402
from livedream.pipeline.display import Display  # noqa: E402
from livedream.pipeline.dreamer import LiveDreamer  # noqa: E402
from livedream.pipeline.frames import LIVE, Frame  # noqa: E402
from livedream.pipeline.images import to_nchw  # noqa: E402
from livedream.pipeline.overlay import CarriedOverlay, FinishedDream  # noqa: E402
from livedream.runtime.guard import GuardedModel  # noqa: E402
from livedream.runtime.model import LoadedModel  # noqa: E402
from tests.conftest import as_model, models_of  # noqa: E402

DREAM = Params(dream_height=96, dream_width=128, steps=1, strength=0.05, half_life=5.0)
WORKER_THREAD = "livedream-dream"


def worker_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WORKER_THREAD and thread.is_alive()]


def display(tmp_path) -> Display:
    return Display(DisplayConfig(fullscreen=False, window_width=160, window_height=120, hud=False,
                                 screenshot_dir=str(tmp_path / "shots")))


class NumberedSource:
    """A camera whose every read is a new frame, flat grey at a level that names its index."""

    state = LIVE
    noun = "camera"

    def __init__(self, height: int = DREAM.dream_height, width: int = DREAM.dream_width) -> None:
        self.index = 0
        self._buffers = [np.empty((height, width, 3), np.uint8) for _ in range(2)]

    @staticmethod
    def level(index: int) -> int:
        return 20 + index % 200

    def start(self) -> None:
        pass

    def read(self) -> Frame:
        self.index += 1
        image = self._buffers[self.index % 2]
        image.fill(self.level(self.index))
        return Frame(image, self.index, time.monotonic())

    def close(self) -> None:
        pass


class StillSource(NumberedSource):
    """The same frame on every read (a still scene)."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.image = image

    def read(self) -> Frame:
        return Frame(self.image, 1, 0.0)


class SlowFlatEngine:
    """A gradient that takes 500 ms and is zero: dreams change nothing, so the picture shows the frame."""

    min_size = 75

    def __init__(self) -> None:
        self.calls = 0

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        self.calls += 1
        time.sleep(0.5)
        return 0.0, np.zeros_like(image)


class ShownLevels(PassiveControls):
    """Notes, per shown frame, the level shown and the index of the newest frame read."""

    def __init__(self, source: NumberedSource) -> None:
        self.source = source
        self.shown: list[tuple[int, int]] = []

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        self.shown.append((int(frame_rgb[0, 0, 0]), self.source.index))


def test_a_500_ms_dream_does_not_hold_up_the_shown_frames_and_the_newest_frame_is_shown(tmp_path) -> None:
    source = NumberedSource()
    levels = ShownLevels(source)
    engine = SlowFlatEngine()
    app = LiveApp(source, LiveDreamer(), display(tmp_path), DREAM, models_of(engine), controls=[levels], show_fps=60)
    with app:
        stats = app.run(max_seconds=2.0)
    print(f"{stats.frames} frames shown, {app.worker.dreams} dreams ({engine.calls} gradients of 500 ms)")
    assert app.worker.dreams <= 4 and stats.frames > 10 * max(1, app.worker.dreams)
    lags = [newest - index for level, newest in levels.shown
            for index in [next(i for i in range(newest, newest - 200, -1) if NumberedSource.level(i) == level)]]
    assert max(lags) <= 2  # the newest frame's number is on screen within 2 shown frames
    assert not worker_threads()


def textured(height: int, width: int, seed: int = 3) -> np.ndarray:
    """Smooth random texture the optical flow can follow."""
    noise = np.random.default_rng(seed).integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), (5, 5), 0)


def test_the_carried_detail_stays_on_a_moving_pattern_between_dreams() -> None:
    height, width, speed = 96, 160, 2
    world = textured(height, width + 64)
    frames = [np.ascontiguousarray(world[:, 64 - speed * k: 64 - speed * k + width]) for k in range(12)]  # moves right
    detail = np.zeros((height, width, 3), np.int16)
    detail[40:56, 40:56] = 60  # a patch of dream detail on frame 0, centre x = 47.5
    overlay = CarriedOverlay()
    overlay.advance(frames[0], (height, width))
    overlay.offered()  # the worker dreams frame 0 ...
    overlay.take(FinishedDream(frames[0].copy(), detail, 1, 1, 0.0, 500.0))  # ... and hands the dream back
    for k in range(1, len(frames)):
        overlay.advance(frames[k], (height, width))
        shown = overlay.shown(frames[k])
        patch = (shown.astype(np.int16) - frames[k]).mean(axis=2) > 30
        centre_x = np.nonzero(patch)[1].mean()
        assert abs(centre_x - (47.5 + speed * k)) <= 3, (k, centre_x)


def fine_energy(detail: np.ndarray) -> float:
    """The detail's energy above a 2-pixel blur, inside the border a shift uncovers."""
    grey = detail.astype(np.float32).mean(axis=2)
    fine = grey - cv2.GaussianBlur(grey, (0, 0), 2.0)
    return float(fine[16:-16, 24:-24].std())


def test_fine_detail_keeps_its_sharpness_over_many_dreams_of_a_moving_scene() -> None:
    """Each dream starts from the detail carried onto its frame, so the carry's resampling
    adds up over the dreams: a bilinear warp at half-pixel moves halves a 4-pixel pattern's
    contrast every two dreams (0.7 left after one, 0.001 after twenty); the carry must not."""
    height, width, dreams = 96, 160, 20
    world = textured(height, width + 64)
    checker = (np.indices((height, width)).sum(axis=0) // 2 % 2 * 80 - 40).astype(np.int16)
    detail = np.repeat(checker[..., None], 3, axis=2)  # a 4-pixel pattern: what mixed3 draws
    start = fine_energy(detail)
    overlay = CarriedOverlay()
    for k in range(dreams + 1):
        shift = np.float32([[1, 0, 0.5 * k - 32], [0, 1, 0]])  # half a pixel to the right per frame
        frame = cv2.warpAffine(world, shift, (width, height), flags=cv2.INTER_CUBIC)
        overlay.advance(frame, (height, width))
        carried = overlay.offered()  # the worker dreams this frame, starting from the carried detail
        if carried is not None:
            detail = np.rint(carried[0]).astype(np.int16)  # a dream that adds nothing
        overlay.take(FinishedDream(frame.copy(), detail, k, k + 1, 0.0, 500.0))
    kept = fine_energy(detail) / start
    print(f"fine detail kept after {dreams} dreams: {kept:.2f}")
    assert kept >= 0.4


def test_a_still_scene_deepens_over_successive_dreams(lively_engine, tmp_path) -> None:
    still = textured(DREAM.dream_height, DREAM.dream_width, seed=5)
    app = LiveApp(StillSource(still), LiveDreamer(), display(tmp_path), DREAM, models_of(lively_engine),
                  threaded=False, show_fps=0)
    losses = []
    with app:
        for _ in range(6):
            app.step()
            losses.append(lively_engine.gradient(to_nchw(app.shown_image))[0])
    print("objective after each dream:", [round(loss, 4) for loss in losses])
    assert all(later > earlier for earlier, later in zip(losses, losses[1:]))


def test_the_hand_over_of_a_finished_dream_is_atomic() -> None:
    """A reader never sees a dream half old and half new, nor one overwritten while it holds it."""
    slot = DreamSlot()
    job = DreamJob(0, 0.0, DREAM, 0.05, False)
    base = np.zeros((60, 80, 3), np.uint8)
    detail = np.zeros((60, 80, 3), np.int16)
    stop = threading.Event()

    def write() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            base.fill(number % 250)
            detail.fill(number % 250)
            slot.publish(base, detail, job, 1.0)

    writer = threading.Thread(target=write)
    writer.start()
    levels = set()
    reads = 0
    deadline = time.monotonic() + 20.0  # a loaded CI machine may start the writer late
    try:
        while reads < 300 and time.monotonic() < deadline:
            dream = slot.newest()
            if dream is None:
                time.sleep(0.001)  # the writer has not published yet
                continue
            reads += 1
            level = int(dream.base_rgb[0, 0, 0])
            time.sleep(0.0005)  # the writer goes on publishing meanwhile
            assert (dream.base_rgb == level).all() and (dream.detail == level).all()
            levels.add(level)
    finally:
        stop.set()
        writer.join()
    assert len(levels) > 10  # many different dreams were read while newer ones were written


class FailingDreamer(LiveDreamer):
    def dream_detail(self, *args, **kwargs):
        raise ValueError("a bug in a dream")


def test_a_worker_error_leaves_the_show_running_with_a_banner(small_engine, tmp_path) -> None:
    app = LiveApp(NumberedSource(), FailingDreamer(), display(tmp_path), DREAM, models_of(small_engine), show_fps=0)
    with app:
        stats = app.run(max_seconds=0.5)
        assert stats.frames > 5 and app.dreamed == 0
        assert "dream worker error — ValueError: a bug in a dream" in (app.banner or "")
    assert not worker_threads()


def press_space() -> None:
    """Key space (freeze / resume), as the window reports it."""
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, unicode=" ", mod=0, scancode=0))


def test_freeze_stops_the_worker_thread_and_resume_starts_it_again(small_engine, tmp_path) -> None:
    app = LiveApp(NumberedSource(), LiveDreamer(), display(tmp_path), DREAM, models_of(small_engine), show_fps=0)
    with app:
        app.run(max_frames=5)
        assert len(worker_threads()) == 1
        press_space()
        app.step()
        assert app.paused and not worker_threads()
        press_space()
        app.run(max_frames=3)
        assert len(worker_threads()) == 1
    assert not worker_threads()


class FailsTwice:
    """An engine whose first two gradients fail as a session would at run time."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.min_size = engine.min_size
        self.calls = 0

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
        self.calls += 1
        if self.calls <= 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.engine.gradient(image, mask)


def test_an_engine_restart_happens_on_the_worker_while_the_show_goes_on(small_engine, tmp_path) -> None:
    engine = FailsTwice(small_engine)
    guard = GuardedModel(lambda: as_model(engine), restart_after=1, backoff_initial_s=0.0)
    app = LiveApp(NumberedSource(), LiveDreamer(), display(tmp_path), dataclasses.replace(DREAM, steps=1),
                  models_of(None, guard=guard), show_fps=0)
    with app:
        stats = app.run(max_seconds=1.5)
    assert guard.restarts >= 1 and app.dreamed > 0 and stats.frames > app.dreamed
    assert not worker_threads()


class RunsUntilInterrupted:
    """An engine whose gradient run lasts until the model is interrupted (or WAIT_S: a whole
    frame's step far longer than a visitor can wait), as `Engine.interrupt` ends one."""

    WAIT_S = 10.0

    def __init__(self, engine) -> None:
        self.engine = engine
        self.min_size = engine.min_size
        self.running = threading.Event()
        self._interrupted = threading.Event()

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
        self.running.set()
        if self._interrupted.wait(self.WAIT_S):
            raise DreamInterrupted
        return self.engine.gradient(image, mask)

    def interrupt(self) -> None:
        self._interrupted.set()


def test_an_abandoned_dream_ends_its_run_at_once_and_shows_nothing(small_engine) -> None:
    engine = RunsUntilInterrupted(small_engine)
    model = LoadedModel(engine, interrupt=engine.interrupt)
    worker = DreamWorker(LiveDreamer())
    worker.start()
    try:
        frame = np.full((DREAM.dream_height, DREAM.dream_width, 3), 90, np.uint8)
        worker.offer(frame, DreamJob(1, 0.0, DREAM, 0.05, False), lambda dream: dream(model), None)
        assert engine.running.wait(5)
        worker.abandon()
        deadline = time.monotonic() + RunsUntilInterrupted.WAIT_S / 2
        while not worker.free(0.0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.free(0.0) and worker.slot.newest() is None
    finally:
        worker.stop()
    assert not worker_threads()
