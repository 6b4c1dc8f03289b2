"""What the next live dream visits: every octave of the whole frame, and the visitors first.

Large DeepDream motifs (eyes, faces, animals) are drawn at the coarse octaves: a picture dreamed
at one scale carries fine texture that a judge at half size no longer sees. So a whole-frame
dream visits every octave of the pyramid, coarsest first, as a still does, each starting from
the carried detail resampled to its scale (`pipeline.dream`'s re-injection) and adding what its
steps changed. A coarse octave's step costs its area's share of a full one (0.35x at 0.59 of the
sides), so with `steps` at each octave a dream costs 1.35 full ones (`whole_cost`). Dreams that
cycled through the pyramid instead, one octave each, were cheaper per dream, but the picture
then swung with the cycle: after a coarse dream the motifs rose and the texture fell, and the
other way after a fine one (one picture's shares moved by 0.2–0.35 at each scale within a dream
or two), so which of them the camera's newest frame met was luck. Every octave in each dream
keeps both in every picture. Measured on the demo (docs: the look).

The visitor first. An installation exists for the moment a visitor sees themselves dreamed,
and a whole-frame dream on a CPU takes most of a second: a walker would get new detail once a
stride, and none for the first seconds of a visit. So while visitors are there, dreams of their
box (plus a margin, `pipeline.boxdream`) come between whole-frame dreams: the box is a fraction
of the frame, so it dreams several times a second, and the carry moves its detail with them
while the room deepens at its own pace (a whole frame at least every ROOM_EVERY_S). With
nobody there every dream is of the whole frame, as before, and so it is when the box (its
margin included) is most of the frame (BOX_MOST: visitors spread across the room, one close to
the camera): its dream at the box's extra steps would cost more than a whole frame's, and the room
would be in it anyway.

A visitor who arrives while the room's whole frame is being dreamed does not wait for it: that
dream gives way (`DreamSchedule.gives_way`; the worker interrupts its run, which otherwise takes
most of a second on a CPU, two on a slow day), their first box dream starts at once, and the
room's next turn counts from their arrival.

A visitor on the move (their box moved since its last dream by more than MOVED of the frame's
side: arriving, walking) gets lean box dreams: the coarsest octave at the live steps, not the
box's BOX_STEPS, a fraction of the time (0.13–0.28 s against 0.4–0.75 s on a 2-core CPU), so a
walker is dreamed several times a stride and the carry moves it with them; a visitor who stands
gets the box's own octave cycle at its steps (`OctaveCycle`: one octave a box dream, in turn,
coarsest first; box dreams come several a second, so the swing is short), which the fine detail
of a face needs. Measured on the walk-in clip (docs: the visitor first).

What a pan (a moving camera, the demo) brought into view since the newest dream's frame is
bare: the carry holds nothing there, a band along the edge it came in by (`pipeline.lag`'s
`entering_band`), as wide as the pan moves while a dream is made and shown (on a slow 2-core CPU
the demo's fine octave alone took 1.2 s: a band of an eighth of the picture; a whole dream adds
the coarse octave's third to that). So after each whole
frame, the band alone gets a lean dream (a fraction of a whole one's time) and is shown bare for
that long instead. Measured on the demo (docs: the look). A still camera has no band.

Where the room does not dream (`where = "visitors"`) every dream is of the box; where the
visitors do not (`"room"`) none is. A feedback that moves the carried dream (zoom, turn, shift) moves all of it, so it
dreams whole frames only.

A path that dreams every octave of the whole frame in one run (a multi-octave GPU frame
graph: a device that dreams every shown frame) ignores the octave and the box.
"""

from __future__ import annotations

from dataclasses import dataclass

from livedream.params import Params, per_frame
from livedream.pipeline.boxdream import box_region
from livedream.pipeline.dream import octave_sizes
from livedream.pipeline.dreamer import ascent_settings
from livedream.pipeline.visitors import Box, Visitors

ROOM_EVERY_S = 2.0  # while visitors are there, the room still gets a whole-frame dream this often
BOX_MOST = 0.75  # a box (with its margin, on the grid) over this share of the frame is dreamed as the whole frame
MOVED = 0.02  # a box edge that moved more than this share of the frame's side since the last box dream: on the move


@dataclass(frozen=True)
class DreamPlan:
    """One dream's share of the schedule: the octave it visits (0 = the coarsest of
    `Params.octaves`; None = every octave in the one dream), the part of the frame it
    dreams (the visitors' box or the band a pan brought in, or None: the whole frame), and
    whether a box dream is lean (the live steps, not `pipeline.boxdream.BOX_STEPS`: a visitor
    on the move, a band)."""

    octave: int | None = None
    box: Box | None = None
    lean: bool = False


def whole_cost(params: Params) -> float:
    """What a whole-frame dream costs, in gradient steps at the full dream size: `steps` at every
    octave, a coarse octave's step at its area's share."""
    height, width = params.dream_height, params.dream_width
    sizes = octave_sizes(height, width, ascent_settings(params), min_size=1)
    return params.steps * sum(h * w for h, w in sizes) / (height * width)


