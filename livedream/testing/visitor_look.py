"""How much of a still's DeepDream a visitor carries, live, at moments of a walk-in.

    python tools/look.py --visitors [--where visitors] [--clip 3,2,8,2,1] [--out DIR]

The walk-in clip (`testing.visitor_clip`: the generated gallery, one figure walking in,
standing, walking out, 1280x720 at 30 fps) is played to the real app as a camera plays: from
the moment the app starts its source, `read()` hands out the frame of the wall-clock time since,
and frames the app is too slow for are never seen. The app is the one `livedream` runs (threaded
show loop and dream worker, real clock, the config's adaptive quality); `tools/look.py` opens
it. At each moment (walking in, standing 0.5 s, 2 s, 5 s, 6 s, walking out) the picture the app
sends to its outputs is kept with the clip frame it was shown over, whose figure outline is known.

After the run, each moment is judged like `tools/look.py`'s whole picture (`score_look`: the
tutorial loss of another net, as a share of a still's DeepDream), on two parts of the frame:
- the visitor: inside the figure's true outline (every picture is the source outside it),
  cropped to the outline's box;
- the room: a strip of the frame beside the figure, clear of it.
This module owns the clip source, the moments and the two judged parts; `testing.look` owns the
app, the still and the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.live.app import LiveApp, SignalsStopLoop
from livedream.pipeline.frames import CLOSED, ENDED, LIVE, STARTING, Frame
from livedream.pipeline.images import cropped_to_aspect
from livedream.testing.deepdream_score import score_look
from livedream.testing.visitor_clip import ClipFrame, Figure, Schedule, gallery_room, visitor_clip

CLIP_SIZE = (720, 1280)  # (height, width): a camera's usual mode, the shipped [source] size
CLIP_FPS = 30
CLIP_SCHEDULE = "3,2,8,2,1"  # seconds: empty room, walking in, standing, walking out, empty again
JUDGED_SIDE = 80  # px at the dream size: InceptionV3 needs about 75 to reach mixed5 (the loss's deeper layer)
ROOM_MARGIN = 10  # px at the dream size between the figure and the room strip: the mask's feathered edge
RATE_WINDOW_S = 2.0  # the shown fps and dreams/s of a moment: over this long before it


@dataclass(frozen=True)
class Moment:
    """A moment of the walk: `into_s` seconds into the clip part `part`; None = its middle."""

    name: str
    part: str
    into_s: float | None


MOMENTS = (
    Moment("walking in", "walk_in", None),
    Moment("standing 0.5 s", "stand", 0.5),
    Moment("standing 2 s", "stand", 2.0),
    Moment("standing 5 s", "stand", 5.0),
    Moment("standing 6 s", "stand", 6.0),
    Moment("walking out", "walk_out", None),
)


def parse_schedule(text: str) -> Schedule:
    """--clip's "EMPTY,WALK_IN,STAND,WALK_OUT,AFTER" seconds as a Schedule (a UserError if not)."""
    fix = f'give five seconds, e.g. --clip {CLIP_SCHEDULE} (empty, walking in, standing, walking out, after)'
    try:
        seconds = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--clip {text!r} is not a list of numbers; {fix}") from None
    if len(seconds) != 5 or not all(np.isfinite(seconds)) or min(seconds) < 0 or min(seconds[1:4]) <= 0:
        raise UserError(f"--clip {text!r}: walking and standing need more than 0 s, none below 0; {fix}")
    return Schedule(*seconds)


def moment_times(schedule: Schedule) -> list[tuple[Moment, float]]:
    """The moments that fall inside `schedule`, with their seconds from the clip's start, in order."""
    spans = {name: (start, end) for name, start, end in schedule.parts()}
    timed = []
    for moment in MOMENTS:
        start, end = spans[moment.part]
        at = (start + end) / 2 if moment.into_s is None else start + moment.into_s
        if at < end:
            timed.append((moment, at))
    return sorted(timed, key=lambda pair: pair[1])


