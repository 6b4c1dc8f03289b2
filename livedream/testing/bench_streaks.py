"""`python tools/bench.py --streaks`: how far a passing visitor drags the room's carried detail.

A still room (the generated gallery of `testing.visitor_clip`) carries a known dream detail
(`own_detail`: its band-pass, a stand-in for a dream's detail, which sits on the room's
structure), and the walk-in clip's striped figure crosses it (`testing.visitor_clip`, its
outline known in every frame). The carry runs as it does live on the 2-core CPU: the overlay
follows every frame, a dream starts every DREAM_EVERY frames from the detail carried onto its
frame and is laid over the frames DREAM_LAG frames later. A dream here adds nothing where the
carry is trusted and lays the frame's own detail where it is not (what the dreamer's catch-up
does), so only the carry is measured. The offline video's carry (`DetailWarper.carry`, a dream
every frame) is measured too.

- **streak**: in the room near the figure's path (within NEAR of the width of where it has been,
  outside where it is now), the energy of the carried detail that is not the room's own
  (carried − a·own, `a` the best gain 0..1 over a 7x7 window: detail that only fades is no
  streak), over the energy of the room's own detail there; summed over the frames from the
  figure's entry on. 0: nothing dragged; today's carry drags the room's detail and leaves the
  figure's stripes behind.
- **back**: the share of the room's own detail on that ground in the last BACK_FRAMES frames,
  after the figure has left and a dream has come (1: all of it back).
- **figure**: the share of the figure's own detail on it while it walks (the visitor's dream
  moves with them; a fix that only fades would lose it).

Rows: no mask (today's carry), the figure's true outline as the mask, and the mask
`pipeline.visitors.VisitorMask` makes of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import cv2
import numpy as np

from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.overlay import CarriedOverlay, FinishedDream
from livedream.pipeline.sharp import SharpComposer
from livedream.pipeline.visitors import ANALYSIS_WIDTH, VisitorMask
from livedream.testing.visitor_clip import ClipFrame, Schedule, gallery_room, visitor_clip

SIZE = (180, 320)  # (height, width): the dream size the CPU's budget gives the shipped 360x640 box
FPS = 30
DREAM_EVERY, DREAM_LAG = 60, 45  # a dream every 2 s that takes 1.5 s: the 2-core CPU's pace (issue 40)
SCHEDULE = Schedule(empty=1.0, walk_in=2.0, stand=1.0, walk_out=2.0, after=2.0)  # the room first: the mask learns it
NEAR = 0.05  # of the width: the room this close to the figure's path is where streaks show
BACK_FRAMES = 10
FIT_WINDOW = (7, 7)

MaskFeed = Callable[[ClipFrame], "np.ndarray | None"]
"""The visitor mask for one frame of the clip (at the analysis size, 0..1), or None."""


@dataclass(frozen=True)
class Streaks:
    streak: float  # the carried detail near the figure's path that is not the room's own / the room's
    back: float  # the room's own detail there in the last frames / all of it
    figure: float  # the figure's own detail on it while it walks / all of it


def own_detail(rgb: np.ndarray) -> np.ndarray:
    """A dream detail that belongs to `rgb`'s content (h, w, 3 float32 grey levels): its band-pass, ×3."""
    picture = rgb.astype(np.float32)
    return 3.0 * (cv2.GaussianBlur(picture, (0, 0), 1.0) - cv2.GaussianBlur(picture, (0, 0), 3.0))


def dreamed_detail(frame: ClipFrame, room_rgb: np.ndarray) -> np.ndarray:
    """What a dream of `frame` lays where it starts afresh, and what a perfect carry would show:
    the own detail of what is there (the figure's stripes, the room), the room without the
    camera's noise."""
    return own_detail(np.where(frame.truth[..., None], frame.rgb, room_rgb))


def room_photo(size: tuple[int, int] = SIZE) -> np.ndarray:
    """The room with nobody in it (the sample photo is a portrait: the person model would
    rightly call her a visitor)."""
    return gallery_room(*size)


def no_mask(frame: ClipFrame) -> None:
    return None


