"""The live app wired to show control and the reliability pieces: a real `LiveApp` with a
real `ControlHub` (OSC on an ephemeral port), the guarded engine, the schedule, the
watchdog and the health line. The loop's clock is a fake one that moves 0.25 s per frame,
so crossfades, attract smoothing and health intervals do not depend on the machine's speed.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import signal
import threading
from pathlib import Path

import numpy as np

from livedream.runtime.engine import NO_VISITORS
import pygame
import pytest
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from pythonosc.udp_client import SimpleUDPClient

from livedream import cli
from livedream.config import Config, parse_config
from livedream.control.hub import ControlHub
from livedream.errors import UserError
from livedream.live.app import LiveApp
from livedream.outputs.recording import Recorder
from livedream.live.build import open_app
from livedream.live.controls import PassiveControls
from livedream.ops.logs import HealthReporter
from livedream.ops.schedule import DailySchedule
from livedream.params import Params
from livedream.pipeline.display import Display
from livedream.pipeline.dreamer import LiveDreamer
from livedream.pipeline.frames import LIVE, Frame
from livedream.runtime.guard import GuardedModel
from tests.conftest import as_model, models_of
from tests.test_app import (  # noqa: F401 - isolated_logging is an autouse fixture
    DREAM,
    WINDOW,
    ScriptedSource,
    grey_picture,
    isolated_logging,
    post_key,
    window_pixels,
)

FRAME_S = 0.25  # fake seconds per frame
MAX_FRAMES_FOR_A_MESSAGE = 200  # an OSC message on localhost arrives within a frame or two


class FakeClock:
    """The loop's clock: stands still inside a frame; `Tick` moves it on."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Tick(PassiveControls):
    """The last `Controls`: moves the fake clock on by one frame and keeps the params each frame ran with."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seen: list[Params] = []

    def update(self, params: Params, now: float) -> Params:
        self.seen.append(params)
        self.clock.now += FRAME_S
        return params


class Flicker:
    """A source that alternates a black and a white picture: all pixels move on every read."""

    def __init__(self) -> None:
        shape = (DREAM.dream_height, DREAM.dream_width, 3)
        self.pictures = [np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)]
        self.state = LIVE
        self.noun = "camera"
        self.index = 0

    def start(self) -> None:
        pass

    def read(self) -> Frame:
        self.index += 1
        return Frame(self.pictures[self.index % 2], self.index, 0.0)

    def close(self) -> None:
        pass


def windowed_display(**changes) -> Display:
    return Display(dataclasses.replace(Config().display, fullscreen=False, window_width=WINDOW[0],
                                       window_height=WINDOW[1], **changes))


def show_config(small_graph: Path, tmp_path: Path, **document) -> Config:
    """The shipped defaults for a small, windowed show on `small_graph`, OSC on a free local port."""
    base = {
        "dream": {"model": small_graph.stem, "dream_width": DREAM.dream_width, "dream_height": DREAM.dream_height,
                  "steps": 1, "strength": 0.02, "half_life": 0.9},
        "source": {"kind": "demo", "width": 160, "height": 120},
        "display": {"fullscreen": False, "window_width": WINDOW[0], "window_height": WINDOW[1],
                    "screenshot_dir": str(tmp_path / "shots"), "target_fps": 0},  # wiring, not pacing
        "osc": {"host": "127.0.0.1", "port": 0, "query_port": 0},
        "outputs": {"record_folder": str(tmp_path / "rec")},
        "log": {"dir": str(tmp_path / "log")},
    }
    for section, values in document.items():
        base[section] = {**base.get(section, {}), **values}
    return parse_config(base)


@pytest.fixture
def show(small_graph: Path, tmp_path: Path):
    """`open_app` as `livedream run` calls it, with a real hub; yields (app, hub, tick)."""
    opened: list[tuple[ControlHub, LiveApp]] = []

    def make(**document) -> tuple[LiveApp, ControlHub, Tick]:
        config = show_config(small_graph, tmp_path, **document)
        clock = FakeClock()
        tick = Tick(clock)
        hub = ControlHub(config, clock=clock, open_devices=False)
        app = open_app(
            config, controls=[hub, tick], recall_preset=hub.select_preset, models_dir=small_graph.parent,
            models=hub.preset_models(), clock=clock, open_devices=False,
        )
        opened.append((hub, app))
        app.open()
        app.display.poll()  # drop the window's start-up events
        return app, hub, tick

    yield make
    for hub, app in opened:
        app.close()
        hub.close()


def step_until(app: LiveApp, condition, limit: int = MAX_FRAMES_FOR_A_MESSAGE) -> int:
    """Frames stepped until `condition()` holds (fails after `limit`)."""
    for frames in range(1, limit + 1):
        app.step()
        if condition():
            return frames
    raise AssertionError(f"not reached within {limit} frames")


# --- show control through the hub -----------------------------------------------------------


def test_an_osc_message_changes_strength_in_the_running_app(show) -> None:
    app, hub, tick = show()
    app.step()
    SimpleUDPClient("127.0.0.1", hub.osc.address[1]).send_message("/livedream/strength", 0.0625)  # exact in OSC float32
    frames = step_until(app, lambda: app.params.strength == 0.0625)
    print(f"strength changed after {frames} frame(s)")
    app.step()
    assert tick.seen[-1].strength == 0.0625  # it stays
    step_until(app, lambda: app.dreaming is not None and app.dreaming.strength == 0.0625)  # the worker got it


def test_osc_screenshot_writes_a_png_of_the_window(show, tmp_path: Path) -> None:
    app, hub, _ = show()
    app.step()
    SimpleUDPClient("127.0.0.1", hub.osc.address[1]).send_message("/livedream/screenshot", [])
    step_until(app, lambda: len(app.screenshots.saved) > 0)
    shots = sorted((tmp_path / "shots").glob("*.png"))
    assert shots == list(app.screenshots.saved)
    assert pygame.image.load(str(shots[0])).get_size() == WINDOW


def test_osc_pause_toggles_the_pause_like_the_space_key(show) -> None:
    app, hub, _ = show()
    SimpleUDPClient("127.0.0.1", hub.osc.address[1]).send_message("/livedream/pause", [])
    step_until(app, lambda: app.paused)
    dreamed = app.dreamed
    app.step()
    assert app.dreamed == dreamed


def test_key_2_crossfades_to_the_second_preset(show) -> None:
    app, hub, tick = show(presets={"crossfade": 2.0})
    app.step()
    start, deep = app.params, hub.presets.params_of("deep")  # order: calm, deep, infinite
    post_key(pygame.K_2, "2")
    for _ in range(int(2.0 / FRAME_S) + 2):
        app.step()
    during = [params.strength for params in tick.seen[1:]]
    print("strength per frame:", [round(value, 4) for value in during])
    between = [value for value in during if start.strength < value < deep.strength]
    assert len(between) >= 5  # 2 s at 0.25 s per frame: blended frames, no hard cut
    assert during == sorted(during)  # a fade, not a jump back and forth
    assert app.params == deep and tick.seen[-1] == deep


def test_hud_shows_the_preset_the_motion_level_and_the_osc_port(show) -> None:
    app, hub, _ = show()
    app.source = Flicker()  # every pixel changes on every frame: full motion
    post_key(pygame.K_3, "3")
    for _ in range(6):
        app.step()
    lines = app.hud_stats.extra
    print("\n".join(lines))
    preset = next(line for line in lines if line.startswith("preset "))
    motion = next(line for line in lines if line.startswith("motion "))
    assert preset.startswith("preset infinite (crossfade")
    assert float(motion.split()[1]) > 0.5  # the loop shows the camera frames to the hub
    assert any(line.startswith(f"OSC 127.0.0.1:{hub.osc.address[1]}   OSCQuery :") for line in lines)


def test_the_hud_and_the_log_say_where_the_dream_runs_and_why(show, caplog) -> None:
    with caplog.at_level("INFO", logger="livedream.live.models"):
        app, _, _ = show(model={"device": "cpu"})
    app.step()
    assert 'on CPU: [model] device = "cpu"' in app.hud_stats.extra
    assert any(r.getMessage().endswith('on CPU: [model] device = "cpu"') for r in caplog.records)


def test_record_key_records_the_shown_frames(show, tmp_path: Path) -> None:
    app, hub, _ = show()
    post_key(pygame.K_r, "r")
    for _ in range(4):
        app.step()
        assert app.outputs.flush()  # the recorder writes on its own thread: let it take each frame
    [recorder] = [worker.output for worker in app.outputs.workers if isinstance(worker.output, Recorder)]
    assert recorder.recording and recorder.frames_written == 4  # every frame shown, from the first
    app.step()
    assert any(line.startswith("REC ") for line in app.hud_stats.extra)
    post_key(pygame.K_r, "r")
    app.step()
    app.outputs.flush()
    saved = list((tmp_path / "rec").iterdir())
    assert not recorder.recording and len(saved) == 1 and saved[0].suffix == ".mp4"


def test_a_preset_naming_a_missing_model_fails_at_start(small_graph: Path, tmp_path: Path) -> None:
    config = show_config(small_graph, tmp_path, presets={"calm": {}, "deep": {}, "infinite": {"model": "no-such-model"}})
    hub = ControlHub(config, open_devices=False)
    try:
        assert hub.preset_models() == {small_graph.stem, "no-such-model"}
        with pytest.raises(UserError, match="no-such-model"):
            open_app(config, controls=[hub], models_dir=small_graph.parent, models=hub.preset_models())
    finally:
        hub.close()


# --- model switches ----------------------------------------------------------------------------


class CountingEngine:
    """The small graph, counting the gradients it computes."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.min_size = engine.min_size
        self.provider = engine.provider
        self.calls = 0

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
        self.calls += 1
        return self.engine.gradient(image, mask)


