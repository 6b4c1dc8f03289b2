"""The TensorFlow DeepDream tutorial's algorithm on an `Engine`.

Arrays are NCHW float32 (1, 3, H, W) in [-1, 1]. A dream is returned as *detail*: the
dreamed image minus the base image, so video and the live app can warp and decay it
across frames and add it to the next frame.

Per step (tutorial): random roll, gradient (in tiles for big images), divide by its std
(+1e-8), times the step size, add, clip to [-1, 1]. Octaves go from small to large with
scale 1.3. With `gradient_norm = "laplacian"` the gradient's Laplacian-pyramid bands are each
brought to RMS 1 before the std division (`pipeline.lapnorm`, Google's TF1 notebook): the
same step, as far in RMS, with its energy spread over the octaves, so the coarse bands draw
large motifs.

A live dream may visit one octave of the pyramid (`octave`): a visitor's successive box dreams
cycle through the scales (`live.schedule`), each starting from the carried detail at its scale;
a whole-frame live dream visits every octave, each adding only what its steps changed.

Across octaves the lost detail is re-injected (Google's original notebook) by default:
each octave dreams on the sharp base image at that size plus the enlarged detail so far.
The tutorial instead enlarges the dreamed image itself; every shrink/enlarge then blurs the
source too, which accumulates across video frames. Both are kept (`reinject=False` is the
tutorial's way) because stills made the tutorial's way are what users compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from livedream.manifest import LAPLACIAN_NORM, STD_NORM, octave_factors, octave_side, smallest_side
from livedream.pipeline.images import to_nchw
from livedream.pipeline.lapnorm import LaplacianNormaliser
from livedream.runtime.engine import NO_VISITORS, DreamInterrupted, GradientEngine
from livedream.runtime.model import StepAscent

STD_EPSILON = 1e-8

StopCheck = Callable[[], bool]
"""Asked before each ascent step; True abandons the dream with `DreamInterrupted`."""


@dataclass(frozen=True)
class AscentSettings:
    steps: int = 10  # steps per octave
    step_size: float = 0.01
    octaves: int = 3  # number of octaves at or below the image's size, coarsest first
    octaves_above: int = 0  # extra octaves larger than the image (the tutorial's 1, 2)
    octave_scale: float = 1.3
    tile: int = 512  # gradient tile size; larger images are done in tiles
    jitter: bool = True  # random roll before each step, so tile seams never stay put
    reinject: bool = True  # re-inject lost detail per octave (False = the tutorial's carry)
    gradient_norm: str = STD_NORM  # `manifest.GRADIENT_NORMS`: std, or Laplacian bands to RMS 1 first
    octave: int | None = None  # dream only this octave of the pyramid (0 = the coarsest); None = all


# ---- image transforms ------------------------------------------------------------------


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an NCHW image (bilinear, like tf.image.resize)."""
    if image.shape[2:] == (height, width):
        return image
    planar = image[0].transpose(1, 2, 0)
    resized = cv2.resize(planar, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized.transpose(2, 0, 1))[None]


def roll_into(src: np.ndarray, shift_y: int, shift_x: int, out: np.ndarray) -> np.ndarray:
    """`out[...] = np.roll(src, (shift_y, shift_x), axis=(2, 3))` without a temporary."""
    height, width = src.shape[2:]
    shift_y %= height
    shift_x %= width
    for dst_y, src_y in ((slice(shift_y, None), slice(None, height - shift_y)),
                         (slice(None, shift_y), slice(height - shift_y, None))):
        out[:, :, dst_y, shift_x:] = src[:, :, src_y, : width - shift_x]
        out[:, :, dst_y, :shift_x] = src[:, :, src_y, width - shift_x :]
    return out


def octave_sizes(height: int, width: int, settings: AscentSettings, min_size: int) -> list[tuple[int, int]]:
    """Sizes visited, coarsest first; octaves that would fall below the model minimum are skipped.
    The sizes are `manifest.octave_side`'s, which the frame graphs resize to as well."""
    sizes = []
    for factor in octave_factors(settings.octaves, settings.octave_scale, settings.octaves_above):
        size = (octave_side(height, factor), octave_side(width, factor))
        if min(size) >= min_size:
            sizes.append(size)
    sizes = sizes or [(height, width)]
    if settings.octave is None:
        return sizes
    return [sizes[min(settings.octave, len(sizes) - 1)]]  # octaves below the model's minimum: the coarsest left


def reaching_side(settings: AscentSettings, min_size: int) -> int:
    """The smallest side on which `settings.octave` (None: the coarsest) is in reach of a model
    that takes `min_size`: a part of the frame dreamed alone is at least this large, or its
    dream falls back to a finer octave (`octave_sizes`) and draws texture where motifs were asked."""
    factors = octave_factors(settings.octaves, settings.octave_scale, settings.octaves_above)
    return smallest_side(min_size, factors[settings.octave or 0])


def tile_starts(length: int, tile: int, min_size: int) -> list[int]:
    """Tile origins covering [0, length); a remainder too small for the model joins the last tile."""
    starts = list(range(0, length, tile))
    if len(starts) > 1 and length - starts[-1] < min_size:
        starts.pop()
    return starts


