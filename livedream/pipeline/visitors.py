"""The visitors: a soft mask of the people in front of the camera, from OpenCV's background model.

OpenCV's MOG2 learns the empty room per pixel; whatever differs from it is a visitor. Three
rules make that work for an installation:

- **Learn only the empty room.** The model learns while the mask is (nearly) empty, and is
  frozen (learning rate 0) while anyone is there, so a visitor who stands still does not fade
  into the room. The first WARM_UP frames learn unconditionally: the room as the app starts.
- **Ghosts heal.** Something that entered and stays unmoving for ABSORB_S (a bag put down, a
  room seen with someone in it at start who then left) is absorbed into the room: after that
  long with no motion, the model relearns. A person holding perfectly still that long becomes
  room too; people sway, and the frame difference sees it.
- **A moving camera gets no mask.** Each frame's global motion is estimated from tracked
  corners (RANSAC similarity); a shift, zoom or turn beyond MOVING_* is a moving camera: no
  mask (a wrong one would dream the whole room as a visitor), the state says so for the HUD,
  and once the camera is still again the room is learned anew.

Everything runs on a small copy (ANALYSIS_WIDTH wide; the model in colour, as clothes differ
from a room in hue as often as in brightness, the motion tests in grey): measured in `tools/bench.py`'s
visitor row at well under a millisecond per frame on one CPU core, beside a dream of 100+ ms.
The mask comes back at that small size; the graphs resize it to each layer's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

ANALYSIS_WIDTH = 160
WARM_UP = 20  # frames learned unconditionally at the start (and after the camera moved)
EMPTY_SHARE = 0.002  # a mask covering less of the picture than this is an empty room
LEARNING_RATE = 0.01  # while the room is empty: follows light changes over ~100 frames
ABSORB_S = 60.0  # unmoving foreground this long becomes room
STILL_DIFFERENCE = 3.0  # mean grey-level change between frames below which nothing moved
MOVING_SHIFT_PX = 0.6  # camera motion at the analysis size: shift in pixels,
MOVING_SCALE = 0.004  # zoom as a fraction,
MOVING_TURN_DEG = 0.3  # and rotation in degrees
SOFT_PX = 5  # the mask's edge, blurred over this many analysis pixels


class VisitorState(Enum):
    LEARNING = "learning the room"
    WATCHING = "watching"
    CAMERA_MOVING = "camera moving: no mask"


@dataclass(frozen=True)
class Visitors:
    """One frame's visitors: the soft mask (h, w) float32 in 0..1 at the analysis size, or None
    (no mask: learning the room, or the camera moves), and the state for the HUD."""

    mask: np.ndarray | None
    state: VisitorState

    @property
    def share(self) -> float:
        """The share of the picture the visitors cover (0 without a mask)."""
        return 0.0 if self.mask is None else float(self.mask.mean())

    @property
    def summary(self) -> str:
        """For the HUD: `watching, 8 % of the picture`, `camera moving: no mask`."""
        if self.state is VisitorState.WATCHING:
            return f"{self.state.value}, {self.share:.0%} of the picture"
        return self.state.value


class _Buffers:
    """The analysis-size arrays one source's frames are worked in, made once per source size."""

    def __init__(self, height: int, width: int) -> None:
        self.size = (width, height)  # as OpenCV takes it
        self.resized = np.empty((height, width, 3), np.uint8)
        self.small = np.empty_like(self.resized)
        self.greys = (np.empty((height, width), np.uint8), np.empty((height, width), np.uint8))  # this, previous
        self.foreground = np.empty((height, width), np.uint8)
        self.solid = np.empty_like(self.foreground)
        self.opened = np.empty_like(self.foreground)
        self.unit = np.empty((height, width), np.float32)
        self.mask = np.empty_like(self.unit)


