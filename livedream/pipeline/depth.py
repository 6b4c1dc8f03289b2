"""How deep the carried live dream may grow: a ceiling on its local strength.

Live, each dream starts from the carried detail and adds its steps, and on a CPU a dream counts
at most `params.MAX_FRAME_S` of the half-life, so the detail fades by a fixed share per dream
and settles where one dream's steps make up for it: at the shipped 5 s, after twenty dreams and
more, at two to three times a still's strength (mean |shown − source| 35–44 grey levels against a
still's 15 on the demo). By then the colours clip and the scene under the dream is gone: a
visitor no longer finds their own face in it. A shorter half-life would settle lower, but it
also slows every new region's start (a visitor walking in, what a pan brings in), which fades
as much per dream as the deep room does.

So the fade stays, and the carried detail is held under a ceiling where it is deep: wherever
its local RMS (over the three colours, in a Gaussian neighbourhood of about a fortieth of the
dream's height) exceeds `Params.depth` grey levels (40; a live control) it is scaled down to
it, and left alone elsewhere. A new region deepens at the full pace; a deep one stays a
DeepDream of its scene. Measured on
the demo (tools/look.py, five moments of 30 s, one run each): mean |shown − source| 25–30 with
it, 35–44 without; the judge's shares 0.58 / 0.97 with it, 0.66 / 1.11 without, the latter on
pictures where her face is gone.

What stays under the ceiling was still colour soup where a still keeps the scene's hues: the
live detail carried four times a still's colour broader than a motif (12 grey levels RMS of
chroma after a Gaussian of 16 px, a still's 3), smooth pink and green casts that the Laplacian
gradient's low-pass rest adds a little of with every step and the carry keeps. So each dream the
carried detail also drops half of its broad part (`BroadFade`: its half-life is what a dream on a
CPU counts for, `params.MAX_FRAME_S`, so a visitor's box dreams, several a second, each drop
less): the casts settle at about two dreams' worth, the motifs (eyes and faces of a few dozen
pixels at most) keep their pace. Both, ten moments of 30 s, three runs (whole dreams then cycled
the octaves; `live.schedule` has since dreamed them all in each): 0.61, 0.56, 0.54 at
640x360 and 0.79, 0.84, 0.82 at half size, 26 grey levels deep, against 0.60, 0.66 and 1.15,
1.10 at 44 without; on the walk-in clip the visitor's shares stay above what an installation
asks of them (docs: the look).

A box dream (`pipeline.boxdream`) holds and fades inside its region only: it never writes
outside it. The GPU frame graph keeps its detail on the device and has neither yet.
"""

from __future__ import annotations

import cv2
import numpy as np

from livedream.params import MAX_FRAME_S, counted_s, decay_per_frame

BROAD_HALF_LIFE = MAX_FRAME_S  # seconds the carried detail's broad part (colour casts, not motifs) takes to halve
BROAD = 1 / 22  # what counts as broad: the Gaussian sigma, as a share of the dream's height (16 px at 360)
SPREAD = 1 / 45  # the neighbourhood's Gaussian sigma, as a share of the dream's height (8 px at 360)


class DepthCeiling:
    """`hold(detail, ceiling)`: the detail (h, w, 3) float32 grey levels, scaled down in place where
    its local RMS exceeds `ceiling`. Buffers are made once per size; a call allocates nothing."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] = ()

    def hold(self, detail: np.ndarray, ceiling: float) -> None:
        if detail.shape != self._shape:
            self._allocate(detail.shape)
        np.multiply(detail, detail, out=self._squares)
        np.mean(self._squares, axis=2, out=self._power)
        cv2.GaussianBlur(self._power, (0, 0), self._sigma, dst=self._local, borderType=cv2.BORDER_REFLECT)
        np.sqrt(self._local, out=self._local)
        np.maximum(self._local, ceiling, out=self._local)
        np.divide(ceiling, self._local, out=self._local)  # 1 where shallow, below 1 where deep
        detail *= self._local[..., None]

    def _allocate(self, shape: tuple[int, ...]) -> None:
        self._shape = shape
        self._squares = np.empty(shape, np.float32)
        self._power = np.empty(shape[:2], np.float32)
        self._local = np.empty(shape[:2], np.float32)
        self._sigma = max(shape[0] * SPREAD, 1.0)


class BroadFade:
    """`fade(detail, frame_s)`: the detail (h, w, 3) float32 less the share of its broad part (a
    Gaussian of BROAD of its height) that fades in `frame_s` (counted as the feedback counts it),
    in place. Buffers are made once per size; a call allocates nothing."""

    def __init__(self) -> None:
        self._broad = np.empty((0, 0, 3), np.float32)

    def fade(self, detail: np.ndarray, frame_s: float) -> None:
        if self._broad.shape != detail.shape:
            self._broad = np.empty_like(detail)
        cv2.GaussianBlur(detail, (0, 0), detail.shape[0] * BROAD, dst=self._broad, borderType=cv2.BORDER_REFLECT)
        self._broad *= 1.0 - decay_per_frame(BROAD_HALF_LIFE, counted_s(frame_s))
        detail -= self._broad