def test_switching_models_back_and_forth_reuses_the_sessions_and_runs_the_new_one(small_engine) -> None:
    engines = {"small": CountingEngine(small_engine), "other": CountingEngine(small_engine)}
    loads: list[str] = []

    def load(name: str) -> CountingEngine:
        loads.append(name)
        return engines[name]

    class Alternate(PassiveControls):
        def update(self, params: Params, now: float) -> Params:
            return dataclasses.replace(params, model="other" if params.model == "small" else "small")

    app = LiveApp(ScriptedSource(grey_picture()), LiveDreamer(), windowed_display(),
                  dataclasses.replace(DREAM, model="small"), models_of(engines["small"], "small", load),
                  controls=[Alternate()], threaded=False, show_fps=0)
    with app:
        app.run(max_frames=6)
    assert loads == ["other"]  # loaded once, then kept
    # Each switch really runs that graph (the dream's workspace must not pin the first engine).
    assert engines["small"].calls == 3 and engines["other"].calls == 3


# --- the guarded engine ------------------------------------------------------------------------


class FlakyEngine(CountingEngine):
    """Fails every `every`-th gradient with an ONNX Runtime error."""

    def __init__(self, engine, every: int) -> None:
        super().__init__(engine)
        self.every = every

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
        self.calls += 1
        if self.every and self.calls % self.every == 0:
            raise ort_errors.Fail(f"[ONNXRuntimeError] : 1 : FAIL : fake fault on call {self.calls}")
        return self.engine.gradient(image, mask)


