"""Temporal coherence: carry the last frame's dream detail along the motion into this frame.

Without it each video frame is dreamed from scratch and the patterns boil. With it, the
previous frame's detail (dream − source) is warped by the optical flow between the two
SOURCE frames, faded by `decay`, and seeds the next dream, so patterns stick to what moves.
Flow is computed on small grey frames (cheap), then scaled up to the dream size.

Occlusion-aware: the flow is computed both ways, and a pixel whose backward flow the forward
flow does not send back (occluded, disoccluded: what a moving person uncovers) or that came
from outside the frame gets a low `confidence`; the carried detail fades there instead of
smearing a trail, and the dream starts afresh. The warp stays bilinear: bicubic (OpenCV's
a = −0.75) amplifies mid frequencies, and repeated every frame for 8 s at 60 fps it grew a
carried disc by 25 % and moved it 6 px (bilinear: 1 %); bilinear's softening does not pile
up, because each frame's fresh steps are sharp and the decay retires old detail (the
coherence benchmark tracks the detail's high-frequency energy over 100 frames).

Visitor-aware, given a visitor mask per frame (`pipeline.visitors`): the flow of a moving
figure bleeds into the still room around it (DIS matches coarse patches: on the walk-in clip
the room 10 small pixels from the figure moves 0.3 px a frame, fully trusted), and the carry
drags the room's detail along with the figure into streaks. With a mask, only the visitors
(widened by VISITOR_MARGIN) keep their flow and the room stays where it is (a mask exists only
while the camera is still); where the figure uncovered the room (a visitor's pixel before, the
room's now, the mask followed along the flow) the carry is not trusted, so the figure's old
detail fades and the room's dream comes back, and on the figure's own pixels the carry is
trusted at least VISITOR_TRUST, so a walker's detail builds up and moves with them. A walking
visitor moves by their outline's shift between the two masks (`walkers`), not by the flow, which
often loses a body on the small frames: their detail goes with them instead of staying behind
as a figure-shaped trail. `tools/bench.py --streaks` measures it.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from livedream.params import Feedback
from livedream.pipeline.walkers import WalkerShifts

FLOW_LONGEST_SIDE = 160
# Forward-backward disagreement (in small-flow pixels) where the confidence starts to fall,
# and where it reaches 0. DIS on real footage disagrees by ~0.3 px on matched pixels.
CONSISTENT_PX, INCONSISTENT_PX = 0.75, 2.0
# The same for the photometric check: |this frame − the previous one moved by the flow|, in grey
# levels of the small frames, after a 3x3 box blur. A flow smooth across a moving edge passes the
# forward-backward check but not this one: what it claims came from there looks different.
MATCHED_LEVELS, MISMATCHED_LEVELS = 10.0, 30.0
# The visitor mask is widened by this share of the flow frame's width (2 px at the live loop's 160,
# 4 at a video's 320) before it says whose motion a pixel takes: it is soft at its edge, and the
# flow of a figure's own edge lags the figure. On the streak bench (`tools/bench.py --streaks`,
# the video's carry, the true outline) 1 px at 320 left 0.59 of streaks, 2 px 0.27, 4 px 0.11.
VISITOR_MARGIN = 1 / 80
# A pixel that was a visitor's and is room now (the figure uncovered it), by this much (of 0..1),
# and its carry is not trusted at all: a soft edge passes a pixel in a few frames, so each frame's
# share of the change is small, and a chain of moves keeps only the least confidence, not the product.
VISITOR_CHANGE = 0.25
# Where a pixel was a visitor's and still is (the figure's own, followed by its flow), the carry is
# trusted at least this much: the flow checks fail often on a walking body (limbs cross, clothes
# are striped or bare), and a figure's detail that fades there never builds up while they walk.
# Measured on the walk-in clip, carried 9 frames at 30 fps: trust on the walking figure 0.54
# (the change distrusted both ways, no floor), 0.68 (one way: uncovered room only), 0.81 (with
# this floor); on the room it uncovered 0.05 in each case.
VISITOR_TRUST = 0.9


# DIS presets: the live loop's is the fastest (0.3 ms a flow at 160 px on 2 cores); a video
# file can afford "medium" (2.3 ms at 160 px, 7 ms at 320), which tracks a moving object the
# fast one loses: on the coherence benchmark the object's unexplained change fell 0.76 → 0.30.
DIS_PRESETS = {"dis": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "dis-medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
# A chain of per-frame moves (the live overlay's, `overlay.Chain`) is made good every few frames by
# one flow straight from the newest frame back to the chain's first, started from the chain: a
# slow pan moves a fraction of a small pixel a frame, where DIS is biased toward no motion, and a
# chain adds the biases up. On the demo's pan, a second of per-frame flows (ultrafast, 160 px) put
# the detail a median 2-3 dream pixels off at 640x360 (any preset: the bias is per frame); made
# good every 5 frames with "medium" (1.9 ms at 160 px), 0.3-0.6 px.
REFINE_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM


def create_flow(method: str = "dis") -> "cv2.DISOpticalFlow | FarnebackFlow":
    """A dense flow estimator with `.calc(frame0, frame1, flow) -> flow` (frame0(p) ≈ frame1(p + flow))."""
    if method in DIS_PRESETS:
        return cv2.DISOpticalFlow_create(DIS_PRESETS[method])
    if method == "farneback":
        return FarnebackFlow()
    raise ValueError(f"unknown flow method {method!r}; use {', '.join(DIS_PRESETS)} or farneback")


class FarnebackFlow:
    """Farneback flow with DIS's calling convention (slower, smoother, no extra dependency)."""

    def calc(self, frame0: np.ndarray, frame1: np.ndarray, flow: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(frame0, frame1, flow, 0.5, 3, 15, 3, 5, 1.2, 0)


class DetailWarper:
    """Warps the previous dream detail onto the current source frame (flow × feedback × decay).

    Feed it every source frame at the dream size, in order. Buffers are allocated once per
    size; a size change rebuilds them and restarts (nothing is carried across the change).
    """

    def __init__(self, flow_longest_side: int = FLOW_LONGEST_SIDE, method: str = "dis",
                 occlusion: bool = True, visitor_trust: float = VISITOR_TRUST) -> None:
        """`occlusion` False: no confidence, the carry of earlier releases (the coherence
        benchmark's comparison row). `visitor_trust`: the floor of trust on a figure's own
        pixels (VISITOR_TRUST; 0: none)."""
        self.flow_longest_side = flow_longest_side
        self.flow_ms = 0.0  # time of the last carry(), for the HUD
        self.occlusion = occlusion
        self._visitor_trust = visitor_trust
        self._flow = create_flow(method)
        self._forward = create_flow(method)  # its own instance: DIS keeps state between calls
        self._refiner = cv2.DISOpticalFlow_create(REFINE_PRESET)  # `refine`'s
        self._walkers = WalkerShifts()
        self._size: tuple[int, int] | None = None  # (height, width) of the dream
        self._has_previous = False
        self._feedback: Feedback | None = None
        self._room_still = False  # this frame and the previous one came with a visitor mask
        self._had_visitors = False

    def reset(self) -> None:
        """Forget the previous frame (e.g. after a cut): the next carry() returns None."""
        self._has_previous = False

    def carry(
        self,
        source_rgb: np.ndarray,
        detail: np.ndarray | None,
        decay: float,
        feedback: Feedback = Feedback(),
        visitors: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """`detail` (1, 3, H, W) of the previous frame, moved to match `source_rgb` (H, W, 3 uint8).
        `visitors`: this frame's visitor mask (`Visitors.mask`, any size, 0..1), or None.

        Returns a buffer owned by the warper (valid until the next-but-one call), or None when
        there is nothing to carry: first frame, size change, decay 0 or no detail. The flow
        is updated either way so switching coherence on mid-stream works at once.
        """
        started = time.perf_counter()
        height, width = source_rgb.shape[:2]
        if self._size != (height, width):
            self._allocate(height, width)
        self._update_grey(source_rgb)
        self._take_visitors(visitors)
        carried = None
        if self._has_previous and detail is not None and decay > 0 and detail.shape[-2:] == (height, width):
            self._update_map(feedback)
            carried = self._warp(detail, decay)
        self._grey_previous, self._grey_current = self._grey_current, self._grey_previous
        self._has_previous = True
        self.flow_ms = (time.perf_counter() - started) * 1000
        return carried

    def track(self, source_rgb: np.ndarray, visitors: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """For the next frame of a stream (H, W, 3 uint8, frames in order), on the small flow
        frames (`small_size`): where each small pixel was in the previous frame (in small
        pixels, for cv2.remap) and how far that is trusted (0..1; all ones without
        occlusion); None on the first frame or after a size change. The arrays are the
        warper's own buffers. `visitors`: this frame's visitor mask (`Visitors.mask`, any
        size, 0..1), or None (the flow alone decides what moves)."""
        started = time.perf_counter()
        height, width = source_rgb.shape[:2]
        if self._size != (height, width):
            self._allocate(height, width)
        self._update_grey(source_rgb)
        self._take_visitors(visitors)
        moved = None
        if self._has_previous:
            self._update_small_flow()
            if not self.occlusion:
                np.add(self._small_xy, self._small_flow, out=self._small_map)
            moved = self._small_map, self._small_confidence
        self._grey_previous, self._grey_current = self._grey_current, self._grey_previous
        self._has_previous = True
        self.flow_ms = (time.perf_counter() - started) * 1000
        return moved

    @property
    def newest_grey(self) -> np.ndarray:
        """The newest frame `track` took, small and grey (the warper's buffer: copy it)."""
        return self._grey_previous

    def refine(self, first_grey: np.ndarray, sample_map: np.ndarray) -> None:
        """`sample_map` (small pixels, a chain of per-frame moves from the newest frame back to the
        frame whose small grey is `first_grey`) made good in place by one flow straight between the
        two, started from it (REFINE_PRESET). With the visitors known the room is put back where it
        is (the mask's soft edge moved some of it as it passed) and the visitors keep their chain:
        a walker moves by their outline's shifts, which a flow straight back, as blind to them as
        the per-frame flows were, would undo."""
        np.subtract(sample_map, self._small_xy, out=self._refined)
        if self._room_still:
            self._refined *= self._visitors[..., None]
        else:
            self._refiner.calc(self._grey_previous, first_grey, self._refined)  # DIS starts from the flow it is given
        np.add(self._small_xy, self._refined, out=sample_map)

    @property
    def small_size(self) -> tuple[int, int]:
        """(width, height) of the frames the flow is computed on."""
        return self._small_size

    def motion(self, source_rgb: np.ndarray, feedback: Feedback = Feedback(), visitors: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """For a warp done elsewhere (the GPU frame graph): the small backward flow in dream
        pixels, its confidence (same small size; the graph enlarges it like the flow), the
        inverse feedback matrix (2, 3), and whether there is a previous frame to carry from
        (False on the first frame or after a size change; the flow is then 0). The arrays are
        the warper's own buffers. `visitors`: as `track`'s."""
        started = time.perf_counter()
        height, width = source_rgb.shape[:2]
        if self._size != (height, width):
            self._allocate(height, width)
        self._update_grey(source_rgb)
        self._take_visitors(visitors)
        has_previous = self._has_previous
        if has_previous:
            self._update_small_flow()
            self._small_flow *= self._flow_to_dream
        else:
            self._small_flow[...] = 0.0
            self._small_confidence[...] = 1.0  # nothing carried: nothing to catch up either
        self._grey_previous, self._grey_current = self._grey_current, self._grey_previous
        self._has_previous = True
        self.flow_ms = (time.perf_counter() - started) * 1000
        return (self._small_flow, self._small_confidence, inverse_feedback_matrix(height, width, feedback),
                has_previous)

    def _allocate(self, height: int, width: int) -> None:
        self._size = (height, width)
        scale = min(1.0, self.flow_longest_side / max(height, width))
        small_w, small_h = max(8, round(width * scale)), max(8, round(height * scale))
        self._small_size = (small_w, small_h)
        self._flow_to_dream = np.array([width / small_w, height / small_h], np.float32)
        self._small_rgb = np.empty((small_h, small_w, 3), np.uint8)
        self._grey_current = np.empty((small_h, small_w), np.uint8)
        self._grey_previous = np.empty((small_h, small_w), np.uint8)
        self._small_flow = np.zeros((small_h, small_w, 2), np.float32)
        self._forward_flow = np.zeros((small_h, small_w, 2), np.float32)
        self._small_map = np.empty((small_h, small_w, 2), np.float32)
        self._refined = np.empty((small_h, small_w, 2), np.float32)
        self._returned = np.empty((small_h, small_w, 2), np.float32)
        self._flow_error = np.empty((small_h, small_w), np.float32)
        self._small_xy = np.dstack(pixel_coordinates(small_h, small_w))
        self._small_confidence = np.ones((small_h, small_w), np.float32)
        self._inside = np.ones((small_h, small_w), np.float32)
        self._small_ones = np.ones((small_h, small_w), np.float32)
        self._grey_moved = np.empty((small_h, small_w), np.uint8)
        self._photometric = np.empty((small_h, small_w), np.float32)
        self._visitors = np.zeros((small_h, small_w), np.float32)  # this frame's, widened
        self._visitors_before = np.zeros((small_h, small_w), np.float32)  # the previous frame's
        self._bodies = np.zeros((small_h, small_w), np.float32)  # this frame's, as found (not widened)
        self._bodies_before = np.zeros((small_h, small_w), np.float32)  # the previous frame's
        self._visitors_scratch = np.empty((small_h, small_w), np.float32)
        self._stayed = np.empty((small_h, small_w), np.float32)
        margin = max(1, round(small_w * VISITOR_MARGIN))
        self._widen = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
        self._room_still = self._had_visitors = False
        self.confidence = np.ones((height, width), np.float32)  # of the last carry: 1 = trusted
        self._flow_up = np.empty((height, width, 2), np.float32)
        self._feedback = Feedback()
        self._xs, self._ys = pixel_coordinates(height, width)
        self._plane = np.empty((height, width), np.float32)
        self._feedback_grid = feedback_sample_grid(height, width, self._feedback)
        self._sample_map = np.empty((height, width, 2), np.float32)
        self._outputs = [np.empty((1, 3, height, width), np.float32) for _ in range(2)]
        self._has_previous = False

    def _update_grey(self, source_rgb: np.ndarray) -> None:
        cv2.resize(source_rgb, self._small_size, dst=self._small_rgb, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(self._small_rgb, cv2.COLOR_RGB2GRAY, dst=self._grey_current)

    def _update_map(self, feedback: Feedback) -> None:
        """sample_map[p] = where pixel p of this frame was in the previous frame's detail."""
        self._update_small_flow()
        height, width = self._size  # type: ignore[misc]
        if self.occlusion:
            cv2.resize(self._small_confidence, (width, height), dst=self.confidence, interpolation=cv2.INTER_LINEAR)
        self._small_flow *= self._flow_to_dream
        cv2.resize(self._small_flow, (width, height), dst=self._flow_up, interpolation=cv2.INTER_LINEAR)
        if feedback != self._feedback:
            write_feedback_grid(self._feedback_grid, self._xs, self._ys, feedback, self._plane)
            self._feedback = feedback
        np.add(self._feedback_grid, self._flow_up, out=self._sample_map)

    def _take_visitors(self, visitors: np.ndarray | None) -> None:
        """This frame's visitor mask, widened, at the small size; the previous one is kept: the
        room is held still only when both frames had one (`_room_still`)."""
        self._visitors, self._visitors_before = self._visitors_before, self._visitors
        self._bodies, self._bodies_before = self._bodies_before, self._bodies
        self._room_still = visitors is not None and self._had_visitors and self._has_previous
        self._had_visitors = visitors is not None  # for the next frame
        if visitors is None:
            return
        cv2.resize(visitors, self._small_size, dst=self._bodies, interpolation=cv2.INTER_LINEAR)
        cv2.dilate(self._bodies, self._widen, dst=self._visitors)

    def _update_small_flow(self) -> None:
        """Backward flow, current(p) ≈ previous(p + flow(p)), on the small frames; with the
        visitors known, only theirs moves (the bleed of their motion into the still room would
        drag its detail), a walking visitor by their outline's shift (`walkers`). Then the
        confidence, with occlusion."""
        self._flow.calc(self._grey_current, self._grey_previous, self._small_flow)
        if self._room_still:
            self._walkers.apply(self._bodies_before, self._bodies, self._visitors, self._small_flow)
            self._small_flow *= self._visitors[..., None]
        if self.occlusion:
            self._update_small_confidence()
            if self._room_still:
                self._distrust_where_visitors_changed()

    def _distrust_where_visitors_changed(self) -> None:
        """A pixel whose source was a visitor and is room now (the figure uncovered it) carries
        what is no longer there: the confidence falls with the change, to 0 at VISITOR_CHANGE.
        A pixel that was a visitor's and still is keeps at least the visitor trust of it."""
        uncovered = self._visitors_scratch
        cv2.remap(self._visitors_before, self._small_map, None, cv2.INTER_LINEAR, dst=uncovered,
                  borderMode=cv2.BORDER_REPLICATE)
        uncovered -= self._visitors
        cv2.addWeighted(uncovered, -1.0 / VISITOR_CHANGE, uncovered, 0.0, 1.0, dst=uncovered)  # 1 − change / VISITOR_CHANGE
        np.clip(uncovered, 0.0, 1.0, out=uncovered)
        self._small_confidence *= uncovered
        stayed = self._stayed
        cv2.remap(self._bodies_before, self._small_map, None, cv2.INTER_LINEAR, dst=stayed,
                  borderMode=cv2.BORDER_REPLICATE)
        np.minimum(stayed, self._bodies, out=stayed)
        stayed *= self._visitor_trust
        np.maximum(self._small_confidence, stayed, out=self._small_confidence)

    def _update_small_confidence(self) -> None:
        """Checks on the small frames: p's backward flow b leads to q = p + b in the previous
        frame; the forward flow there should lead back, f(q) ≈ −b, and the previous frame at q
        should look like this one at p. Where either fails (occlusion, disocclusion, a flow
        error) or q lies outside the frame, the confidence falls to 0."""
        self._forward.calc(self._grey_previous, self._grey_current, self._forward_flow)
        if self._room_still:  # the forward flow bleeds as the backward one did
            self._forward_flow *= self._visitors_before[..., None]
        np.add(self._small_xy, self._small_flow, out=self._small_map)
        cv2.remap(self._forward_flow, self._small_map, None, cv2.INTER_LINEAR, dst=self._returned,
                  borderMode=cv2.BORDER_REPLICATE)
        self._returned += self._small_flow  # ≈ 0 where the two flows agree
        error = np.hypot(self._returned[..., 0], self._returned[..., 1], out=self._flow_error)
        np.subtract(INCONSISTENT_PX, error, out=self._small_confidence)
        self._small_confidence *= 1.0 / (INCONSISTENT_PX - CONSISTENT_PX)
        np.clip(self._small_confidence, 0.0, 1.0, out=self._small_confidence)
        cv2.remap(self._small_ones, self._small_map, None, cv2.INTER_LINEAR, dst=self._inside,
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._small_confidence *= self._inside
        cv2.remap(self._grey_previous, self._small_map, None, cv2.INTER_LINEAR, dst=self._grey_moved,
                  borderMode=cv2.BORDER_REPLICATE)
        cv2.absdiff(self._grey_current, self._grey_moved, dst=self._grey_moved)
        cv2.blur(self._grey_moved, (3, 3), dst=self._grey_moved)
        np.subtract(MISMATCHED_LEVELS, self._grey_moved, out=self._photometric, dtype=np.float32)
        self._photometric *= 1.0 / (MISMATCHED_LEVELS - MATCHED_LEVELS)
        np.clip(self._photometric, 0.0, 1.0, out=self._photometric)
        self._small_confidence *= self._photometric

    def _warp(self, detail: np.ndarray, decay: float) -> np.ndarray:
        # remap cannot work in place, and dream() may hand back our own buffer: use the other one.
        out = self._outputs[0] if not np.shares_memory(detail, self._outputs[0]) else self._outputs[1]
        for channel in range(3):
            cv2.remap(
                detail[0, channel], self._sample_map, None, cv2.INTER_LINEAR,
                dst=out[0, channel], borderMode=cv2.BORDER_CONSTANT, borderValue=0,
            )
            if self.occlusion:
                out[0, channel] *= self.confidence
        out *= np.float32(decay)
        return out


def inverse_feedback_matrix(height: int, width: int, feedback: Feedback) -> np.ndarray:
    """(2, 3) affine map from an output pixel to where it was before the feedback transform."""
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    forward = cv2.getRotationMatrix2D((centre_x, centre_y), feedback.rotate, 1.0 + feedback.zoom)
    forward[:, 2] += (feedback.shift_x, feedback.shift_y)
    return cv2.invertAffineTransform(forward).astype(np.float32)


def feedback_sample_grid(height: int, width: int, feedback: Feedback) -> np.ndarray:
    """(H, W, 2) source coordinates of each output pixel under the inverse feedback transform.

    Zoom in by `zoom` and rotate by `rotate` degrees about the centre, then shift: a pixel
    of the output shows what was at the returned position in the previous frame.
    """
    grid = np.empty((height, width, 2), np.float32)
    xs, ys = pixel_coordinates(height, width)
    write_feedback_grid(grid, xs, ys, feedback, np.empty((height, width), np.float32))
    return grid


def pixel_coordinates(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys), each (H, W) float32: every pixel's own column and row."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def write_feedback_grid(
    grid: np.ndarray, xs: np.ndarray, ys: np.ndarray, feedback: Feedback, plane: np.ndarray
) -> None:
    """`feedback_sample_grid` into `grid`, through the scratch `plane`, allocating nothing:
    per-second feedback changes a little every frame, so this runs once per frame."""
    height, width = xs.shape
    inverse = inverse_feedback_matrix(height, width, feedback)
    for axis in (0, 1):
        cv2.addWeighted(xs, float(inverse[axis, 0]), ys, float(inverse[axis, 1]), float(inverse[axis, 2]), dst=plane)
        grid[..., axis] = plane
