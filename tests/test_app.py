"""The live loop under SDL's dummy driver with a small random graph: it dreams every shown
frame, drops (never queues) source frames, obeys keys, pauses, saves screenshots, survives
a lost camera, stops on SIGTERM; and its command line fails in one line."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

from livedream.runtime.engine import NO_VISITORS
import pygame
import pytest

from livedream import cli
from livedream.config import DisplayConfig
from livedream.errors import UserError
from livedream.live.app import LiveApp
from livedream.live.budget import FrameBudget
from livedream.live.controls import PassiveControls
from livedream.params import Params
from livedream.pipeline.display import BANNER_COLOUR, Display
from livedream.pipeline.dreamer import LiveDreamer
from livedream.pipeline.frames import LIVE, Frame
from livedream.pipeline.images import cropped_to_aspect
from livedream.pipeline.sources import DemoSource
from tests.conftest import models_of

DREAM = Params(dream_height=96, dream_width=128, steps=1, strength=0.05, half_life=0.9)
WINDOW = (320, 240)


class ScriptedSource:
    """A source that serves one fixed picture; each read advances the index by `advance`
    (3 = three frames arrived since the last read, as from a camera faster than the loop)."""

    def __init__(self, image: np.ndarray, advance: int = 1) -> None:
        self.image = image
        self.advance = advance
        self.state = LIVE
        self.noun = "camera"
        self.newest_index = 0
        self.closed = False

    def start(self) -> None:
        pass

    def read(self) -> Frame:
        self.newest_index += self.advance
        return Frame(self.image, self.newest_index, 0.0)

    def close(self) -> None:
        self.closed = True


class Recorder(PassiveControls):
    """A `Controls` that changes nothing and lets a test look at the app once per frame."""

    def __init__(self, look=None) -> None:
        self.calls = 0
        self.look = look

    def update(self, params: Params, now: float) -> Params:
        self.calls += 1
        if self.look is not None:
            self.look(self.calls)
        return params


def grey_picture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(90, 170, (DREAM.dream_height, DREAM.dream_width, 3), dtype=np.uint8)


@pytest.fixture
def make_app(small_engine, tmp_path: Path):
    apps: list[LiveApp] = []

    def make(source=None, params: Params = DREAM, hud: bool = True, engine=None, fit: str = "letterbox",
             **options) -> LiveApp:
        display = Display(DisplayConfig(
            fullscreen=False, window_width=WINDOW[0], window_height=WINDOW[1], hud=hud, fit=fit,
            screenshot_dir=str(tmp_path / "shots"),
        ))
        source = source or DemoSource(params.dream_width, params.dream_height)
        models = models_of(engine or small_engine, params.model, options.pop("load_engine", None))
        options.setdefault("threaded", False)  # one dream per shown frame: counts a test can assert
        options.setdefault("show_fps", 0)
        app = LiveApp(source, LiveDreamer(), display, params, models, **options)
        app.open()
        display.poll()  # drop the window's start-up events
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture(autouse=True)
def isolated_logging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`livedream run` sets up logging: keep its file under tmp_path and undo its handlers."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = (sys.excepthook, threading.excepthook)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)


def post_key(key: int, char: str = "") -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, unicode=char, mod=0, scancode=0))


def window_pixels() -> np.ndarray:
    return pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)


def loss_of(engine, image_rgb: np.ndarray) -> float:
    unit = image_rgb.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1
    loss, _ = engine.gradient(np.ascontiguousarray(unit))
    return loss


# --- dreaming ---------------------------------------------------------------------------------


def test_every_shown_frame_differs_from_its_source_frame(make_app) -> None:
    differences: list[float] = []
    app: LiveApp

    def compare_last_frame(call: int) -> None:
        if call > 1:  # from the second frame on, the previous frame is on screen
            source = app.source_frame.image.astype(np.float32)
            differences.append(float(np.abs(app.shown_image.astype(np.float32) - source).mean()))

    recorder = Recorder(compare_last_frame)
    app = make_app(controls=[recorder])
    stats = app.run(max_frames=6)
    print("mean |shown - source| per frame:", [round(d, 2) for d in differences])
    assert stats.frames == 6 and stats.dreamed == 6 and recorder.calls == 6
    assert len(differences) == 5 and min(differences) > 1.0
    assert set(stats.stage_ms) == {"capture", "visitors", "flow", "compose", "display", "dream", "interval", "age"}
    assert stats.stage_ms["dream"] > 0 and stats.stopped_by == "frames"


def test_loss_rises_with_steps_on_the_same_frame(make_app, small_engine) -> None:
    picture = grey_picture()
    shown = {}
    for steps in (0, 3):
        app = make_app(ScriptedSource(picture, advance=0), params=dataclasses.replace(DREAM, steps=steps, strength=0.1, half_life=0.0))
        app.step()
        shown[steps] = app.shown_image.copy()
    assert np.array_equal(shown[0], picture)  # no steps, nothing carried: the source itself
    loss_before, loss_after = loss_of(small_engine, shown[0]), loss_of(small_engine, shown[3])
    print(f"loss 0 steps {loss_before:.4f}, 3 steps {loss_after:.4f}")
    assert loss_after > loss_before


def test_source_frames_are_dropped_not_queued_when_the_dream_is_slower(make_app) -> None:
    source = ScriptedSource(grey_picture(), advance=3)
    read_newest: list[bool] = []
    app: LiveApp

    def check_newest(call: int) -> None:
        if call > 1:
            read_newest.append(app.source_frame.index == source.newest_index)

    app = make_app(source, controls=[Recorder(check_newest)])
    stats = app.run(max_frames=5)
    assert all(read_newest) and len(read_newest) == 4
    assert (stats.source_frames, stats.dropped, stats.reused) == (13, 8, 0)
    assert stats.dreamed == 5 < stats.source_frames


def test_a_still_scene_keeps_deepening_unless_told_not_to(make_app) -> None:
    for deepen, expected_dreams in ((True, 3), (False, 1)):
        app = make_app(ScriptedSource(grey_picture(), advance=0), deepen=deepen)
        stats = app.run(max_frames=3)
        assert stats.dreamed == expected_dreams and stats.reused == 2


def test_dream_of_a_wider_source_is_cut_to_its_aspect_not_squashed() -> None:
    wide = np.zeros((720, 1280, 3), np.uint8)
    view = cropped_to_aspect(wide, 240, 320)
    assert view.shape == (720, 960, 3) and np.shares_memory(view, wide)
    assert cropped_to_aspect(wide, 360, 640) is wide
    assert cropped_to_aspect(wide, 640, 360).shape == (720, 405, 3)


# --- keys -------------------------------------------------------------------------------------


def test_keys_change_params_through_clamping_and_are_logged(make_app, caplog) -> None:
    app = make_app(ScriptedSource(grey_picture()), params=dataclasses.replace(DREAM, strength=0.02, steps=1))
    with caplog.at_level(logging.INFO, logger="livedream.live"):
        post_key(pygame.K_PLUS, "+")
        post_key(pygame.K_RIGHTBRACKET, "]")
        app.step()
        assert (app.params.strength, app.params.steps) == (0.025, 2)
        for _ in range(4):
            post_key(pygame.K_LEFTBRACKET, "[")
        post_key(pygame.K_MINUS, "-")
        app.step()
    assert (app.params.strength, app.params.steps) == (0.02, 0)
    messages = [record.getMessage() for record in caplog.records]
    assert "key: strength 0.02 → 0.025" in messages
    assert any("steps" in message and "clamped to 0" in message for message in messages)


def test_key_w_cycles_where_and_the_hud_says_who_dreams(make_app) -> None:
    app = make_app(ScriptedSource(grey_picture()), params=DREAM)
    seen = []
    for _ in range(3):
        post_key(pygame.K_w, "w")
        app.step()
        seen.append(app.params.where.name)
        assert any(line.startswith(f"where {seen[-1]}") for line in app.hud_stats.lines())
    assert seen == ["visitors", "room", "all"]


class PresetBank(PassiveControls):
    """A `Controls` plus a recall function, as the control package plugs presets in."""

    def __init__(self, presets: dict[int, Params]) -> None:
        self.presets = presets
        self.pending: Params | None = None

    def recall(self, slot: int, now: float) -> bool:
        self.pending = self.presets.get(slot)
        return self.pending is not None

    def update(self, params: Params, now: float) -> Params:
        chosen, self.pending = self.pending, None
        return chosen or params


def test_preset_keys_recall_presets_through_the_seam(make_app) -> None:
    calm = dataclasses.replace(DREAM, strength=0.01, half_life=0.5)
    bank = PresetBank({2: calm})
    app = make_app(ScriptedSource(grey_picture()), controls=[bank], recall_preset=bank.recall)
    post_key(pygame.K_7, "7")
    app.step()
    assert app.params == DREAM
    post_key(pygame.K_2, "2")
    app.step()
    assert app.params == calm


def test_preset_keys_without_presets_say_so(make_app, caplog) -> None:
    app = make_app(ScriptedSource(grey_picture()))
    with caplog.at_level(logging.INFO, logger="livedream.live"):
        post_key(pygame.K_3, "3")
        app.step()
    assert app.params == DREAM
    assert "preset 3 not defined" in [record.getMessage() for record in caplog.records]


def test_pause_freezes_the_output_until_pressed_again(make_app) -> None:
    app = make_app()  # the demo moves
    app.step()
    post_key(pygame.K_SPACE, " ")
    app.step()
    frozen, dreamed = app.shown_image.copy(), app.dreamed
    for _ in range(3):
        app.step()
    assert app.paused and app.dreamed == dreamed
    assert np.array_equal(app.shown_image, frozen)
    post_key(pygame.K_SPACE, " ")
    app.step()
    assert not app.paused and app.dreamed == dreamed + 1
    assert not np.array_equal(app.shown_image, frozen)


def test_screenshot_key_writes_a_png_of_the_window_size(make_app, tmp_path: Path) -> None:
    app = make_app(ScriptedSource(grey_picture()))
    post_key(pygame.K_s, "s")
    stats = app.run(max_frames=2)
    shots = sorted((tmp_path / "shots").glob("*.png"))
    assert len(shots) == 1 and stats.screenshots == (shots[0],)
    assert pygame.image.load(str(shots[0])).get_size() == WINDOW


def test_quit_key_ends_the_run(make_app) -> None:
    app = make_app(ScriptedSource(grey_picture()))
    post_key(pygame.K_ESCAPE)
    stats = app.run(max_frames=50)
    assert stats.stopped_by == "quit" and stats.frames == 1


# --- live faults and signals ---------------------------------------------------------------


def banner_pixels() -> int:
    """Pixels near the banner colour in the middle third of the window."""
    height = WINDOW[1]
    middle = window_pixels()[height // 3 : 2 * height // 3].astype(np.int32)
    return int((np.abs(middle - np.array(BANNER_COLOUR)).sum(axis=2) < 40).sum())


def test_lost_camera_shows_a_banner_on_the_last_frame_and_the_loop_goes_on(make_app) -> None:
    source = ScriptedSource(grey_picture(), advance=0)
    app = make_app(source, hud=False)
    app.run(max_frames=2)
    assert app.banner is None
    live_banner_pixels = banner_pixels()
    source.state = "lost — reconnecting in 2 s"
    stats = app.run(max_frames=3)
    assert stats.frames == 3 and stats.stopped_by == "frames"
    assert app.banner == "camera lost — reconnecting in 2 s"
    assert banner_pixels() > live_banner_pixels + 50


def test_sigterm_during_run_stops_the_loop_and_restores_the_handler(make_app) -> None:
    received: list[int] = []

    def outer_handler(signum, _frame) -> None:  # only runs if the app failed to handle it
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, outer_handler)
    looping = threading.Event()
    try:
        app = make_app(ScriptedSource(grey_picture()), controls=[Recorder(lambda call: call == 3 and looping.set())])
        sender = threading.Thread(target=lambda: looping.wait(60) and os.kill(os.getpid(), signal.SIGTERM))
        sender.start()
        stats = app.run(max_frames=500)
        sender.join()
        assert signal.getsignal(signal.SIGTERM) is outer_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stats.stopped_by == "signal SIGTERM"
    assert 3 <= stats.frames < 500 and stats.frames - 1 <= stats.dreamed <= stats.frames
    assert received == []


def test_a_stop_during_a_dream_waits_for_one_step_not_the_whole_frame(make_app, small_engine) -> None:
    class StopDuringSecondFrame:
        """The engine; its 6th gradient (frame 2, step 1) asks the loop to stop, as a signal would."""

        min_size = small_engine.min_size

        def __init__(self) -> None:
            self.calls = 0

        def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
            self.calls += 1
            if self.calls == 6:
                app.stop("test")
            return small_engine.gradient(image)

    engine = StopDuringSecondFrame()
    app = make_app(ScriptedSource(grey_picture()), params=dataclasses.replace(DREAM, steps=5), engine=engine)
    app.step()
    first_frame = app.shown_image.copy()
    stats = app.run(max_frames=10)
    assert engine.calls == 6 and stats.frames == 1 and stats.dreamed == 0
    assert np.array_equal(app.shown_image, first_frame)


def test_a_control_asking_for_an_unknown_model_keeps_the_running_one(make_app, caplog) -> None:
    class SwitchModel(PassiveControls):
        def update(self, params: Params, now: float) -> Params:
            return dataclasses.replace(params, model="nope")

    def refuse(name: str):
        raise UserError(f"model {name!r} is not in models/manifest.json")

    app = make_app(ScriptedSource(grey_picture()), controls=[SwitchModel()], load_engine=refuse)
    running = app.models.guard
    with caplog.at_level(logging.WARNING, logger="livedream.live"):
        stats = app.run(max_frames=2)
    assert stats.frames == 2 and app.models.guard is running and app.params.model == DREAM.model
    assert any("'nope' not loaded" in record.getMessage() for record in caplog.records)


# --- frame budget -----------------------------------------------------------------------------


def feed(budget: FrameBudget, params: Params, ms: float, frames: int = 40) -> Params:
    for _ in range(frames):
        budget.record(ms, params)
    return budget.apply(params)


def test_frame_budget_cuts_steps_then_size_and_restores_them() -> None:
    params = dataclasses.replace(DREAM, steps=3, dream_height=360, dream_width=640)
    budget = FrameBudget(10)  # 100 ms
    slow = feed(budget, params, 400.0, frames=60)
    assert slow.steps == 1 and slow.dream_height < 360 and slow.dream_width < 640
    assert slow.dream_height % 2 == 0 and slow.dream_height >= 75
    assert feed(budget, params, 10.0, frames=200) == params


def test_frame_budget_does_not_restore_what_would_break_it() -> None:
    params = dataclasses.replace(DREAM, steps=2)
    budget = FrameBudget(10)
    assert feed(budget, params, 150.0).steps == 1
    # 70 ms at one step is "fast", but two steps would predict 140 ms: stay at one.
    assert feed(budget, params, 70.0, frames=100).steps == 1


def test_no_target_fps_means_no_cuts() -> None:
    budget = FrameBudget(0)
    assert feed(budget, DREAM, 10_000.0) is DREAM


# --- command line -----------------------------------------------------------------------------


def test_keys_flag_prints_the_key_table(capsys) -> None:
    assert cli.main(["run", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "space" in out and "screenshot" in out and "preset" in out


def test_run_help_lists_the_keys(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--help"])
    assert exit_info.value.code == 0
    assert "keys while running:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--strength", "9"], "strength = 9.0 is not allowed"),
        (["--steps", "many"], "--steps 'many' is not allowed"),
        (["--size", "12x"], "--size '12x' is not allowed; use WIDTHxHEIGHT"),
        (["--size", "20x20"], "= 20 is not allowed; use an integer in 75.."),
        (["--source", "webcam"], 'kind = "webcam" is not allowed; use one of auto'),
        (["--video", "a.mp4", "--image", "b.jpg"], "choose one source"),
        (["--frames", "0"], "--frames '0' is not allowed; use a whole number >= 1"),
        (["--config", "no-such-config.toml"], "no such config file"),
        (["--model", "no-such-model"], "'no-such-model' is not in"),
        (["--source", "video"], 'kind = "video" needs path'),
    ],
)
def test_bad_run_options_are_one_line_errors_with_exit_code_2(argv: list[str], expected: str, capsys, tmp_path,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # its ./config.toml keeps the test off the machine's OSC port
    (tmp_path / "config.toml").write_text("[osc]\nenabled = false\n")
    stop_if_it_started = [] if "--frames" in argv else ["--windowed", "--frames", "1"]
    assert cli.main(["run", *argv, *stop_if_it_started]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedream: error: "), captured.err
    assert expected in lines[0] and "Traceback" not in captured.err


def test_bad_config_file_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[display]\nfit = "zoom"\n')
    assert cli.main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'fit = "zoom" is not allowed; use one of letterbox, crop, stretch' in err


def circle_aspect(image: np.ndarray) -> float:
    """Width / height of the bright disc in `image` (1.0 when it is round)."""
    ys, xs = np.nonzero(image.max(axis=2) > 200)
    return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)


@pytest.mark.parametrize("fit", ["letterbox", "crop"])
@pytest.mark.parametrize("dream_size", [(120, 160), (96, 96), (160, 90)])  # 4:3, square, portrait 9:16
def test_a_16_9_source_is_never_stretched_into_another_dream_aspect(make_app, dream_size, fit) -> None:
    """A round disc on a 16:9 frame stays round in the shown picture whatever the dream's
    size: with fit = letterbox the dream takes the source's aspect inside that size (the whole
    picture), with crop the source is cut to the size's aspect; never squashed. The window
    letterboxes or crops it."""
    source_picture = np.full((180, 320, 3), 40, np.uint8)
    cv2.circle(source_picture, (160, 90), 40, (255, 255, 255), -1)
    height, width = dream_size
    app = make_app(ScriptedSource(source_picture), hud=False, fit=fit, params=dataclasses.replace(
        DREAM, dream_height=height, dream_width=width, steps=0))
    app.step()
    shown = app.shown_image  # at the source's own resolution (dream small, show sharp)
    dreamed = app.effective
    assert shown.shape[1] / shown.shape[0] == pytest.approx(dreamed.dream_width / dreamed.dream_height, rel=0.03)
    if fit == "letterbox":
        assert dreamed.dream_width <= width and dreamed.dream_height <= height or min(dreamed.dream_height,
                                                                                       dreamed.dream_width) == 75
        if dream_size == (120, 160):  # room for 16:9 above the model's minimum: the whole picture
            assert (dreamed.dream_height, dreamed.dream_width) == (90, 160)
    else:
        assert shown.shape[1] / shown.shape[0] == pytest.approx(width / height, rel=0.02)
        assert (dreamed.dream_height, dreamed.dream_width) == dream_size
    assert circle_aspect(shown) == pytest.approx(1.0, abs=0.08)
    window = window_pixels()
    assert circle_aspect(window) == pytest.approx(1.0, abs=0.08)


class ShapeOutput:
    """Keeps the shape of every frame the outputs were handed."""

    name = "shapes"
    active = True
    status = ""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def send(self, frame_rgb: np.ndarray) -> None:
        self.shapes.append(frame_rgb.shape)

    def close(self) -> None:
        pass


def test_outputs_get_nothing_before_the_first_dream_then_the_shown_size(make_app) -> None:
    """A recording opens at the size of the first frame it gets: never the placeholder's
    dream size when the shown picture is the source's (a 720p recording that began 320x180)."""
    from livedream.outputs.seam import Outputs

    shapes = ShapeOutput()
    outputs = Outputs([shapes])
    source = ScriptedSource(np.full((180, 320, 3), 90, np.uint8))
    app = make_app(source, outputs=outputs, params=dataclasses.replace(DREAM, dream_height=90, dream_width=160))
    app._show(app.now, dark=False)  # a frame before anything was dreamed: the placeholder on screen
    outputs.flush()
    assert shapes.shapes == []
    for _ in range(3):
        app.step()
    outputs.flush()
    assert shapes.shapes and set(shapes.shapes) == {(180, 320, 3)}