@pytest.fixture
def guarded_app(small_engine, tmp_path: Path):
    apps: list[LiveApp] = []

    def make(factory, params: Params, **options) -> LiveApp:
        clock = FakeClock()
        guard = GuardedModel(lambda: as_model(factory()), restart_after=3, clock=clock)
        display = windowed_display(screenshot_dir=str(tmp_path / "shots"))
        app = LiveApp(ScriptedSource(grey_picture()), LiveDreamer(), display, params,
                      models_of(None, params.model, guard=guard), controls=[Tick(clock)], clock=clock,
                      **{"threaded": False, "show_fps": 0, **options})
        app.open()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def test_an_engine_error_skips_that_frame_keeps_the_last_image_and_the_loop_goes_on(
    guarded_app, small_engine, caplog
) -> None:
    flaky = FlakyEngine(small_engine, every=3)
    app = guarded_app(lambda: flaky, dataclasses.replace(DREAM, steps=1))  # one gradient per frame
    with caplog.at_level(logging.INFO):
        app.step()
        app.step()
        last_image = app.shown_image.copy()
        app.step()  # the 3rd gradient fails
        assert app.dreamed == 2 and app.frames == 3 and app.models.frames_skipped == 1
        assert np.array_equal(app.shown_image, last_image)
        stats = app.run(max_frames=6)
    assert stats.frames == 6 and stats.dreamed == 4  # gradients 6 and 9 fail too
    assert app.models.frames_skipped == 3 and app.models.restarts == 0
    skipped = [r for r in caplog.records if r.getMessage().startswith("dream engine failed on a frame; skipping it")]
    assert len(skipped) == 3 and all("fake fault" in r.getMessage() for r in skipped)
    assert any(line.startswith("engine: 3 frame(s) skipped") for line in app.hud_stats.extra)


