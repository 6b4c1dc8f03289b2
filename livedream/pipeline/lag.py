"""How far each pixel's carried dream lags behind the picture's: what a live dream's fresh steps
make up for, counting up to CATCH_UP times there (`LiveDreamer`, `BoxDreams`).

A pixel lags for one of two reasons. The carry was not trusted there (the flow failed, or a
moving visitor uncovered it: `coherence`), so its dream starts from nothing. Or the carry was
trusted but is shallow: what a pan or a walker brought into the picture a few seconds ago has
been dreamed a few times, where the rest has been dreamed for many seconds. A CPU dreams about
once a second, so that gap lasts. Measured on the demo's slow pan (`tools/look.py`, 30 s, before
this): the top rows carried 29 grey levels of mean detail, the bottom eighth, in view for the last
seconds, 1 (a still: 15 everywhere), and the judge at 640x360 gave the picture 0.40 of a still's
DeepDream.

Shallowness is the carried detail's local depth (mean |detail| over cells of DEPTH_CELL_PX)
below the depth of the picture's well-dreamed part (the DEPTH_PERCENTILE-th cell), as a share:
1 − depth / that, in 0..1. A picture dreamed evenly (a still scene, the first dreams) has none.
"""

from __future__ import annotations

import cv2
import numpy as np

DEPTH_CELL_PX = 16  # the local depth is measured over cells this wide at the dream size
DEPTH_PERCENTILE = 75  # the picture's well-dreamed depth: this percentile of its cells
MIN_DEPTH = 1.0 / 127.5  # a reference shallower than a grey level: nothing is dreamed enough to lag behind


class LagMap:
    """The lag of each pixel (0 = carried whole and as deep as the picture, 1 = nothing carried)
    from a dream's carried start and its confidence, in buffers made once per size."""

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None

    def of(self, carried: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """`carried` (1, 3, H, W) in [-1, 1] units, `confidence` (H, W) 0..1: the lag (H, W),
        this object's buffer until the next call."""
        height, width = carried.shape[2:]
        if self._size != (height, width):
            self._allocate(height, width)
        np.abs(carried[0], out=self._magnitude)
        np.sum(self._magnitude, axis=0, out=self._depth)
        cv2.resize(self._depth, self._cells.shape[::-1], dst=self._cells, interpolation=cv2.INTER_AREA)
        reference = float(np.percentile(self._cells, DEPTH_PERCENTILE)) / 3.0
        np.subtract(1.0, confidence, out=self._lag)
        if reference < MIN_DEPTH:
            return self._lag
        cv2.addWeighted(self._cells, -1.0 / (3.0 * reference), self._cells, 0.0, 1.0, dst=self._cells)
        np.clip(self._cells, 0.0, 1.0, out=self._cells)
        cv2.resize(self._cells, (width, height), dst=self._shallow, interpolation=cv2.INTER_LINEAR)
        return np.maximum(self._lag, self._shallow, out=self._lag)

    def _allocate(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._magnitude = np.empty((3, height, width), np.float32)
        self._depth = np.empty((height, width), np.float32)
        cells = (max(1, round(height / DEPTH_CELL_PX)), max(1, round(width / DEPTH_CELL_PX)))
        self._cells = np.empty(cells, np.float32)
        self._shallow = np.empty((height, width), np.float32)
        self._lag = np.empty((height, width), np.float32)
