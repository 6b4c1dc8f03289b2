"""The per-frame live dream: a source frame in, a dreamed frame out, with coherence.

frame (uint8 RGB, any size) → resized into a buffer at the dream size → NCHW [-1, 1]
→ last frame's detail carried along the motion (coherence) → dream.dream → uint8 RGB.
Dream small, show sharp: when the frame is larger than the dream, the output is the frame
itself plus the dream's detail (dream − source at the dream size) scaled up, so edges and
faces keep the camera's resolution and the patterns ride on them.
Every buffer is allocated once per size; a size change rebuilds them once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.manifest import AscentVariant
from livedream.media.pictures import read_image
from livedream.params import CATCH_UP, NOMINAL_FRAME_S, FrameFeedback, Params, per_frame
from livedream.pipeline.boxdream import BoxDreams, Region, box_params, dream_region
from livedream.pipeline.coherence import DetailWarper, inverse_feedback_matrix
from livedream.pipeline.depth import BroadFade, DepthCeiling
from livedream.pipeline.dream import AscentSettings, StopCheck, dream, guide_image, mask_at, octave_sizes
from livedream.pipeline.images import bytes_from_unit, resized_into, unit_from_bytes
from livedream.pipeline.lag import LagMap
from livedream.pipeline.sharp import SharpComposer
from livedream.pipeline.visitors import Box, VisitorMask, Visitors, VisitorState
from livedream.runtime.model import FrameDreaming, Guide, LoadedModel
from livedream.runtime.objective import Aim
from livedream.runtime.runners import shown_larger

log = logging.getLogger(__name__)

Carried = tuple[np.ndarray, np.ndarray]
"""(detail (h, w, 3) float32 grey levels, confidence (h, w) 0..1): a dream's start from the show loop."""
OWN_CARRY = "own carry"  # `_dream`: this dreamer's previous detail, moved by its own flow (video, stills)


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent in each stage of the last frame, for the HUD and tools/bench."""

    resize_ms: float = 0.0
    flow_ms: float = 0.0
    dream_ms: float = 0.0
    output_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.resize_ms + self.flow_ms + self.dream_ms + self.output_ms


def ascent_settings(params: Params, octave: int | None = None) -> AscentSettings:
    """The dream loop's settings for one live frame: every octave of `params`, or only `octave`
    (0 = the coarsest; `live.schedule` cycles them across a visitor's box dreams) with its steps
    (`octave_steps`).

    A live frame is dreamed as one tile and without the random roll: the roll exists to
    hide tile seams, and on a single tile it would only move the wrap-around seam into the
    picture. One tile also lets a step graph keep the image on the GPU between steps.
    """
    return AscentSettings(
        steps=params.steps if octave is None else octave_steps(params, octave),
        step_size=params.strength,
        octaves=params.octaves,
        octave_scale=params.octave_scale,
        tile=max(params.dream_height, params.dream_width),
        jitter=False,
        gradient_norm=params.gradient_norm,
        octave=octave,
    )


def within_reach(params: Params, octave: int, min_size: int) -> int:
    """`octave`, or the coarsest octave the network takes at this dream size when `octave`'s
    picture would be smaller than `min_size` (its steps are then that octave's own)."""
    reachable = len(octave_sizes(params.dream_height, params.dream_width, ascent_settings(params), min_size))
    return max(octave, params.octaves - reachable)


def octave_steps(params: Params, octave: int) -> int:
    """A live dream of one octave (a box's, a band's: `live.schedule`) takes `params.steps` divided
    by the octave's share of the sides (rounded): a coarse octave's pixel is larger, and the motifs
    it is there for need the extra steps, while its dream still costs less than a full-size one
    (steps x share). Measured when every live dream visited one octave in turn, on the demo, with
    the Laplacian gradient at 0.59 of the sides (tools/look.py's judge, 2 steps at full size): 2
    coarse steps carry 0.55 of a still's motifs at half size, 3 steps 0.62 (0.83 at full size), 4
    steps 0.90 (but 0.61 at full size: the coarse motifs swamp the texture)."""
    share = params.octave_scale ** -(params.octaves - 1 - octave)
    return max(params.steps, round(params.steps / share))


class DreamPath(Enum):
    """Where one live frame is dreamed (`choose_path`)."""

    FRAME_GRAPH = "frame graph"  # the whole frame in one GPU run; the detail stays on the device
    STEP_GRAPH = "step graph"  # host warp and add, whole ascent steps on the GPU
    HOST = "host"  # every step's gradient run from the host (the CPU path, and stills)


def live_ascent(params: Params) -> AscentVariant:
    """What one live frame of `params` dreams, as a frame graph bakes it in."""
    return AscentVariant.of(params.steps, params.octaves, params.octave_scale, params.gradient_norm)


def choose_path(params: Params, model: LoadedModel) -> DreamPath:
    """The fastest path `model` offers for `params`: a frame graph exported for exactly their
    ascent (`live_ascent`) when the dream is as large as its coarsest octave needs; a step graph
    of their gradient norm for any other setting; else the host."""
    frames = model.frame_runners.get(live_ascent(params))
    if frames is not None and min(params.dream_height, params.dream_width) >= frames.min_size:
        return DreamPath.FRAME_GRAPH
    steps = model.step_runner
    return DreamPath.STEP_GRAPH if steps is not None and steps.gradient_norm == params.gradient_norm else DreamPath.HOST


class LiveDreamer:
    """Dreams a stream of frames with the model it is handed each frame; keeps the previous
    frame's detail for coherence."""

    def __init__(self, seed: int = 0, warper: DetailWarper | None = None) -> None:
        self.timings = StageTimings()
        self.loss = 0.0
        self._rng = np.random.default_rng(seed)
        self._warper = warper or DetailWarper()
        self._size: tuple[int, int] | None = None
        self._detail: np.ndarray | None = None
        self._workspace: dict = {}  # the dream's scratch buffers, one set per size
        self._device_runner: FrameDreaming | None = None  # the runner that dreamed the last frame
        self._composer = SharpComposer()  # dream small, show sharp
        self._boxes = BoxDreams()  # the visitors' box, dreamed between whole frames (`live.schedule`)
        self._lags = LagMap()  # how far the carried dream lags, live (`pipeline.lag`)
        self._ceiling = DepthCeiling()  # the carried dream never deepens past a DeepDream of its scene, live
        self._casts = BroadFade()  # nor gathers colour casts (`pipeline.depth`)
        self._guide: Guide | None = None  # the features of `Params.guide`, read once per guide
        self._visitor_model = VisitorMask()
        self.visitors = Visitors(None, VisitorState.LEARNING)  # the last frame's, for the HUD
        self._aim_of: tuple[Params | None, Aim] = (None, Aim(()))

    def reset(self) -> None:
        """Drop the carried dream (a cut, a new source): the next frame starts from nothing."""
        self._detail = None
        self._device_runner = None  # a frame runner is reset when it takes the next frame
        self._warper.reset()
        self._visitor_model.reset()

    @property
    def carries(self) -> bool:
        """Whether the next frame starts from carried detail (False: the first, or after a reset)."""
        return self._detail is not None

    def carried_state(self) -> tuple[np.ndarray | None, dict]:
        """The carried detail (a copy) and the random state: what a resumed video render restores."""
        return (None if self._detail is None else self._detail.copy()), self._rng.bit_generator.state

    def restore(self, detail: np.ndarray | None, rng_state: dict) -> None:
        self._detail = detail
        if rng_state:
            self._rng.bit_generator.state = rng_state

    def prime(self, frame_rgb: np.ndarray, params: Params) -> None:
        """Show the warper a frame without dreaming it (a resume: the frames before the checkpoint
        give the flow its start), carrying the restored detail so its buffers match."""
        self._ensure_size(params.dream_height, params.dream_width, keep_detail=True)
        self._resize_into_base_rgb(frame_rgb)
        self._warper.carry(self._base_rgb, self._detail, 1.0)

    def dream_frame(
        self, frame_rgb: np.ndarray, params: Params, model: LoadedModel, should_stop: StopCheck | None = None,
        frame_s: float = NOMINAL_FRAME_S, settings: AscentSettings | None = None,
    ) -> np.ndarray:
        """`frame_rgb` (H, W, 3) uint8 dreamed at the Params dream size, as uint8 RGB at the
        frame's own size when it is larger (its pixels plus the dream's detail), else at the
        dream size. `settings` replaces the live frame's ascent (`ascent_settings`): a video
        file's frames take more steps, octaves, tiles and the roll.

        `frame_s`: seconds since the previous frame, which turns the per-second feedback into
        this frame's share. The result is the dreamer's own buffer, overwritten by the next
        call. `should_stop` is asked between ascent steps (`dream.DreamInterrupted` when it
        says stop).
        """
        dreamed = self._dream(frame_rgb, params, model, should_stop, frame_s, settings, frame_rgb, OWN_CARRY)
        if dreamed.shape != frame_rgb.shape and shown_larger(frame_rgb, dreamed):
            np.subtract(dreamed, self._base_rgb, out=self._detail_small, dtype=np.int16)
            return self._composer.compose(frame_rgb, self._detail_small)
        return dreamed

    def dream_detail(
        self, frame_rgb: np.ndarray, params: Params, model: LoadedModel, carried: Carried | None = None,
        should_stop: StopCheck | None = None, frame_s: float = NOMINAL_FRAME_S, octave: int | None = None,
        box: Box | None = None, visitors: Visitors | None = None, lean: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The live worker's dream of `frame_rgb`: (the frame at the dream size, uint8 RGB; the
        dream's detail there, dream − frame in grey levels, int16), so the show loop can carry
        the detail onto newer frames and lay it over them sharp. Both are the dreamer's own
        buffers, overwritten by the next call; the rest as `dream_frame`.

        `carried`: the detail as the show loop laid it over this very frame (it followed the
        motion frame by frame) and how far it is trusted; the dream starts from it, faded by
        one dream's share of the half-life and moved by the feedback. None: from nothing. On
        a frame graph the detail stays on the device and the graph carries it itself. `octave`:
        dream only that octave of the pyramid (`ascent_settings`), None: all of them. `box`: dream
        only the visitors' box (`pipeline.boxdream`); the rest keeps the carried detail as it is;
        `lean`: at the live steps, not the box's (a visitor on the move, `live.schedule`).
        `visitors`: this frame's, as the show loop found them; None: the dreamer's own mask
        finds them."""
        if box is not None and carried is not None and not lean:  # a dream of the box alone (`_dream`'s region)
            params = box_params(params)
        settings = None if octave is None else ascent_settings(params, within_reach(params, octave, model.min_size))
        dreamed = self._dream(frame_rgb, params, model, should_stop, frame_s, settings, None, carried, box, visitors)
        np.subtract(dreamed, self._base_rgb, out=self._detail_small, dtype=np.int16)
        return self._base_rgb, self._detail_small

    def _dream(
        self, frame_rgb: np.ndarray, params: Params, model: LoadedModel, should_stop: StopCheck | None,
        frame_s: float, settings: AscentSettings | None, shown_rgb: np.ndarray | None, carried: "Carried | None | str",
        box: Box | None = None, visitors: Visitors | None = None,
    ) -> np.ndarray:
        """The dream at the dream size (uint8 RGB), or on the frame graph with `shown_rgb` the
        picture the device made sharp at `shown_rgb`'s size. `carried`: OWN_CARRY (this
        dreamer's previous dream, moved by its own flow) or what `dream_detail` takes; `box`
        and `visitors` as `dream_detail` takes them."""
        feedback = per_frame(params, frame_s)
        started = time.perf_counter()
        aim = self._aim(params)
        model = model.aimed(aim, self._guide_of(params.guide, model))
        self._ensure_size(params.dream_height, params.dream_width)
        self._resize_into_base_rgb(frame_rgb)
        self.visitors = visitors if visitors is not None else self._visitor_model.update(self._base_rgb, frame_s)
        mask = self.visitors.mask if aim.uses_mask else None
        path = choose_path(params, model)
        if path is DreamPath.FRAME_GRAPH:
            runner = model.frame_runners[live_ascent(params)]
            return self._dream_frame_on_device(runner, shown_rgb, params, feedback, started, mask)
        self._device_runner = None
        unit_from_bytes(self._base_rgb, self._base)
        resized = time.perf_counter()

        region = None if box is None or carried is OWN_CARRY or carried is None else dream_region(
            box, *self._size, settings or ascent_settings(params), model.min_size)  # type: ignore[misc]
        lag: np.ndarray | None = None  # how far each pixel's carried dream lags (`pipeline.lag`)
        if carried is OWN_CARRY:
            start = self._warper.carry(self._base_rgb, self._detail, feedback.decay, feedback.feedback,
                                       self.visitors.still_room)
            lag = np.subtract(1.0, self._warper.confidence, out=self._lag)
        else:  # a box dream fades only its region: the rest is not dreamed again
            fade = 1.0 if region else feedback.decay
            start, confidence = self._start_from(
                carried, feedback, fade, params.depth, frame_s, region)  # type: ignore[arg-type]
        if start is not None and aim.gains != (1.0, 1.0):
            start *= self._region_gain(mask, aim.gains)  # the frame graph's `pixel_gain`, on the host
        if start is not None and carried is not OWN_CARRY:  # live, a dream a second: the shallow lag too
            lag = self._lags.of(start, confidence)
        flowed = time.perf_counter()

        stepper = model.step_runner if path is DreamPath.STEP_GRAPH else None
        if region is not None and start is not None:
            full_mask = None if mask is None else mask_at(mask, *self._size, self._workspace)  # type: ignore[misc]
            self.loss = self._boxes.dream(model.engine, self._base, start, lag if self._warper.occlusion else None,
                                          region, feedback.decay, settings or ascent_settings(params), self._rng,
                                          stepper, should_stop, full_mask)
            self._detail = start
        else:
            self._detail, self.loss = dream(
                model.engine, self._base, settings or ascent_settings(params), self._rng, start,
                workspace=self._workspace, stepper=stepper, should_stop=should_stop, mask=mask,
            )
            if start is not None and self._warper.occlusion:
                self._catch_up(start, lag)
        dreamed = time.perf_counter()

        self._compose_output()
        finished = time.perf_counter()
        self.timings = StageTimings(
            resize_ms=(resized - started) * 1000,
            flow_ms=(flowed - resized) * 1000,
            dream_ms=(dreamed - flowed) * 1000,
            output_ms=(finished - dreamed) * 1000,
        )
        return self._output_rgb

    def _dream_frame_on_device(
        self, runner: FrameDreaming, shown_rgb: np.ndarray | None, params: Params, frame_feedback: FrameFeedback,
        started: float, mask: np.ndarray | None,
    ) -> np.ndarray:
        """The whole frame in one GPU graph: the detail never leaves the device, and with
        `shown_rgb` the runner shows it sharp there too (else the dream at the dream size)."""
        resized = time.perf_counter()
        if runner is not self._device_runner:  # its detail is stale: other frames ran elsewhere
            runner.reset()
            self._device_runner = runner
        flow, confidence, feedback, has_previous = self._warper.motion(self._base_rgb, frame_feedback.feedback,
                                                                       self.visitors.still_room)
        flowed = time.perf_counter()
        decay = frame_feedback.decay if has_previous else 0.0
        shown, self.loss = runner.dream_frame(self._base_rgb, flow, confidence, feedback, decay, params.strength,
                                              mask_at(mask, *flow.shape[:2], self._workspace, sized=True), shown_rgb)
        self._detail = None  # the host path starts afresh if it takes over
        finished = time.perf_counter()
        self.timings = StageTimings(
            resize_ms=(resized - started) * 1000,
            flow_ms=(flowed - resized) * 1000,
            dream_ms=(finished - flowed) * 1000,
        )
        return shown

    def _start_from(self, carried: Carried | None, feedback: FrameFeedback, decay: float, depth: float,
                    frame_s: float, region: Region | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """The show loop's carried detail as this dream's start: NCHW in [-1, 1] units, faded by
        `decay`, moved by the feedback's zoom, rotation and shift, and held under the ceiling
        `depth` (0: none) less the colour casts that fade in `frame_s` (`pipeline.depth`) inside
        `region` (a box dream's: it never writes outside it), else everywhere; and its confidence."""
        if carried is None or feedback.decay <= 0:
            return None, self._lag
        detail, confidence = carried
        height, width = self._size  # type: ignore[misc]
        moved = self._carried_hwc
        if feedback.feedback.is_identity:
            np.copyto(moved, detail)
        else:
            matrix = inverse_feedback_matrix(height, width, feedback.feedback)
            cv2.warpAffine(detail, matrix, (width, height), dst=moved, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        held = moved if region is None else moved[region.slices]
        if depth > 0:
            self._ceiling.hold(held, depth)
        self._casts.fade(held, frame_s)
        np.multiply(moved.transpose(2, 0, 1)[None], decay / 127.5, out=self._carried)
        return self._carried, confidence

    def _catch_up(self, carried: np.ndarray, lag: np.ndarray) -> None:
        """Where the carried dream lags (`pipeline.lag`: the carry was not trusted, what a moving
        person uncovers or where the flow failed; live, also where it is shallow, what a pan just
        brought in) this frame's fresh steps count up to CATCH_UP times, so the region catches
        up with its surroundings in a few frames instead of showing a seam for a whole half-life."""
        lag *= CATCH_UP - 1.0
        fresh = np.subtract(self._detail, carried, out=self._fresh)
        fresh *= lag
        self._detail += fresh

    def _region_gain(self, mask: np.ndarray | None, gains: tuple[float, float]) -> np.ndarray:
        """How much of the dream each pixel keeps: the room's gain, the visitors' on them."""
        height, width = self._size  # type: ignore[misc]
        visitors = mask_at(mask, height, width, self._workspace, sized=True)
        np.multiply(visitors, gains[1] - gains[0], out=self._gain)
        self._gain += gains[0]
        return self._gain

    def _aim(self, params: Params) -> Aim:
        """What `params` dreams, as the graph's inputs take it (made once per Params)."""
        if self._aim_of[0] is not params:
            self._aim_of = (params, Aim(params.objective, params.visitor_objective, params.where.gains,
                                        params.guide_mode))
        return self._aim_of[1]

    def _guide_of(self, path: str, model: LoadedModel) -> Guide | None:
        """The guide image's features, read once when `Params.guide` names a new one. A guide
        that cannot be read is reported once and dreamed without, never a stopped show."""
        if not path:
            return None
        if self._guide is None or self._guide.name != path:
            try:
                image = guide_image(read_image(Path(path)), model.min_size)
            except UserError as error:
                log.warning("guide: %s; dreaming without it", error)
                self._guide = Guide(path, None, model)
            else:
                self._guide = Guide(path, image, model)
                log.info("guide: %s", path)
        return self._guide

    def _ensure_size(self, height: int, width: int, keep_detail: bool = False) -> None:
        if self._size == (height, width):
            return
        detail = self._detail if keep_detail else None
        self._size = (height, width)
        self._base_rgb = np.empty((height, width, 3), np.uint8)
        self._base = np.empty((1, 3, height, width), np.float32)
        self._dreamed = np.empty((1, 3, height, width), np.float32)
        self._output_rgb = np.empty((height, width, 3), np.uint8)
        self._detail_small = np.empty((height, width, 3), np.int16)
        self._fresh = np.empty((1, 3, height, width), np.float32)
        self._lag = np.empty((height, width), np.float32)
        self._gain = np.empty((height, width), np.float32)
        self._carried_hwc = np.empty((height, width, 3), np.float32)
        self._carried = np.empty((1, 3, height, width), np.float32)
        self._detail = detail  # detail of another size cannot be carried (a resume restores its own)
        self._device_runner = None  # nor can the device's

    def _resize_into_base_rgb(self, frame_rgb: np.ndarray) -> None:
        resized_into(frame_rgb, self._base_rgb)

    def _compose_output(self) -> None:
        """output = clip(base + detail) as uint8 RGB, through preallocated buffers."""
        dreamed = self._dreamed
        if self._detail is None:
            np.copyto(dreamed, self._base)
        else:
            np.add(self._base, self._detail, out=dreamed)
        bytes_from_unit(dreamed, self._output_rgb)
