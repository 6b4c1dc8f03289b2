"""The visitors' box: the part of the frame a visitor-first dream works on, and how its detail
goes back into the carried detail.

On a CPU a whole-frame dream takes most of a second; the visitors' box (plus a margin for the
net's context) is a fraction of the frame and dreams several times a second, so a walking
visitor gets fresh detail while the carry moves it with them (`live.schedule`). The region is
snapped outward to a grid of GRID parts of the dream's sides, so a walk gives few distinct
sizes (ONNX Runtime plans each size once, and the dreamer keeps buffers per size). Its detail
is pasted into the carried detail with a feathered edge inside the region, never outside it.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
import dataclasses
from dataclasses import dataclass

import numpy as np

from livedream.params import CATCH_UP, Params
from livedream.pipeline.dream import AscentSettings, StopCheck, dream, reaching_side
from livedream.pipeline.visitors import Box
from livedream.runtime.engine import GradientEngine
from livedream.runtime.model import StepAscent

GRID = 8  # the region's edges fall on eighths of the dream's sides
MARGIN = 0.25  # of the box's own sides, added on every side: the net sees the visitor's surroundings
FEATHER = 0.1  # of the region's sides: the pasted detail ramps in over this band inside its edge
# A box dream takes this many times the live steps: the box is a fraction of the frame, so it
# still costs less than a whole-frame dream, and a walker gets only the few dreams that come
# before they have moved on. On the walk-in clip (2-core CPU's cost model, the visitor's share
# of a still's DeepDream inside their outline, walking in / standing 0.5 s / 2 s / 6 s / walking
# out): 1x 0.23 / 0.29 / 0.76 / 1.05 / 0.15, 2x 0.37 / 0.45 / 1.05 / 1.54 / 0.46; the room 0.7 both.
# A visitor on the move gets lean box dreams instead (`live.schedule`: the live steps, coarsest octave).
BOX_STEPS = 2


def box_params(params: Params) -> Params:
    """The params a dream of the visitors' box runs with (BOX_STEPS)."""
    return dataclasses.replace(params, steps=params.steps * BOX_STEPS)


