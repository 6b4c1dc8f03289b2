"""How each visitor moved between two frames: the shift of their outline, for the carry.

The carry follows the optical flow (`coherence`), and on a walking visitor the flow often
fails: DIS on small frames loses a body that moves a couple of small pixels a frame, striped
or plain clothes give it nothing to hold (the aperture problem), limbs cross. A dream of a
walker then lands where they were when it was made (on the CPU a third of a second or more
before it is shown: more than a stride), and the carry leaves their detail in the room as a
figure-shaped trail that fades, while the walker goes on bare.

The visitor mask knows where each visitor is in every frame, so the outline's own motion is
known: each visitor (a connected part of the mask) is matched between the two frames' masks by
phase correlation in their box (sub-pixel, 0.15 ms a visitor at the 160-px analysis size), and the
carry moves that visitor's detail by that shift. Measured on the walk-in clip (a figure
crossing at 1.7 small pixels a frame): the shifts found are 1.4–2.1 with a peak response
0.8–1.0; where the mask changes shape faster than it moves (a figure stepping in from the
picture's edge, the person model's and the background model's masks disagreeing for a frame)
the response falls below MATCHED and the flow is kept. A shift under WALKING is no walk (a
visitor standing, swaying, gesturing): there the flow follows the body's own motion better
than one shift for the whole outline, and the mask's noise does not jitter the detail.
"""

from __future__ import annotations

import cv2
import numpy as np

MATCHED = 0.7  # the least phase-correlation response (0..1) whose shift is taken
WALKING = 0.3  # small pixels a frame (≈ 1.2 dream pixels at 640 wide, 36 a second): below, the flow decides
REACH = 8  # small pixels a visitor's box is widened by: the most a visitor moves in a frame (a run)
LEAST_AREA = 12  # small pixels: a part of the mask smaller than this is a speck, left to the flow


class WalkerShifts:
    """Writes each walking visitor's shift into a backward flow. Buffers are made once per size."""

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None

    def apply(self, before: np.ndarray, now: np.ndarray, region: np.ndarray, flow: np.ndarray) -> int:
        """`flow` (h, w, 2; this frame's pixel p was at p + flow[p] in the previous one), set
        to −shift on the body (`now` over one half) of each part of `region` (h, w, 0..1: where
        the visitors' motion counts, the mask widened, so that one visitor's pieces are one
        part) whose outline (`before` → `now`, the masks as found, h, w, 0..1) walked. The
        widened margin keeps the flow: it is the room's, and moved with a walker it would drag
        the room's detail. Returns how many parts walked."""
        height, width = now.shape
        if self._size != (height, width):
            self._allocate(height, width)
        np.greater(region, 0.5, out=self._inside)
        np.greater(now, 0.5, out=self._body)
        parts, _, boxes, _ = cv2.connectedComponentsWithStats(self._inside.view(np.uint8), labels=self._labels)
        walked = 0
        for part in range(1, parts):
            x, y, box_width, box_height, area = (int(value) for value in boxes[part])
            if area < LEAST_AREA:
                continue
            rows = slice(max(0, y - REACH), min(height, y + box_height + REACH))
            columns = slice(max(0, x - REACH), min(width, x + box_width + REACH))
            (shift_x, shift_y), response = cv2.phaseCorrelate(before[rows, columns], now[rows, columns])
            if response < MATCHED or np.hypot(shift_x, shift_y) < WALKING or max(abs(shift_x), abs(shift_y)) > REACH:
                continue
            on_part = np.equal(self._labels[rows, columns], part, out=self._on_part[rows, columns])
            on_part &= self._body[rows, columns]
            np.copyto(flow[rows, columns, 0], -shift_x, where=on_part)
            np.copyto(flow[rows, columns, 1], -shift_y, where=on_part)
            walked += 1
        return walked

    def _allocate(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._inside = np.zeros((height, width), bool)
        self._labels = np.zeros((height, width), np.int32)
        self._on_part = np.zeros((height, width), bool)
        self._body = np.zeros((height, width), bool)