class VisitorMask:
    """Feed it every frame (`update`); it answers with that frame's visitors. The mask is this
    object's buffer, valid until the next `update`."""

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None
        self._buffers: _Buffers | None = None
        self._model = self._new_model()
        self._frames = 0
        self._previous: np.ndarray | None = None
        self._turn = 0  # which of the two grey buffers this frame writes
        self._still_s = 0.0
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    @staticmethod
    def _new_model() -> cv2.BackgroundSubtractorMOG2:
        return cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)

    def reset(self) -> None:
        """A new source: learn its room from the start."""
        self._model = self._new_model()
        self._frames = 0
        self._previous = None
        self._still_s = 0.0

    def update(self, frame_rgb: np.ndarray, frame_s: float) -> Visitors:
        buffers = self._buffers_for(frame_rgb)
        small = self._small(frame_rgb, buffers)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY, dst=buffers.greys[self._turn])
        previous, self._previous = self._previous, grey
        self._turn = 1 - self._turn  # the next frame keeps this one as its previous
        if previous is not None and _camera_moves(previous, grey):
            self._frames = 0  # the room seen from here must be learned anew
            self._model = self._new_model()
            return Visitors(None, VisitorState.CAMERA_MOVING)
        if self._frames < WARM_UP:
            self._frames += 1
            self._model.apply(small, buffers.foreground, learningRate=-1)
            return Visitors(None, VisitorState.LEARNING)
        moved = previous is None or float(cv2.absdiff(previous, grey).mean()) > STILL_DIFFERENCE
        self._still_s = 0.0 if moved else self._still_s + frame_s
        self._model.apply(small, buffers.foreground, learningRate=0)
        mask = self._soft(buffers)
        if self._still_s >= ABSORB_S:
            self._model.apply(small, buffers.foreground, learningRate=1.0)  # what stayed unmoving is room now
            self._still_s = 0.0
        elif mask.mean() < EMPTY_SHARE:
            self._model.apply(small, buffers.foreground, learningRate=LEARNING_RATE)
        return Visitors(mask, VisitorState.WATCHING)

    def _buffers_for(self, frame_rgb: np.ndarray) -> _Buffers:
        height, width = frame_rgb.shape[:2]
        if self._size != (height, width) or self._buffers is None:
            if self._size is not None:
                self.reset()  # another size is another source
            self._size = (height, width)
            self._buffers = _Buffers(max(2, round(height * ANALYSIS_WIDTH / width)), ANALYSIS_WIDTH)
        return self._buffers

    @staticmethod
    def _small(frame_rgb: np.ndarray, buffers: _Buffers) -> np.ndarray:
        cv2.resize(frame_rgb, buffers.size, dst=buffers.resized, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(buffers.resized, (3, 3), 0, dst=buffers.small)

    def _soft(self, buffers: _Buffers) -> np.ndarray:
        """MOG2's 255 (visitor) / 127 (shadow) / 0 as a soft 0..1 mask: shadows are room, specks
        go (opening), holes close, and the edge is blurred so the dream fades in."""
        cv2.threshold(buffers.foreground, 200, 255, cv2.THRESH_BINARY, dst=buffers.solid)
        cv2.morphologyEx(buffers.solid, cv2.MORPH_OPEN, self._kernel, dst=buffers.opened)
        cv2.morphologyEx(buffers.opened, cv2.MORPH_CLOSE, self._kernel, dst=buffers.solid, iterations=2)
        np.multiply(buffers.solid, 1.0 / 255.0, out=buffers.unit)
        mask = cv2.GaussianBlur(buffers.unit, (0, 0), SOFT_PX / 2.0, dst=buffers.mask)
        mask *= 1.5  # the blur's core back to 1, its tail to 0
        mask -= 0.25
        return np.clip(mask, 0.0, 1.0, out=mask)


def _camera_moves(previous: np.ndarray, current: np.ndarray) -> bool:
    """Whether the room itself moved between two small grey frames: corners tracked by
    Lucas-Kanade, a similarity fitted by RANSAC (the room's corners outvote a visitor's)."""
    corners = cv2.goodFeaturesToTrack(previous, maxCorners=120, qualityLevel=0.01, minDistance=6)
    if corners is None or len(corners) < 12:
        return False  # a bare wall: nothing to tell motion by, and nothing a mask would spoil
    moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, winSize=(15, 15), maxLevel=3)
    found = status.ravel() == 1
    if found.sum() < 12:
        return True  # the picture changed beyond tracking: a cut or a swing
    matrix, _ = cv2.estimateAffinePartial2D(corners[found], moved[found], method=cv2.RANSAC,
                                            ransacReprojThreshold=1.0)
    if matrix is None:
        return True
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    turn = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    shift = math.hypot(matrix[0, 2], matrix[1, 2])
    return shift > MOVING_SHIFT_PX or abs(scale - 1.0) > MOVING_SCALE or abs(turn) > MOVING_TURN_DEG