class PlayedClip:
    """The clip as a live camera: from `start()`, `read()` is the frame of the time since, so a
    slow app skips frames as it does with a camera's newest-frame slot; after the last frame the
    last one stays on offer (state "ended"). A `Source` (`pipeline.frames`)."""

    noun = "camera"

    def __init__(self, frames: Sequence[ClipFrame], fps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames, self.fps, self._clock = frames, fps, clock
        self._started: float | None = None
        self._closed = False
        self._frame: Frame | None = None

    @property
    def state(self) -> str:
        if self._closed:
            return CLOSED
        if self._started is None:
            return STARTING
        return ENDED if self.elapsed() * self.fps >= len(self.frames) else LIVE

    def start(self) -> None:
        if self._started is None:
            self._started = self._clock()

    def elapsed(self) -> float:
        """Seconds since `start()` (0 before it)."""
        return 0.0 if self._started is None else self._clock() - self._started

    def read(self) -> Frame | None:
        if self._started is None:
            return None
        index = min(int(self.elapsed() * self.fps), len(self.frames) - 1)
        if self._frame is None or self._frame.index != index + 1:  # Frame.index counts from 1, as a camera's
            self._frame = Frame(self.frames[index].rgb, index + 1, self._started + index / self.fps)
        return self._frame

    def clip_frame(self, frame: Frame) -> ClipFrame:
        """The clip frame (its truth included) that `read()` handed out as `frame`."""
        return self.frames[frame.index - 1]

    def close(self) -> None:
        self._closed = True


def played_clip(schedule: Schedule, figure: Figure = Figure()) -> PlayedClip:
    """The walk-in clip of `figure` in the generated gallery, made before the app starts (about
    1.8 GB for 16 s: generating it on the fly would take the app's CPU)."""
    height, width = CLIP_SIZE
    return PlayedClip(list(visitor_clip(gallery_room(height, width), CLIP_FPS, schedule, figures=(figure,))), CLIP_FPS)


@dataclass(frozen=True)
class Seen:
    """What the app showed at a moment: the picture sent to the outputs, the clip frame under it,
    and the shown frames and finished dreams per second over the RATE_WINDOW_S before."""

    moment: Moment
    shown: np.ndarray
    clip: ClipFrame
    shown_fps: float
    dreams_per_s: float


def watch(app: LiveApp, clip: PlayedClip, moments: list[tuple[Moment, float]]) -> list[Seen]:
    """Step the open app (its own `step`, as `run` does) until the last moment; keep each one."""
    seen: list[Seen] = []
    counts = [(clip.elapsed(), app.frames, app.dreamed)]  # (s, frames shown, dreams taken) after each step
    pending = list(moments)
    with SignalsStopLoop(app):
        while pending and not app.stopping:
            if clip.state == ENDED:  # the app showed no frame (outside its opening hours: it reads none)
                raise UserError(f"the app showed no frame of the clip by {pending[0][0].name}; check [schedule] hours")
            app.step()
            counts.append((clip.elapsed(), app.frames, app.dreamed))
            if counts[-1][0] >= pending[0][1] and app.source_frame is not None:
                moment, _ = pending.pop(0)
                then = next(count for count in counts if count[0] >= counts[-1][0] - RATE_WINDOW_S)
                seconds = max(counts[-1][0] - then[0], 1e-6)
                seen.append(Seen(moment, app.shown_image.copy(), clip.clip_frame(app.source_frame),
                                 (counts[-1][1] - then[1]) / seconds, (counts[-1][2] - then[2]) / seconds))
    return seen


# --- the judge's two parts -------------------------------------------------------------------


def _at_size(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def _outline_at(truth: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(truth.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def _span(low: int, high: int, least: int, limit: int) -> slice:
    """low:high grown to at least `least` long, inside 0:limit (the judge's smallest picture)."""
    low = max(0, min(low, high - least))
    return slice(low, min(limit, max(high, low + least)))


def visitor_share(shown: np.ndarray, source: np.ndarray, still: np.ndarray, truth: np.ndarray) -> float:
    """The share of the still's DeepDream inside the figure's true outline `truth` (source-sized).
    All at the still's size; the three pictures are the source outside the outline, so only the
    figure's own pixels differ, and they are cut to the outline's box, so the room's much larger
    area does not dilute them. NaN without a figure."""
    height, width = still.shape[:2]
    source = _at_size(source, height, width)
    inside = _outline_at(truth, height, width)
    if not inside.any():
        return float("nan")
    rows, cols = np.nonzero(inside)
    box = (_span(rows.min(), rows.max() + 1, JUDGED_SIDE, height),
           _span(cols.min(), cols.max() + 1, JUDGED_SIDE, width))

    def figure_of(rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.where(inside[..., None], rgb, source)[box])

    return score_look(figure_of(_at_size(shown, height, width)), source[box], figure_of(still)).share


def room_share(shown: np.ndarray, source: np.ndarray, still: np.ndarray, truth: np.ndarray) -> float:
    """The share of the still's DeepDream on the room: the full-height strip on the figure's wider
    side, ROOM_MARGIN clear of its outline (at least JUDGED_SIDE wide). The whole room without a figure."""
    height, width = still.shape[:2]
    cols = np.nonzero(_outline_at(truth, height, width).any(axis=0))[0]
    strip = slice(0, width)
    if cols.size:
        if cols.min() > width - 1 - cols.max():  # more room on the left
            strip = slice(0, max(JUDGED_SIDE, cols.min() - ROOM_MARGIN))
        else:
            strip = slice(min(width - JUDGED_SIDE, cols.max() + 1 + ROOM_MARGIN), width)

    def room_of(rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(_at_size(rgb, height, width)[:, strip])

    return score_look(room_of(shown), room_of(source), room_of(still)).share


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A moment's shares of a still's DeepDream: on the visitor, and on the room beside them."""

    seen: Seen
    visitor: float
    room: float


def judged(seen: Seen, still_of: Callable[[np.ndarray], np.ndarray]) -> Judged:
    """`seen` judged against `still_of` its source frame (`testing.look.still_of` at the dream size)."""
    height, width = seen.shown.shape[:2]  # the app shows the frame cut to the dream's aspect: so are these
    source, truth = (np.ascontiguousarray(cropped_to_aspect(picture, height, width))
                     for picture in (seen.clip.rgb, seen.clip.truth))
    still = still_of(source)
    return Judged(seen, visitor_share(seen.shown, source, still, truth), room_share(seen.shown, source, still, truth))


def table(rows: Sequence[Judged]) -> str:
    """One line a moment: the two shares, then the rates over the RATE_WINDOW_S before it."""
    lines = [f"{'moment':16s} {'visitor':>8s} {'room':>6s} {'shown fps':>10s} {'dreams/s':>9s}"]
    for row in rows:
        lines.append(f"{row.seen.moment.name:16s} {row.visitor:8.2f} {row.room:6.2f} "
                     f"{row.seen.shown_fps:10.1f} {row.seen.dreams_per_s:9.2f}")
    return "\n".join(lines)


def write_strip(path: Path, rows: Sequence[Judged], cell: tuple[int, int] = (360, 640)) -> None:
    """A JPEG: a row a moment, source (the figure's true outline drawn) | live, each `cell` (h, w)."""
    height, width = cell
    strip = []
    for row in rows:
        source = _at_size(row.seen.clip.rgb, height, width)
        outline = _outline_at(row.seen.clip.truth, height, width).astype(np.uint8)
        contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(source, contours, -1, (255, 255, 0), 1)
        live = _at_size(row.seen.shown, height, width)
        _label(source, f"source, {row.seen.moment.name}")
        _label(live, f"live: visitor {row.visitor:.2f}, room {row.room:.2f} of a still")
        strip.append(np.hstack([source, live]))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(strip), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def _label(rgb: np.ndarray, text: str) -> None:
    """White text on a dark box in the top-left corner: readable on any picture."""
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
    cv2.rectangle(rgb, (4, 4), (12 + width, 14 + height), (0, 0, 0), -1)
    cv2.putText(rgb, text, (8, 8 + height), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
