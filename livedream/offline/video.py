"""`livedream dream VIDEO`: every frame dreamed, the previous frame's detail carried along
the optical flow and decayed (the live app's `DetailWarper`), so patterns stick to what
moves instead of boiling. Written on PyAV with the source's timing and sound, in finished
pieces that a resume continues from (`render`), on one or several workers (`farm`)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from rich.console import Console

from livedream.offline.farm import Farm
from livedream.offline.imageio import check_dreamable
from livedream.offline.model import console, open_engine
from livedream.offline.photo import OfflineJob
from livedream.params import decay_per_frame
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
from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.dream import AscentSettings, dream, dreamed_image
from livedream.pipeline.images import to_nchw, to_rgb
from livedream.pipeline.videofiles import ClipInfo
from livedream.runtime.engine import Engine

progress_console = Console(stderr=True, highlight=False)
PROGRESS_EVERY_S = 2.0


def frame_settings(settings: AscentSettings, frame_steps: int | None) -> AscentSettings:
    """Settings for video frames after the first: most of the dream arrives carried from the
    previous frame, so a few steps keep it up; full still steps would over-cook it frame by frame."""
    steps = frame_steps if frame_steps is not None else max(1, settings.steps // 4)
    return dataclasses.replace(settings, steps=steps)


class CoherentFrames:
    """Dreams consecutive video frames, each seeded with the previous frame's detail moved
    along the optical flow and decayed (the live app's `DetailWarper`). Its carried state
    (detail, random state) can be saved and restored: a render resumes from it."""

    def __init__(self, engine: Engine, first: AscentSettings, later: AscentSettings, decay: float, seed: int) -> None:
        self.engine = engine
        self.first, self.later = first, later
        self.decay = decay
        self.rng = np.random.default_rng(seed)
        self.warper = DetailWarper()
        self.workspace: dict = {}  # the dream's scratch buffers, kept across frames
        self.detail: np.ndarray | None = None

    def dream_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        carried = self.warper.carry(frame_rgb, self.detail, self.decay)
        base = to_nchw(frame_rgb)
        settings = self.first if carried is None else self.later
        self.detail, _ = dream(self.engine, base, settings, self.rng, carried, workspace=self.workspace)
        return to_rgb(dreamed_image(base, self.detail))

    def prime(self, frame_rgb: np.ndarray) -> None:
        # With the restored detail, so the warper also computes (and keeps) the flow; the warp is thrown away.
        self.warper.carry(frame_rgb, self.detail, self.decay)

    def carried_state(self) -> tuple[np.ndarray | None, dict]:
        return (None if self.detail is None else self.detail.copy()), self.rng.bit_generator.state

    def restore(self, detail: np.ndarray | None, rng_state: dict) -> None:
        self.detail = detail
        if rng_state:
            self.rng.bit_generator.state = rng_state


def render_job(job: OfflineJob) -> RenderJob:
    settings = tuple(sorted({**dataclasses.asdict(job.settings), "half_life": job.half_life, "frame_steps": job.frame_steps,
                             "model": job.model, "objective": job.objective,
                             "guide": str(job.guide or "")}.items()))
    return RenderJob(job.source, job.output, job.codec, job.crf, job.segment_frames, job.warmup, settings, job.seed)


def dream_chunk(job: OfflineJob, render: RenderJob, info: ClipInfo, chunk: Chunk, threads: int = 0,
                report: bool = True) -> None:
    """One chunk, on this process: the engine, the coherent dreamer, the pieces."""
    engine = open_engine(job.model, job.device, job.settings.tile, threads=threads, objective=job.objective,
                         guide=job.guide)
    check_dreamable(job.source, info.height, info.width, engine.min_size)
    decay = decay_per_frame(job.half_life, 1 / float(info.rate))  # per second, so any frame rate looks alike

    def fresh() -> CoherentFrames:
        return CoherentFrames(engine, job.settings, frame_settings(job.settings, job.frame_steps), decay, job.seed)

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


def dream_video(job: OfflineJob) -> None:
    """Dream the video `job.source` into `job.output`: resumable, on the workers asked for."""
    render = render_job(job)
    count = job.chunk[1] if job.chunk else max(job.workers, 1)
    info = prepare(render, job.resume, count, one_chunk=job.chunk is not None)
    chunks = chunks_of(info.frame_count, count)
    later = frame_settings(job.settings, job.frame_steps)
    console.print(
        f"{info.frame_count} frames {info.width}x{info.height} at {float(info.rate):g} fps"
        f"{' with sound' if info.has_audio else ''}; {job.settings.steps} steps per octave on the first frame, "
        f"{later.steps} after (seed {job.seed}); {job.codec} crf {job.crf}; "
        f"{len(chunks)} chunk(s), state in {render.state_folder.name}"
    )
    started = time.perf_counter()
    wanted = [chunks[job.chunk[0] - 1]] if job.chunk else chunks
    try:
        if len(wanted) == 1 and job.ray is None:
            dream_chunk(job, render, info, wanted[0])
        else:
            Farm(job.workers, job.ray).run(job, render, info, wanted)
    except KeyboardInterrupt:
        console.print("stopped; the finished pieces are kept: continue with the same command and --resume")
        raise
    if not finished(render, chunks):
        console.print(f"{wanted[0].label} done; {job.output} is joined when every chunk is done")
        return
    written = stitch(render, chunks, info)
    console.print(f"wrote {job.output}: {written} frames in {time.perf_counter() - started:.1f} s")
