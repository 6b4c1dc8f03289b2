"""The live loop: newest source frame → dreamer → display, once per frame, until told to stop.

It wires the stages and owns the loop's state (paused, dark hours, frame budget, stop
request); it knows nothing of how a stage works inside. Control only replaces the frozen
`Params`: keys here, and any `Controls` (the control hub: OSC, MIDI, presets, sequencer,
attract mode), which the loop asks once per frame for the newest value. The dream engine
runs guarded: a failing frame is skipped (the last image stays up), a failing session is
restarted; a watchdog and a health line report on the loop itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from livedream.config import Config, ModelConfig
from livedream.pipeline.display import Action, Display, HudStats, next_screenshot_path
from livedream.pipeline.dreamer import LiveDreamer
from livedream.runtime.engine import GradientEngine
from livedream.runtime.engine import load_engine
from livedream.errors import UserError
from livedream.runtime.exporting import ensure_model
from livedream.ops.logs import HealthReporter
from livedream.manifest import default_models_dir
from livedream.params import PARAM_RANGES, Params
from livedream.live.watchdog import FrameWatchdog
from livedream.runtime.guard import GuardedEngine
from livedream.ops.schedule import DailySchedule
from livedream.pipeline.sources import ENDED, Frame, Source, is_lost, open_source

import pygame  # noqa: E402,I001 - after livedream.pipeline.display, which silences pygame's greeting

log = logging.getLogger(__name__)

STAGES = ("capture", "flow", "dream", "display")
STRENGTH_STEP = 0.005  # one +/- key press
IDLE_FPS = 30  # redraw rate when nothing is dreamed (paused, or a still frame not deepened)
STOP_CHECK_S = 0.05  # longest sleep between looks at the stop flag
DARK_FPS = 4  # redraw rate outside opening hours: keys and controls stay responsive
MAX_FRAME_GAP_S = 2.0  # the watchdog's limit between two frames shown
REMOTE_COMMANDS = ("screenshot", "pause")  # commands a control may send; they act like the keys


class Controls(Protocol):
    """A live control input (the control hub, a sequencer, a test probe): the loop's one seam.

    `update` is all a control must have. It may also have any of the optional hooks of
    `ControlHooks`; once per frame the loop calls each hook a control has, in list order.
    `control.hub.ControlHub` has them all. Whoever makes a control closes it.
    """

    def update(self, params: Params, now: float) -> Params:
        """`params` with this input's pending changes applied (return it unchanged if none).

        Called once per frame on the loop's thread with the app's clock (`time.monotonic()`);
        must not block. Values from the outside world go through `Params.clamped`.
        """
        ...


class ControlHooks(Protocol):
    """The optional hooks of a `Controls`; all are called on the loop's thread and must not block."""

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        """Each new source frame, before it is dreamed (motion detection, attract mode)."""

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        """Each frame as shown, unscaled (recording, virtual camera, web preview)."""

    def drain_commands(self) -> list[str]:
        """Commands since the last frame; the loop runs those in `REMOTE_COMMANDS` as the keys."""
        ...

    def status_lines(self, now: float) -> list[str]:
        """Lines for the HUD (preset, motion level, listeners, recording)."""
        ...


PresetRecall = Callable[[int, float], bool]
"""Keys 1–9: `recall(slot, now)` starts that preset (through a `Controls`, e.g. as a
crossfade) and says whether it exists; it logs its own warnings."""

RecordingToggle = Callable[[], object]
"""Key r: start a recording, or stop the running one (the control hub records)."""