def true_mask(frame: ClipFrame) -> np.ndarray:
    """The figure's own outline as a mask at the visitor model's analysis size."""
    height, width = frame.truth.shape
    size = (ANALYSIS_WIDTH, max(2, round(height * ANALYSIS_WIDTH / width)))
    return cv2.resize(frame.truth.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def model_mask() -> MaskFeed:
    """The masks `VisitorMask` makes of the clip, frame by frame (a fresh model per run)."""
    model = VisitorMask()
    return lambda frame: model.update(frame.rgb, 1.0 / FPS).mask


class StreakMeter:
    """Sums, frame by frame, the carried detail near the figure's path and on the figure."""

    def __init__(self, size: tuple[int, int]) -> None:
        self._path = np.zeros(size, np.uint8)
        near = round(NEAR * size[1])
        self._near = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * near + 1,) * 2)
        self._sums = dict.fromkeys(("streak", "room", "back", "back_room", "figure", "figure_own"), 0.0)

    def frame(self, frame: ClipFrame, shown: np.ndarray, own: np.ndarray, last: bool) -> None:
        """One shown picture (h, w, 3 uint8: the frame with the carried detail over it), what
        a perfect carry would lay over it (`dreamed_detail`), and whether it is one of the
        last BACK_FRAMES. Pixels where the own detail would not fit in 0..255 are left out:
        what the picture clips is no streak."""
        self._path |= frame.truth
        source = frame.rgb.astype(np.float32)
        carried = shown.astype(np.float32) - source
        fits = ((source + own >= 0) & (source + own <= 255)).all(axis=2)
        own_energy, match = _dot(own, own), _dot(carried, own)
        sums = self._sums
        if frame.part.startswith("walk"):
            on_figure = (cv2.erode(frame.truth.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & fits
            sums["figure"] += float(match[on_figure].sum())
            sums["figure_own"] += float(own_energy[on_figure].sum())
        if not self._path.any():
            return
        here = cv2.dilate(frame.truth.astype(np.uint8), np.ones((5, 5), np.uint8))
        zone = (cv2.dilate(self._path, self._near) > 0) & (here == 0) & fits
        gain = cv2.boxFilter(match, -1, FIT_WINDOW)[zone] / (cv2.boxFilter(own_energy, -1, FIT_WINDOW)[zone] + 1e-3)
        foreign = carried[zone] - np.clip(gain, 0.0, 1.0)[:, None] * own[zone]
        sums["streak"] += float(np.einsum("ij,ij->", foreign, foreign))
        sums["room"] += float(own_energy[zone].sum())
        if last:
            sums["back"] += float(match[zone].sum())
            sums["back_room"] += float(own_energy[zone].sum())

    def result(self) -> Streaks:
        sums = self._sums
        return Streaks(*(sums[part] / max(sums[whole], 1e-6)
                         for part, whole in (("streak", "room"), ("back", "back_room"), ("figure", "figure_own"))))


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the dot product of two (h, w, 3) colours."""
    return np.einsum("ijk,ijk->ij", a, b)


def overlay_streaks(room_rgb: np.ndarray, frames: list[ClipFrame], masks: MaskFeed,
                    overlay: CarriedOverlay | None = None) -> Streaks:
    """The live loop's carry (`CarriedOverlay`) over the clip, dreams at the CPU's pace."""
    overlay = overlay or CarriedOverlay()
    size = room_rgb.shape[:2]
    meter = StreakMeter(size)
    pending: FinishedDream | None = None
    for index, frame in enumerate(frames):
        overlay.advance(frame.rgb, size, masks(frame))
        if pending is not None and index == pending.index + DREAM_LAG:
            overlay.take(pending)
            pending = None
        if pending is None and index % DREAM_EVERY == 0:
            pending = _dream(frame, room_rgb, overlay.offered(), index)
        shown = overlay.shown(frame.rgb)
        if shown is not None:
            meter.frame(frame, shown, dreamed_detail(frame, room_rgb), index >= len(frames) - BACK_FRAMES)
    return meter.result()


def _dream(frame: ClipFrame, room_rgb: np.ndarray, carried: tuple[np.ndarray, np.ndarray] | None,
           index: int) -> FinishedDream:
    """A dream of `frame` that keeps the carried detail where it is trusted and lays the
    frame's own detail where it is not."""
    fresh = dreamed_detail(frame, room_rgb)
    detail = fresh if carried is None else carried[0] + (1.0 - carried[1][..., None]) * fresh
    return FinishedDream(frame.rgb.copy(), np.rint(detail).astype(np.int16), index, index + 1, 0.0, 0.0)


def video_streaks(room_rgb: np.ndarray, frames: list[ClipFrame], masks: MaskFeed,
                  warper: DetailWarper | None = None) -> Streaks:
    """The offline video's carry (`DetailWarper.carry` with `livedream dream`'s flow, every
    frame dreamed as `_dream` does) over the clip."""
    from livedream.offline.video import video_warper

    warper = warper or video_warper()
    meter, composer = StreakMeter(room_rgb.shape[:2]), SharpComposer()
    detail = None
    for index, frame in enumerate(frames):
        carried = warper.carry(frame.rgb, detail, 1.0, visitors=masks(frame))
        own = dreamed_detail(frame, room_rgb)
        fresh = own.transpose(2, 0, 1)[None]
        detail = fresh if carried is None else carried + (1.0 - warper.confidence) * fresh
        shown = composer.compose(frame.rgb, np.ascontiguousarray(detail[0].transpose(1, 2, 0)))
        meter.frame(frame, shown, own, index >= len(frames) - BACK_FRAMES)
    return meter.result()


def walk_in(size: tuple[int, int] = SIZE, schedule: Schedule = SCHEDULE) -> tuple[np.ndarray, list[ClipFrame]]:
    """The room photo at `size` and the walk-in clip over it."""
    room = room_photo(size)
    return room, list(visitor_clip(room, FPS, schedule))


ROWS: dict[str, Callable[[], MaskFeed]] = {
    "no mask (today's carry)": lambda: no_mask,
    "true outline": lambda: true_mask,
    "visitor model's mask": model_mask,
}


def run(sizes: Iterable[tuple[int, int]] = (SIZE,)) -> dict[tuple[str, str, tuple[int, int]], Streaks]:
    results = {}
    print("Streaks where a visitor walked (the walk-in clip; streak: carried detail that is not the room's own, "
          "over the room's detail, near the figure's path; back: the room's detail there at the end)")
    print(f"  {'size':>8} {'carry':<6} {'mask':<24} {'streak':>7} {'back':>6} {'figure':>7}")
    for size in sizes:
        room, frames = walk_in(size)
        for carry, measure in (("live", overlay_streaks), ("video", video_streaks)):
            for name, masks in ROWS.items():
                row = results[carry, name, size] = measure(room, frames, masks())
                print(f"  {size[0]:>3}x{size[1]:<4} {carry:<6} {name:<24} {row.streak:7.3f} {row.back:6.2f} "
                      f"{row.figure:7.2f}")
    return results
