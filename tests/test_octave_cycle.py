"""Octaves across time (`live.schedule`): successive live dreams visit the pyramid's scales in
turn, coarsest first, each starting from the carried detail resampled to its scale and handing
back a whole full-size detail; the show loop never waits for them."""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np
import pytest

from livedream.live.app import LiveApp
from livedream.live.schedule import DreamPlan, OctaveCycle, mean_area_share, octave_factors
from livedream.params import Params
from livedream.pipeline.dreamer import LiveDreamer
from livedream.runtime.engine import NO_VISITORS
from tests.conftest import as_model, models_of
from tests.test_two_rates import DREAM, NumberedSource, ShownLevels, display, worker_threads

CYCLE = dataclasses.replace(DREAM, dream_height=135, dream_width=180, octaves=3, octave_scale=1.3)


def test_the_cycle_visits_every_octave_coarsest_first_and_starts_over_when_octaves_change():
    cycle = OctaveCycle()
    assert [cycle.next_plan(CYCLE).octave for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    two = dataclasses.replace(CYCLE, octaves=2)
    assert [cycle.next_plan(two).octave for _ in range(3)] == [0, 1, 0]
    assert cycle.next_plan(dataclasses.replace(CYCLE, octaves=1)) == DreamPlan(None)


def test_a_cycle_costs_its_octaves_mean_area():
    assert octave_factors(CYCLE) == pytest.approx([1 / 1.69, 1 / 1.3, 1.0])
    assert mean_area_share(CYCLE) == pytest.approx((1 / 1.69**2 + 1 / 1.3**2 + 1) / 3)


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


def test_cycling_octaves_keeps_the_shown_rate_and_every_dream_is_whole(tmp_path):
    """500 ms a gradient, three octaves in turn: the picture keeps the camera's rate, the dreams
    go coarsest first, and each one handed over is whole: a detail at the dream's full size,
    which the picture takes (a detail of another size it would pass over)."""
    source = NumberedSource(CYCLE.dream_height, CYCLE.dream_width)
    engine = RecordingEngine(delay_s=0.5)
    app = LiveApp(source, LiveDreamer(), display(tmp_path), CYCLE, models_of(engine), controls=[ShownLevels(source)],
                  show_fps=60)
    with app:
        stats = app.run(max_seconds=2.5)
    sizes = [image.shape[2:] for image in engine.images]
    print(f"{stats.frames} frames shown, {app.worker.dreams} dreams at {sizes}, {app.dreamed} taken")
    assert stats.frames > 10 * max(1, app.worker.dreams)
    expected = [(int(CYCLE.dream_height * f), int(CYCLE.dream_width * f)) for f in octave_factors(CYCLE)]
    assert len(sizes) >= 3 and sizes[:3] == expected
    assert app.dreamed >= app.worker.dreams - 1 >= 2  # every finished dream but the one in flight was taken
    assert not worker_threads()