def test_k_failed_frames_in_a_row_re_create_the_engine_once(guarded_app, small_engine, caplog) -> None:
    made: list[CountingEngine] = []

    def factory() -> CountingEngine:  # the first session fails on every frame, the next one works
        made.append(FlakyEngine(small_engine, every=3) if not made else CountingEngine(small_engine))
        return made[-1]

    app = guarded_app(factory, dataclasses.replace(DREAM, steps=3))  # 3 gradients per frame: every frame fails
    with caplog.at_level(logging.INFO):
        app.step()
        assert app.banner == "dream engine error — 1 frame(s) skipped"
        stats = app.run(max_frames=7)
    assert len(made) == 2 and app.models.restarts == 1  # re-created once, after 3 failed frames in a row
    assert app.models.frames_skipped == 3 and stats.dreamed == 5 and app.models.guard.loaded.engine is made[1]
    assert made[1].calls == 5 * 3
    restarts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("restarting the dream engine")]
    assert len(restarts) == 1 and "after 3 failed frame(s)" in restarts[0]
    assert app.banner is None


def test_a_stop_between_steps_is_not_an_engine_fault(guarded_app, small_engine) -> None:
    class StopOnSecondGradient(CountingEngine):
        def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
            self.calls += 1
            if self.calls == 2:
                app.stop("test")
            return self.engine.gradient(image, mask)

    engine = StopOnSecondGradient(small_engine)
    app = guarded_app(lambda: engine, dataclasses.replace(DREAM, steps=5))
    stats = app.run(max_frames=10)
    assert engine.calls == 2 and stats.frames == 1 and stats.dreamed == 0  # stopped after one step
    assert app.models.frames_skipped == 0 and app.models.guard.state == ""


# --- opening hours -----------------------------------------------------------------------------


class Counted(ScriptedSource):
    def __init__(self, image: np.ndarray) -> None:
        super().__init__(image)
        self.reads = 0

    def read(self) -> Frame:
        self.reads += 1
        return super().read()


def test_outside_opening_hours_the_screen_is_black_and_nothing_is_dreamed(make_app_with_schedule, caplog) -> None:
    wall = {"time": datetime.datetime(2026, 5, 4, 20, 58)}
    app, source = make_app_with_schedule(lambda: wall["time"])
    with caplog.at_level(logging.INFO, logger="livedream.live"):
        app.run(max_frames=2)
        assert app.dreamed == 2 and source.reads == 2 and window_pixels().max() > 0
        wall["time"] = datetime.datetime(2026, 5, 4, 22, 30)  # closing time has passed
        stats = app.run(max_frames=3)
        assert stats.frames == 3 and stats.dreamed == 0 and source.reads == 2  # nothing read, nothing dreamed
        assert window_pixels().max() == 0  # black, no banner (HUD off)
        wall["time"] = datetime.datetime(2026, 5, 5, 10, 0)  # the next morning
        stats = app.run(max_frames=2)
    assert stats.dreamed == 2 and source.reads == 4 and window_pixels().max() > 0
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("outside opening hours (on 09:00 – off 21:00): dark until 09:00") == 1
    assert messages.count("opening hours (on 09:00 – off 21:00): dreaming until 21:00") == 2


