"""Motion detection on small grey frames, and attract mode when nobody is there.

`MotionDetector` shrinks each camera frame to `motion_width` pixels wide (buffers made once
per frame size), compares it with the previous one and smooths the share of pixels that
changed into `level` (0 = still, 1 = everything moved). `AttractMode` blends into the
attract preset after `still_seconds` below `threshold`, and back to the live params as soon
as motion returns. It is an overlay: it never changes the params it is given, so leaving
attract mode lands exactly on what was live.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from livedream.config import AttractConfig
from livedream.control.presets import blend, smoothstep
from livedream.params import Params


class MotionDetector:
    """Frame-difference motion level, smoothed with a time constant (not a frame count)."""

    def __init__(self, width: int = 64, pixel_change: int = 12, smoothing: float = 0.5) -> None:
        self.width = width
        self.pixel_change = pixel_change
        self.smoothing = smoothing
        self.level = 0.0
        self.frames_seen = 0
        self._input_shape: tuple[int, ...] | None = None
        self._last_time: float | None = None

    def observe(self, frame_rgb: np.ndarray, now: float) -> float:
        """Take one camera frame (H x W x 3 uint8 RGB); returns the smoothed motion level."""
        if frame_rgb.shape != self._input_shape:
            self._allocate(frame_rgb.shape)
        cv2.resize(frame_rgb, self._small_size, dst=self._small_rgb, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(self._small_rgb, cv2.COLOR_RGB2GRAY, dst=self._grey)
        if self.frames_seen == 0:
            self._previous[...] = self._grey
        cv2.absdiff(self._grey, self._previous, dst=self._difference)
        cv2.threshold(self._difference, self.pixel_change - 1, 255, cv2.THRESH_BINARY, dst=self._difference)
        moving = cv2.countNonZero(self._difference) / self._difference.size
        self._grey, self._previous = self._previous, self._grey  # swap: no copy
        self._smooth(moving, now)
        self.frames_seen += 1
        return self.level

    def _smooth(self, moving: float, now: float) -> None:
        if self._last_time is None or self.smoothing <= 0:
            self.level = moving
        else:
            elapsed = max(0.0, now - self._last_time)
            weight = 1.0 - math.exp(-elapsed / self.smoothing)
            self.level += (moving - self.level) * weight
        self._last_time = now

    def _allocate(self, shape: tuple[int, ...]) -> None:
        height, width = shape[:2]
        small_height = max(1, round(height * self.width / width))
        self._small_size = (self.width, small_height)
        self._small_rgb = np.empty((small_height, self.width, 3), np.uint8)
        self._grey = np.empty((small_height, self.width), np.uint8)
        self._previous = np.empty_like(self._grey)
        self._difference = np.empty_like(self._grey)
        self._input_shape = shape
        self.frames_seen = 0  # a new size has nothing to compare with


class AttractMode:
    """An overlay `Control`: live params, or a blend towards the attract preset."""

    def __init__(self, config: AttractConfig, attract_params: Params) -> None:
        self._config = config
        self._target = attract_params
        self.detector = MotionDetector(config.motion_width, config.pixel_change, config.smoothing)
        self.active = False
        self._still_since: float | None = None
        self._weight_from = 0.0
        self._weight_to = 0.0
        self._ramp_began = 0.0
        self._ramp_seconds = 0.0

    @property
    def motion_level(self) -> float:
        return self.detector.level

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        self.detector.observe(frame_rgb, now)

    def update(self, params: Params, now: float) -> Params:
        self._follow_motion(now)
        weight = self.weight(now)
        if weight <= 0.0:
            return params
        return blend(params, self._target, smoothstep(weight))

    def weight(self, now: float) -> float:
        """0 = live, 1 = fully in the attract program."""
        if self._ramp_seconds <= 0:
            return self._weight_to
        progress = min(1.0, max(0.0, (now - self._ramp_began) / self._ramp_seconds))
        return self._weight_from + (self._weight_to - self._weight_from) * progress

    def seconds_until_attract(self, now: float) -> float | None:
        if self.active or self._still_since is None:
            return None
        return max(0.0, self._config.still_seconds - (now - self._still_since))

    def _follow_motion(self, now: float) -> None:
        if self.detector.frames_seen < 2:
            return  # no camera frames yet: no evidence that nobody is there
        if self.detector.level >= self._config.threshold:
            self._still_since = None
            if self.active:
                self.active = False
                self._ramp(0.0, self._config.fade_out, now)
            return
        if self._still_since is None:
            self._still_since = now
        if not self.active and now - self._still_since >= self._config.still_seconds:
            self.active = True
            self._ramp(1.0, self._config.fade_in, now)

    def _ramp(self, target: float, seconds: float, now: float) -> None:
        self._weight_from = self.weight(now)
        self._weight_to = target
        self._ramp_began = now
        self._ramp_seconds = seconds * abs(target - self._weight_from)  # a half-done fade turns back in half the time
