"""`livedream dream PHOTO`: the TensorFlow tutorial's dream of one still (a photo, or a clip
of one frame), written as a picture or, where the output is a video's, a one-frame video."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livedream.media.clips import ClipFrame, ClipInfo, frames
from livedream.media.keeping import Keeping, plan
from livedream.media.pictures import read_picture
from livedream.media.targets import PICTURE, Target, size_note
from livedream.objective import Objective
from livedream.offline.imageio import check_dreamable, write_photo
from livedream.offline.model import console, open_engine
from livedream.offline.render import (
    DEFAULT_CRF,
    DEFAULT_PIECE_FRAMES,
    DEFAULT_WARMUP,
    RenderJob,
    write_one_frame,
)
from livedream.pipeline.dream import (
    AscentSettings,
    OctaveCallback,
    dream,
    dreamed_image,
    octave_sizes,
)
from livedream.pipeline.images import to_nchw, to_rgb

# A video's carried detail fades to half in a second, and each carried frame takes a tenth of
# the still's steps: on the coherence benchmark's clip of known motion (tools/bench.py
# --coherence) that cut the background's unexplained change from 0.37 (0.26 s, a quarter of
# the steps) to 0.32 of the dream amount, the objective gain staying 1.7x and the sharpness 1.6x.
VIDEO_HALF_LIFE_S = 1.0
VIDEO_FRAME_STEP_SHARE = 10  # carried frames take steps // this (at least 1)


@dataclass(frozen=True)
class OfflineJob:
    """One `livedream dream` run, its options checked."""

    source: Path
    output: Path
    model: str
    device: str
    settings: AscentSettings
    seed: int
    clip: ClipInfo  # what the source holds (`media.clips.probe`)
    target: Target  # how the output is written, tried (`media.targets.target_for`)
    half_life: float = VIDEO_HALF_LIFE_S  # video: seconds the carried dream takes to fade to half
    frame_steps: int | None = None  # video: steps per octave after the first frame
    crf: int = DEFAULT_CRF  # video: x264/x265 quality (lower = better, bigger)
    segment_frames: int = DEFAULT_PIECE_FRAMES  # video: frames per finished piece (a crash loses at most these)
    warmup: int = DEFAULT_WARMUP  # video: frames a later chunk dreams before its first kept one
    resume: bool = False  # video: continue the unfinished render of `output`
    workers: int = 1  # video: local worker processes, one chunk each
    ray: str | None = None  # video: a Ray cluster's address ("local": this machine)
    chunk: tuple[int, int] | None = None  # video: render only chunk i of N (1-based), for a farm manager
    objective: Objective | None = None  # what the dream amplifies; None = the graph's own default
    guide: Path | None = None  # an image whose features the dream moves toward
    dream_height: int | None = None  # video: dream at this height (the clip's aspect) and show sharp; None = the clip's
    where: str = "all"  # video: which region dreams (`params.WHERE`): the room learned where nobody moves
    visitor_objective: Objective = ()  # video: what the visitors dream; () = the objective
    guide_mode: str = "match"  # how the guide steers (`objective.GUIDE_MODES`)


def octave_timer(octave_count: int) -> OctaveCallback:
    """An `on_octave` callback printing each octave's size and time since the previous one."""
    last = time.perf_counter()

    def on_octave(index: int, size: tuple[int, int], loss: float) -> None:
        nonlocal last
        now = time.perf_counter()
        height, width = size
        console.print(f"octave {index + 1}/{octave_count}  {width}x{height}  {now - last:5.1f} s  loss {loss:.3f}")
        last = now

    return on_octave


def keeping_said(job: OfflineJob) -> Keeping:
    """What the output keeps of the source beside the picture; what it cannot keep (a pixel of
    an odd size, too) is said in one line now, before the dream starts."""
    keeping = plan(job.source, job.clip, job.target)
    for line in (keeping.kept_line(), keeping.lost_line(), size_note(job.target, job.clip)):
        if line:
            console.print(line, markup=False, soft_wrap=True)  # one line; FFmpeg names its part in [brackets]
    return keeping


def dream_photo(job: OfflineJob) -> None:
    """Dream the photo `job.source` into `job.output` (the tutorial's octaves and steps)."""
    source, settings, seed = job.source, job.settings, job.seed
    keeping = keeping_said(job)
    rgb, alpha = read_picture(source, job.clip)
    engine = open_engine(job.model, job.device, settings.tile, objective=job.objective, guide=job.guide,
                         guide_mode=job.guide_mode)
    check_dreamable(source, *rgb.shape[:2], engine.min_size)
    octave_count = len(octave_sizes(*rgb.shape[:2], settings, engine.min_size))
    started = time.perf_counter()
    base = to_nchw(rgb)
    rng = np.random.default_rng(seed)
    detail, _ = dream(engine, base, settings, rng, on_octave=octave_timer(octave_count))
    write_dream(job, keeping, to_rgb(dreamed_image(base, detail)), alpha)
    kind = "" if job.target.kind == PICTURE else f" as a one-frame {job.target.codec.name} video"  # type: ignore[union-attr]
    console.print(f"wrote {job.output}{kind} in {time.perf_counter() - started:.1f} s (seed {seed})")


def write_dream(job: OfflineJob, keeping: Keeping, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    """The dreamed still as the target asks: a picture, or a one-frame video at the source
    picture's time (so carried sound stays in step with it)."""
    kept_alpha = alpha if job.target.alpha else None
    if job.target.kind == PICTURE:
        write_photo(job.output, rgb, kept_alpha)
        return
    pts = next(frames(job.source, job.clip)).pts
    write_one_frame(RenderJob(job.source, job.output, job.target, job.crf), job.clip, keeping,
                    ClipFrame(0, pts, rgb, kept_alpha))
