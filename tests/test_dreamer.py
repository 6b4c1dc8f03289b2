"""LiveDreamer: any frame size in; the dream size out, or the frame's size with the dream's
detail when the frame is larger (dream small, show sharp); buffers reused, coherence, timings."""

from __future__ import annotations

import cv2
import numpy as np

from livedream.runtime.engine import NO_VISITORS
import pytest

from livedream.params import Params
from livedream.pipeline.dreamer import LiveDreamer, ascent_settings
from tests.conftest import as_model

DREAM_SIZE = dict(dream_height=96, dream_width=128)


class PatternEngine:
    """A stand-in for `Engine` whose gradient is a fixed, deterministic function of the image.

    Like a real network it amplifies the fine detail already in the image (a high-pass of
    it), and it also "sees" a texture tied to the screen grid, which the dream's random roll
    moves between steps: dreaming from scratch each frame therefore boils, as the real one does.
    """

    min_size = 8
    DETAIL_GAIN = 10.0
    DETAIL_SIGMA = 1.0

    def __init__(self, seed: int = 7, max_size: int = 1024) -> None:
        rng = np.random.default_rng(seed)
        self.screen_texture = rng.standard_normal((1, 3, max_size, max_size)).astype(np.float32)
        self.provider = "CPU"

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        height, width = image.shape[2:]
        planes = image[0].transpose(1, 2, 0)
        fine_detail = planes - cv2.GaussianBlur(planes, (0, 0), self.DETAIL_SIGMA)
        grad = self.DETAIL_GAIN * fine_detail.transpose(2, 0, 1)[None] + self.screen_texture[:, :, :height, :width]
        return float(np.sum(grad * image)), np.ascontiguousarray(grad, dtype=np.float32)


MODEL = as_model(PatternEngine())


