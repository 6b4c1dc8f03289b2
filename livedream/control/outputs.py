"""Outputs of the dreamed frames: a video recording and a virtual camera.

`Recorder` writes into `[outputs] record_folder` only: the file is written under an
`incomplete-…` name and renamed when recording stops, so a crash never leaves a broken
file under the final name. Its names come from the clock, never from a control message.
`VirtualCamera` sends frames to pyvirtualcam (optional dependency).
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livedream.config import OutputsConfig
from livedream.errors import UserError

log = logging.getLogger(__name__)

INCOMPLETE_PREFIX = "incomplete-"


class Recorder:
    """Start/stop recording of RGB frames to `folder`/livedream-<time>.mp4."""

    def __init__(self, folder: Path, fps: int = 30, codec: str = "mp4v") -> None:
        self.folder = Path(folder)
        self.fps = fps
        self.codec = codec
        self._writer: cv2.VideoWriter | None = None
        self._partial: Path | None = None
        self._final: Path | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the file
        self._bgr: np.ndarray | None = None
        self.frames_written = 0

    @property
    def recording(self) -> bool:
        return self._final is not None

    def path_for(self, name: str) -> Path:
        """`folder/name`, refused (UserError) when it would land anywhere else."""
        folder = self.folder.resolve()
        path = (folder / name).resolve()
        if path.parent != folder or not name or name.startswith("."):
            raise UserError(f"recording name {name!r} is not allowed; recordings go only into {folder}")
        return path

    def start(self, name: str | None = None) -> Path:
        """Begin a recording; the file opens with the first frame. Returns the final path."""
        if self.recording:
            return self._final
        name = name or datetime.datetime.now().strftime("livedream-%Y%m%d-%H%M%S.mp4")
        final = self.path_for(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._partial = final.with_name(INCOMPLETE_PREFIX + final.name)
        self.frames_written = 0
        log.info("recording to %s", final)
        return final

    def write(self, frame_rgb: np.ndarray) -> None:
        if not self.recording:
            return
        if self._writer is None:
            self._open(frame_rgb.shape[1], frame_rgb.shape[0])
        if self._writer is None:
            return
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self._size:  # the dream size changed mid-recording
            frame_rgb = cv2.resize(frame_rgb, self._size, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR, dst=self._bgr)
        self._writer.write(self._bgr)
        self.frames_written += 1

    def stop(self) -> Path | None:
        """Finish the file and give it its final name; None when nothing was recorded."""
        if not self.recording:
            return None
        final, partial = self._final, self._partial
        if self._writer is not None:
            self._writer.release()
        self._writer, self._final, self._partial, self._size = None, None, None, None
        if self.frames_written == 0 or partial is None or not partial.exists():
            log.warning("recording stopped with no frames; nothing saved")
            return None
        partial.replace(final)
        log.info("recording saved: %s (%d frames)", final, self.frames_written)
        return final

    def _open(self, width: int, height: int) -> None:
        width, height = width - width % 2, height - height % 2  # most codecs need even sizes
        writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter_fourcc(*self.codec), self.fps, (width, height))
        if not writer.isOpened():
            log.warning("recording off: OpenCV cannot write %r video to %s; try [outputs] record_codec", self.codec, self._partial)
            self._final = None
            return
        self._writer = writer
        self._size = (width, height)
        self._bgr = np.empty((height, width, 3), np.uint8)


class VirtualCamera:
    """Frames to a virtual camera (OBS, Zoom, TouchDesigner); `open` returns None when unavailable."""

    def __init__(self, camera: Any, width: int, height: int) -> None:
        self._camera = camera
        self._size = (width, height)
        self._frame = np.empty((height, width, 3), np.uint8)
        self.device = getattr(camera, "device", "virtual camera")

    @classmethod
    def open(cls, config: OutputsConfig) -> "VirtualCamera | None":
        try:
            import pyvirtualcam
        except ImportError:
            log.warning("virtual camera off: install it with: pip install pyvirtualcam")
            return None
        try:
            camera = pyvirtualcam.Camera(config.virtualcam_width, config.virtualcam_height, config.virtualcam_fps)
        except Exception as error:  # no v4l2loopback / OBS virtual camera installed
            log.warning("virtual camera off: %s", error)
            return None
        log.info("virtual camera: %s", camera.device)
        return cls(camera, config.virtualcam_width, config.virtualcam_height)

    def send(self, frame_rgb: np.ndarray) -> None:
        cv2.resize(frame_rgb, self._size, dst=self._frame, interpolation=cv2.INTER_AREA)
        self._camera.send(self._frame)

    def close(self) -> None:
        self._camera.close()