def test_sigterm_stops_the_loop_while_dark(make_app_with_schedule) -> None:
    app, _ = make_app_with_schedule(lambda: datetime.datetime(2026, 5, 4, 3, 0))
    looping = threading.Event()
    app.controls.append(_Watcher(lambda calls: calls == 2 and looping.set()))
    sender = threading.Thread(target=lambda: looping.wait(60) and os.kill(os.getpid(), signal.SIGTERM))
    sender.start()
    stats = app.run(max_frames=1000)
    sender.join()
    assert stats.stopped_by == "signal SIGTERM" and 2 <= stats.frames <= 3 and stats.dreamed == 0


class _Watcher(PassiveControls):
    def __init__(self, look) -> None:
        self.calls = 0
        self.look = look

    def update(self, params: Params, now: float) -> Params:
        self.calls += 1
        self.look(self.calls)
        return params


@pytest.fixture
def make_app_with_schedule(small_engine, tmp_path: Path):
    apps: list[LiveApp] = []

    def make(wall_clock) -> tuple[LiveApp, Counted]:
        source = Counted(grey_picture())
        display = windowed_display(hud=False)
        schedule = DailySchedule(datetime.time(9, 0), datetime.time(21, 0))
        app = LiveApp(source, LiveDreamer(), display, DREAM, models_of(small_engine), schedule=schedule,
                      wall_clock=wall_clock, threaded=False, show_fps=0)
        app.open()
        apps.append(app)
        return app, source

    yield make
    for app in apps:
        app.close()


# --- health ------------------------------------------------------------------------------------


def test_health_line_once_per_interval_on_the_loops_clock(small_engine, caplog) -> None:
    clock = FakeClock()
    health = HealthReporter(interval_s=1.0, read_rss=lambda: 100 * 2**20)
    display = windowed_display()
    app = LiveApp(ScriptedSource(grey_picture()), LiveDreamer(), display, DREAM, models_of(small_engine),
                  controls=[Tick(clock)], health=health, clock=clock, threaded=False, show_fps=0)
    with caplog.at_level(logging.INFO, logger="livedream.health"), app:
        app.run(max_frames=4)
        assert health.last_line is None  # 0.75 s of fake time so far
        app.run(max_frames=1)
    lines = [record.getMessage() for record in caplog.records if record.name == "livedream.health"]
    print(lines)
    assert len(lines) == 1 and lines[0] == health.last_line
    assert lines[0].startswith("health: 5.0 fps · dream ")  # 5 frames in the 1 s window
    assert " · CPU · source live · RSS 100 MB · dropped 0 · max gap 0.25 s" in lines[0]


# --- the command ---------------------------------------------------------------------------------


def test_run_command_wires_logging_and_the_hub_and_prints_the_summary(
    small_graph: Path, tmp_path: Path, capsys
) -> None:
    config = tmp_path / "show.toml"
    config.write_text(
        f'[osc]\nport = 0\nquery_port = 0\n[log]\ndir = "{tmp_path / "log"}"\n[display]\nwindow_width = 320\nwindow_height = 240\n'
        f'screenshot_dir = "{tmp_path / "shots"}"\n[outputs]\nrecord_folder = "{tmp_path / "rec"}"\n'
    )
    argv = ["run", "--config", str(config), "--source", "demo", "--windowed", "--size", "128x96",
            "--steps", "1", "--frames", "3", "--model", str(small_graph)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "LiveDream: 3 frames" in out and f"log {tmp_path / 'log' / 'livedream.log'}" in out
    assert (tmp_path / "log" / "livedream.log").is_file()


def test_a_busy_osc_port_is_a_one_line_error(small_graph: Path, tmp_path: Path, capsys) -> None:
    holder = ControlHub(show_config(small_graph, tmp_path), open_devices=False)
    try:
        busy = tmp_path / "busy.toml"
        busy.write_text(f'[osc]\nport = {holder.osc.address[1]}\n[log]\ndir = "{tmp_path / "log"}"\n')
        assert cli.main(["run", "--config", str(busy), "--source", "demo", "--windowed", "--frames", "1",
                         "--model", str(small_graph)]) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "OSC port" in err and "is in use" in err