@dataclass(frozen=True)
class RunStats:
    """What one `LiveApp.run` did. Stage times are medians over the last `StageTimes.WINDOW` frames."""

    frames: int  # frames shown
    dreamed: int  # frames that ran the dreamer (fewer when paused)
    seconds: float
    fps: float  # frames shown per second
    stage_ms: Mapping[str, float]  # median ms per stage, keys = STAGES
    source_frames: int  # distinct source frames that passed while running
    dropped: int  # source frames never read (the dream was slower than the source)
    reused: int  # reads that returned the frame already read (the source was slower)
    stopped_by: str  # "frames", "seconds", "quit", "signal SIGTERM", …
    dream_size: tuple[int, int]  # (height, width) at the end, after any budget cut
    provider: str
    screenshots: tuple[Path, ...] = ()

    def summary(self) -> str:
        """A few lines for the terminal on exit."""
        stages = "  ".join(f"{name} {self.stage_ms[name]:.1f}" for name in STAGES)
        total_ms = sum(self.stage_ms.values())
        height, width = self.dream_size
        return "\n".join([
            f"LiveDream: {self.frames} frames in {self.seconds:.1f} s = {self.fps:.2f} fps "
            f"({self.dreamed} dreamed at {width}x{height} on {self.provider or '?'}; stopped by {self.stopped_by})",
            f"  median ms/frame: {stages}  total {total_ms:.1f}"
            + (f" (= {1000 / total_ms:.1f} fps once warm; the figure above includes start-up)" if total_ms > 0 else ""),
            f"  source frames {self.source_frames}: dropped {self.dropped}, read again {self.reused}",
            *(f"  screenshot {path}" for path in self.screenshots),
        ])


class StageTimes:
    """The last WINDOW milliseconds of each stage in preallocated rings, for medians."""

    WINDOW = 600

    def __init__(self) -> None:
        self._samples = np.zeros((len(STAGES), self.WINDOW), np.float64)
        self._counts = [0] * len(STAGES)

    def record(self, stage: str, ms: float) -> None:
        row = STAGES.index(stage)
        self._samples[row, self._counts[row] % self.WINDOW] = ms
        self._counts[row] += 1

    def median(self, stage: str, last: int = WINDOW) -> float:
        """Median of the newest `last` samples of `stage` (0 when there are none)."""
        row = STAGES.index(stage)
        count = min(self._counts[row], self.WINDOW, last)
        if count == 0:
            return 0.0
        end = self._counts[row] % self.WINDOW
        indices = np.arange(end - count, end) % self.WINDOW
        return float(np.median(self._samples[row, indices]))


