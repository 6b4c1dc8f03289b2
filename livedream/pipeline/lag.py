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

What a pan brought in since the newest dream's frame lags most: the carry holds nothing there
at all, a band along the edge it comes in by (`entering_band`). It grows for as long as a dream
takes and is shown for (1.2 s and 0.6 s for the two octaves of the demo on a slow 2-core CPU),
so `live.schedule` dreams that band alone after each whole frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from livedream.pipeline.visitors import Box

DEPTH_CELL_PX = 16  # the local depth is measured over cells this wide at the dream size
DEPTH_PERCENTILE = 75  # the picture's well-dreamed depth: this percentile of its cells
MIN_DEPTH = 1.0 / 127.5  # a reference shallower than a grey level: nothing is dreamed enough to lag behind
BARE = 0.5  # a row or column along an edge whose mean confidence is below this carries (next to) nothing
ENTERING_MIN = 0.03  # a bare band narrower than this share of the side waits for the next whole dream


def entering_band(confidence: np.ndarray) -> Box | None:
    """The widest bare band along an edge of `confidence` (H, W, the carry's trust at the dream
    size: 0 where the carried detail comes from outside its frame), as a Box of the whole edge's
    length; None when none is ENTERING_MIN of the side wide (a still camera: never)."""
    height, width = confidence.shape
    rows, columns = confidence.mean(axis=1), confidence.mean(axis=0)
    bands = (
        (_bare_run(rows) / height, lambda share: (0.0, 0.0, 1.0, share)),
        (_bare_run(rows[::-1]) / height, lambda share: (0.0, 1.0 - share, 1.0, 1.0)),
        (_bare_run(columns) / width, lambda share: (0.0, 0.0, share, 1.0)),
        (_bare_run(columns[::-1]) / width, lambda share: (1.0 - share, 0.0, 1.0, 1.0)),
    )
    share, box_of = max(bands, key=lambda band: band[0])
    return box_of(share) if share >= ENTERING_MIN else None


def _bare_run(means: np.ndarray) -> int:
    """How many of `means`, from the first on, are below BARE."""
    covered = np.flatnonzero(means >= BARE)
    return int(covered[0]) if covered.size else len(means)


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
