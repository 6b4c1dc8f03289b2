"""The virtual camera output: frames to pyvirtualcam (OBS, Zoom, TouchDesigner see a webcam)."""

from __future__ import annotations

import logging
from typing import Protocol

import cv2
import numpy as np

from livedream.config import OutputsConfig

log = logging.getLogger(__name__)


class VirtualCameraDevice(Protocol):
    """The part of `pyvirtualcam.Camera` used here (tests pass a fake)."""

    def send(self, frame: np.ndarray) -> None: ...
    def close(self) -> None: ...


class VirtualCamera:
    """Frames to a virtual camera (OBS, Zoom, TouchDesigner); `open` returns None when unavailable."""

    def __init__(self, camera: VirtualCameraDevice, width: int, height: int, device: str = "virtual camera") -> None:
        self._camera = camera
        self._size = (width, height)
        self._frame = np.empty((height, width, 3), np.uint8)
        self.device = device

    @classmethod
    def open(cls, config: OutputsConfig) -> VirtualCamera | None:
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
        return cls(camera, config.virtualcam_width, config.virtualcam_height, camera.device)

    name = "virtual camera"
    active = True
    status = ""

    def send(self, frame_rgb: np.ndarray) -> None:
        cv2.resize(frame_rgb, self._size, dst=self._frame, interpolation=cv2.INTER_AREA)
        self._camera.send(self._frame)

    def close(self) -> None:
        self._camera.close()
