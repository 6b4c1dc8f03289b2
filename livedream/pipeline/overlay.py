"""The show loop's picture: the newest frame plus the newest finished dream, carried to it.

A dream takes longer than a frame on a CPU, so the picture is not the dream of this frame:
it is this frame, sharp, with the detail of the newest finished dream (dream − its frame)
moved along the optical flow from the frame that dream belongs to onto this one, faded where
the flow is not trusted (what a moving visitor uncovers), and laid over it at full size.

The motion is followed frame by frame, where it is small and the flow is good, and the
per-frame moves are composed into one map back to the dream's frame (`Chain`, on the small
flow frames: cheap), so the detail is resampled once however many frames it is carried over.
Every REFINE_EVERY frames one flow straight back to the chain's first frame makes the map good
(`DetailWarper.refine`: per-frame flows of a slow pan add up a bias). A second chain starts at
the frame the worker is dreaming: when that dream is finished, its chain is exactly the
map from the frame shown now back to it. What the worker starts each dream from is the
detail as shown on its input frame (`carried`): still parts deepen, moved parts follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livedream.pipeline.coherence import DetailWarper, pixel_coordinates
from livedream.pipeline.images import resized_into
from livedream.pipeline.sharp import SharpComposer

# The detail a dream starts from has been resampled once per dream before it, so bilinear's
# blur (a fractional shift averages neighbours) would add up over a moving scene's dreams
# and wash out the fine motifs; cubic keeps them, at the same cost here (2.4 ms at 640x360).
CARRY_INTERPOLATION = cv2.INTER_CUBIC
REFINE_EVERY = 5  # frames of a chain between flows straight back to its first frame (1.9 ms each at 160 px)


@dataclass(frozen=True)
class FinishedDream:
    """One finished dream as the worker hands it over; the arrays are never written again
    while the show loop may still read them (`live.worker.DreamSlot`)."""

    base_rgb: np.ndarray  # (h, w, 3) uint8: the source frame at the dream size, the detail's own frame
    detail: np.ndarray  # (h, w, 3) int16: dream − base_rgb, grey levels
    index: int  # the source frame's index
    number: int  # counts finished dreams from 1 (a new number = a new dream)
    offered_at: float  # when the loop offered its frame, on the loop's clock: the dream's age counts from here
    dream_ms: float  # how long the dream took
    whole: bool = True  # the whole frame was dreamed (False: only the visitors' box)


class Chain:
    """A map from the newest frame back to an earlier one, composed from per-frame moves,
    with the least of the moves' confidences: the product would fade the detail everywhere
    over a long chain (the flow's small per-frame doubts compound), the least fades it only
    where some frame's move was not trusted."""

    def __init__(self, height: int, width: int) -> None:
        self.map = np.empty((height, width, 2), np.float32)
        self.confidence = np.empty((height, width), np.float32)
        self.first_grey = np.zeros((height, width), np.uint8)  # the small grey frame it maps back to
        self._frames = 0  # frames extended since the start or since it was last made good
        self._scratch_map = np.empty_like(self.map)
        self._scratch_confidence = np.empty_like(self.confidence)
        self._identity = np.dstack(pixel_coordinates(height, width))
        self.restart(self.first_grey)

    def restart(self, grey: np.ndarray) -> None:
        """Start at the newest frame (`grey`, small): the identity, fully trusted."""
        np.copyto(self.map, self._identity)
        self.confidence.fill(1.0)
        np.copyto(self.first_grey, grey)
        self._frames = 0

    def take(self, other: "Chain") -> None:
        np.copyto(self.map, other.map)
        np.copyto(self.confidence, other.confidence)
        np.copyto(self.first_grey, other.first_grey)
        self._frames = other._frames

    def extend(self, sample_map: np.ndarray, confidence: np.ndarray) -> None:
        """One more frame: where it came from in the previous one, and how far that is trusted."""
        cv2.remap(self.map, sample_map, None, cv2.INTER_LINEAR, dst=self._scratch_map,
                  borderMode=cv2.BORDER_REPLICATE)
        cv2.remap(self.confidence, sample_map, None, cv2.INTER_LINEAR, dst=self._scratch_confidence,
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self.map, self._scratch_map = self._scratch_map, self.map
        self.confidence, self._scratch_confidence = self._scratch_confidence, self.confidence
        np.minimum(self.confidence, confidence, out=self.confidence)
        self._frames += 1

    def make_good(self, warper: DetailWarper, every: int) -> None:
        """Every `every` frames (0: never), the map made good by one flow straight back to the first frame."""
        if 0 < every <= self._frames:
            warper.refine(self.first_grey, self.map)
            self._frames = 0


class CarriedOverlay:
    """Lays the newest finished dream over each shown frame. Buffers are made once per
    dream size; `advance`, `take` and `shown` allocate nothing."""

    def __init__(self, occlusion: bool = True, warper: DetailWarper | None = None,
                 refine_every: int = REFINE_EVERY) -> None:
        """`refine_every` 0: the chains are never made good (the carry of earlier releases, the
        streak benchmark's comparison row)."""
        self._warper = warper or DetailWarper(occlusion=occlusion)
        self._refine_every = refine_every
        self._composer = SharpComposer()
        self._size: tuple[int, int] | None = None
        self._dream: FinishedDream | None = None
        self._pending = False  # a dream is being made of a frame the pending chain starts at

    @property
    def flow_ms(self) -> float:
        return self._warper.flow_ms

    @property
    def dream(self) -> FinishedDream | None:
        """The dream laid over the frames now (None before the first, or after `clear`)."""
        return self._dream

    def clear(self) -> None:
        """Lay nothing until the next dream (a cut, a new source, opening hours)."""
        self._dream = None

    def advance(self, frame_rgb: np.ndarray, dream_size: tuple[int, int], visitors: np.ndarray | None = None) -> None:
        """A new frame (in order) at the dream size (height, width): follow its motion.
        `visitors`: this frame's visitor mask (`Visitors.mask`), or None: with it, a passing
        visitor never drags the room's detail along (`DetailWarper.track`)."""
        if self._size != dream_size:
            self._allocate(*dream_size)
        resized_into(frame_rgb, self._base_rgb)
        moved = self._warper.track(self._base_rgb, visitors)
        if moved is None:
            self._current.restart(self._warper.newest_grey)
            self._offered.restart(self._warper.newest_grey)
            return
        for chain in (self._current, self._offered):
            chain.extend(*moved)
            chain.make_good(self._warper, self._refine_every)
        self._enlarge(self._current)

    def _enlarge(self, chain: Chain) -> None:
        """The chain's small map and confidence at the dream size, in dream pixels."""
        height, width = self._size  # type: ignore[misc]
        cv2.resize(chain.map, (width, height), dst=self._map, interpolation=cv2.INTER_LINEAR)
        self._map += 0.5
        self._map *= self._small_to_dream
        self._map -= 0.5
        cv2.resize(chain.confidence, (width, height), dst=self._confidence, interpolation=cv2.INTER_LINEAR)

    def offered(self) -> tuple[np.ndarray, np.ndarray] | None:
        """This frame was handed to the worker: start following from it. Returns what that
        dream starts from: the detail as laid over this frame (h, w, 3, grey levels) and
        how far it is trusted (h, w); None while there is none. The overlay's own buffers:
        copy them."""
        self._offered.restart(self._warper.newest_grey)
        self._pending = True
        if self._dream is None:
            return None
        self._warp()
        return self._warped, self._confidence

    def take(self, dream: FinishedDream) -> None:
        """Lay `dream` over the frames from now on, carried from the frame it was offered on."""
        if dream.base_rgb.shape[:2] != self._size:
            return  # dreamed at a size given up since: the next dream is at the new one
        np.copyto(self._detail, dream.detail, casting="unsafe")
        if self._pending:
            self._current.take(self._offered)
            self._pending = False
        else:  # dreamed inside `offer` (the worker unthreaded): it belongs to this very frame
            self._current.restart(self._warper.newest_grey)
        self._enlarge(self._current)
        self._dream = dream

    def shown(self, frame_rgb: np.ndarray) -> np.ndarray | None:
        """`frame_rgb` with the carried detail over it (this overlay's own buffer, overwritten
        by the next call); None while there is no dream to lay over it."""
        if self._dream is None:
            return None
        self._warp()
        return self._composer.compose(frame_rgb, self._warped)

    def _warp(self) -> None:
        cv2.remap(self._detail, self._map, None, CARRY_INTERPOLATION, dst=self._warped,
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if self._warper.occlusion:
            self._warped *= self._confidence[..., None]

    def _allocate(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._detail = np.zeros((height, width, 3), np.float32)
        self._warped = np.empty((height, width, 3), np.float32)
        self._base_rgb = np.empty((height, width, 3), np.uint8)
        self._warper.track(np.zeros((height, width, 3), np.uint8))  # sizes its small frames
        self._warper.reset()
        small_width, small_height = self._warper.small_size
        self._small_to_dream = np.array([width / small_width, height / small_height], np.float32)
        self._map = np.empty((height, width, 2), np.float32)
        self._confidence = np.ones((height, width), np.float32)
        self._current = Chain(small_height, small_width)
        self._offered = Chain(small_height, small_width)
        self._dream = None
        self._pending = False
