"""The live loop: two rates, one picture.

The show loop (`step()`, at the camera's rate) shows the newest source frame with the newest
finished dream's detail carried along the motion onto it, sharp (`pipeline.overlay`). The
dream worker (`worker`, its own thread and rate) dreams the newest frame whenever it is free,
at the size that makes the look (`budget`). The camera picture never waits for a dream.

`LiveApp` owns the lifecycle and `step()`; the rest is in small pieces beside it: what
keys do (`keys`), the models a show can switch to (`models`), opening hours (`hours`),
the HUD text (`hud`), measurements (`stats`), the dream budget (`budget`), the watchdog.
Control only replaces the frozen `Params`: keys, and the `controls.Controls` (the control
hub: OSC, MIDI, presets, sequencer, attract mode), asked once per frame; the worker gets
the effective Params with each frame it is offered.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from livedream.files import DiskFloor
from livedream.live.budget import FrameBudget
from livedream.live.controls import Controls
from livedream.live.hours import OpeningHours
from livedream.live.hud import HudStats, LoopState, banner_text, compose_hud
from livedream.live.keys import KeyActions, PresetRecall, Recording, Request, remote_actions
from livedream.live.maskview import MaskView
from livedream.live.models import ModelSet
from livedream.live.schedule import DreamSchedule
from livedream.live.screenshots import Screenshots
from livedream.live.stats import (
    FpsMeter,
    FrameClock,
    RunStats,
    SourceCounters,
    StageTimes,
)
from livedream.live.watchdog import FrameWatchdog
from livedream.live.worker import DreamJob, DreamWorker
from livedream.ops.logs import HealthReporter
from livedream.ops.schedule import DailySchedule
from livedream.outputs.seam import Outputs
from livedream.params import NOMINAL_FRAME_S, Params
from livedream.pipeline.display import Action, Screen
from livedream.pipeline.dreamer import LiveDreamer
from livedream.pipeline.frames import Frame, Source
from livedream.pipeline.images import cropped_to_aspect, fitted_to_aspect, resized_into
from livedream.pipeline.lag import entering_band
from livedream.pipeline.overlay import CarriedOverlay
from livedream.pipeline.visitors import VisitorMask, Visitors

log = logging.getLogger(__name__)

IDLE_FPS = 30  # redraw rate while paused
SHOW_FPS = 30  # the shown rate when neither [display] target_fps nor the source names one
DARK_FPS = 4  # redraw rate outside opening hours: keys and controls stay responsive
MAX_FRAME_GAP_S = 2.0  # the watchdog's limit between two frames shown
STOP_CHECK_S = 0.05  # longest sleep between looks at the stop flag


class LiveApp:
    """The installation: shows the newest frame with the newest dream over it, forever.
    `run()` is the whole product (tests, soak and bench call it); `step()` is one frame of
    it. The app does not own how stages work, only their order."""

    def __init__(
        self,
        source: Source,
        dreamer: LiveDreamer,
        display: Screen,
        params: Params,
        models: ModelSet,
        controls: Sequence[Controls] = (),
        recall_preset: PresetRecall | None = None,
        outputs: Outputs | None = None,
        recording: Recording | None = None,
        deepen: bool = True,
        health: HealthReporter | None = None,
        schedule: DailySchedule | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = datetime.datetime.now,
        disk: DiskFloor | None = None,
        budget: FrameBudget | None = None,
        show_fps: float = SHOW_FPS,
        threaded: bool = True,
    ) -> None:
        """`recall_preset` / `recording`: the number keys and key r; `outputs` get every frame shown
        (the app closes them). `deepen`: keep dreaming an unchanged frame (still scenes grow deeper).
        `schedule` darkens the screen outside its hours (by `wall_clock`); `clock` is the loop's
        time; `disk` keeps screenshots off a full disk; `budget` is adaptive quality (`open_app`
        starts it from the measured step cost; none = off). `show_fps`: the shown rate (0 = as
        fast as the loop goes). `threaded` False dreams inside the show loop, one dream per
        shown frame (tests that count frames)."""
        self.source, self.display, self.params = source, display, params
        self._budgeted = params  # `params` with the budget's cuts, made once a frame
        self.worker = DreamWorker(dreamer, clock, threaded, lambda: self.stopping)
        self.overlay = CarriedOverlay()
        self.models, self.outputs = models, outputs or Outputs()
        self.controls = list(controls)
        self.keys = KeyActions(recall_preset, recording)
        self._requests: dict[str, Callable[[str], None]] = {  # what a key's `Request` does (keys.REQUESTS)
            "quit": lambda _: self.stop("quit"),
            "fullscreen": lambda _: self.display.toggle_fullscreen(),
            "hud": lambda _: self.display.toggle_hud(),
            "help": lambda _: self.display.toggle_help(),
            "pause": lambda _: self._toggle_pause(),
            "screenshot": lambda _: self.request_screenshot(),
            "guide_from_source": lambda _: self._guide_from_source(),
            "learn": self._learn,
            "mask_view": lambda _: self.mask_view.toggle(),
        }
        self.deepen, self.health = deepen, health
        self.hours = OpeningHours(schedule, self._start_afresh, wall_clock)
        self.watchdog = FrameWatchdog(MAX_FRAME_GAP_S, clock=clock)
        self.budget = budget or FrameBudget(0, models.guard.min_size)
        self.times, self.counters, self.fps, self.frame_clock = StageTimes(), SourceCounters(), FpsMeter(), FrameClock()
        self.dream_rate = FpsMeter()  # finished dreams per second
        self.plans = DreamSchedule()  # what each dream visits: the whole frame, the visitors' box or a band
        self.visitor_mask = VisitorMask()  # who is a visitor, on every new source frame (`pipeline.visitors`)
        self.visitors: Visitors | None = None  # this frame's: the overlay, schedule, dream, HUD, mask view
        self.mask_view = MaskView()  # the visitors over the picture, in the window only (key v)
        self.paused, self.frames, self.dreamed = False, 0, 0  # dreamed: finished dreams taken into the picture
        self.show_ms = 1000.0 / show_fps if show_fps > 0 else 0.0
        self.screenshots = Screenshots(Path(display.cfg.screenshot_dir), disk)
        self.hud_stats = HudStats()  # the figures of the last frame shown (HUD, health line)
        self.now = clock()
        self._clock = clock
        self._opened = False
        self._stop_reason: str | None = None
        self.source_frame: Frame | None = None  # the source frame read on the last step
        self._shown: np.ndarray | None = None  # the picture of the last frame shown
        self._camera_only: np.ndarray | None = None  # the frame itself, before the first dream
        self._small: np.ndarray | None = None  # the frame at the dream size
        self._placeholder: np.ndarray | None = None
        self._last_offer: tuple[int, Params] | None = None  # (source index, effective Params)
        self._dream_size: tuple[int, int] | None = None  # (height, width) of the last dream
        self._fresh = True  # the next dream starts from nothing
        self._taken = 0  # the number of the last finished dream taken into the picture
        self._visitors_seen: tuple[int, float] | None = None  # (source index, loop time) of the last update
        self._poll_ms = 0.0

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Open the window and start the source (idempotent)."""
        if self._opened:
            return
        self.display.open()
        self.source.start()
        self.watchdog.start()
        self._opened = True

    def close(self) -> None:
        """Stop the source, the watchdog, the health counter and the outputs; close the window.
        The controls are closed by whoever made them. The watchdog goes first: no frame is
        due any more, and closing a recording flushes its encoder for seconds."""
        self.watchdog.stop()
        self.worker.stop()
        self.source.close()
        self.outputs.close()
        if self.health is not None:
            self.health.close()
        if self._opened:
            self.display.close()
            self._opened = False

    def __enter__(self) -> "LiveApp":
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def stop(self, reason: str = "stop") -> None:
        """Ask the loop to end after the current frame (safe from signal handlers and threads)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def request_screenshot(self, at_frame: int | None = None) -> None:
        """Save the window after frame `at_frame` is shown (None: after the next one)."""
        self.screenshots.request(self.frames + 1 if at_frame is None else at_frame)

    # --- the loop ---------------------------------------------------------------------------

    def run(self, max_frames: int | None = None, max_seconds: float | None = None) -> RunStats:
        """Loop until quit, a signal, `max_frames` shown or `max_seconds` passed; then the stats."""
        self.open()
        self._stop_reason = None
        frames_before, dreamed_before = self.frames, self.dreamed
        started = time.monotonic()
        with SignalsStopLoop(self):
            while not self.stopping:
                self.step()
                if max_frames is not None and self.frames - frames_before >= max_frames:
                    self.stop("frames")
                elif max_seconds is not None and time.monotonic() - started >= max_seconds:
                    self.stop("seconds")
        return self._stats(self.frames - frames_before, self.dreamed - dreamed_before, time.monotonic() - started)

    def step(self) -> None:
        """One shown frame: keys and commands, newest Params, newest source frame (offered to the
        dream worker when it is free), newest finished dream carried onto it, show, report,
        pace. Paused: the picture stays and nothing is dreamed; outside opening hours: a black
        frame, nothing read or dreamed. The worker runs only while something can be dreamed."""
        started = time.perf_counter()
        self.now = now = self._clock()
        interval = self.fps.frame_started(started)
        if interval is not None:
            self.times.record("interval", interval * 1000)
        self._apply_keys(self._poll_keys() + remote_actions([c for ctl in self.controls for c in ctl.drain_commands()]))
        self._take_controls(now)
        self._budgeted = self.budget.apply(self.params)  # once a frame: the dream, the HUD and the stats read it
        dark = self.hours.dark()
        self._run_worker(not (self.paused or dark))
        frame = None if self.paused or dark else self._read_source(now)
        if frame is not None:
            effective, image = sized_for(self._budgeted, frame.image, self.models.guard.min_size,
                                         self.display.cfg.fit)
            small = self._at_dream_size(image, effective)  # what the visitors, the flow and the dream see
            self._see_visitors(frame.index, small, now)
            self._follow(small, effective)
            self._take_dream()  # before the offer: the next dream starts from the newest one
            self._offer(frame.index, small, effective, now)
            self._take_dream()  # a worker that is not threaded has dreamed this very frame
            self._compose(image)
        self._show(now, dark)
        self.frames += 1
        self.screenshots.save_if_due(self.frames, self.display)
        self.watchdog.frame(now)
        if self.health is not None:
            self.health.tick(now, self.hud_stats, dropped_total=self.models.frames_skipped)
        self._pace((time.perf_counter() - started) * 1000, dark)

    # --- the stages, one method each ---------------------------------------------------------

    def _poll_keys(self) -> list[Action]:
        started = time.perf_counter()
        actions = self.display.poll()
        self._poll_ms = (time.perf_counter() - started) * 1000
        return actions

    def _apply_keys(self, actions: list[Action]) -> None:
        """The keys' and commands' intents, in order: new `Params`, or a request carried out here."""
        for intent in self.keys.intents(actions, self.params, self.now):
            if isinstance(intent, Request):
                self._requests[intent.name](intent.detail)
            else:
                self.params = intent

    def _toggle_pause(self) -> None:
        self.paused = not self.paused
        log.info("paused" if self.paused else "resumed")

    def _guide_from_source(self) -> None:
        """"The room dreams of the visitor" (key g): the frame in front of the camera, saved,
        becomes the guide; its features are read once, on the next frame."""
        frame = self.source_frame
        if frame is None:
            log.info("key g: no source frame yet to guide by")
            return
        path = self.screenshots.save_guide(frame.image)
        if path is not None:
            log.info("key g: guide %s", path)
            self.params = dataclasses.replace(self.params, guide=str(path))

    def _learn(self, parameter: str) -> None:
        for control in self.controls:
            control.take_command(f"learn {parameter}")

    def _take_controls(self, now: float) -> None:
        for control in self.controls:
            self.params = control.update(self.params, now)
        if self.params.model != self.models.name:
            if self.models.switch(self.params.model):
                self._fresh = True
                self.budget.min_size = self.models.guard.min_size
            else:
                self.params = dataclasses.replace(self.params, model=self.models.name)

    def _read_source(self, now: float) -> Frame | None:
        """The newest source frame; a new one is also shown to the controls."""
        started = time.perf_counter()
        frame = self.source.read()
        self.times.record("capture", (time.perf_counter() - started) * 1000)
        if frame is not None:
            new = frame.index != self.counters.last_index
            self.counters.saw(frame.index)
            for control in self.controls if new else ():
                control.observe(frame.image, now)
        self.source_frame = frame
        return frame

    def _run_worker(self, wanted: bool) -> None:
        """Start the dream worker when something can be dreamed, stop it when not (paused,
        dark): no thread dreams for a picture nobody sees."""
        if wanted and not self.worker.running:
            self.worker.start()
        elif not wanted and self.worker.running:
            self.worker.stop()

    def _start_afresh(self) -> None:
        """The carried dream is stale (the opening hours begin: it is hours old), and so is the room."""
        self._fresh = True
        self.overlay.clear()
        self.visitor_mask.reset()

    def _at_dream_size(self, image: np.ndarray, effective: Params) -> np.ndarray:
        """`image` at the dream size, resized once a frame into a buffer made once per size."""
        size = (effective.dream_height, effective.dream_width, 3)
        if self._small is None or self._small.shape != size:
            self._small = np.empty(size, np.uint8)
        return resized_into(image, self._small)

    def _see_visitors(self, index: int, image: np.ndarray, now: float) -> None:
        """Who is a visitor on this frame, once per new source frame: the carry keeps the room
        still around them, the schedule dreams them first, the dream and the HUD read them."""
        if self._visitors_seen is not None and self._visitors_seen[0] == index:
            return
        started = time.perf_counter()
        since = NOMINAL_FRAME_S if self._visitors_seen is None else now - self._visitors_seen[1]
        self.visitors = self.visitor_mask.update(image, since)
        self._visitors_seen = (index, now)
        self.times.record("visitors", (time.perf_counter() - started) * 1000)

    def _offer(self, index: int, image: np.ndarray, effective: Params, now: float) -> None:
        """Hand frame `index` (`image`, cut to the dream's aspect) to the worker when it is free
        and there is something new to dream: a new frame or new Params, an unchanged one too
        while still scenes deepen. The plan learns from the carry offered with the frame where a
        pan left it bare. A room's dream in flight gives way to a visitor who just arrived."""
        if not self.worker.free(now):
            if self.plans.gives_way(effective, self.visitors, now):
                self.worker.abandon()
            return
        if not self.deepen and self._last_offer == (index, effective):
            return
        carried = self.overlay.offered()
        entering = None if carried is None else entering_band(carried[1])
        job = DreamJob(index, now, effective, self.frame_clock.tick(now), self._fresh,
                       self.plans.next_plan(effective, self.visitors, now, entering), self.visitors)
        self._fresh = False
        self._last_offer = (index, effective)
        self.worker.offer(image, job, self.models.guard.run_frame, carried)

    def _follow(self, image: np.ndarray, effective: Params) -> None:
        """The overlay follows this frame's motion (at the dream size)."""
        started = time.perf_counter()
        mask = None if self.visitors is None else self.visitors.still_room
        self.overlay.advance(image, (effective.dream_height, effective.dream_width), mask)
        self.times.record("flow", (time.perf_counter() - started) * 1000)

    def _take_dream(self) -> None:
        """The newest finished dream becomes the one laid over the frames (one swap)."""
        dream = self.worker.slot.newest()
        if dream is None or dream.number == self._taken:
            return
        self._taken = dream.number
        self.overlay.take(dream)
        self.dream_rate.frame_started(time.perf_counter())
        self.times.record("dream", dream.dream_ms)
        if dream.whole:  # the budget holds whole-frame dreams to their time; a box's is a fraction of it
            self.budget.record(dream.dream_ms, self.params)
        self._dream_size = dream.base_rgb.shape[:2]
        self.dreamed += 1

    def _compose(self, image: np.ndarray) -> None:
        """This frame with the carried dream over it, sharp; the frame itself before the first dream."""
        started = time.perf_counter()
        shown = self.overlay.shown(image)
        if shown is None:
            if self._camera_only is None or self._camera_only.shape != image.shape:
                self._camera_only = np.empty_like(image)
            np.copyto(self._camera_only, image)
            shown = self._camera_only
        else:
            self.times.record("age", (self.now - self.overlay.dream.offered_at) * 1000)  # type: ignore[union-attr]
        self._shown = shown
        self.times.record("compose", (time.perf_counter() - started) * 1000)

    @property
    def dreaming(self) -> Params | None:
        """The Params of the dream in flight or last made (None before the first offer)."""
        return self._last_offer[1] if self._last_offer is not None else None

    @property
    def effective(self) -> Params:
        """The Params the dreamer runs with now: budget cuts applied, at the last dream's size."""
        return with_size(self._budgeted, self._dream_size)

    def _show(self, now: float, dark: bool) -> None:
        """Put the frame on the screen (black when dark) and hand it to the controls."""
        started = time.perf_counter()
        self.hud_stats = self._hud(now)
        image = self._black_frame() if dark else self.shown_image
        hud = self.hud_stats.lines() if self.display.hud_visible else None
        # A full disk is a HUD line; with the HUD hidden it is an operator alert like a lost camera.
        alert = self.banner or (None if hud else self.screenshots.warning)
        # The mask view, like the HUD, is the window's alone: the outputs and controls get `image`.
        window = self.mask_view.over(image, self.visitors) if self.mask_view.on and not dark else image
        self.display.show(window, hud, None if dark else alert)
        if dark or self._shown is not None:  # nothing before the first frame: a recording takes its size
            self.outputs.send(image)
        for control in self.controls:
            control.publish(image, self.fps.fps, now)
        self.times.record("display", (time.perf_counter() - started) * 1000 + self._poll_ms)

    def _pace(self, work_ms: float, dark: bool) -> None:
        """Sleep off what is left of the shown frame's time, watching for stop."""
        frame_ms = 1000 / DARK_FPS if dark else 1000 / IDLE_FPS if self.paused else self.show_ms
        sleep_unless_stopped((frame_ms - work_ms) / 1000, lambda: self.stopping)

    # --- what the viewer sees ---------------------------------------------------------------

    def _black_frame(self) -> np.ndarray:
        size = self._shown.shape if self._shown is not None else (self.params.dream_height, self.params.dream_width, 3)
        if self._placeholder is None or self._placeholder.shape != size:
            self._placeholder = np.zeros(size, np.uint8)
        return self._placeholder

    @property
    def banner(self) -> str | None:
        """The message over the picture: the source's fault, the engine's, or a late frame."""
        worker = f"dream worker error — {self.worker.error}" if self.worker.error else ""
        return banner_text(self.source.noun, self.source.state, self.models.guard.state or worker,
                           self.watchdog.banner(self.now), self._shown is not None)

    def _hud(self, now: float) -> HudStats:
        loop = LoopState(self.paused, self.hours.dark_until, self.models.frames_skipped, self.models.restarts)
        lines = [line for control in self.controls for line in control.status_lines(now)]
        lines += self.outputs.status_lines() + ([self.screenshots.warning] if self.screenshots.warning else [])
        model = self.models.guard.guarded
        return compose_hud(self.fps.fps, self.dream_rate.fps, self.times, self.effective,
                           self.budget.describe(self.params), loop, lines, self.models.guard.provider, model.layers,
                           self.source.state, model.placement, self.visitors.summary if self.visitors else "")

    def _stats(self, frames: int, dreamed: int, seconds: float) -> RunStats:
        effective = self.effective
        return RunStats(frames, dreamed, seconds, frames / seconds if seconds > 0 else 0.0, self.times.medians(),
                        self.counters.source_frames, self.counters.dropped, self.counters.reused,
                        self._stop_reason or "?", (effective.dream_height, effective.dream_width),
                        self.models.guard.provider, tuple(self.screenshots.saved), self.budget.describe(self.params),
                        self.times.median("age") / 1000)

    @property
    def shown_image(self) -> np.ndarray:
        """What the last frame put on screen (before scaling and overlays)."""
        return self._shown if self._shown is not None else self._black_frame()


class SignalsStopLoop:
    """While inside: SIGINT/SIGTERM ask the loop to stop after this frame; a second one
    interrupts at once. Only the main thread can own signals; elsewhere this does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, app: LiveApp) -> None:
        self._app = app
        self._previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: object) -> None:
        # A plain flag, no locks: a handler can run in the middle of any bytecode.
        if self._app.stopping:
            raise KeyboardInterrupt  # asked twice: the user means it
        self._app.stop(f"signal {signal.Signals(signum).name}")


def sized_for(box: Params, image: np.ndarray, min_size: int, fit: str) -> tuple[Params, np.ndarray]:
    """The dream's Params and the part of `image` it dreams. fit = letterbox: the source's
    aspect inside the configured size (the whole picture, letterboxed on screen); otherwise,
    or where the model's minimum size forces it, the source is cut to the size's aspect —
    never squashed."""
    if fit == "letterbox":
        box = with_size(box, fitted_to_aspect(box.dream_height, box.dream_width, *image.shape[:2], min_size))
    return box, cropped_to_aspect(image, box.dream_height, box.dream_width)


def with_size(params: Params, size: tuple[int, int] | None) -> Params:
    if size is None or size == (params.dream_height, params.dream_width):
        return params
    return dataclasses.replace(params, dream_height=size[0], dream_width=size[1])


def sleep_unless_stopped(seconds: float, stopping: Callable[[], bool]) -> None:
    """Sleep `seconds` (nothing if ≤ 0), waking every STOP_CHECK_S to see whether to stop."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not stopping() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, STOP_CHECK_S))
