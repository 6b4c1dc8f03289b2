"""The NDI output: the dream as an NDI source that TouchDesigner, Resolume, OBS or vMix take in.

cyndilib (the optional extra `ndi`) bundles the NDI runtime. Frames go out as RGBA at the
dream size (or a fixed `[ndi] width/height`), with `[ndi] fps` as their nominal rate. The
sender is made on the first frame and again when the size changes: NDI fixes the size per
sender.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from livedream.config import NdiConfig
from livedream.outputs.seam import OpaqueRgba
from livedream.pipeline.ndi import import_cyndilib

log = logging.getLogger(__name__)

class NdiOutput:
    """Publishes each frame as the NDI source `config.name` (seen as "MACHINE (name)")."""

    active = True
    status = ""

    def __init__(self, config: NdiConfig) -> None:
        self._ndi = import_cyndilib()
        self._config = config
        self._fixed_size = (config.width, config.height) if config.width and config.height else None
        self._sender: Any = None
        self._rgba = OpaqueRgba()
        self._size: tuple[int, int] | None = None  # (height, width) the sender was made for
        self._resized: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"NDI {self._config.name}"

    def send(self, frame_rgb: np.ndarray) -> None:
        frame = self._sized(frame_rgb)
        height, width = frame.shape[:2]
        if self._sender is None or self._size != (height, width):
            self._open(width, height)
        self._sender.write_video(self._rgba.of(frame).reshape(-1))

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def _sized(self, frame_rgb: np.ndarray) -> np.ndarray:
        if self._fixed_size is None or frame_rgb.shape[1::-1] == self._fixed_size:
            return frame_rgb
        width, height = self._fixed_size
        if self._resized is None or self._resized.shape[:2] != (height, width):
            self._resized = np.empty((height, width, 3), np.uint8)
        return cv2.resize(frame_rgb, self._fixed_size, dst=self._resized, interpolation=cv2.INTER_AREA)

    def _open(self, width: int, height: int) -> None:
        self.close()
        ndi = self._ndi
        video = ndi.VideoSendFrame()
        video.set_resolution(width, height)
        video.set_frame_rate(Fraction(self._config.fps, 1))
        video.set_fourcc(ndi.FourCC.RGBA)
        sender = ndi.Sender(self._config.name, clock_video=False)  # the loop sets the pace, not NDI
        sender.set_video_frame(video)
        sender.open()
        self._sender, self._size = sender, (height, width)
        log.info("NDI output %r: %dx%d at %d fps", self._config.name, width, height, self._config.fps)