def textured_frame(height: int = 120, width: int = 160, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_any_frame_size_gives_uint8_rgb_at_the_larger_of_frame_and_dream() -> None:
    dreamer = LiveDreamer()
    for height, width in [(120, 160), (48, 64), (77, 201), (1080, 1920)]:
        out = dreamer.dream_frame(textured_frame(height, width), Params(**DREAM_SIZE), MODEL)
        expected = (height, width) if height * width > 96 * 128 else (96, 128)
        assert out.shape == (*expected, 3) and out.dtype == np.uint8


def high_frequency_energy(image: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image: how much fine detail (edges) it holds."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))


def sharp_edged_frame(height: int = 720, width: int = 1280) -> np.ndarray:
    """Thin black-and-white stripes and a checkerboard: detail only the full size can hold."""
    yy, xx = np.mgrid[0:height, 0:width]
    grey = np.where(((xx // 3) + (yy // 24)) % 2 == 0, 40, 215).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_a_small_dream_is_shown_at_the_frames_sharpness_with_its_detail_on_top() -> None:
    """Dream 96x128 of a 720p frame: the output keeps the frame's edges (an upscaled small
    picture would keep almost none) and carries the dream's detail (dream − source)."""
    frame = sharp_edged_frame()
    dreamer = LiveDreamer()
    params = Params(steps=2, strength=0.1, **DREAM_SIZE)
    out = dreamer.dream_frame(frame, params, MODEL)
    small_dream = dreamer._output_rgb  # the dream at its own size
    upscaled = cv2.resize(small_dream, (1280, 720), interpolation=cv2.INTER_LINEAR)
    source_hf = high_frequency_energy(frame)
    print(f"high-frequency energy: source {source_hf:.0f}, sharp output {high_frequency_energy(out):.0f}, "
          f"upscaled dream {high_frequency_energy(upscaled):.0f}")
    assert out.shape == frame.shape
    assert high_frequency_energy(out) > 0.8 * source_hf
    assert high_frequency_energy(upscaled) < 0.2 * source_hf
    detail = out.astype(int) - frame.astype(int)
    expected = cv2.resize(small_dream.astype(np.int16) - dreamer._base_rgb.astype(np.int16), (1280, 720),
                          interpolation=cv2.INTER_LINEAR)
    summed = frame.astype(int) + expected
    unclipped = (summed > 0) & (summed < 255)  # where saturation did not cut the detail
    assert np.mean(np.abs(detail)) > 1.0  # the dream is there
    assert np.abs(detail - expected)[unclipped].max() <= 1


def test_without_steps_or_carry_the_output_is_the_resized_frame() -> None:
    frame = textured_frame(96, 128)
    out = LiveDreamer().dream_frame(frame, Params(steps=0, half_life=0.0, **DREAM_SIZE), MODEL)
    assert np.abs(out.astype(int) - frame.astype(int)).max() <= 1


def test_buffers_are_reused_across_frames_and_rebuilt_on_size_change() -> None:
    dreamer = LiveDreamer()
    params = Params(**DREAM_SIZE)
    first = dreamer.dream_frame(textured_frame(), params, MODEL)
    base_buffer = dreamer._base
    second = dreamer.dream_frame(textured_frame(seed=4), params, MODEL)
    assert second is first and dreamer._base is base_buffer

    bigger = dreamer.dream_frame(textured_frame(), Params(dream_height=120, dream_width=160), MODEL)
    # (120x160 frame at a 120x160 dream: the dream's own buffer)
    assert bigger.shape == (120, 160, 3) and bigger is not first


def dream_strength_after(frames: int, half_life: float) -> float:
    """Mean |dream − source| (in 0..255 units) after `frames` frames of one still image."""
    frame = textured_frame(96, 128)
    dreamer = LiveDreamer()
    params = Params(steps=1, strength=0.02, half_life=half_life, **DREAM_SIZE)
    for _ in range(frames):
        out = dreamer.dream_frame(frame, params, MODEL)
    return float(np.mean(np.abs(out.astype(int) - frame.astype(int))))


def test_decay_zero_restarts_every_frame_and_decay_carries_the_dream() -> None:
    one_frame = dream_strength_after(1, half_life=0.0)
    restarted = dream_strength_after(10, half_life=0.0)
    carried = dream_strength_after(10, half_life=0.9)
    print(f"|dream - source|: 1 frame {one_frame:.2f}, 10 frames half-life 0: {restarted:.2f}, half-life 0.9 s: {carried:.2f}")
    assert restarted == pytest.approx(one_frame, rel=0.2)
    assert carried > 2 * restarted


def test_stage_timings_and_loss_are_reported() -> None:
    dreamer = LiveDreamer()
    dreamer.dream_frame(textured_frame(), Params(**DREAM_SIZE), MODEL)
    timings = dreamer.timings
    assert timings.dream_ms > 0 and timings.flow_ms >= 0 and timings.total_ms >= timings.dream_ms
    assert dreamer.loss != 0.0


def test_params_map_onto_the_dream_settings() -> None:
    settings = ascent_settings(Params(strength=0.05, steps=4, octaves=2, octave_scale=1.4))
    assert (settings.step_size, settings.steps, settings.octaves, settings.octave_scale) == (0.05, 4, 2, 1.4)


def test_reset_forgets_the_carried_dream() -> None:
    frame = textured_frame(96, 128)
    dreamer = LiveDreamer()
    params = Params(steps=1, strength=0.02, half_life=0.9, **DREAM_SIZE)
    for _ in range(10):
        dreamer.dream_frame(frame, params, MODEL)
    dreamer.reset()
    out = dreamer.dream_frame(frame, params, MODEL)
    assert np.mean(np.abs(out.astype(int) - frame.astype(int))) == pytest.approx(dream_strength_after(1, 0.9), rel=0.3)


def test_dreamer_runs_on_the_real_engine(small_engine) -> None:
    dreamer = LiveDreamer()
    frame = textured_frame(90, 160)
    params = Params(steps=1, dream_height=80, dream_width=96)
    for _ in range(2):
        out = dreamer.dream_frame(frame, params, as_model(small_engine))
    assert out.shape == (90, 160, 3) and np.isfinite(dreamer.loss)  # the frame is larger: shown at its size