@dataclass(frozen=True)
class Region:
    """Rows y0:y1 and columns x0:x1 of the dream-size frame."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def box_region(box: Box, height: int, width: int, min_side: int) -> Region:
    """`box` with its margin, snapped outward to the grid, at least `min_side` on each side
    (grown about its centre, kept inside the frame)."""
    x0, y0, x1, y1 = box
    margin_x, margin_y = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
    rows = _snapped(y0 - margin_y, y1 + margin_y, height, min_side)
    columns = _snapped(x0 - margin_x, x1 + margin_x, width, min_side)
    return Region(*rows, *columns)


def dream_region(box: Box, height: int, width: int, settings: AscentSettings, min_size: int) -> Region:
    """The region a dream of `box` with `settings` works on: `box_region`, at least as large as
    the octave it visits needs (`pipeline.dream.reaching_side`). Smaller, a coarse octave's dream
    would fall back to the full size: a thin band, a small visitor would get texture where the
    schedule asked for motifs, at the cost of motifs."""
    return box_region(box, height, width, reaching_side(settings, min_size))


def _snapped(low: float, high: float, length: int, min_side: int) -> tuple[int, int]:
    """[low, high) (fractions of `length`) snapped outward to the grid, as pixels, ≥ min_side long."""
    cells = max(1, math.ceil(GRID * min(1.0, min_side / length)))  # the fewest cells that hold min_side
    first = max(0, math.floor(low * GRID))
    last = min(GRID, math.ceil(high * GRID))
    while last - first < cells:  # grow about the middle, inside the frame
        if first > 0 and (last >= GRID or (first + last) / 2 > GRID / 2):
            first -= 1
        else:
            last += 1
    start, end = first * length // GRID, last * length // GRID
    if end - start < min_side:  # a grid cell rounded below the model's minimum
        start = max(0, min(start, length - min_side))
        end = min(length, start + min_side)
    return start, end


def feather(region: Region, height: int, width: int) -> np.ndarray:
    """The paste weights (h, w) float32 of `region`: 1 inside, falling to 0 over the FEATHER
    band toward each edge that lies inside the frame (an edge on the frame's border pastes
    whole). Read-only, made once per size and placement kind (a few while a visitor walks)."""
    return _feather(*region.shape, (region.y0 > 0, region.y1 < height, region.x0 > 0, region.x1 < width))


@functools.lru_cache(maxsize=16)
def _feather(rows: int, columns: int, inner: tuple[bool, bool, bool, bool]) -> np.ndarray:
    weights = np.outer(_ramp(rows, inner[0], inner[1]), _ramp(columns, inner[2], inner[3])).astype(np.float32)
    weights.flags.writeable = False
    return weights


def _ramp(length: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    band = max(1, round(FEATHER * length))
    position = np.arange(length, dtype=np.float64)
    ramp = np.ones(length)
    if fade_start:
        ramp = np.minimum(ramp, (position + 0.5) / band)
    if fade_end:
        ramp = np.minimum(ramp, (length - position - 0.5) / band)
    return np.clip(ramp, 0.0, 1.0)


class BoxDreams:
    """Dreams one region of a frame on its carried detail. Each region size keeps its buffers
    (the dream's scratch, the crops); the KEPT sizes used last are kept, so a walk across the
    room reuses them and memory stays bounded."""

    KEPT = 6

    def __init__(self) -> None:
        self._sizes: OrderedDict[tuple[int, int], dict] = OrderedDict()

    def dream(self, engine: GradientEngine, base: np.ndarray, carried: np.ndarray, lag: np.ndarray | None,
              region: Region, decay: float, settings: AscentSettings, rng: np.random.Generator,
              stepper: StepAscent | None = None, should_stop: StopCheck | None = None,
              mask: np.ndarray | None = None) -> float:
        """`carried` (1, 3, H, W), the detail as shown on `base`, becomes in place the detail
        with `region` dreamed: there it starts faded by `decay` (the rest of the frame is not
        dreamed, so it keeps its detail as it is), catches up where it lags (`lag` (H, W),
        `pipeline.lag`), and is pasted back with a feathered edge inside the region. `mask`:
        the visitors at (H, W), or None. Returns the dream's last loss."""
        ys, xs = region.slices
        workspace = self._workspace(region.shape)
        crop_base, start = workspace["base"], workspace["start"]
        np.copyto(crop_base, base[:, :, ys, xs])
        np.multiply(carried[:, :, ys, xs], decay, out=start)
        crop_mask = None if mask is None else np.ascontiguousarray(mask[ys, xs])
        detail, loss = dream(engine, crop_base, settings, rng, start, workspace=workspace, stepper=stepper,
                             should_stop=should_stop, mask=crop_mask)
        change = np.subtract(detail, start, out=workspace["change"])
        if lag is not None:  # `LiveDreamer._catch_up`, inside the region
            weight = np.multiply(lag[ys, xs], CATCH_UP - 1.0, out=workspace["lag"])
            weight += 1.0
            change *= weight
        np.add(change, start, out=change)  # the region's new detail ...
        change -= carried[:, :, ys, xs]  # ... as a change of what was carried there
        change *= feather(region, *base.shape[2:])
        carried[:, :, ys, xs] += change
        return loss

    def _workspace(self, shape: tuple[int, int]) -> dict:
        workspace = self._sizes.pop(shape, None)
        if workspace is None:
            workspace = {name: np.empty((1, 3, *shape), np.float32) for name in ("base", "start", "change")}
            workspace["lag"] = np.empty(shape, np.float32)
        self._sizes[shape] = workspace  # the newest last
        while len(self._sizes) > self.KEPT:
            self._sizes.popitem(last=False)
        return workspace
