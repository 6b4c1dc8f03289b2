"""The visitors' box (`pipeline.boxdream`): a visitor-first dream works on the box plus its
margin, snapped to the grid, and never writes outside it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from livedream.params import Params
from livedream.pipeline.boxdream import BOX_STEPS, GRID, MARGIN, box_region, dream_region, feather
from livedream.pipeline.dream import octave_sizes
from livedream.pipeline.dreamer import LiveDreamer, ascent_settings
from tests.conftest import as_model

DREAM = Params(dream_height=144, dream_width=256, steps=2, strength=0.08, half_life=5.0)
BOXES = [(0.40, 0.30, 0.55, 0.90), (0.0, 0.0, 0.1, 0.2), (0.9, 0.5, 1.0, 1.0), (0.2, 0.2, 0.8, 0.8)]


@pytest.mark.parametrize("box", BOXES)
def test_the_region_holds_the_box_and_its_margin_on_the_grid(box):
    height, width = DREAM.dream_height, DREAM.dream_width
    region = box_region(box, height, width, min_side=75)
    x0, y0, x1, y1 = box
    grow_x, grow_y = MARGIN * (x1 - x0) * width, MARGIN * (y1 - y0) * height
    assert region.x0 <= max(0, x0 * width - grow_x) and region.x1 >= min(width, x1 * width + grow_x)
    assert region.y0 <= max(0, y0 * height - grow_y) and region.y1 >= min(height, y1 * height + grow_y)
    assert min(region.shape) >= 75
    on_grid = {k * width // GRID for k in range(GRID + 1)}
    assert region.x0 in on_grid and region.x1 in on_grid


def test_the_paste_fades_in_inside_the_region_and_is_whole_at_the_frames_border():
    region = box_region((0.0, 0.3, 0.3, 0.6), 144, 256, min_side=75)
    weights = feather(region, 144, 256)
    assert weights.shape == region.shape
    middle = weights[weights.shape[0] // 2]
    assert middle[0] == 1.0  # the frame's left border: pasted whole
    assert middle[-1] < 0.2  # the edge inside the frame: faded to nearly nothing
    assert weights[0].max() < 0.2 and weights[-1].max() < 0.2  # the top and bottom edges lie inside too


@pytest.mark.parametrize("box", BOXES[:3])
def test_a_box_dream_never_writes_outside_its_region(lively_engine, box):
    """Outside the region the detail handed back is the carried detail as it came, to the
    grey level; inside the dream changed it."""
    rng = np.random.default_rng(3)
    frame = rng.integers(40, 216, (DREAM.dream_height, DREAM.dream_width, 3), dtype=np.uint8)
    carried = rng.normal(0, 12, frame.shape).astype(np.float32)
    confidence = np.ones(frame.shape[:2], np.float32)
    dreamer = LiveDreamer()
    base, detail = dreamer.dream_detail(frame, DREAM, as_model(lively_engine), (carried, confidence), box=box)
    region = dream_region(box, DREAM.dream_height, DREAM.dream_width, ascent_settings(DREAM), lively_engine.min_size)
    inside = np.zeros(frame.shape[:2], bool)
    inside[region.slices] = True
    expected = np.clip(frame.astype(np.float32) + carried, 0, 255) - frame  # what the carry shows there
    assert np.abs(detail[~inside] - expected[~inside]).max() <= 1.0
    assert np.abs(detail[inside] - expected[inside]).mean() > 1.0


def test_a_box_dream_costs_its_region_not_the_frame(lively_engine):
    """The gradient runs on the region's pixels only (what makes it several a second on a CPU),
    BOX_STEPS times the steps of a whole-frame dream, or the same steps when lean."""
    seen = []

    class Counting:
        min_size = lively_engine.min_size

        def gradient(self, image, mask=None):
            seen.append(image.shape[2:])
            return 0.0, np.zeros_like(image)

    frame = np.full((DREAM.dream_height, DREAM.dream_width, 3), 120, np.uint8)
    carried = (np.zeros(frame.shape, np.float32), np.ones(frame.shape[:2], np.float32))
    params = dataclasses.replace(DREAM, steps=1, octaves=1)
    LiveDreamer().dream_detail(frame, params, as_model(Counting()), carried, box=BOXES[0])
    region = dream_region(BOXES[0], DREAM.dream_height, DREAM.dream_width, ascent_settings(params), Counting.min_size)
    assert seen == [region.shape] * BOX_STEPS
    seen.clear()
    LiveDreamer().dream_detail(frame, params, as_model(Counting()), carried, box=BOXES[0], lean=True)
    assert seen == [region.shape]  # a visitor on the move: the live steps
    seen.clear()
    LiveDreamer().dream_detail(frame, params, as_model(Counting()), carried)
    assert seen == [frame.shape[:2]]


@pytest.mark.parametrize("octave", [0, 1])
def test_a_thin_band_dreamed_at_a_coarse_octave_is_grown_until_that_octave_is_in_reach(octave):
    """A band a pan brought in (an eighth of the frame) dreamed at the coarsest octave runs at
    that octave's scale, not at the full size: the region is grown until it is in reach."""
    seen = []

    class Counting:
        min_size = 48

        def gradient(self, image, mask=None):
            seen.append(image.shape[2:])
            return 0.0, np.zeros_like(image)

    params = dataclasses.replace(DREAM, octaves=2, octave_scale=1.7, steps=1)
    band = (0.0, 7 / 8, 1.0, 1.0)
    frame = np.full((params.dream_height, params.dream_width, 3), 120, np.uint8)
    carried = (np.zeros(frame.shape, np.float32), np.ones(frame.shape[:2], np.float32))
    LiveDreamer().dream_detail(frame, params, as_model(Counting()), carried, octave=octave, box=band, lean=True)
    settings = ascent_settings(params, octave)
    region = dream_region(band, params.dream_height, params.dream_width, settings, Counting.min_size)
    thin = box_region(band, params.dream_height, params.dream_width, Counting.min_size)
    assert thin.shape[0] < region.shape[0] or octave == 1  # the band alone is too thin for the coarse octave
    (expected,) = octave_sizes(*region.shape, settings, Counting.min_size)
    assert set(seen) == {expected}
    assert octave == 1 or expected[0] < region.shape[0]  # the coarse octave's scale, not the full size