# ---- the gradient ------------------------------------------------------------------------


def tiled_gradient(engine: GradientEngine, image: np.ndarray, tile: int, out: np.ndarray,
                   mask: np.ndarray = NO_VISITORS) -> float:
    """Sum of the per-tile losses; their gradients written into `out` (image-shaped). `mask`:
    the visitors at the image's size (cut with the tiles), or NO_VISITORS."""
    height, width = image.shape[2:]
    ys = tile_starts(height, tile, engine.min_size)
    xs = tile_starts(width, tile, engine.min_size)
    if len(ys) == 1 and len(xs) == 1:
        loss, grad = engine.gradient(image, mask)
        out[...] = grad
        return loss
    tiled = mask.shape == image.shape[2:]
    total = 0.0
    for iy, y in enumerate(ys):
        y_end = ys[iy + 1] if iy + 1 < len(ys) else height
        for ix, x in enumerate(xs):
            x_end = xs[ix + 1] if ix + 1 < len(xs) else width
            piece = np.ascontiguousarray(mask[y:y_end, x:x_end]) if tiled else mask
            loss, grad = engine.gradient(np.ascontiguousarray(image[:, :, y:y_end, x:x_end]), piece)
            out[:, :, y:y_end, x:x_end] = grad
            total += loss
    return total


class Ascent:
    """Normalised gradient ascent at one size, with its scratch buffers made once."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.rolled = np.empty(shape, np.float32)
        self.grad = np.empty(shape, np.float32)
        self.unrolled = np.empty(shape, np.float32)
        self.rolled_mask = np.empty((1, 1, *shape[2:]), np.float32)
        self._laplacian: LaplacianNormaliser | None = None  # made on the first step that asks for it

    def step(
        self, engine: GradientEngine, image: np.ndarray, settings: AscentSettings, rng: np.random.Generator,
        mask: np.ndarray = NO_VISITORS,
    ) -> float:
        """One step on `image` in place; returns the loss before the step. `mask`: the
        visitors at the image's size (rolled with it), or NO_VISITORS."""
        if settings.jitter:
            max_roll = settings.tile
            shift_y, shift_x = (int(s) for s in rng.integers(-max_roll, max_roll, size=2))
            source = roll_into(image, shift_y, shift_x, self.rolled)
            if mask.shape == image.shape[2:]:
                mask = roll_into(mask[None, None], shift_y, shift_x, self.rolled_mask)[0, 0]
        else:
            source = image
        loss = tiled_gradient(engine, source, settings.tile, self.grad, mask)
        grad = roll_into(self.grad, -shift_y, -shift_x, self.unrolled) if settings.jitter else self.grad
        if settings.gradient_norm == LAPLACIAN_NORM:
            self._laplacian = self._laplacian or LaplacianNormaliser(grad.shape)
            self._laplacian.normalise(grad)
        grad *= settings.step_size / (grad.std() + STD_EPSILON)
        image += grad
        np.clip(image, -1.0, 1.0, out=image)
        return loss


def ascend(
    engine: GradientEngine,
    image: np.ndarray,
    settings: AscentSettings,
    rng: np.random.Generator,
    workspace: dict | None = None,
    stepper: StepAscent | None = None,
    should_stop: StopCheck | None = None,
    mask: np.ndarray = NO_VISITORS,
) -> float:
    """`settings.steps` steps on `image` in place; returns the loss before the last step.

    With a `stepper` (a step graph on the GPU) whole steps run on the device when the
    image is one tile without roll. `workspace` keeps scratch buffers between calls (one
    per size). `should_stop` is asked before each step (before each run of a stepper).
    `mask`: the visitors at the image's size, or NO_VISITORS.
    """
    if settings.steps == 0:
        return 0.0
    if should_stop is not None and should_stop():
        raise DreamInterrupted
    workspace = {} if workspace is None else workspace
    if stepper is not None and max(image.shape[2:]) <= settings.tile and not settings.jitter:
        if mask is NO_VISITORS:  # the step graph's mask is fixed at the image's size
            mask = mask_at(None, *image.shape[2:], workspace, sized=True)
        return stepper.ascend(image, settings.steps, settings.step_size, mask)
    ascent = workspace.get(("ascent", image.shape))
    if ascent is None:
        ascent = workspace[("ascent", image.shape)] = Ascent(image.shape)
    loss = 0.0
    for step in range(settings.steps):
        if step and should_stop is not None and should_stop():
            raise DreamInterrupted
        loss = ascent.step(engine, image, settings, rng, mask)
    return loss


OctaveCallback = Callable[[int, tuple[int, int], float], None]


