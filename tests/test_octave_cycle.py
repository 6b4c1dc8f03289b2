"""The octaves of the live dream (`live.schedule`): a whole-frame dream visits every scale of the
pyramid, coarsest first, and a standing visitor's box dreams visit them in turn, each starting
from the carried detail resampled to its scale and handing back a whole full-size detail; the
show loop never waits for them."""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np
import pytest

from livedream.live.app import LiveApp
from livedream.live.schedule import (
    BOX_MOST, MOVED, ROOM_EVERY_S, DreamPlan, DreamSchedule, OctaveCycle, box_share, whole_cost,
)
from livedream.params import Params, parse_where
from livedream.pipeline.dreamer import LiveDreamer, octave_steps
from livedream.pipeline.sources import DemoSource
from livedream.pipeline.visitors import Visitors, VisitorState
from livedream.runtime.engine import NO_VISITORS
from tests.conftest import as_model, models_of
from tests.test_two_rates import DREAM, NumberedSource, ShownLevels, display, worker_threads

CYCLE = dataclasses.replace(DREAM, dream_height=135, dream_width=180, octaves=3, octave_scale=1.3)


def test_the_box_cycle_visits_every_octave_coarsest_first_and_a_whole_frame_dreams_them_all():
    cycle = OctaveCycle()
    assert [cycle.next_octave(CYCLE) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    two = dataclasses.replace(CYCLE, octaves=2)
    assert [cycle.next_octave(two) for _ in range(3)] == [0, 1, 0]
    assert cycle.next_octave(dataclasses.replace(CYCLE, octaves=1)) is None
    schedule = DreamSchedule()
    assert [schedule.next_plan(CYCLE, None, t) for t in range(4)] == [DreamPlan(None)] * 4


def octave_factors(params: Params) -> list[float]:
    return [params.octave_scale ** -(params.octaves - 1 - octave) for octave in range(params.octaves)]


def test_a_coarse_octave_takes_more_steps_and_a_whole_dream_costs_every_octave_at_its_area():
    """1 step at full size: 0.77 of the sides takes 1 / 0.77 → 1 step, 0.59 takes 1.69 → 2."""
    assert [octave_steps(CYCLE, octave) for octave in range(3)] == [2, 1, 1]
    sides = [(int(135 * f), int(180 * f)) for f in octave_factors(CYCLE)]
    areas = [h * w / (135 * 180) for h, w in sides]
    assert whole_cost(CYCLE) == pytest.approx(sum(areas))
    assert whole_cost(dataclasses.replace(CYCLE, steps=2)) == pytest.approx(2 * sum(areas))
    assert whole_cost(dataclasses.replace(CYCLE, octaves=1, steps=3)) == 3


class RecordingEngine:
    """A zero gradient (a dream changes nothing) that keeps each image it is shown."""

    min_size = 75

    def __init__(self, delay_s: float = 0.0) -> None:
        self.images: list[np.ndarray] = []
        self.delay_s = delay_s

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        self.images.append(image.copy())
        time.sleep(self.delay_s)
        return 0.0, np.zeros_like(image)


def centroid(weights: np.ndarray) -> np.ndarray:
    """(y, x) of a non-negative (h, w) map's centre of mass, in pixel centres."""
    ys, xs = np.mgrid[0:weights.shape[0], 0:weights.shape[1]]
    return np.array([(ys * weights).sum(), (xs * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("octave", [0, 1, 2])
def test_a_coarse_dream_starts_from_the_carried_detail_resampled_to_its_scale(octave):
    """A bright blob in the carried detail sits where the scale puts it in the image the octave
    dreams (within a pixel of the full size), and comes back out where it was."""
    height, width = CYCLE.dream_height, CYCLE.dream_width
    frame = np.full((height, width, 3), 100, np.uint8)
    detail = np.zeros((height, width, 3), np.float32)
    cv2.circle(detail, (128, 43), 8, (60.0, 60.0, 60.0), -1)
    confidence = np.ones((height, width), np.float32)
    engine = RecordingEngine()
    params = dataclasses.replace(CYCLE, half_life=60.0)
    _, out = LiveDreamer().dream_detail(frame, params, as_model(engine), (detail, confidence), octave=octave)
    seen = engine.images[0][0].mean(axis=0) - (100 / 127.5 - 1)  # the image the octave dreamed, minus the frame
    factor = octave_factors(params)[octave]
    assert seen.shape == (int(height * factor), int(width * factor))
    ratio = np.array([height, width]) / np.array(seen.shape)  # the resize's own, a floored side's
    place = (centroid(np.clip(seen, 0, None)) + 0.5) * ratio - 0.5  # back in full-size pixels
    assert np.abs(place - centroid(detail[..., 0])).max() <= 1.0
    assert np.abs(centroid(np.clip(out[..., 0], 0, None).astype(np.float64)) - centroid(detail[..., 0])).max() <= 1.0


def test_dreams_of_every_octave_keep_the_shown_rate_and_each_is_handed_over_whole(tmp_path):
    """500 ms a gradient, three octaves in each dream (1.5 s a dream): the picture keeps the
    camera's rate, each dream goes coarsest first through all three, and each one handed over is
    whole: a detail at the dream's full size with every octave in it, which the picture takes (a
    detail of another size it would pass over). The room alone dreams (its flickering grey would
    be a visitor, whose box would come between)."""
    source = NumberedSource(CYCLE.dream_height, CYCLE.dream_width)
    engine = RecordingEngine(delay_s=0.5)
    room = dataclasses.replace(CYCLE, where=parse_where("room"))
    app = LiveApp(source, LiveDreamer(), display(tmp_path), room, models_of(engine), controls=[ShownLevels(source)],
                  show_fps=60)
    with app:
        stats = app.run(max_seconds=4.0)
    sizes = [image.shape[2:] for image in engine.images]  # one per gradient step
    print(f"{stats.frames} frames shown, {app.worker.dreams} dreams at {sizes}, {app.dreamed} taken")
    assert stats.frames > 10 * max(1, app.worker.dreams)
    expected = [(int(CYCLE.dream_height * f), int(CYCLE.dream_width * f)) for f in octave_factors(CYCLE)]
    assert CYCLE.steps == 1 and sizes[:6] == expected * 2
    assert app.dreamed >= app.worker.dreams - 1 >= 1  # every finished dream but the one in flight was taken
    assert not worker_threads()


def visitors_at(*boxes) -> Visitors:
    mask = np.zeros((90, 160), np.float32)
    return Visitors(mask, VisitorState.WATCHING, boxes)


@pytest.mark.parametrize("where, expected", [
    ("all", ["whole", "box", "box", "box", "whole", "box", "box"]),  # a room dream every ROOM_EVERY_S (2 s)
    ("visitors", ["box"] * 7),  # the room does not dream
    ("room", ["whole"] * 7),  # the visitors do not
])
def test_visitors_are_dreamed_between_whole_frames_as_where_asks(where, expected):
    """Dreams at 0.5 s intervals with a visitor there: the box between whole frames."""
    params = dataclasses.replace(CYCLE, where=parse_where(where))
    schedule = DreamSchedule()
    plans = [schedule.next_plan(params, visitors_at((0.4, 0.2, 0.6, 0.9)), 0.5 * n) for n in range(7)]
    assert ["whole" if plan.box is None else "box" for plan in plans] == expected


def test_with_nobody_there_or_a_moving_feedback_every_dream_is_whole():
    schedule = DreamSchedule()
    nobody = Visitors(np.zeros((90, 160), np.float32), VisitorState.WATCHING)
    zooming = dataclasses.replace(CYCLE, zoom_per_s=0.2)
    assert all(schedule.next_plan(CYCLE, nobody, 0.5 * n).box is None for n in range(5))
    assert all(schedule.next_plan(CYCLE, None, 0.5 * n).box is None for n in range(5))
    assert all(schedule.next_plan(zooming, visitors_at((0.4, 0.2, 0.6, 0.9)), 0.5 * n).box is None for n in range(5))


def test_the_box_holds_every_visitor():
    schedule = DreamSchedule()
    schedule.next_plan(CYCLE, None, 0.0)  # the room's dream: the next is a box
    plan = schedule.next_plan(CYCLE, visitors_at((0.1, 0.2, 0.2, 0.5), (0.3, 0.3, 0.4, 0.6)), 0.5)
    assert plan.box == (0.1, 0.2, 0.4, 0.6)


@pytest.mark.parametrize("boxes", [((0.05, 0.2, 0.15, 0.9), (0.85, 0.3, 0.95, 0.8)), ((0.1, 0.05, 0.9, 0.95),)],
                         ids=["visitors at both sides", "one close to the camera"])
def test_a_box_that_is_most_of_the_frame_is_dreamed_whole(boxes):
    """The box's dream takes BOX_STEPS times the steps on its share of the frame: when that is most
    of the frame (the margin included), a whole frame's dream costs less and dreams the room too."""
    schedule = DreamSchedule()
    schedule.next_plan(CYCLE, None, 0.0)
    x0s, y0s, x1s, y1s = zip(*boxes)
    union = min(x0s), min(y0s), max(x1s), max(y1s)
    assert box_share(CYCLE, union) > BOX_MOST
    assert all(schedule.next_plan(CYCLE, visitors_at(*boxes), 0.5 + 0.1 * n).box is None for n in range(5))


def test_a_visitor_on_the_move_gets_lean_coarse_box_dreams_and_one_who_stands_the_box_cycle():
    """Arriving and walking, the box moves more than MOVED between its dreams: each is lean (the
    live steps) at the coarsest octave, several a stride; standing, the box's own octave cycle
    at its steps. Whoever comes after an empty room arrives anew."""
    params = dataclasses.replace(CYCLE, where=parse_where("visitors"))
    schedule = DreamSchedule()
    step = 2 * MOVED
    walking = [schedule.next_plan(params, visitors_at((0.1 + step * n, 0.2, 0.3 + step * n, 0.9)), 0.2 * n)
               for n in range(4)]
    assert [(plan.lean, plan.octave) for plan in walking] == [(True, 0)] * 4
    standing = [schedule.next_plan(params, visitors_at((0.1 + step * 3, 0.2, 0.3 + step * 3, 0.9)), 1.0 + 0.2 * n)
                for n in range(4)]
    assert [(plan.lean, plan.octave) for plan in standing] == [(False, 0), (False, 1), (False, 2), (False, 0)]
    schedule.next_plan(params, None, 2.0)  # they left
    again = schedule.next_plan(params, visitors_at((0.1 + step * 3, 0.2, 0.3 + step * 3, 0.9)), 2.2)
    assert again.lean and again.box is not None


BAND = (0.0, 0.875, 1.0, 1.0)  # the bottom eighth: what a pan down brought in


def test_after_each_whole_frame_the_band_a_pan_brought_in_gets_a_lean_coarse_dream():
    schedule = DreamSchedule()
    plans = [schedule.next_plan(CYCLE, None, 0.5 * n, BAND) for n in range(6)]
    assert [plan.box for plan in plans] == [None, BAND] * 3
    assert all(plan.lean and plan.octave == 0 for plan in plans[1::2])
    assert all(plan == DreamPlan(None) for plan in plans[0::2])  # the whole frame's, every octave, between
    assert all(schedule.next_plan(CYCLE, None, 3.0 + n, None).box is None for n in range(3))  # no band: as before


def test_a_panning_camera_gets_the_band_it_brings_in_dreamed_between_whole_frames(tmp_path):
    """The demo's pan, sped up eight times, 200 ms a gradient: the loop finds the bare band along
    the edge the pan comes in by in the carry it offers, and the dream after a whole frame's is
    of a band as long as that edge; the whole frames go on between. A still camera gets none
    (`test_cycling_octaves_keeps_the_shown_rate_and_every_dream_is_whole`)."""
    params = dataclasses.replace(CYCLE, dream_height=180, dream_width=320, octaves=1, steps=1,
                                 where=parse_where("room"))
    start = time.monotonic()
    source = DemoSource(320, 180, clock=lambda: start + 8 * (time.monotonic() - start))
    engine = RecordingEngine(delay_s=0.2)
    app = LiveApp(source, LiveDreamer(), display(tmp_path), params, models_of(engine), show_fps=30)
    with app:
        app.run(max_seconds=4.0)
    sizes = [image.shape[2:] for image in engine.images]
    whole = (params.dream_height, params.dream_width)
    bands = [size for size in sizes if size != whole]
    print(f"{len(sizes)} dreams: {sizes}")
    assert bands, "no band was dreamed"
    assert all(rows == whole[0] or columns == whole[1] for rows, columns in bands)  # the length of an edge
    assert all(a == whole or b == whole for a, b in zip(sizes, sizes[1:]))  # never two bands in a row
    assert sizes.count(whole) >= len(bands)
    assert not worker_threads()


@pytest.mark.parametrize("case", ["the room does not dream", "a zoom", "most of the frame", "a visitor"])
def test_no_band_dream_where_the_room_is_not_dreamed_alone(case):
    """`where = "visitors"` never dreams the room; a feedback moves the whole carried dream; a
    band over BOX_MOST costs a whole frame's dream; a visitor's box comes first."""
    params, band, visitors = CYCLE, BAND, None
    if case == "the room does not dream":
        params = dataclasses.replace(CYCLE, where=parse_where("visitors"))
    elif case == "a zoom":
        params = dataclasses.replace(CYCLE, zoom_per_s=0.2)
    elif case == "most of the frame":
        band = (0.0, 0.2, 1.0, 1.0)
        assert box_share(CYCLE, band) > BOX_MOST
    else:
        visitors = visitors_at((0.4, 0.2, 0.6, 0.6))
    schedule = DreamSchedule()
    plans = [schedule.next_plan(params, visitors, 0.5 * n, band) for n in range(6)]
    assert all(plan.box != band for plan in plans)


def test_a_room_dream_in_flight_gives_way_once_to_a_visitor_who_arrives():
    """Planned with nobody there (long before: a slow dream), a whole frame's dream is abandoned
    when a visitor arrives (once); the plans of the next ROOM_EVERY_S are their box, and the
    room's own turn after that, planned with them there, is kept."""
    schedule = DreamSchedule()
    visitor = visitors_at((0.1, 0.2, 0.3, 0.9))
    assert schedule.next_plan(CYCLE, None, 0.0).box is None
    arrived = 1.5 * ROOM_EVERY_S
    assert not schedule.gives_way(CYCLE, None, arrived)
    assert schedule.gives_way(CYCLE, visitor, arrived)
    assert not schedule.gives_way(CYCLE, visitor, arrived)
    first = schedule.next_plan(CYCLE, visitor, arrived)
    assert first.box is not None and first.lean
    boxes = [schedule.next_plan(CYCLE, visitor, arrived + 0.25 * n) for n in range(1, int(4 * ROOM_EVERY_S))]
    assert all(plan.box is not None for plan in boxes)
    assert not schedule.gives_way(CYCLE, visitor, arrived + ROOM_EVERY_S)
    room = schedule.next_plan(CYCLE, visitor, arrived + ROOM_EVERY_S)
    assert room.box is None and not schedule.gives_way(CYCLE, visitor, arrived + ROOM_EVERY_S)


def test_a_visitor_found_and_lost_over_and_over_does_not_starve_the_room():
    """Each arrival within ROOM_EVERY_S of the last giving way leaves the room's dream in flight alone."""
    schedule = DreamSchedule()
    visitor = visitors_at((0.1, 0.2, 0.3, 0.9))
    gave_way = []
    for n in range(8):  # found, then lost, every quarter of a second
        now = 0.25 * n
        schedule.next_plan(CYCLE, None, now)  # lost: the room's dream
        gave_way.append(schedule.gives_way(CYCLE, visitor, now + 0.1))  # found again during it
    assert gave_way == [True] + [False] * 7
    schedule.next_plan(CYCLE, None, ROOM_EVERY_S + 0.5)
    assert schedule.gives_way(CYCLE, visitor, ROOM_EVERY_S + 0.6)


def test_where_the_visitors_do_not_dream_the_room_never_gives_way():
    params = dataclasses.replace(CYCLE, where=parse_where("room"))
    schedule = DreamSchedule()
    schedule.next_plan(params, None, 0.0)
    assert not schedule.gives_way(params, visitors_at((0.1, 0.2, 0.3, 0.9)), 0.5)
