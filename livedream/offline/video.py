"""`livedream dream VIDEO`: every frame dreamed, the previous frame's detail carried along
the optical flow and decayed (the live app's `DetailWarper`), so patterns stick to what
moves instead of boiling."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from livedream.offline.imageio import AtomicVideoWriter, VideoReader, check_dreamable
from livedream.offline.model import console, open_engine
from livedream.offline.photo import OfflineJob
from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.dream import AscentSettings, dream, dreamed_image
from livedream.pipeline.images import to_nchw, to_rgb
from livedream.runtime.engine import Engine

progress_console = Console(stderr=True)


def frame_settings(settings: AscentSettings, frame_steps: int | None) -> AscentSettings:
    """Settings for video frames after the first: most of the dream arrives carried from the
    previous frame, so a few steps keep it up; full still steps would over-cook it frame by frame."""
    steps = frame_steps if frame_steps is not None else max(1, settings.steps // 4)
    return dataclasses.replace(settings, steps=steps)


class CoherentFrames:
    """Dreams consecutive video frames, each seeded with the previous frame's detail moved
    along the optical flow and decayed (the live app's `DetailWarper`)."""

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


def dream_video(job: OfflineJob) -> None:
    """Dream the video `job.source` into `job.output`, frame by frame with coherence."""
    source, settings, seed = job.source, job.settings, job.seed
    with VideoReader(source) as reader:
        info = reader.info
        engine = open_engine(job.model, job.device, settings.tile)
        check_dreamable(source, info.height, info.width, engine.min_size)
        later = frame_settings(settings, job.frame_steps)
        console.print(
            f"{info.frame_count} frames {info.width}x{info.height} at {info.fps:g} fps; "
            f"{settings.steps} steps per octave on the first frame, {later.steps} after (seed {seed})"
        )
        frames = CoherentFrames(engine, settings, later, job.decay, seed)
        started = time.perf_counter()
        with AtomicVideoWriter(job.output, info.fps, info.width, info.height) as writer:
            try:
                with video_progress() as progress:
                    task = progress.add_task("dreaming", total=info.frame_count or None)
                    for frame_rgb in reader:
                        writer.write(frames.dream_frame(frame_rgb))
                        progress.advance(task)
            except KeyboardInterrupt:
                writer.commit()  # the frames done so far, as a valid (shorter) video
                if writer.frames_written:
                    console.print(f"kept the {writer.frames_written} frames dreamed so far in {job.output}")
                raise
            writer.commit()
    console.print(f"wrote {job.output}: {writer.frames_written} frames in {time.perf_counter() - started:.1f} s")


def video_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=progress_console,
    )
