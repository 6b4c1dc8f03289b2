"""Dream small, show sharp: a dream's detail laid over the full-resolution frame.

When the dream is computed below the frame's size, what is shown is the frame itself plus
the dream's detail (dream − source at the dream size) scaled up, not an enlarged small
picture: edges and faces keep the camera's resolution and the patterns ride on them. The
live loop (every shown frame) and the video path (every dreamed frame) both use this.
"""

from __future__ import annotations

import cv2
import numpy as np


class SharpComposer:
    """frame + upscaled detail, saturated to uint8, through buffers made once per size."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._detail_up: np.ndarray | None = None
        self._shown: np.ndarray | None = None

    def compose(self, frame_rgb: np.ndarray, detail: np.ndarray) -> np.ndarray:
        """`frame_rgb` (H, W, 3) uint8 plus `detail` (h, w, 3) in grey levels (int16 or float32,
        signed), enlarged to H x W when smaller. The result is this composer's own buffer,
        overwritten by the next call."""
        height, width = frame_rgb.shape[:2]
        key = (height, width, detail.dtype)
        if self._key != key:
            self._key = key
            self._detail_up = np.empty((height, width, 3), detail.dtype)
            self._shown = np.empty((height, width, 3), np.uint8)
        if detail.shape[:2] == (height, width):
            enlarged = detail
        else:
            enlarged = cv2.resize(detail, (width, height), dst=self._detail_up, interpolation=cv2.INTER_LINEAR)
        return cv2.add(frame_rgb, enlarged, dst=self._shown, dtype=cv2.CV_8U)