class FrameBudget:
    """Holds a target frame rate by cutting steps, then the dream size; restores them when
    there is room. Hysteresis: a cut needs PATIENCE slow frames in a row, a restore needs
    PATIENCE fast ones AND a predicted frame time inside the budget, so it cannot flap."""

    SLOW = 1.15  # × budget: too slow
    FAST = 0.8  # × budget: room to spare
    PATIENCE = 8
    SETTLE = 2  # frames ignored after a change (buffers rebuild, ORT plans the new shape)
    SIZE_LEVELS = (1.0, 0.85, 0.7, 0.55, 0.4)

    def __init__(self, target_fps: int, min_size: int = 75) -> None:
        self.budget_ms = 1000.0 / target_fps if target_fps > 0 else None
        self.min_size = min_size
        self.steps_cut = 0
        self.size_level = 0
        self._average_ms: float | None = None
        self._slow = self._fast = 0
        self._settle = 0

    @property
    def active(self) -> bool:
        return self.steps_cut > 0 or self.size_level > 0

    def apply(self, params: Params) -> Params:
        """`params` as the dreamer should run them now (the user's values minus the cuts)."""
        if not self.active:
            return params
        scale = self.SIZE_LEVELS[self.size_level]
        at_least_one_step = min(params.steps, 1)  # a cut never turns the dream off
        return dataclasses.replace(
            params,
            steps=max(at_least_one_step, params.steps - self.steps_cut),
            dream_height=self._scaled(params.dream_height, scale, "dream_height"),
            dream_width=self._scaled(params.dream_width, scale, "dream_width"),
        )

    def record(self, work_ms: float, params: Params) -> None:
        """One frame's working time (without pacing sleeps); may cut or restore one notch."""
        if self.budget_ms is None:
            return
        if self._settle > 0:
            self._settle -= 1
            return
        self._average_ms = work_ms if self._average_ms is None else 0.7 * self._average_ms + 0.3 * work_ms
        self._slow = self._slow + 1 if self._average_ms > self.budget_ms * self.SLOW else 0
        self._fast = self._fast + 1 if self._average_ms < self.budget_ms * self.FAST else 0
        if self._slow >= self.PATIENCE:
            self._cut(params)
        elif self._fast >= self.PATIENCE:
            self._restore(params, self._average_ms)

    def _cut(self, params: Params) -> None:
        if params.steps - self.steps_cut > 1:
            self.steps_cut += 1
        elif self.size_level + 1 < len(self.SIZE_LEVELS):
            self.size_level += 1
        else:
            return
        self._changed(params)

    def _restore(self, params: Params, average_ms: float) -> None:
        """Undo the last cut (size first), unless the predicted frame time would break the budget."""
        budget_ms: float = self.budget_ms  # type: ignore[assignment]
        if self.size_level > 0:
            area_growth = (self.SIZE_LEVELS[self.size_level - 1] / self.SIZE_LEVELS[self.size_level]) ** 2
            if average_ms * area_growth > budget_ms:
                return
            self.size_level -= 1
        elif self.steps_cut > 0:
            steps = self.apply(params).steps
            if average_ms * (steps + 1) / steps > budget_ms:
                return
            self.steps_cut -= 1
        else:
            return
        self._changed(params)

    def _changed(self, params: Params) -> None:
        self._average_ms = None
        self._slow = self._fast = 0
        self._settle = self.SETTLE
        effective = self.apply(params)
        log.info(
            "frame budget %.0f ms: steps %d, dream %dx%d",
            self.budget_ms, effective.steps, effective.dream_width, effective.dream_height,
        )

    def _scaled(self, size: int, scale: float, name: str) -> int:
        smallest = max(self.min_size, int(PARAM_RANGES[name].low))
        return max(smallest, int(size * scale) // 2 * 2)


@dataclass
class SourceCounters:
    """How the source's frame indices went by: how many passed, were skipped or read twice."""

    source_frames: int = 0
    dropped: int = 0
    reused: int = 0
    last_index: int | None = None

    def saw(self, index: int) -> None:
        if self.last_index is None or index < self.last_index:  # first frame, or the source restarted
            self.source_frames += 1
        elif index == self.last_index:
            self.reused += 1
        else:
            self.source_frames += index - self.last_index
            self.dropped += index - self.last_index - 1
        self.last_index = index


class LiveApp:
    """The installation: reads the newest frame, dreams it, shows it with the HUD, forever.

    `run()` is the whole product (and what tests, tools/soak.py and tools/bench.py call);
    `step()` is one frame of it. The app does not own how stages work, only their order.
    """

    def __init__(
        self,
        source: Source,
        dreamer: LiveDreamer,
        display: Display,
        params: Params,
        controls: Sequence[Controls] = (),
        recall_preset: PresetRecall | None = None,
        load_engine: Callable[[str], GradientEngine] | None = None,
        deepen: bool = True,
        toggle_recording: RecordingToggle | None = None,
        health: HealthReporter | None = None,
        schedule: DailySchedule | None = None,
        watchdog: FrameWatchdog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = datetime.datetime.now,
    ) -> None:
        """`recall_preset` / `toggle_recording` serve the number keys and key r (the control
        hub's `select_preset` and recording). `load_engine(name)` lets a change of
        `Params.model` switch graphs; each graph is loaded once and kept. `deepen`: keep
        dreaming an unchanged frame (still scenes grow deeper); False shows it as dreamed
        once. `health` gets a tick per frame; `schedule` darkens the screen outside its
        hours (by `wall_clock`); `clock` is the loop's time for controls and the watchdog.
        The dreamer's engine is guarded (`GuardedEngine`) if it is not already."""
        self.source = source
        self.dreamer = dreamer
        self.display = display
        self.params = params
        self.controls = list(controls)
        self.recall_preset = recall_preset
        self.toggle_recording = toggle_recording
        self.deepen = deepen
        self.health = health
        self.schedule = schedule
        self.watchdog = watchdog or FrameWatchdog(MAX_FRAME_GAP_S, clock=clock)
        self.paused = False
        self.frames = 0
        self.dreamed = 0
        self.screenshots: list[Path] = []
        self.times = StageTimes()
        self.counters = SourceCounters()
        self.budget = FrameBudget(display.cfg.target_fps, dreamer.engine.min_size)
        self.guard = _guarded(dreamer.engine)
        self._engines = {params.model: self.guard}  # every graph loaded so far, by name
        # The dreamer keeps this one wrapper for good; a model switch swaps the guard inside it.
        self._stop_between_steps = StopBetweenSteps(self.guard, lambda: self.stopping)
        dreamer.engine = self._stop_between_steps
        self._load_engine = load_engine
        self._model = params.model
        self._clock = clock
        self._wall_clock = wall_clock
        self._now = clock()
        self._in_hours: bool | None = None  # None until the schedule is first asked
        self._dark_until: str | None = None
        self.hud_stats = HudStats()  # the figures of the last frame shown (HUD, health line)
        self._opened = False
        self._stop_reason: str | None = None
        self._frame: Frame | None = None
        self._shown: np.ndarray | None = None  # the dreamer's output buffer (or the placeholder)
        self._placeholder: np.ndarray | None = None
        self._dreamed_index: int | None = None
        self._dreamed_params: Params | None = None
        self._screenshot_at: int | None = None
        self._fps = 0.0
        self._poll_ms = 0.0
        self._last_step_start: float | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Open the window and start the source (idempotent)."""
        if self._opened:
            return
        try:
            self.display.open()
        except pygame.error as error:
            raise UserError(
                f"cannot open a window ({error}); run it on a desktop, set DISPLAY, "
                f"or set SDL_VIDEODRIVER=dummy to run headless"
            ) from None
        self.source.start()
        self.watchdog.start()
        self._opened = True

    def close(self) -> None:
        """Stop the source, the watchdog and the health counter; close the window. The
        controls are closed by whoever made them."""
        self.source.close()
        self.watchdog.stop()
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
        self._screenshot_at = self.frames + 1 if at_frame is None else at_frame

    # --- the loop ---------------------------------------------------------------------------

    def run(self, max_frames: int | None = None, max_seconds: float | None = None) -> RunStats:
        """Loop until quit, a signal, `max_frames` shown or `max_seconds` passed; then the stats."""
        self.open()
        self._stop_reason = None
        frames_before, dreamed_before = self.frames, self.dreamed
        started = time.monotonic()
        with _SignalsStopLoop(self):
            while not self.stopping:
                self.step()
                if max_frames is not None and self.frames - frames_before >= max_frames:
                    self.stop("frames")
                elif max_seconds is not None and time.monotonic() - started >= max_seconds:
                    self.stop("seconds")
        return self._stats(self.frames - frames_before, self.dreamed - dreamed_before, time.monotonic() - started)

    def step(self) -> None:
        """One frame: keys and commands, newest Params, newest source frame, dream, show,
        report, hold the budget. Outside opening hours: a black frame, nothing read or dreamed."""
        started = time.perf_counter()
        self._now = now = self._clock()
        self._measure_fps(started)
        self._act_on(self._poll_keys() + self._remote_commands())
        self._take_controls(now)
        dark = self._outside_opening_hours()
        frame = None if self.paused or dark else self._read_source(now)
        dreamed = frame is not None and self._needs_dream(frame) and self._dream(frame)
        self._show(now, dark)
        self.frames += 1
        self._save_screenshot_if_due()
        self._report(now)
        work_ms = (time.perf_counter() - started) * 1000
        if dreamed:
            self.budget.record(work_ms, self.params)
        self._pace(work_ms, dreamed, dark)

    # --- the stages, one method each ---------------------------------------------------------

    def _poll_keys(self) -> list[Action]:
        started = time.perf_counter()
        actions = self.display.poll()
        self._poll_ms = (time.perf_counter() - started) * 1000
        return actions

    def _remote_commands(self) -> list[Action]:
        actions = []
        for drain in self._hooks("drain_commands"):
            for command in drain():
                if command in REMOTE_COMMANDS:
                    actions.append(Action(command))
                else:
                    log.warning("control command %r not known; known: %s", command, ", ".join(REMOTE_COMMANDS))
        return actions

    def _take_controls(self, now: float) -> None:
        for control in self.controls:
            self.params = control.update(self.params, now)
        if self.params.model != self._model:
            self._switch_model(self.params.model)

    def _outside_opening_hours(self) -> bool:
        """True while the schedule says dark; each change is logged once, with the next one."""
        if self.schedule is None or self.schedule.always_on:
            return False
        wall_time = self._wall_clock()
        in_hours = self.schedule.is_on(wall_time)
        if in_hours != self._in_hours:
            upcoming = self.schedule.next_change(wall_time)
            until = f"{upcoming:%H:%M}" if upcoming is not None else "?"
            if in_hours:
                log.info("opening hours (%s): dreaming until %s", self.schedule.describe(), until)
                self.dreamer.reset()  # the carried dream is hours old
            else:
                log.info("outside opening hours (%s): dark until %s", self.schedule.describe(), until)
            self._in_hours = in_hours
            self._dark_until = None if in_hours else until
        return not in_hours

    def _read_source(self, now: float) -> Frame | None:
        """The newest source frame; a new one is also shown to the controls that observe."""
        started = time.perf_counter()
        frame = self.source.read()
        self.times.record("capture", (time.perf_counter() - started) * 1000)
        if frame is not None:
            new = frame.index != self.counters.last_index
            self.counters.saw(frame.index)
            if new:
                for observe in self._hooks("observe"):
                    observe(frame.image, now)
        self._frame = frame
        return frame

    def _needs_dream(self, frame: Frame) -> bool:
        if self.deepen:
            return True
        return frame.index != self._dreamed_index or self.budget.apply(self.params) != self._dreamed_params

    def _dream(self, frame: Frame) -> bool:
        """Dream `frame`; False when a stop request cut it short (the last frame stays shown)."""
        effective = self.budget.apply(self.params)
        started = time.perf_counter()
        image = cropped_to_aspect(frame.image, effective.dream_height, effective.dream_width)
        try:
            dreamed = self.guard.run_frame(self.dreamer.dream_frame, image, effective)
        except DreamInterrupted:  # raised outside the guard: stopping is not an engine fault
            self.dreamer.reset()  # its coherence state is half-updated
            return False
        if dreamed is None:  # an engine fault, logged by the guard: the last image stays up
            return False
        self._shown = dreamed
        total_ms = (time.perf_counter() - started) * 1000
        flow_ms = self.dreamer.timings.flow_ms
        self.times.record("flow", flow_ms)
        self.times.record("dream", total_ms - flow_ms)
        self._dreamed_index, self._dreamed_params = frame.index, effective
        self.dreamed += 1
        return True

    def _show(self, now: float, dark: bool) -> None:
        """Put the frame on the screen (black when dark) and hand it to the controls that publish."""
        started = time.perf_counter()
        self.hud_stats = self._hud_stats(now)
        image = self._black_frame() if dark else self._image_to_show()
        hud = self.hud_stats if self.display.hud_visible else None
        self.display.show(image, hud, None if dark else self.banner)
        for publish in self._hooks("publish"):
            publish(image, self._fps, now)
        self.times.record("display", (time.perf_counter() - started) * 1000 + self._poll_ms)

    def _report(self, now: float) -> None:
        """The frame counts for the watchdog and the health line."""
        self.watchdog.frame(now)
        if self.health is not None:
            self.health.tick(now, self.hud_stats, dropped_total=self.frames_skipped)

    def _pace(self, work_ms: float, dreamed: bool, dark: bool = False) -> None:
        """Sleep off what is left of the frame budget (or of an idle frame), watching for stop."""
        if dark:
            frame_ms = 1000 / DARK_FPS
        elif self.budget.budget_ms is not None:
            frame_ms = self.budget.budget_ms
        elif not dreamed:
            frame_ms = 1000 / IDLE_FPS
        else:
            return
        deadline = time.monotonic() + max(0.0, frame_ms - work_ms) / 1000
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, STOP_CHECK_S))

    # --- what the viewer sees ---------------------------------------------------------------

    def _image_to_show(self) -> np.ndarray:
        return self._shown if self._shown is not None else self._black_frame()

    def _black_frame(self) -> np.ndarray:
        size = (self.params.dream_height, self.params.dream_width, 3)
        if self._placeholder is None or self._placeholder.shape != size:
            self._placeholder = np.zeros(size, np.uint8)
        return self._placeholder

    @property
    def banner(self) -> str | None:
        """The message over the picture: the source's fault, the engine's, or a late frame."""
        state = self.source.state
        if is_lost(state):
            return f"camera {state}"
        if state == ENDED:
            return "the video ended"
        if self.guard.state:
            return self.guard.state
        late = self.watchdog.banner(self._now)
        if late is not None:
            return late
        if self._shown is None:
            return f"source {state}…"
        return None

    def _hud_stats(self, now: float) -> HudStats:
        effective = self.budget.apply(self.params)
        recent = {name: self.times.median(name, last=30) for name in STAGES}
        extra = [
            "  ".join(f"{name} {ms:.0f}" for name, ms in recent.items()) + " ms",
            f"dream {effective.dream_width}x{effective.dream_height}   octaves {effective.octaves}"
            f"   decay {effective.decay:.2f}",
        ]
        if self.budget.active:
            extra.append(f"frame budget {self.budget.budget_ms:.0f} ms: steps/size cut")
        if self.paused:
            extra.append("PAUSED (space)")
        if self._in_hours is False:
            extra.append(f"dark until {self._dark_until} (schedule)")
        if self.frames_skipped:
            extra.append(f"engine: {self.frames_skipped} frame(s) skipped, {self.restarts} restart(s)")
        for status_lines in self._hooks("status_lines"):
            extra.extend(status_lines(now))
        return HudStats(
            fps=self._fps,
            dream_ms=recent["flow"] + recent["dream"],
            provider=self.guard.provider,
            layers=tuple(getattr(self.engine, "layers", ())),
            strength=effective.strength,
            steps=effective.steps,
            source_state=self.source.state,
            extra=tuple(extra),
        )

    def _measure_fps(self, now: float) -> None:
        if self._last_step_start is not None:
            interval = now - self._last_step_start
            instant = 1.0 / interval if interval > 0 else 0.0
            self._fps = instant if self._fps == 0 else 0.9 * self._fps + 0.1 * instant
        self._last_step_start = now

    def _save_screenshot_if_due(self) -> None:
        if self._screenshot_at is None or self.frames < self._screenshot_at:
            return
        self._screenshot_at = None
        path = self.display.screenshot(next_screenshot_path(Path(self.display.cfg.screenshot_dir)))
        self.screenshots.append(path)
        log.info("screenshot saved: %s", path)

    # --- control: keys, presets, model switch ------------------------------------------------

    def _act_on(self, actions: list[Action]) -> None:
        for action in actions:
            handler = getattr(self, f"_on_{action.name}", None)
            if handler is None:
                log.debug("no handler for action %s", action.name)
            elif action.value is None:
                handler()
            else:
                handler(action.value)

    def _on_quit(self) -> None:
        self.stop("quit")

    def _on_toggle_fullscreen(self) -> None:
        self.display.toggle_fullscreen()

    def _on_toggle_hud(self) -> None:
        self.display.toggle_hud()

    def _on_help(self) -> None:
        self.display.toggle_help()

    def _on_pause(self) -> None:
        self.paused = not self.paused
        log.info("paused" if self.paused else "resumed")

    def _on_strength_up(self) -> None:
        self._change_params("key", strength=round(self.params.strength + STRENGTH_STEP, 4))

    def _on_strength_down(self) -> None:
        self._change_params("key", strength=round(self.params.strength - STRENGTH_STEP, 4))

    def _on_steps_up(self) -> None:
        self._change_params("key", steps=self.params.steps + 1)

    def _on_steps_down(self) -> None:
        self._change_params("key", steps=self.params.steps - 1)

    def _on_screenshot(self) -> None:
        self.request_screenshot()

    def _on_record(self) -> None:
        if self.toggle_recording is None:
            log.info("recording is not available here")
        else:
            self.toggle_recording()

    def _on_preset(self, slot: int) -> None:
        if self.recall_preset is None:
            log.info("preset %d not defined", slot)
        elif self.recall_preset(slot, self._now):
            log.info("preset %d", slot)

    def _change_params(self, why: str, **changes: float | int) -> None:
        """Live changes: clamped to the allowed ranges, warnings logged, never raised."""
        changed, warnings = self.params.clamped(**changes)
        for warning in warnings:
            log.warning("%s: %s", why, warning)
        self._set_params(changed, why)

    def _set_params(self, new: Params, why: str) -> None:
        differences = [
            f"{field.name} {getattr(self.params, field.name)} → {getattr(new, field.name)}"
            for field in dataclasses.fields(Params)
            if getattr(self.params, field.name) != getattr(new, field.name)
        ]
        if differences:
            log.info("%s: %s", why, ", ".join(differences))
        self.params = new

    def load_engines(self, names: Iterable[str]) -> None:
        """Load the graphs `names` now (every model a preset can switch to), so no switch
        loads one mid-show. A missing model raises `UserError`."""
        for name in sorted(names):
            self._engine_named(name)

    def _engine_named(self, name: str) -> GuardedEngine:
        """The guarded engine of graph `name`, loaded on first use and kept for good."""
        if name not in self._engines:
            if self._load_engine is None:
                raise UserError("this app cannot switch models while running")
            self._engines[name] = _guarded(self._load_engine(name))
        return self._engines[name]

    def _switch_model(self, name: str) -> None:
        """The graph for `Params.model` (loaded once, then reused); on failure, warn and keep the running one."""
        try:
            guard = self._engine_named(name)
        except UserError as error:
            log.warning("model %r not loaded: %s; keeping %r", name, error, self._model)
            self.params = dataclasses.replace(self.params, model=self._model)
            return
        self.guard = self._stop_between_steps.engine = guard
        self.dreamer.reset()
        self.budget.min_size = guard.min_size
        self._model = name
        log.info("model %s (%s)", name, guard.provider)

    def _hooks(self, name: str) -> list[Callable]:
        """The bound hook `name` of each control that has it (see `ControlHooks`), in order."""
        return [hook for control in self.controls if (hook := getattr(control, name, None)) is not None]

    # --- signals and stats ------------------------------------------------------------------

    def _stats(self, frames: int, dreamed: int, seconds: float) -> RunStats:
        effective = self.budget.apply(self.params)
        return RunStats(
            frames=frames,
            dreamed=dreamed,
            seconds=seconds,
            fps=frames / seconds if seconds > 0 else 0.0,
            stage_ms={name: self.times.median(name) for name in STAGES},
            source_frames=self.counters.source_frames,
            dropped=self.counters.dropped,
            reused=self.counters.reused,
            stopped_by=self._stop_reason or "?",
            dream_size=(effective.dream_height, effective.dream_width),
            provider=getattr(self.engine, "provider", ""),
            screenshots=tuple(self.screenshots),
        )

    # read-only views for tests and tools

    @property
    def engine(self) -> GradientEngine | None:
        """The running graph's session (None while a failed restart waits for its retry)."""
        return self.guard.engine

    @property
    def frames_skipped(self) -> int:
        """Frames not dreamed because of an engine fault, over every graph loaded."""
        return sum(guard.frames_skipped for guard in self._engines.values())

    @property
    def restarts(self) -> int:
        """Sessions re-created after repeated faults, over every graph loaded."""
        return sum(guard.restarts for guard in self._engines.values())

    @property
    def shown_image(self) -> np.ndarray:
        """What the last frame put on screen (before scaling and overlays)."""
        return self._image_to_show()

    @property
    def source_frame(self) -> Frame | None:
        """The source frame read on the last step."""
        return self._frame


class DreamInterrupted(Exception):
    """The loop is stopping: the frame being dreamed is abandoned between two steps."""


class StopBetweenSteps:
    """The engine, refusing to start another ascent step once the loop is stopping.

    One ONNX Runtime run cannot be interrupted, but a frame is steps × octaves runs: this
    makes SIGINT/SIGTERM wait for one gradient (~0.25 s at 640x360 on a 2-core CPU), not
    for the rest of the frame, without the dream loop knowing about stopping. It wraps the
    `GuardedEngine` from outside, so `DreamInterrupted` never counts as an engine fault.
    """

    def __init__(self, engine: GradientEngine, stopping: Callable[[], bool]) -> None:
        self.engine = engine
        self._stopping = stopping

    def gradient(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        if self._stopping():
            raise DreamInterrupted
        return self.engine.gradient(image)

    def __getattr__(self, name: str) -> object:  # min_size, provider, layers, …
        return getattr(self.engine, name)


def _guarded(engine: GradientEngine) -> GuardedEngine:
    """`engine` behind a `GuardedEngine` (a restart reuses the same session) unless it is one."""
    return engine if isinstance(engine, GuardedEngine) else GuardedEngine(lambda: engine)


def cropped_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centred part of `image` with the aspect of height x width, as a view (no copy),
    so a 4:3 dream of a 16:9 camera is cut, not squashed."""
    image_h, image_w = image.shape[:2]
    if abs(image_w * height - image_h * width) < max(height, width):  # within a pixel
        return image
    if image_w * height > image_h * width:  # the image is wider: cut the sides
        kept = max(1, round(image_h * width / height))
        left = (image_w - kept) // 2
        return image[:, left : left + kept]
    kept = max(1, round(image_w * height / width))
    top = (image_h - kept) // 2
    return image[top : top + kept]


class _SignalsStopLoop:
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


# --- building the app from the config ---------------------------------------------------------


def load_live_engine(name: str, model_cfg: ModelConfig, models_dir: Path | None = None) -> GradientEngine:
    """The graph `name` (exported first if it is the missing default) on the configured device."""
    folder = models_dir or default_models_dir()
    ensure_model(name, folder)
    return load_engine(name, folder, model_cfg.device, model_cfg.threads)


def open_app(
    config: Config,
    controls: Sequence[Controls] = (),
    recall_preset: PresetRecall | None = None,
    models_dir: Path | None = None,
    toggle_recording: RecordingToggle | None = None,
    models: Iterable[str] = (),
    clock: Callable[[], float] = time.monotonic,
) -> LiveApp:
    """A LiveApp wired from `config`, with the graphs of `models` (the presets' models)
    loaded too. Models load first, so a bad one fails before a window opens. `clock` is
    the loop's time (tests pass a fake one)."""
    def load(name: str) -> GuardedEngine:
        return GuardedEngine(lambda: load_live_engine(name, config.model, models_dir))

    engine = load(config.dream.model)
    source = open_source(config.source)
    app = LiveApp(
        source, LiveDreamer(engine), Display(config.display), config.dream,
        controls=controls, recall_preset=recall_preset, load_engine=load, toggle_recording=toggle_recording,
        health=HealthReporter(config.log.health_interval_s), schedule=DailySchedule.from_config(config.schedule),
        clock=clock,
    )
    try:
        app.load_engines(models)
    except BaseException:
        app.close()
        raise
    return app
