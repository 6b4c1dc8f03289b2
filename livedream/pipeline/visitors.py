"""Who is a visitor: one soft mask of the people in front of the camera, and their boxes.

Two models, each covering the other's blind spot, fused (a visitor is what either finds):

- **The person model** (`runtime.person`: MediaPipe's selfie segmentation) sees people by
  their shape, moving or not, there from the start or not. It misses small, distant people.
- **The background model** (OpenCV's MOG2) learns the empty room per pixel; whatever differs
  from it is a visitor, however small. It cannot tell a person who stands still from the room
  unless it stops learning while anyone is there.

Rules that make the fusion work for an installation:

- **Learn only the empty room.** MOG2 learns while the fused mask is (nearly) empty and is
  frozen while anyone is there. The first WARM_UP frames learn unconditionally: the room as the
  app starts (a visitor already there is the person model's to find).
- **Ghosts heal.** Background-model foreground that the person model does not vouch for and
  that shows no motion for ABSORB_S (a bag put down, the spot where someone stood at start) is
  absorbed into the room: the model relearns. A person the person model sees is never a ghost,
  so a visitor who stands still for minutes stays a visitor.
- **A moving camera gets no mask.** Each frame's global motion is estimated from corners
  tracked in the ROOM only (outside the last mask, widened), so a big visitor (up to 40 % of the
  picture) is never taken for camera motion. A shift, zoom or turn beyond MOVING_* means no
  mask (a wrong one would dream the whole room as a visitor), the state says so for the HUD,
  and once the camera is still again the room is learned anew. A pan too slow for one frame's
  test adds up: the room is also compared with itself DRIFT_S ago (the demo's pan moves a
  quarter of a pixel a frame here, and taken for a still room it made the whole picture a
  visitor, whose box dreams starved the room and whose held-still room left the carried
  detail behind the pan); that answer holds until the next comparison.
- **No flicker.** The fused mask rises at once; where the picture is still it fades over
  FADE_S, so a model missing a still visitor for a frame does not blink the dream off them,
  and where the picture moved it follows the models at once, so a walker leaves no trail.

The person model costs a few milliseconds, so it runs at most PERSON_RATE times a second of
source time (every frame of a 10 fps clip, every third at 30 fps); between its runs its last
mask is kept where the picture has not changed since, and MOG2 covers where it has (a walker's
new ground). Everything else runs on a small copy (ANALYSIS_WIDTH wide; MOG2 in colour, as
clothes differ from a room in hue as often as in brightness, the motion tests in grey) in
buffers made once per source size. The mask comes back at that small size; the graphs resize
it to each layer's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from livedream.runtime.person import NAME as PERSON_MODEL_NAME
from livedream.runtime.person import PersonModel

ANALYSIS_WIDTH = 160
WARM_UP = 20  # frames learned unconditionally at the start (and after the camera moved)
EMPTY_SHARE = 0.002  # a mask covering less of the picture than this is an empty room
LEARNING_RATE = 0.01  # while the room is empty: follows light changes over ~100 frames
ABSORB_S = 60.0  # unmoving foreground no person is seen in becomes room after this long,
GHOST_S = 0.5  # or after this long where the person model saw someone while the room was learned
MOTION_LEVEL = 12  # grey levels a pixel changes between frames to count as motion (noise: ~1)
MOVED_SHARE = 0.01  # the unvouched foreground moved when this share of it shows motion
CORNER_FLOOR = 1e-4  # weaker corners (OpenCV's min eigenvalue) are the camera's noise: a bare wall's ~1e-5
SWING_SHARE = 0.3  # the camera swung when this share of the picture changed and no motion explains it
MIN_CORNERS = 8  # fewer room corners than this tell no motion (a similarity needs 2; RANSAC wants a few more)
MOVING_SHIFT_PX = 0.6  # camera motion at the analysis size: shift in pixels,
MOVING_SCALE = 0.004  # zoom as a fraction,
MOVING_TURN_DEG = 0.3  # and rotation in degrees
DRIFT_S = 0.5  # the room is also compared with itself this long ago, against the same MOVING_* limits
ROOM_MARGIN_PX = 5  # corners this close to the last mask may be a visitor's: not the room's
SOFT_PX = 5  # MOG2's mask edge, blurred over this many analysis pixels
PERSON_RATE = 10.0  # person-model runs a second of source time, at most
PERSON_EDGES = (0.5, 0.9)  # the person model's chance mapped to the mask: below 0, above 1
CHANGED_LEVEL = 20  # grey levels since the person model's run: its mask there is out of date
FADE_S = 0.3  # where the picture is still, the mask falls to 1/e of a lost visitor in this long
MERGE_PX = 2  # mask parts closer than this (analysis pixels) are one visitor's box
SPECK_SHARE = 0.004  # a mask part whose box covers less of the picture than this gets none
FOUND_BY_BOTH = f"person model ({PERSON_MODEL_NAME}) + background model"
FOUND_BY_BACKGROUND = "background model"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in 0..1 of the frame's width and height


class VisitorState(Enum):
    LEARNING = "learning the room"
    WATCHING = "watching"
    CAMERA_MOVING = "camera moving: no mask"


@dataclass(frozen=True)
class Visitors:
    """One frame's visitors: the soft mask (h, w) float32 in 0..1 at the analysis size, or None
    while the camera moves; the state for the HUD; the visitors' boxes (overlapping parts
    merged, specks dropped), and what found them (`FOUND_BY_*`)."""

    mask: np.ndarray | None
    state: VisitorState
    boxes: tuple[Box, ...] = ()
    found_by: str = FOUND_BY_BACKGROUND

    @property
    def share(self) -> float:
        """The share of the picture the visitors cover (0 without a mask)."""
        return 0.0 if self.mask is None else float(self.mask.mean())

    @property
    def still_room(self) -> np.ndarray | None:
        """The mask by which the carry holds the room in place (`coherence`), once the room is
        known to be still (watching). While the room is being learned the camera may yet move:
        a slow pan passes the motion check in bursts and is learned again in between, and a
        room held still there does not follow the pan (a panned clip's carry error 0.13 → 0.21)."""
        return self.mask if self.state is VisitorState.WATCHING else None

    @property
    def count(self) -> int:
        return len(self.boxes)

    @property
    def summary(self) -> str:
        """For the HUD: `watching, 2 visitors, 8% of the picture`, `camera moving: no mask`."""
        if self.mask is None:
            return self.state.value
        people = f"{self.count} visitor{'' if self.count == 1 else 's'}"
        return f"{self.state.value}, {people}, {self.share:.0%} of the picture"


class _Buffers:
    """The analysis-size arrays one source's frames are worked in, made once per source size."""

    def __init__(self, height: int, width: int) -> None:
        def grey() -> np.ndarray:
            return np.empty((height, width), np.uint8)

        def unit(fill: float | None = None) -> np.ndarray:
            return np.empty((height, width), np.float32) if fill is None else np.full((height, width), fill, np.float32)

        self.size = (width, height)  # as OpenCV takes it
        self.resized = np.empty((height, width, 3), np.uint8)
        self.small = np.empty_like(self.resized)
        self.greys = (grey(), grey())  # this frame's, the previous one's
        self.foreground, self.solid, self.opened, self.room, self.scratch = grey(), grey(), grey(), grey(), grey()
        self.composite = np.empty_like(self.resized)  # the room as MOG2 has it, a ghost's region as it is now
        self.started_with = grey()  # 255 where the person model saw someone while the room was learned
        self.left_behind = grey()  # MOG2's foreground where the person model saw someone at the start
        self.person_grey = grey()  # the frame the person model last saw
        self.person_seen = unit(0.0)  # its mask then
        self.person = unit(0.0)  # its mask now
        self.unit, self.background, self.fused = unit(), unit(), unit()
        self.moved = grey()  # 255 where this frame differs from the previous one
        self.near_motion = grey()  # and within SOFT_PX of that (the soft mask's edge)
        self.corners = unit()  # how much of a corner each pixel of the previous frame is
        self.anchor, self.anchor_room = grey(), grey()  # the frame DRIFT_S ago and its room (255)
        self.mask = unit(0.0)  # the answer: fused, risen at once, faded over FADE_S


class VisitorMask:
    """Feed it every frame (`update`); it answers with that frame's visitors. The mask is this
    object's buffer, valid until the next `update`. `person_model`: False for the background
    model alone (as before the person model came)."""

    def __init__(self, person_model: bool = True) -> None:
        self._person = PersonModel() if person_model else None
        self._found_by = FOUND_BY_BOTH if person_model else FOUND_BY_BACKGROUND
        self._size: tuple[int, int] | None = None
        self._buffers: _Buffers | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._near_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * SOFT_PX + 1,) * 2)
        self._room_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ROOM_MARGIN_PX + 1,) * 2)
        self.reset()

    @staticmethod
    def _new_model() -> cv2.BackgroundSubtractorMOG2:
        return cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)

    def reset(self) -> None:
        """A new source: learn its room from the start."""
        self._model = self._new_model()
        self._frames = 0
        self._previous: np.ndarray | None = None
        self._turn = 0  # which of the two grey buffers this frame writes
        self._still_s = self._ghost_s = 0.0  # how long the foreground no person is seen in has not moved
        self._person_due_s = math.inf  # source seconds since the person model ran
        self._anchor_s: float | None = None  # source seconds since the anchor frame (None: none yet)
        self._drifting = False  # the last comparison with the anchor saw the room move
        if self._buffers is not None:
            self._buffers.mask.fill(0.0)

    def update(self, frame_rgb: np.ndarray, frame_s: float) -> Visitors:
        buffers = self._buffers_for(frame_rgb)
        small = self._small(frame_rgb, buffers)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY, dst=buffers.greys[self._turn])
        previous, self._previous = self._previous, grey
        self._turn = 1 - self._turn  # the next frame keeps this one as its previous
        person = self._person_now(frame_rgb, grey, frame_s, buffers)
        self._motion(previous, grey, buffers)
        if previous is not None and self._camera_moves(previous, grey, person, frame_s, buffers):
            if self._frames:  # the room seen from here must be learned anew (once, however long it moves)
                self._frames = 0
                self._model = self._new_model()
            buffers.mask.fill(0.0)
            return Visitors(None, VisitorState.CAMERA_MOVING, found_by=self._found_by)
        if self._frames < WARM_UP:
            self._warm_up(small, person, buffers)
            return self._answer(person, frame_s, VisitorState.LEARNING, buffers)
        self._model.apply(small, buffers.foreground, learningRate=0)
        background = self._soft(buffers)
        fused = np.maximum(background, person, out=buffers.fused)
        self._learn_room(small, frame_s, buffers)
        return self._answer(fused, frame_s, VisitorState.WATCHING, buffers)

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

    def _camera_moves(self, previous: np.ndarray, grey: np.ndarray, person: np.ndarray, frame_s: float,
                      buffers: _Buffers) -> bool:
        """Whether the room moved, since the previous frame or since the anchor (`_drifts`):
        judged on corners outside the last mask and the people the person model sees now,
        widened by ROOM_MARGIN_PX (a walker's step between frames), so the visitors never
        outvote it."""
        np.maximum(buffers.mask, person, out=buffers.unit)
        cv2.compare(buffers.unit, 0.1, cv2.CMP_LT, dst=buffers.scratch)
        cv2.erode(buffers.scratch, self._room_kernel, dst=buffers.room)
        cv2.cornerMinEigenVal(previous, 3, dst=buffers.corners)
        _, strongest, _, _ = cv2.minMaxLoc(buffers.corners, buffers.room)
        if strongest < CORNER_FLOOR:
            return False  # a bare wall, or visitors everywhere: nothing to tell motion by, nothing a mask would spoil
        quality = CORNER_FLOOR / strongest
        drifts = self._drifts(grey, quality, frame_s, buffers)
        swing = cv2.countNonZero(buffers.moved) > SWING_SHARE * buffers.moved.size
        return drifts or _camera_moves(previous, grey, buffers.room, quality, swing)

    def _drifts(self, grey: np.ndarray, quality: float, frame_s: float, buffers: _Buffers) -> bool:
        """Whether the room moved between the anchor, DRIFT_S ago, and this frame, on the corners
        that were room then (a visitor there then was masked; one there now hides corners, which
        the tracking drops or RANSAC outvotes; and a slow pan taken for a still room grows the
        mask over the room's own corners: so not the room of now); the answer holds until the
        next comparison, and this frame becomes the anchor."""
        if self._anchor_s is not None:
            self._anchor_s += frame_s
            if self._anchor_s < DRIFT_S:
                return self._drifting
            self._drifting = _camera_moves(buffers.anchor, grey, buffers.anchor_room, quality, swing=False)
        np.copyto(buffers.anchor, grey)
        np.copyto(buffers.anchor_room, buffers.room)
        self._anchor_s = 0.0
        return self._drifting

    def _motion(self, previous: np.ndarray | None, grey: np.ndarray, buffers: _Buffers) -> None:
        """`buffers.moved`: 255 where this frame differs from the last beyond the camera's noise;
        `buffers.near_motion`: that widened by the soft edge's width."""
        if previous is None:
            buffers.moved.fill(0)
            buffers.near_motion.fill(0)
            return
        cv2.absdiff(previous, grey, dst=buffers.scratch)
        cv2.compare(buffers.scratch, MOTION_LEVEL, cv2.CMP_GT, dst=buffers.moved)
        cv2.dilate(buffers.moved, self._near_kernel, dst=buffers.near_motion)

    def _person_now(self, frame_rgb: np.ndarray, grey: np.ndarray, frame_s: float, buffers: _Buffers) -> np.ndarray:
        """The person model's mask for this frame: a fresh one when a run is due, else its last
        one where the picture has not changed since (where it has, MOG2 sees the walker)."""
        if self._person is None:
            return buffers.person  # all 0
        self._person_due_s += frame_s
        if self._person_due_s >= 1.0 / PERSON_RATE - 1e-3:  # (a millisecond for the sum's rounding)
            self._person_due_s = 0.0
            chance = self._person.segment(frame_rgb)
            cv2.resize(chance, buffers.size, dst=buffers.person_seen, interpolation=cv2.INTER_AREA)
            low, high = PERSON_EDGES
            np.subtract(buffers.person_seen, low, out=buffers.person_seen)
            np.multiply(buffers.person_seen, 1.0 / (high - low), out=buffers.person_seen)
            np.clip(buffers.person_seen, 0.0, 1.0, out=buffers.person_seen)
            buffers.person_grey[:] = grey
            buffers.person[:] = buffers.person_seen
            return buffers.person
        cv2.absdiff(grey, buffers.person_grey, dst=buffers.scratch)
        cv2.compare(buffers.scratch, CHANGED_LEVEL, cv2.CMP_LE, dst=buffers.scratch)  # 255: unchanged
        buffers.person.fill(0.0)
        cv2.copyTo(buffers.person_seen, buffers.scratch, buffers.person)
        return buffers.person

    def _soft(self, buffers: _Buffers) -> np.ndarray:
        """MOG2's 255 (visitor) / 127 (shadow) / 0 as a soft 0..1 mask: shadows are room, specks
        go (opening), holes close, and the edge is blurred so the dream fades in."""
        cv2.threshold(buffers.foreground, 200, 255, cv2.THRESH_BINARY, dst=buffers.solid)
        cv2.morphologyEx(buffers.solid, cv2.MORPH_OPEN, self._kernel, dst=buffers.opened)
        cv2.morphologyEx(buffers.opened, cv2.MORPH_CLOSE, self._kernel, dst=buffers.solid, iterations=2)
        np.multiply(buffers.solid, 1.0 / 255.0, out=buffers.unit)
        mask = cv2.GaussianBlur(buffers.unit, (0, 0), SOFT_PX / 2.0, dst=buffers.background)
        mask *= 1.5  # the blur's core back to 1, its tail to 0
        mask -= 0.25
        return np.clip(mask, 0.0, 1.0, out=mask)

    def _warm_up(self, small: np.ndarray, person: np.ndarray, buffers: _Buffers) -> None:
        """MOG2 learns the room as it is; where a person stands, the spot they leave will be a ghost."""
        if self._frames == 0:
            buffers.started_with.fill(0)
        self._frames += 1
        self._model.apply(small, buffers.foreground, learningRate=-1)
        cv2.compare(person, 0.5, cv2.CMP_GE, dst=buffers.scratch)
        cv2.bitwise_or(buffers.started_with, buffers.scratch, dst=buffers.started_with)

    def _learn_room(self, small: np.ndarray, frame_s: float, buffers: _Buffers) -> None:
        """MOG2 learns while nobody is there; foreground no person is seen in that stays unmoving
        (a ghost) is absorbed. `buffers.solid` holds MOG2's foreground (255)."""
        if buffers.fused.mean() < EMPTY_SHARE:
            self._still_s = self._ghost_s = 0.0
            self._model.apply(small, buffers.foreground, learningRate=LEARNING_RATE)
            return
        cv2.compare(buffers.person, 0.5, cv2.CMP_LT, dst=buffers.scratch)
        unvouched = cv2.bitwise_and(buffers.solid, buffers.scratch, dst=buffers.opened)  # MOG2's alone
        left_behind = cv2.bitwise_and(unvouched, buffers.started_with, dst=buffers.left_behind)
        self._ghost_s = self._still_for(self._ghost_s, left_behind, frame_s, buffers)
        self._still_s = self._still_for(self._still_s, unvouched, frame_s, buffers)
        if self._ghost_s >= GHOST_S:
            self._absorb(small, left_behind, buffers)
        elif self._still_s >= ABSORB_S:
            self._absorb(small, unvouched, buffers)

    @staticmethod
    def _still_for(seconds: float, region: np.ndarray, frame_s: float, buffers: _Buffers) -> float:
        """How long `region` (255) has been there without motion, one frame on."""
        count = cv2.countNonZero(region)
        if count < EMPTY_SHARE * region.size:
            return 0.0
        moving = cv2.countNonZero(cv2.bitwise_and(buffers.moved, region, dst=buffers.scratch))
        return 0.0 if moving > MOVED_SHARE * count else seconds + frame_s

    def _absorb(self, small: np.ndarray, region: np.ndarray, buffers: _Buffers) -> None:
        """`region` (255, widened by the soft edge) becomes room as it looks now; elsewhere the
        room stays as MOG2 had it, so nobody else there is absorbed with it."""
        self._model.getBackgroundImage(buffers.composite)
        cv2.dilate(region, self._near_kernel, dst=buffers.scratch)
        cv2.copyTo(small, buffers.scratch, buffers.composite)
        self._model.apply(buffers.composite, buffers.foreground, learningRate=1.0)
        self._still_s = self._ghost_s = 0.0

    def _answer(self, fused: np.ndarray, frame_s: float, state: VisitorState, buffers: _Buffers) -> Visitors:
        """The fused mask held over time, and its boxes. It rises at once; where the picture is
        still it falls over FADE_S (a model missing a still visitor for a frame does not blink the
        dream off them); where the picture moved it follows the models at once (a walker's trail)."""
        keep = math.exp(-frame_s / FADE_S)
        held = cv2.addWeighted(buffers.mask, keep, fused, 1.0 - keep, 0.0, dst=buffers.unit)
        np.maximum(held, fused, out=buffers.mask)
        cv2.copyTo(fused, buffers.near_motion, buffers.mask)
        return Visitors(buffers.mask, state, self._boxes(buffers), self._found_by)

    @staticmethod
    def _boxes(buffers: _Buffers) -> tuple[Box, ...]:
        """The mask's parts (> 0.5) as boxes in 0..1: specks dropped, overlapping ones merged."""
        cv2.compare(buffers.mask, 0.5, cv2.CMP_GT, dst=buffers.solid)
        outlines, _ = cv2.findContours(buffers.solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        height, width = buffers.mask.shape
        parts = [(x, y, x + w, y + h) for x, y, w, h in map(cv2.boundingRect, outlines)
                 if w * h >= SPECK_SHARE * height * width]
        return tuple((x0 / width, y0 / height, x1 / width, y1 / height) for x0, y0, x1, y1 in _merged(parts))


def _merged(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Boxes that overlap or nearly touch joined into one, until none do (a head apart from its
    body at the analysis size, a figure MOG2 saw in pieces)."""
    pending, merged = list(boxes), []
    while pending:
        box = pending.pop()
        overlapping = [other for other in pending + merged if _overlap(box, other)]
        if not overlapping:
            merged.append(box)
            continue
        for other in overlapping:
            (pending if other in pending else merged).remove(other)
        pending.append(tuple(f(edges) for f, edges in zip((min, min, max, max), zip(box, *overlapping))))
    return sorted(merged)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] + MERGE_PX and b[0] < a[2] + MERGE_PX and a[1] < b[3] + MERGE_PX and b[1] < a[3] + MERGE_PX


def _camera_moves(previous: np.ndarray, current: np.ndarray, room: np.ndarray, quality: float, swing: bool) -> bool:
    """Whether the room itself moved between two small grey frames: corners (where `room` is
    255, at least `quality` of the strongest) tracked by Lucas-Kanade, a similarity fitted by
    RANSAC. Without a similarity most corners agree on, it moved only if `swing` (most of the
    picture changed): weak corners' noise agrees on nothing, a cut or a swing changes everything."""
    corners = cv2.goodFeaturesToTrack(previous, maxCorners=120, qualityLevel=min(1.0, max(0.005, quality)),
                                      minDistance=6, mask=room)
    if corners is None or len(corners) < MIN_CORNERS:
        return False  # too few to tell motion by
    moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, winSize=(15, 15), maxLevel=3)
    found = status.ravel() == 1
    if found.sum() < MIN_CORNERS:
        return swing  # the picture changed beyond tracking, or its corners were noise
    matrix, agree = cv2.estimateAffinePartial2D(corners[found], moved[found], method=cv2.RANSAC,
                                                ransacReprojThreshold=1.0)
    if matrix is None or agree.sum() < max(MIN_CORNERS, found.sum() / 2):
        return swing
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    turn = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    shift = math.hypot(matrix[0, 2], matrix[1, 2])
    return shift > MOVING_SHIFT_PX or abs(scale - 1.0) > MOVING_SCALE or abs(turn) > MOVING_TURN_DEG
