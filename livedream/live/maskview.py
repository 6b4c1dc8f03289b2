"""The operator's view of the visitor mask (key v, OSC `/livedream/mask_view`, the web panel's
button): who the app takes for a visitor this frame, drawn over the picture in the window only.

The mask is tinted where it holds a visitor (above INSIDE), outlined, and each visitor's box
(`Visitors.boxes`) is drawn as a rectangle. The app hands this view to the window alone: the
outputs (NDI, Spout/Syphon, recording, virtual camera), the web preview and the controls get
the picture itself, as they never get the HUD. While the camera moves there is no mask and
the view is the picture; the HUD's visitors line says why.

Off, nothing here runs; on, it draws into buffers made once per picture and mask size.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from livedream.pipeline.visitors import Visitors

log = logging.getLogger(__name__)

INSIDE = 0.5  # the mask's value above which a pixel is drawn as a visitor's
TINT = (255, 0, 200)  # magenta: a colour DeepDream's motifs rarely take
TINT_ALPHA = 0.4  # the tint's share of a visitor's pixel: the picture stays readable under it
OUTLINE = (255, 255, 0)  # the mask's edge
BOX = (0, 255, 255)  # the visitors' boxes
LINE_PER_PX = 1 / 360  # line width per picture height: 2 px at 720p, 3 px at 1080p


class _Buffers:
    """The arrays one picture size is drawn in, made once per (picture, mask) size."""

    def __init__(self, picture_shape: tuple[int, ...], mask_shape: tuple[int, ...]) -> None:
        height, width = picture_shape[:2]
        self.key = (picture_shape, mask_shape)
        self.line = max(2, round(height * LINE_PER_PX))
        self.mask_levels = np.empty(mask_shape, np.uint8)  # the mask as 0..255, at its own size
        self.levels = np.empty((height, width), np.uint8)  # and at the picture's
        self.inside = np.empty((height, width), np.uint8)  # 255 on a visitor
        self.edge = np.empty((height, width), np.uint8)  # 255 on the mask's outline
        self.tint = np.full((height, width, 3), TINT, np.uint8)
        self.outline = np.full((height, width, 3), OUTLINE, np.uint8)
        self.tinted = np.empty((height, width, 3), np.uint8)  # the whole picture, tinted
        self.view = np.empty((height, width, 3), np.uint8)  # the answer
        self.kernel = np.ones((self.line, self.line), np.uint8)


class MaskView:
    """Toggled by the operator (`toggle`); `over` draws a frame's visitors over its picture."""

    def __init__(self) -> None:
        self.on = False
        self._buffers: _Buffers | None = None

    def toggle(self) -> None:
        self.on = not self.on
        log.info("visitor mask %s (this window only)", "shown" if self.on else "hidden")

    def over(self, picture: np.ndarray, visitors: Visitors | None) -> np.ndarray:
        """`picture` (H, W, 3 uint8) with `visitors` drawn over it, in this view's buffer (valid
        until the next call; `picture` is never written); `picture` itself without a mask."""
        if visitors is None or visitors.mask is None:
            return picture
        buffers = self._buffers_for(picture, visitors.mask)
        self._tint_inside(picture, visitors.mask, buffers)
        self._draw_boxes(visitors, buffers)
        return buffers.view

    def _buffers_for(self, picture: np.ndarray, mask: np.ndarray) -> _Buffers:
        key = (picture.shape, mask.shape)
        if self._buffers is None or self._buffers.key != key:
            self._buffers = _Buffers(picture.shape, mask.shape)
        return self._buffers

    @staticmethod
    def _tint_inside(picture: np.ndarray, mask: np.ndarray, buffers: _Buffers) -> None:
        """The picture, tinted where the mask (scaled smoothly to it) holds a visitor, outlined."""
        cv2.convertScaleAbs(mask, buffers.mask_levels, alpha=255)
        height, width = picture.shape[:2]
        cv2.resize(buffers.mask_levels, (width, height), dst=buffers.levels, interpolation=cv2.INTER_LINEAR)
        cv2.threshold(buffers.levels, round(INSIDE * 255), 255, cv2.THRESH_BINARY, dst=buffers.inside)
        cv2.morphologyEx(buffers.inside, cv2.MORPH_GRADIENT, buffers.kernel, dst=buffers.edge)
        cv2.addWeighted(picture, 1 - TINT_ALPHA, buffers.tint, TINT_ALPHA, 0, dst=buffers.tinted)
        np.copyto(buffers.view, picture)
        cv2.copyTo(buffers.tinted, buffers.inside, buffers.view)
        cv2.copyTo(buffers.outline, buffers.edge, buffers.view)

    @staticmethod
    def _draw_boxes(visitors: Visitors, buffers: _Buffers) -> None:
        height, width = buffers.view.shape[:2]
        for x0, y0, x1, y1 in visitors.boxes:  # x1, y1: the edge after the box's last pixel
            corner = (round(x0 * width), round(y0 * height))
            opposite = (max(corner[0], round(x1 * width) - 1), max(corner[1], round(y1 * height) - 1))
            cv2.rectangle(buffers.view, corner, opposite, BOX, buffers.line)
