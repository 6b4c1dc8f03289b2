"""Screenshots asked for by a key, a control or `--screenshot-after N`, and guide images taken
from the camera (key g), kept off a full disk."""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from livedream.files import DiskFloor
from livedream.pipeline.display import Display

log = logging.getLogger(__name__)



def next_screenshot_path(directory: Path) -> Path:
    """A new, time-stamped PNG path in `directory` (which is created)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    return directory / f"livedream-{stamp}.png"

class Screenshots:
    """A pending request (a frame number) and the files saved; `warning` while the disk is too full."""

    def __init__(self, folder: Path, disk: DiskFloor | None = None) -> None:
        self.folder = folder
        self.disk = disk or DiskFloor(0)
        self.saved: list[Path] = []
        self.warning: str | None = None
        self._at_frame: int | None = None

    def request(self, at_frame: int) -> None:
        self._at_frame = at_frame

    def save_if_due(self, frames: int, display: Display) -> None:
        """Save the window once frame `at_frame` has been shown, if the disk has room."""
        if self._at_frame is None or frames < self._at_frame:
            return
        self._at_frame = None
        self.warning = self.disk.problem(self.folder)
        if self.warning is not None:
            log.warning("screenshot not saved: %s", self.warning)
            return
        path = display.screenshot(next_screenshot_path(self.folder))
        self.saved.append(path)
        log.info("screenshot saved: %s", path)

    def save_guide(self, frame_rgb: np.ndarray) -> Path | None:
        """Key g: the camera's frame as a guide image beside the screenshots (None: disk full)."""
        self.warning = self.disk.problem(self.folder)
        if self.warning is not None:
            log.warning("guide not saved: %s", self.warning)
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / time.strftime("guide-%Y%m%d-%H%M%S.png")
        cv2.imwrite(str(path), cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        return path
