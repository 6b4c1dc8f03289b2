"""Motion detection on generated frames drives attract mode in and out (fake clock)."""

from __future__ import annotations

import numpy as np
import pytest

from livedream.config import AttractConfig
from livedream.control.attract import AttractMode, MotionDetector
from livedream.params import Params

FPS = 10
ATTRACT = Params(strength=0.03, zoom_per_s=0.01, rotate_per_s=0.2, half_life=0.98)
CONFIG = AttractConfig(threshold=0.05, still_seconds=3.0, fade_in=1.0, fade_out=0.5, smoothing=0.2)


def still_frame(seed: int, rng_noise: np.random.Generator | None = None) -> np.ndarray:
    """A fixed scene plus optional sensor noise of a few grey levels."""
    scene = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    scene = np.repeat(np.repeat(scene[::8, ::8], 8, axis=0), 8, axis=1)  # blocky, like a real room at 64 px
    if rng_noise is None:
        return scene
    noise = rng_noise.integers(-3, 4, scene.shape)
    return np.clip(scene.astype(int) + noise, 0, 255).astype(np.uint8)


def moving_frame(step: int) -> np.ndarray:
    """A bright square sweeping over a dark room."""
    frame = np.full((240, 320, 3), 30, np.uint8)
    x = (step * 40) % 240
    frame[40:200, x : x + 80] = 230
    return frame


def run(mode: AttractMode, frames, start: float) -> tuple[float, list[Params]]:
    now, seen = start, []
    for frame in frames:
        mode.observe(frame, now)
        seen.append(mode.update(Params(), now))
        now += 1.0 / FPS
    return now, seen


def test_still_noisy_frames_read_as_no_motion_and_moving_ones_as_motion() -> None:
    detector = MotionDetector(width=64, pixel_change=12, smoothing=0.0)
    noise = np.random.default_rng(1)
    levels = [detector.observe(still_frame(0, noise), i / FPS) for i in range(10)]
    assert max(levels) < 0.01
    levels = [detector.observe(moving_frame(i), 1 + i / FPS) for i in range(10)]
    assert min(levels[1:]) > 0.1  # the square uncovers and covers 1/6 of the frame per step


def test_motion_level_is_smoothed_over_time_not_frames() -> None:
    detector = MotionDetector(smoothing=1.0)
    detector.observe(moving_frame(0), 0.0)
    detector.observe(moving_frame(1), 0.0)  # no time passed: the level cannot move
    assert detector.level == 0.0
    detector.observe(moving_frame(2), 1.0)  # one time constant: about 63 % of the way
    raw = MotionDetector(smoothing=0.0)
    raw.observe(moving_frame(1), 0.0)
    target = raw.observe(moving_frame(2), 0.0)
    assert abs(detector.level - 0.632 * target) < 0.02


def test_enters_attract_after_still_seconds_and_leaves_when_motion_returns() -> None:
    mode = AttractMode(CONFIG, ATTRACT)
    noise = np.random.default_rng(2)
    now, seen = run(mode, [still_frame(0, noise) for _ in range(29)], start=0.0)  # 2.8 s still
    assert not mode.active and all(p == Params() for p in seen)
    now, seen = run(mode, [still_frame(0, noise) for _ in range(3)], start=now)  # passes 3 s
    assert mode.active
    now, seen = run(mode, [still_frame(0, noise) for _ in range(15)], start=now)  # fade_in 1 s
    assert seen[-1] == ATTRACT
    assert any(Params().zoom_per_s < p.zoom_per_s < ATTRACT.zoom_per_s for p in seen)  # blended in, no cut
    now, seen = run(mode, [moving_frame(i) for i in range(12)], start=now)
    assert not mode.active
    assert any(0 < p.zoom_per_s < ATTRACT.zoom_per_s for p in seen)  # blended out
    assert seen[-1] == Params()  # back exactly to the live params


def test_no_camera_frames_never_start_attract_mode() -> None:
    mode = AttractMode(CONFIG, ATTRACT)
    for now in range(100):
        assert mode.update(Params(), float(now)) == Params()
    assert not mode.active


def test_seconds_until_attract_counts_down_for_the_hud() -> None:
    mode = AttractMode(CONFIG, ATTRACT)
    run(mode, [still_frame(0) for _ in range(11)], start=0.0)
    assert mode.seconds_until_attract(1.0) == pytest.approx(2.1)  # still since the second frame (0.1 s)