class OctaveCycle:
    """Hands out the octaves in turn, coarsest first, for a standing visitor's box dreams; a change
    of `Params.octaves` starts over."""

    def __init__(self) -> None:
        self._turn = 0
        self._octaves = 1

    def next_octave(self, params: Params) -> int | None:
        if params.octaves != self._octaves:
            self._octaves, self._turn = params.octaves, 0
        if params.octaves == 1:
            return None
        octave = self._turn % params.octaves
        self._turn += 1
        return octave


class DreamSchedule:
    """What each dream visits: the visitors' box between whole frames (every octave each)."""

    def __init__(self) -> None:
        self._box = OctaveCycle()
        self._room_at: float | None = None  # when the room last got a whole-frame dream
        self._last_box: Box | None = None  # the box of the last box dream (None: nobody since)
        self._whole_planned = False  # the last plan was a whole frame's, and it has not given way
        self._gave_way_at: float | None = None  # when the room last gave way
        self._band_due = False  # the last plan was a whole frame's: a band a pan brought in may come next

    def next_plan(self, params: Params, visitors: Visitors | None, now: float,
                  entering: Box | None = None) -> DreamPlan:
        """The next dream's plan, at `now` on the loop's clock, for this frame's `visitors`
        and the band a pan brought into it (`pipeline.lag.entering_band`, or None)."""
        box = visitors_box(params, visitors)
        if box is None:
            self._last_box = None  # whoever comes next arrives
        room_due = self._room_at is None or now - self._room_at >= ROOM_EVERY_S
        self._whole_planned = box is None or (params.where.room != 0.0 and room_due)
        if box is not None and not self._whole_planned:
            self._band_due = False
            return self._box_plan(params, box)
        band = entering_box(params, entering) if box is None and self._band_due else None
        self._band_due = band is None
        if band is not None:
            self._whole_planned = False
            return lean_plan(params, band)
        self._room_at = now
        return DreamPlan()

    def gives_way(self, params: Params, visitors: Visitors | None, now: float) -> bool:
        """Whether the whole-frame dream last planned is to be abandoned, at `now`: a visitor has
        arrived since it was planned (nobody had a box dream since) and their box is to be
        dreamed alone. True once for that dream, and at most once every ROOM_EVERY_S (a visitor
        found and lost over and over must not starve the room); the plans of the next
        ROOM_EVERY_S are the newcomer's box (the room's turn counts from the arrival: an
        abandoned dream planned long ago would otherwise be due again after one box)."""
        if not self._whole_planned or self._last_box is not None:
            return False
        if self._gave_way_at is not None and now - self._gave_way_at < ROOM_EVERY_S:
            return False
        if visitors_box(params, visitors) is None:  # asked every shown frame of the dream: the cheap tests first
            return False
        self._whole_planned = False
        self._room_at = self._gave_way_at = now
        return True

    def _box_plan(self, params: Params, box: Box) -> DreamPlan:
        """A lean dream of the coarsest octave while the box moves, else the box's octave cycle."""
        last, self._last_box = self._last_box, box
        if last is None or max(abs(edge - was) for edge, was in zip(box, last)) > MOVED:
            return lean_plan(params, box)
        return DreamPlan(self._box.next_octave(params), box)


def visitors_box(params: Params, visitors: Visitors | None) -> Box | None:
    """The box around every visitor, when a dream of it alone is what `params` asks for and
    it is not most of the frame (BOX_MOST)."""
    if visitors is None or not visitors.boxes or params.where.visitors == 0.0 or feedback_moves(params):
        return None
    x0s, y0s, x1s, y1s = zip(*visitors.boxes)
    box = min(x0s), min(y0s), max(x1s), max(y1s)
    return not_most(params, box)


def entering_box(params: Params, band: Box | None) -> Box | None:
    """The band a pan brought in, when a dream of it alone is what `params` asks for (the room
    dreams, no feedback moves the carried dream) and it is not most of the frame (BOX_MOST)."""
    if band is None or params.where.room == 0.0 or feedback_moves(params):
        return None
    return not_most(params, band)


def lean_plan(params: Params, box: Box) -> DreamPlan:
    """A lean dream of `box`: the coarsest octave at the live steps (a visitor on the move, a band)."""
    return DreamPlan(0 if params.octaves > 1 else None, box, lean=True)


def not_most(params: Params, box: Box) -> Box | None:
    """`box`, unless its dream would be most of the frame's (BOX_MOST): then None, a whole frame."""
    return box if box_share(params, box) <= BOX_MOST else None


def feedback_moves(params: Params) -> bool:
    """A feedback that moves the carried dream (zoom, turn, shift) moves all of it: whole frames only."""
    return not per_frame(params, 1.0).feedback.is_identity


def box_share(params: Params, box: Box) -> float:
    """The share of the frame a dream of `box` works on: the box with its margin, on the grid."""
    rows, columns = box_region(box, params.dream_height, params.dream_width, 1).shape
    return rows * columns / (params.dream_height * params.dream_width)
