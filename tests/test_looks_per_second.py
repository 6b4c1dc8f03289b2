"""Looks that do not depend on the frame rate: a show tuned at 8 fps reaches the same look at
60 fps after the same seconds, only smoother. The feedback is per second (`Params`), turned
into one frame's share from the frame time the app measures on its clock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livedream.live.app import LiveApp
from livedream.params import MAX_FRAME_S, Params, per_frame
from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.dreamer import LiveDreamer
from livedream.pipeline.sources import DemoSource
from tests.conftest import models_of
from tests.test_app import isolated_logging  # noqa: F401 - autouse
from tests.test_app_wiring import FakeClock, windowed_display

SHOW = Params(dream_height=48, dream_width=64, steps=0, half_life=1.0, zoom_per_s=0.3, rotate_per_s=20.0,
              shift_x_per_s=6.0)
SECONDS = 2.0
RATES = (8, 60)


def compounded(params: Params, frame_times: list[float]) -> tuple[float, float, float, float]:
    """(zoom factor, rotation, shift, share of the first frame's dream left) after `frame_times`."""
    zoom, rotate, shift, left = 1.0, 0.0, 0.0, 1.0
    for frame_s in frame_times:
        one = per_frame(params, frame_s)
        zoom *= 1.0 + one.feedback.zoom
        rotate += one.feedback.rotate
        shift += one.feedback.shift_x
        left *= one.decay
    return zoom, rotate, shift, left


@pytest.mark.parametrize("rate", RATES)
def test_per_second_feedback_adds_up_to_the_same_second_at_any_rate(rate: int) -> None:
    zoom, rotate, shift, left = compounded(SHOW, [1 / rate] * int(SECONDS * rate))
    assert zoom == pytest.approx(1.3**SECONDS, rel=1e-9)
    assert rotate == pytest.approx(20.0 * SECONDS, rel=1e-9)
    assert shift == pytest.approx(6.0 * SECONDS, rel=1e-9)
    assert left == pytest.approx(0.5 ** (SECONDS / 1.0), rel=1e-9)


def test_a_hang_counts_for_at_most_max_frame_s() -> None:
    assert per_frame(SHOW, 30.0) == per_frame(SHOW, MAX_FRAME_S)


class TimedDreamer(LiveDreamer):
    """The real dreamer, noting the frame time the app's dream worker hands it each dream."""

    def __init__(self) -> None:
        super().__init__()
        self.frame_times: list[float] = []

    def dream_detail(self, frame_rgb, params, model, carried=None, should_stop=None, frame_s=1 / 20, *plan):
        self.frame_times.append(frame_s)
        return super().dream_detail(frame_rgb, params, model, carried, should_stop, frame_s, *plan)


def run_show_at(rate: int, small_engine) -> list[float]:
    """The app on a fake clock that moves 1/rate s per frame, for SECONDS after its first dream."""
    clock = FakeClock()
    dreamer = TimedDreamer()
    app = LiveApp(DemoSource(SHOW.dream_width, SHOW.dream_height), dreamer, windowed_display(), SHOW,
                  models_of(small_engine, SHOW.model), clock=clock, threaded=False, show_fps=0)
    with app:
        for _ in range(int(SECONDS * rate) + 1):
            app.step()
            clock.now += 1 / rate
    return dreamer.frame_times[1:]  # the first dream has nothing to carry


def test_the_app_at_8_and_60_fps_reaches_the_same_feedback_after_the_same_seconds(small_engine) -> None:
    slow = compounded(SHOW, run_show_at(8, small_engine))
    fast = compounded(SHOW, run_show_at(60, small_engine))
    print(f"after {SECONDS} s: 8 fps {slow}, 60 fps {fast}")
    assert slow == pytest.approx(fast, rel=1e-6)
    assert slow[0] == pytest.approx(1.3**SECONDS, rel=1e-6)  # per second, not per frame
    per_frame_zoom_at_60 = (1 + SHOW.zoom_per_s) ** (SECONDS * 60)  # what a per-frame zoom would have done
    assert fast[0] < per_frame_zoom_at_60 / 1000


def carried_detail_after(rate: int) -> np.ndarray:
    """A bright disc of dream detail carried by the real warper over a still scene for SECONDS."""
    height, width = 96, 128
    still = np.full((height, width, 3), 128, np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    detail = np.zeros((1, 3, height, width), np.float32)
    detail[0, :, (yy - 52) ** 2 + (xx - 60) ** 2 < 8**2] = 1.0
    warper = DetailWarper()
    warper.carry(still, None, 0.0)  # the first frame: nothing to carry yet
    for _ in range(int(SECONDS * rate)):
        one = per_frame(SHOW, 1 / rate)
        detail = warper.carry(still, detail, one.decay, one.feedback).copy()
    return detail[0, 0]


def centroid_and_mass(detail: np.ndarray) -> tuple[float, float, float]:
    yy, xx = np.mgrid[0:detail.shape[0], 0:detail.shape[1]]
    mass = float(detail.sum())
    return float((detail * xx).sum() / mass), float((detail * yy).sum() / mass), mass


def test_carried_dream_looks_the_same_after_two_seconds_at_8_and_60_fps() -> None:
    """Decay state (the detail's mass) and the zoom, rotation and shift (where it went and how
    big it grew) agree within a few percent; per-frame feedback would differ many times over."""
    slow_x, slow_y, slow_mass = centroid_and_mass(carried_detail_after(8))
    fast_x, fast_y, fast_mass = centroid_and_mass(carried_detail_after(60))
    print(f"8 fps: centre ({slow_x:.1f}, {slow_y:.1f}) mass {slow_mass:.1f}; "
          f"60 fps: centre ({fast_x:.1f}, {fast_y:.1f}) mass {fast_mass:.1f}")
    assert fast_mass == pytest.approx(slow_mass, rel=0.05)
    assert math.hypot(fast_x - slow_x, fast_y - slow_y) < 1.5  # pixels, of a disc that moved ~20
    start_mass = math.pi * 8**2
    grown = 1.3 ** (2 * SECONDS)  # area grows with the zoom squared; half of it decays away each second
    assert slow_mass == pytest.approx(start_mass * grown * 0.5**SECONDS, rel=0.1)


OLD_NAMES = {"decay": "half_life", "zoom": "zoom_per_s", "rotate": "rotate_per_s", "shift_x": "shift_x_per_s",
             "shift_y": "shift_y_per_s"}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
@pytest.mark.parametrize("where", ["dream", "preset"])
def test_a_per_frame_name_of_an_earlier_release_is_refused_with_its_successor(old: str, where: str) -> None:
    from livedream.config import parse_config
    from livedream.errors import UserError

    document = {"dream": {old: 0.1}} if where == "dream" else {"presets": {"mine": {old: 0.1}}}
    with pytest.raises(UserError) as refused:
        parse_config(document)
    message = str(refused.value)
    assert "\n" not in message and f"{old} was per frame" in message and OLD_NAMES[old] in message


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_a_live_message_with_a_per_frame_name_changes_nothing_and_says_why(old: str) -> None:
    params, warnings = Params().clamped(**{old: 0.1})
    assert params == Params() and len(warnings) == 1 and OLD_NAMES[old] in warnings[0]


@pytest.mark.parametrize("command", [["run", "--decay", "0.9"], ["dream", "--decay", "0.9", "x.mp4", "-o", "y.mp4"]])
def test_the_decay_flag_is_refused_with_the_half_life_flag(command: list[str], capsys) -> None:
    from livedream import cli

    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--decay was per frame; use --half-life S" in err
