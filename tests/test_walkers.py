"""A walker's carried detail moves with their outline (issue 40): the mask knows where each
visitor is in every frame, so the carry moves their detail by their outline's shift where the
optical flow cannot follow them (`pipeline.walkers`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livedream.pipeline.overlay import CarriedOverlay, FinishedDream
from livedream.pipeline.walkers import WalkerShifts
from livedream.testing.bench_streaks import SIZE, true_mask, walk_in
from livedream.testing.visitor_clip import Figure, Schedule, figure_silhouette, gallery_room, visitor_clip

SMALL = (90, 160)  # the analysis size the masks come at
FINE = 8  # outlines drawn this much finer, then reduced: sub-pixel positions, soft edges, as masks are


def outline(centre_x: float, tall: float = 0.8) -> np.ndarray:
    """A figure's mask at the analysis size, centred at `centre_x` small pixels (any fraction)."""
    height, width = SMALL
    fine = figure_silhouette(height * FINE, width * FINE, centre_x * FINE, tall).astype(np.float32)
    return cv2.resize(fine, (width, height), interpolation=cv2.INTER_AREA)


def widened(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask, np.ones((5, 5), np.uint8))


def test_a_walking_outline_gives_its_shift_to_the_flow() -> None:
    before, now = outline(60.0), outline(61.7)
    flow = np.zeros((*SMALL, 2), np.float32)
    assert WalkerShifts().apply(before, now, widened(now), flow) == 1
    inside = now > 0.5
    assert np.allclose(flow[inside, 0], -1.7, atol=0.25)
    assert np.allclose(flow[inside, 1], 0.0, atol=0.25)
    assert not flow[widened(now) == 0].any()  # the room's flow is not touched


def test_a_visitor_who_stands_keeps_the_flow() -> None:
    """Standing, swaying or gesturing, the flow follows a body better than one shift for all of it."""
    mask = outline(60.0)
    flow = np.full((*SMALL, 2), 0.1, np.float32)
    assert WalkerShifts().apply(mask, outline(60.1), widened(mask), flow) == 0
    assert np.all(flow == 0.1)


def test_two_visitors_walking_apart_each_get_their_own_shift() -> None:
    before = np.maximum(outline(40.0), outline(110.0))
    now = np.maximum(outline(38.0), outline(112.5))
    flow = np.zeros((*SMALL, 2), np.float32)
    assert WalkerShifts().apply(before, now, widened(now), flow) == 2
    assert np.allclose(flow[outline(38.0) > 0.5, 0], 2.0, atol=0.3)
    assert np.allclose(flow[outline(112.5) > 0.5, 0], -2.5, atol=0.3)


def test_an_outline_that_changes_shape_more_than_it_moves_keeps_the_flow() -> None:
    """A figure stepping in from the picture's edge, or two models' masks disagreeing for a
    frame, is no shift: the match's response falls and the flow stays."""
    before = outline(60.0, tall=0.5)
    now = outline(60.0, tall=1.0)
    flow = np.zeros((*SMALL, 2), np.float32)
    assert WalkerShifts().apply(before, now, widened(now), flow) == 0
    assert not flow.any()


@pytest.fixture(scope="module")
def walk():
    return walk_in(schedule=Schedule(empty=0.5, walk_in=2.0, stand=0.5, walk_out=0.0, after=0.0))


def carried_on_walker(frames, frames_carried: int) -> tuple[float, float, float]:
    """A dream of a walking figure (a mark on its outline) carried `frames_carried` frames by the
    live overlay with the true outline as the mask. Returns how far the mark's centre moved, how
    far the figure's did (dream pixels, across), and the share of the mark's energy that is
    shown on the figure."""
    start = next(index for index, frame in enumerate(frames) if frame.part == "walk_in") + 15
    overlay = CarriedOverlay()
    for frame in frames[start - 3:start + 1]:
        overlay.advance(frame.rgb, SIZE, true_mask(frame))
    overlay.offered()
    mark = np.where(frames[start].truth[..., None], 60, 0).astype(np.int16).repeat(3, axis=2)
    overlay.take(FinishedDream(frames[start].rgb.copy(), mark, start, 1, 0.0, 0.0))
    end = frames[start + frames_carried]
    for frame in frames[start + 1:start + frames_carried + 1]:
        overlay.advance(frame.rgb, SIZE, true_mask(frame))
    shown = overlay.shown(end.rgb).astype(np.float32) - end.rgb.astype(np.float32)
    energy = np.abs(shown).sum(axis=2)
    columns = np.arange(SIZE[1], dtype=np.float32)
    mark_moved = (energy * columns).sum() / energy.sum() - (frames[start].truth * columns).sum() / frames[start].truth.sum()
    figure_moved = (end.truth * columns).sum() / end.truth.sum() - (frames[start].truth * columns).sum() / frames[start].truth.sum()
    return float(mark_moved), float(figure_moved), float(energy[end.truth].sum() / np.abs(mark).sum())


def test_a_walkers_detail_moves_with_their_outline_where_the_flow_cannot_follow(walk) -> None:
    """The clip's clothes stay in place under the moving outline (`Figure.cloth_moves` False), so
    no flow follows the figure: carried by the flow alone, 0.29 of the mark is still shown on the
    figure after 20 frames (two thirds of a second: it stays where the figure was, and fades as
    the room is uncovered); by the outline's shift, 0.68."""
    mark_moved, figure_moved, on_figure = carried_on_walker(walk[1], 20)
    print(f"figure moved {figure_moved:.1f} px, its detail {mark_moved:.1f} px; {on_figure:.0%} of it on the figure")
    assert figure_moved > 20
    assert abs(mark_moved - figure_moved) < 0.25 * figure_moved
    assert on_figure > 0.55


def test_a_walkers_detail_moves_with_them_when_their_clothes_move_too() -> None:
    """A real visitor's clothes move with them, but their stripes give the flow little to hold
    (the aperture problem): by the flow alone 0.42 of the mark is shown on the figure after 20
    frames, by the outline's shift 0.72."""
    room = gallery_room(*SIZE)
    schedule = Schedule(empty=0.5, walk_in=2.0, stand=0.5, walk_out=0.0, after=0.0)
    frames = list(visitor_clip(room, 30, schedule, figures=(Figure(cloth_moves=True),)))
    mark_moved, figure_moved, on_figure = carried_on_walker(frames, 20)
    print(f"figure moved {figure_moved:.1f} px, its detail {mark_moved:.1f} px; {on_figure:.0%} of it on the figure")
    assert abs(mark_moved - figure_moved) < 0.25 * figure_moved
    assert on_figure > 0.55
