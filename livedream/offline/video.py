"""`livedream dream VIDEO`: every frame dreamed by the live app's dreamer, the previous frame's
detail carried along the optical flow (occlusion-aware) and decayed, so patterns stick to what
moves instead of boiling. Written on PyAV with the source's timing and sound, in finished
pieces that a resume continues from (`render`), on one or several workers (`farm`)."""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from livedream.errors import UserError
from livedream.media.clips import ClipInfo
from livedream.media.targets import VIDEO
from livedream.objective import Objective
from livedream.offline.farm import Farm
from livedream.offline.imageio import check_dreamable
from livedream.offline.model import console, open_engine
from livedream.offline.photo import VIDEO_FRAME_STEP_SHARE, OfflineJob, keeping_said
from livedream.offline.render import (
    Chunk,
    RenderJob,
    Throughput,
    chunks_of,
    finished,
    prepare,
    render_chunk,
    stitch,
)
from livedream.params import Params, Where, parse_where
from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.dream import AscentSettings
from livedream.pipeline.dreamer import LiveDreamer
from livedream.runtime.engine import GradientEngine
from livedream.runtime.model import LoadedModel

progress_console = Console(stderr=True, highlight=False)
PROGRESS_EVERY_S = 2.0


def frame_settings(settings: AscentSettings, frame_steps: int | None) -> AscentSettings:
    """Settings for video frames after the first: most of the dream arrives carried from the
    previous frame, so a few steps keep it up; full still steps would over-cook it frame by frame."""
    steps = frame_steps if frame_steps is not None else max(1, settings.steps // VIDEO_FRAME_STEP_SHARE)
    return dataclasses.replace(settings, steps=steps)


def dream_size(clip_height: int, clip_width: int, dream_height: int | None) -> tuple[int, int]:
    """The dream's (height, width): `dream_height` rows at the clip's aspect, or the clip's size."""
    if dream_height is None or dream_height >= clip_height:
        return clip_height, clip_width
    return dream_height, max(1, round(clip_width * dream_height / clip_height))


def dreamed_at(info: ClipInfo, dream_height: int | None) -> str:
    height, width = dream_size(info.height, info.width, dream_height)
    return "" if (height, width) == (info.height, info.width) else f", dreamed at {width}x{height} and shown sharp"


def check_dream_height(path: Path, clip_height: int, clip_width: int, dream_height: int | None, min_size: int) -> None:
    if dream_height is None:
        return
    if dream_height > clip_height:
        raise UserError(f"--dream-height {dream_height} is above {path.name}'s {clip_height} rows; "
                        f"use at most {clip_height}, or leave it out to dream at the clip's size")
    height, width = dream_size(clip_height, clip_width, dream_height)
    if min(height, width) < min_size:
        lowest = max(min_size, -(-min_size * clip_height // clip_width))
        raise UserError(f"--dream-height {dream_height} makes a {width}x{height} dream, below the model's "
                        f"minimum {min_size}x{min_size}; use at least {lowest}")


VIDEO_FLOW = "dis-medium"  # offline there is time for the flow that tracks moving objects
VIDEO_FLOW_SIDE = 320  # and for flow on larger frames (the live loop's 160 px loses small movers in HD)


def video_warper(occlusion: bool = True) -> DetailWarper:
    """The carry of a video file: every frame is dreamed, so where the flow's checks fail on a
    walking figure a fresh dream takes over; the live floor of trust on a figure's own pixels
    (`coherence.VISITOR_TRUST`, for dreams that come once in many frames) would keep misplaced
    detail there instead (streak bench, the figure's own detail 0.43 without it, 0.24 with)."""
    return DetailWarper(VIDEO_FLOW_SIDE, method=VIDEO_FLOW, occlusion=occlusion, visitor_trust=0.0)


class VideoFrames:
    """A video's frames through the live app's dreamer (`pipeline.dreamer.LiveDreamer`: the same
    carry, warp and occlusion check), the first frame with the still's steps, later ones with
    `later`'s. Its carried state (detail, random state) is saved and restored by a resume."""

    def __init__(self, engine: GradientEngine, first: AscentSettings, later: AscentSettings, half_life: float,
                 rate: float, seed: int, warper: DetailWarper | None = None, dream_height: int | None = None,
                 where: Where = Where(), visitor_objective: Objective = ()) -> None:
        self.dreamer = LiveDreamer(seed, warper or video_warper())
        self.model = LoadedModel(engine)  # no objective inputs here: `open_engine` aimed the engine
        self.first, self.later = first, later
        self.half_life, self.frame_s = half_life, 1.0 / rate
        self.dream_height = dream_height
        # What `open_engine` aimed the engine at, for the dreamer: it makes the mask when they need one.
        self.where, self.visitor_objective = where, visitor_objective

    def _params(self, frame_rgb: np.ndarray) -> Params:
        height, width = dream_size(frame_rgb.shape[0], frame_rgb.shape[1], self.dream_height)
        return Params(dream_height=height, dream_width=width, half_life=self.half_life, where=self.where,
                      visitor_objective=self.visitor_objective)

    def dream_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        settings = self.later if self.dreamer.carries else self.first
        params = self._params(frame_rgb)
        if max(params.dream_height, params.dream_width) <= settings.tile:
            # One tile: the random roll hides no seam, it only moves the wrap-around edge of
            # the gradient each step, which flickers across frames.
            settings = dataclasses.replace(settings, jitter=False)
        return self.dreamer.dream_frame(frame_rgb, params, self.model, frame_s=self.frame_s, settings=settings).copy()

    def prime(self, frame_rgb: np.ndarray) -> None:
        self.dreamer.prime(frame_rgb, self._params(frame_rgb))

    def carried_state(self) -> tuple[np.ndarray | None, dict]:
        return self.dreamer.carried_state()

    def restore(self, detail: np.ndarray | None, rng_state: dict) -> None:
        self.dreamer.restore(detail, rng_state)


def render_job(job: OfflineJob) -> RenderJob:
    settings = tuple(sorted({**dataclasses.asdict(job.settings), "half_life": job.half_life, "frame_steps": job.frame_steps,
                             "model": job.model, "objective": job.objective,
                             "guide": str(job.guide or ""), "dream_height": job.dream_height, "where": job.where,
                             "visitor_objective": job.visitor_objective, "guide_mode": job.guide_mode}.items()))
    return RenderJob(job.source, job.output, job.target, job.crf, job.segment_frames, job.warmup, settings, job.seed)


def dream_chunk(job: OfflineJob, render: RenderJob, info: ClipInfo, chunk: Chunk, threads: int = 0,
                report: bool = True) -> None:
    """One chunk, on this process: the engine, the coherent dreamer, the pieces."""
    where = parse_where(job.where)
    engine = open_engine(job.model, job.device, job.settings.tile, threads=threads, objective=job.objective,
                         guide=job.guide, where=where, visitor_objective=job.visitor_objective,
                         guide_mode=job.guide_mode)
    check_dreamable(job.source, info.height, info.width, engine.min_size)
    check_dream_height(job.source, info.height, info.width, job.dream_height, engine.min_size)

    def fresh() -> VideoFrames:  # the half-life is per second, so any frame rate looks alike
        return VideoFrames(engine, job.settings, frame_settings(job.settings, job.frame_steps), job.half_life,
                           float(info.rate), job.seed, dream_height=job.dream_height, where=where,
                           visitor_objective=job.visitor_objective)

    frames = fresh()
    meter = Throughput(chunk.stop - chunk.start)
    last_line = [time.perf_counter()]

    def on_frame(index: int) -> None:
        meter.frame()
        now = time.perf_counter()
        if report and (now - last_line[0] >= PROGRESS_EVERY_S or index + 1 == chunk.stop):
            last_line[0] = now
            left = meter.seconds_left
            progress_console.print(
                f"{chunk.label if chunk.count > 1 else 'frames'}: {index + 1 - chunk.start}/{chunk.stop - chunk.start}"
                f"  {meter.fps:.2f} fps  {'' if left is None else f'{left:.0f} s left'}")

    render_chunk(render, info, chunk, frames, on_frame, fresh_dreamer=fresh)


def written_as(job: OfflineJob) -> str:
    codec = job.target.codec.name  # type: ignore[union-attr]
    quality = f" crf {job.crf}" if job.target.codec.quality_option else ""  # type: ignore[union-attr]
    return f"{codec}{quality}" if job.target.kind == VIDEO else f"an animated {codec.upper()}"


def dream_video(job: OfflineJob) -> None:
    """Dream the video `job.source` into `job.output`: resumable, on the workers asked for."""
    render = render_job(job)
    count = job.chunk[1] if job.chunk else max(job.workers, 1)
    prepare(render, job.resume, count, one_chunk=job.chunk is not None)
    info = job.clip
    chunks = chunks_of(info.frame_count, count)
    later = frame_settings(job.settings, job.frame_steps)
    console.print(
        f"{info.frame_count} frames {info.width}x{info.height} at {float(info.rate):g} fps"
        f"{dreamed_at(info, job.dream_height)}; {job.settings.steps} steps per octave on the first frame, "
        f"{later.steps} after (seed {job.seed}); {written_as(job)}; "
        f"{len(chunks)} chunk(s), state in {render.state_folder.name}"
    )
    keeping = keeping_said(job)
    started = time.perf_counter()
    wanted = [chunks[job.chunk[0] - 1]] if job.chunk else chunks
    try:
        if len(wanted) == 1 and job.ray is None:
            dream_chunk(job, render, info, wanted[0])
        else:
            Farm(job.workers, job.ray).run(functools.partial(dream_chunk, job, render, info, report=False), wanted)
    except KeyboardInterrupt:
        console.print("stopped; the finished pieces are kept: continue with the same command and --resume")
        raise
    if not finished(render, chunks):
        console.print(f"{wanted[0].label} done; {job.output} is joined when every chunk is done")
        return
    written = stitch(render, chunks, info, keeping)
    console.print(f"wrote {job.output}: {written} frames in {time.perf_counter() - started:.1f} s")
