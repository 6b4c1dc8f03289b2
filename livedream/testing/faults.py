"""A camera that misbehaves on purpose, on a fixed script: for `tools/soak.py` and fault tests.

`FaultyCamera` is a capture factory (what `CameraSource(capture_factory=...)` takes). Its
captures deliver the demo picture in motion at `fps`, and on schedule: every Nth read
fails, every Mth read hangs for a while, every Kth frame has the wrong size, and every so
often the whole camera disappears (captures stop opening, open ones fail) and comes back.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from livedream.pipeline.sources import DemoSource


@dataclass(frozen=True)
class FaultPlan:
    """When to misbehave; 0 turns a fault off. Counts are of reads (grab calls)."""

    fail_every: int = 0  # every Nth read returns no frame
    hang_every: int = 0  # every Nth read blocks for hang_s (a driver stuck in a call)
    hang_s: float = 3.0
    wrong_size_every: int = 0  # every Nth frame comes at half the size
    unplug_every_s: float = 0.0  # the camera vanishes once per this many seconds …
    unplugged_s: float = 5.0  # … for this long

    @classmethod
    def soak(cls) -> "FaultPlan":
        """All faults, often enough that a 2-minute soak sees each several times."""
        return cls(fail_every=7, hang_every=450, hang_s=3.0, wrong_size_every=97, unplug_every_s=40.0, unplugged_s=6.0)


class FaultyCamera:
    """The factory; `injected` counts each fault as it happens (for reports and tests)."""

    def __init__(
        self,
        plan: FaultPlan = FaultPlan(),
        width: int = 640,
        height: int = 360,
        fps: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.size = (width, height)
        self.fps = fps
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._demo = DemoSource(width, height, clock=clock)
        self.reads = 0
        self.opens = 0
        self.injected: Counter[str] = Counter()

    def __call__(self, device: int | str) -> "FaultyCapture":
        self.opens += 1
        return FaultyCapture(self)

    def unplugged(self) -> bool:
        plan = self.plan
        if plan.unplug_every_s <= 0:
            return False
        phase = (self._clock() - self._started) % plan.unplug_every_s
        return phase >= plan.unplug_every_s - plan.unplugged_s

    def next_read(self) -> str:
        """What the next read does: "ok", "fail", "hang", "wrong_size" or "unplugged"."""
        self.reads += 1
        plan, n = self.plan, self.reads
        if self.unplugged():
            fault = "unplugged"
        elif plan.hang_every and n % plan.hang_every == 0:
            fault = "hang"
        elif plan.fail_every and n % plan.fail_every == 0:
            fault = "fail"
        elif plan.wrong_size_every and n % plan.wrong_size_every == 0:
            fault = "wrong_size"
        else:
            return "ok"
        self.injected[fault] += 1
        return fault

    def render(self, out: np.ndarray | None) -> np.ndarray:
        width, height = self.size
        if out is None or out.shape != (height, width, 3):
            out = np.empty((height, width, 3), np.uint8)
        return self._demo.render(self._clock() - self._started, out)


class FaultyCapture:
    """One opened capture of a `FaultyCamera` (the cv2.VideoCapture surface sources use)."""

    def __init__(self, camera: FaultyCamera) -> None:
        self.camera = camera
        self._opened = not camera.unplugged()
        self._next_frame_at = camera._clock()
        self._pending = "fail"

    def isOpened(self) -> bool:
        return self._opened

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        width, height = self.camera.size
        return {cv2.CAP_PROP_FRAME_WIDTH: width, cv2.CAP_PROP_FRAME_HEIGHT: height, cv2.CAP_PROP_FPS: self.camera.fps}.get(prop, 0.0)

    def grab(self) -> bool:
        camera = self.camera
        # A real camera blocks until its next frame; pacing keeps the fake from eating a core.
        wait = self._next_frame_at - camera._clock()
        if wait > 0:
            camera._sleep(wait)
        self._next_frame_at = max(self._next_frame_at + 1 / camera.fps, camera._clock())
        self._pending = camera.next_read()
        if self._pending == "hang":
            camera._sleep(camera.plan.hang_s)
        return self._pending in ("ok", "wrong_size")

    def retrieve(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        if self._pending not in ("ok", "wrong_size"):
            return False, None
        if self._pending == "wrong_size":
            width, height = self.camera.size
            return True, np.zeros((height // 2, width // 2, 3), np.uint8)
        return True, self.camera.render(image)

    def read(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        return self.retrieve(image) if self.grab() else (False, None)

    def release(self) -> None:
        self._opened = False