def dream(
    engine: GradientEngine,
    base: np.ndarray,
    settings: AscentSettings,
    rng: np.random.Generator,
    detail: np.ndarray | None = None,
    on_octave: OctaveCallback | None = None,
    workspace: dict | None = None,
    stepper: StepAscent | None = None,
    should_stop: StopCheck | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Dream on `base` and return (detail, last loss); `clip(base + detail, -1, 1)` is the dream.

    `detail` (base-shaped) seeds the dream, e.g. the previous video frame's warped and
    decayed detail; None starts from nothing. `on_octave(index, (h, w), loss)` is called
    after each octave (progress, timing). `workspace`, a dict the caller keeps, lets
    repeated calls (video, live) reuse scratch buffers; the returned detail is then one of
    them, valid until the next call with the same workspace. `stepper` and `should_stop`:
    see `ascend`. `mask` (h, w) float32 at any size: the visitors, 1 on a person (the region
    gains of the objective inputs say what each region dreams); None: nobody.
    """
    height, width = base.shape[2:]
    sizes = octave_sizes(height, width, settings, engine.min_size)
    workspace = {} if workspace is None else workspace
    if detail is not None and settings.reinject and sizes != [(height, width)]:
        return _dream_on_carried(engine, base, settings, rng, detail, sizes, on_octave, workspace, stepper, should_stop,
                                 mask)
    image = None
    loss = 0.0
    for index, (h, w) in enumerate(sizes):
        base_here = resize(base, h, w)
        start = _scratch(workspace, "image", base_here.shape)
        if image is None or settings.reinject:
            if detail is None:
                start[...] = base_here
            else:
                np.add(base_here, resize(detail, h, w), out=start)
        else:
            start[...] = resize(image, h, w)
        image = np.clip(start, -1.0, 1.0, out=start)
        loss = ascend(engine, image, settings, rng, workspace, stepper, should_stop, mask_at(mask, h, w, workspace))
        detail = np.subtract(image, base_here, out=_scratch(workspace, "detail", image.shape))
        if on_octave is not None:
            on_octave(index, (h, w), loss)
    return resize(detail, height, width), loss


def _dream_on_carried(
    engine: GradientEngine, base: np.ndarray, settings: AscentSettings, rng: np.random.Generator,
    carried: np.ndarray, sizes: list[tuple[int, int]], on_octave: OctaveCallback | None, workspace: dict,
    stepper: StepAscent | None, should_stop: StopCheck | None, mask: np.ndarray | None,
) -> tuple[np.ndarray, float]:
    """Octaves on a carried detail (video, live): each octave adds only what its steps changed,
    enlarged, to the full-size detail. Passing the whole detail down to the coarsest octave and
    back up (the still's way) would blur the carried detail every frame, and the next frame
    would dream its fine patterns anew: flicker that the motion does not explain."""
    height, width = base.shape[2:]
    total = _scratch(workspace, "total", base.shape)
    np.copyto(total, carried)
    loss = 0.0
    for index, (h, w) in enumerate(sizes):
        base_here = resize(base, h, w)
        image = _scratch(workspace, "image", base_here.shape)
        np.add(base_here, resize(total, h, w), out=image)
        np.clip(image, -1.0, 1.0, out=image)
        before = _scratch(workspace, "before", image.shape)
        np.copyto(before, image)
        loss = ascend(engine, image, settings, rng, workspace, stepper, should_stop, mask_at(mask, h, w, workspace))
        change = np.subtract(image, before, out=before)
        total += resize(change, height, width)
        if on_octave is not None:
            on_octave(index, (h, w), loss)
    dreamed = np.add(total, base, out=_scratch(workspace, "dreamed", base.shape))
    np.clip(dreamed, -1.0, 1.0, out=dreamed)
    np.subtract(dreamed, base, out=total)
    return total, loss


def mask_at(mask: np.ndarray | None, height: int, width: int, workspace: dict, sized: bool = False) -> np.ndarray:
    """The visitor mask at (height, width), in a scratch buffer (bilinear, as the graph
    resizes it). Nobody (None): NO_VISITORS, which tiles and rolls as itself — or with `sized`
    (a graph whose mask has a fixed size) zeros at that size."""
    if mask is not None and mask.shape == (height, width):
        return mask
    if mask is None and not sized:
        return NO_VISITORS
    out = _scratch(workspace, "mask", (height, width))
    if mask is None:
        out[...] = 0.0
        return out
    return cv2.resize(mask, (width, height), dst=out, interpolation=cv2.INTER_LINEAR)


def _scratch(workspace: dict, role: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 buffer kept in `workspace` for this role and size (made once)."""
    buffer = workspace.get((role, shape))
    if buffer is None:
        buffer = workspace[(role, shape)] = np.empty(shape, np.float32)
    return buffer


GUIDE_SIZE = 448  # a guide's longer side when its features are read: motifs at a dream's scale


def guide_image(rgb: np.ndarray, min_size: int) -> np.ndarray:
    """A guide photo (uint8 RGB) as the NCHW [-1, 1] image its features are read from."""
    height, width = rgb.shape[:2]
    scale = max(GUIDE_SIZE / max(height, width), min_size / min(height, width))
    size = (max(min_size, round(width * scale)), max(min_size, round(height * scale)))
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return to_nchw(resized)


def dreamed_image(base: np.ndarray, detail: np.ndarray) -> np.ndarray:
    return np.clip(base + detail, -1.0, 1.0)
