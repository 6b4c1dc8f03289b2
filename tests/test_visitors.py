"""The visitor mask (`pipeline.visitors`) on clips whose truth is known (`testing.visitor_clip`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livedream.media.pictures import read_image
from livedream.pipeline.images import SAMPLE_PHOTO
from livedream.pipeline.visitors import WARM_UP, VisitorMask, Visitors, VisitorState
from livedream.testing.visitor_clip import Schedule, panning_clip, visitor_clip

FPS = 10.0


@pytest.fixture(scope="module")
def room() -> np.ndarray:
    return cv2.resize(read_image(SAMPLE_PHOTO), (320, 180), interpolation=cv2.INTER_AREA)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of the mask (> 0.5) against the truth, at the mask's size."""
    small = cv2.resize(truth.astype(np.float32), (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA) > 0.5
    found = mask > 0.5
    return float((found & small).sum() / max(1, (found | small).sum()))


@pytest.fixture(scope="module")
def walk(room):
    """Every frame of the walk-in clip with the mask's answer."""
    visitors = VisitorMask()
    return [(frame, kept(visitors.update(frame.rgb, 1.0 / FPS))) for frame in visitor_clip(room, FPS)]


def kept(seen: Visitors) -> Visitors:
    """A frame's answer copied out of the mask's buffer (valid until the next update)."""
    return Visitors(None if seen.mask is None else seen.mask.copy(), seen.state)


def test_the_mask_covers_the_figure_while_it_walks_in(walk):
    # The figure's first half second is mostly outside the frame: judged once it is in.
    scores = [iou(seen.mask, frame.truth) for frame, seen in walk
              if frame.part == "walk_in" and frame.truth.mean() > 0.05]
    print(f"walking in: IoU min {min(scores):.2f}, mean {np.mean(scores):.2f} over {len(scores)} frames")
    assert len(scores) > 5 and min(scores) >= 0.7


def test_the_mask_still_covers_the_figure_after_it_stood_still_ten_seconds(walk):
    standing = [(frame, seen) for frame, seen in walk if frame.part == "stand"]
    scores = [iou(seen.mask, frame.truth) for frame, seen in standing]
    print(f"standing still {Schedule().stand:.0f} s: IoU first {scores[0]:.2f}, last {scores[-1]:.2f}, min {min(scores):.2f}")
    assert len(standing) >= 10 * FPS and min(scores) >= 0.7


def test_the_mask_is_empty_once_the_figure_has_left(walk):
    after = [seen for frame, seen in walk if frame.part == "after"][3:]  # the blur's tail fades in a few frames
    assert after and all(seen.state is VisitorState.WATCHING for seen in after)
    assert max(seen.share for seen in after) < 0.002


def test_the_empty_room_before_anyone_came_gives_an_empty_mask(walk):
    empty = [seen for frame, seen in walk if frame.part == "empty"]
    assert all(seen.state is VisitorState.LEARNING for seen in empty[:WARM_UP])
    assert all(seen.mask is not None and seen.share < 0.002 for seen in empty[WARM_UP:])


@pytest.mark.parametrize(("shift_px", "zoom"), [(2.0, 0.0), (0.0, 0.01), (1.0, 0.005)], ids=["pan", "zoom", "both"])
def test_a_moving_camera_gives_no_mask_and_says_so(room, shift_px, zoom):
    big = cv2.resize(read_image(SAMPLE_PHOTO), (480, 270), interpolation=cv2.INTER_AREA)
    visitors = VisitorMask()
    for frame in visitor_clip(room, FPS, Schedule(empty=WARM_UP / FPS + 0.5, walk_in=0, stand=0, walk_out=0, after=0)):
        visitors.update(frame.rgb, 1.0 / FPS)  # the room is learned from a still camera first
    answers = [visitors.update(frame, 1.0 / FPS) for frame in panning_clip(big, 40, (180, 320), shift_px, zoom)][1:]
    assert all(seen.mask is None and seen.state is VisitorState.CAMERA_MOVING for seen in answers)


def test_a_new_source_size_learns_its_room_anew(room):
    visitors = VisitorMask()
    for frame in visitor_clip(room, FPS, Schedule(empty=3.0, walk_in=0, stand=0, walk_out=0, after=0)):
        visitors.update(frame.rgb, 1.0 / FPS)
    assert visitors.update(cv2.resize(room, (240, 135)), 1.0 / FPS).state is VisitorState.LEARNING
