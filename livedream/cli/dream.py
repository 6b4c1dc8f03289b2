"""`livedream dream IN -o OUT`: DeepDream a photo or a video file offline.

Photos get the TensorFlow tutorial's dream (`dream.dream`). Videos are dreamed frame by
frame with the live app's temporal coherence: the previous frame's detail is carried
along the optical flow and decayed (`coherence.DetailWarper`), so patterns stick to what
moves instead of boiling.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.dream import AscentSettings, OctaveCallback, dream, dreamed_image, octave_sizes
from livedream.runtime.engine import DEVICES, Engine
from livedream.errors import UserError
from livedream.offline.imageio import (
    AtomicVideoWriter,
    VideoReader,
    check_dreamable,
    check_input,
    check_output,
    is_video,
    read_photo,
    write_photo,
)
from livedream.runtime.exporting import ensure_model
from livedream.manifest import DEFAULT_MODEL, GraphInfo, default_models_dir
from livedream.params import Params
from livedream.pipeline.images import SAMPLE_PHOTO, to_nchw, to_rgb


# Still defaults: the tutorial's look (mixed3 + mixed5, step 0.02, octave scale 1.3) in
# ~15 s for the 512² sample on 2 CPU cores. The tutorial's own -2..2 octave range takes
# ~42 s there (`--octaves 3 --octaves-above 2`), mostly in the two octaves above the photo.
STILL = AscentSettings(steps=20, step_size=0.02, octaves=4, octaves_above=0, octave_scale=1.3, tile=512)

console = Console(highlight=False)
progress_console = Console(stderr=True)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dream",
        help="DeepDream a photo or a video file",
        description="DeepDream a photo (jpg/png/webp/bmp) or a video (mp4/mov/avi) into OUT.",
    )
    parser.add_argument("input", nargs="?", type=Path, metavar="IN", help="photo or video file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="where to write the dream")
    parser.add_argument("--sample", action="store_true", help="dream the bundled sample photo instead of IN")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="graph name in models/ or an .onnx path (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=STILL.steps, help="ascent steps per octave (default: %(default)s)")
    parser.add_argument("--step-size", type=float, default=STILL.step_size, help="size of one normalised step (default: %(default)s)")
    parser.add_argument("--octaves", type=int, default=STILL.octaves, help="octaves at or below the input size (default: %(default)s)")
    parser.add_argument("--octaves-above", type=int, default=STILL.octaves_above, help="extra octaves larger than the input; slow (default: %(default)s)")
    parser.add_argument("--octave-scale", type=float, default=STILL.octave_scale, help="size ratio between octaves (default: %(default)s)")
    parser.add_argument("--tile", type=int, default=STILL.tile, help="gradient tile size in pixels (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed; the same seed repeats a photo dream exactly")
    parser.add_argument("--carry", action="store_true", help="carry the dreamed image between octaves (the TF tutorial) instead of re-injecting detail")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto = CUDA when available (default: %(default)s)")
    parser.add_argument("--decay", type=float, default=Params.decay, help="video: share of the previous frame's dream carried on (default: %(default)s)")
    parser.add_argument("--frame-steps", type=int, default=None, help="video: steps per octave after the first frame (default: a quarter of --steps)")
    parser.set_defaults(handler=run_dream)


def settings_from(args: argparse.Namespace) -> AscentSettings:
    """The ascent settings the options ask for; each bad value named with what is allowed."""
    checks = [
        (args.steps >= 1, f"--steps {args.steps}: use 1 or more"),
        (args.step_size > 0, f"--step-size {args.step_size}: use a positive number, e.g. 0.02"),
        (args.octaves >= 1, f"--octaves {args.octaves}: use 1 or more"),
        (args.octaves_above >= 0, f"--octaves-above {args.octaves_above}: use 0 or more"),
        (args.octave_scale > 1, f"--octave-scale {args.octave_scale}: use a number above 1, e.g. 1.3"),
        (0 <= args.decay <= 1, f"--decay {args.decay}: use a number from 0 to 1"),
        (args.frame_steps is None or args.frame_steps >= 1, f"--frame-steps {args.frame_steps}: use 1 or more"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    return AscentSettings(
        steps=args.steps,
        step_size=args.step_size,
        octaves=args.octaves,
        octaves_above=args.octaves_above,
        octave_scale=args.octave_scale,
        tile=args.tile,
        reinject=not args.carry,
    )


def input_path(args: argparse.Namespace) -> Path:
    if args.sample and args.input is not None:
        raise UserError(f"both IN ({args.input}) and --sample given; drop one of them")
    if not args.sample and args.input is None:
        raise UserError("no input; give a photo or video path, or --sample for the bundled photo")
    return SAMPLE_PHOTO if args.sample else args.input


def open_engine(model: str, device: str, tile: int) -> Engine:
    path, info = ensure_model(model, default_models_dir())
    if tile < info.min_size:
        raise UserError(f"--tile {tile}: use at least the model's minimum input size, {info.min_size}")
    engine = Engine(path, device, min_size=info.min_size, layers=info.layers)
    describe_engine(engine, path, info)
    return engine


def describe_engine(engine: Engine, path: Path, info: GraphInfo) -> None:
    console.print(f"provider: {engine.provider} — model {path.name} ({', '.join(info.layers)}, {info.dtype})")


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


def run_dream(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    source = input_path(args)
    check_input(source)
    video = is_video(source)
    check_output(args.output, video)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    if video:
        return dream_video(source, args, settings, seed)
    return dream_photo(source, args, settings, seed)


def dream_photo(source: Path, args: argparse.Namespace, settings: AscentSettings, seed: int) -> int:
    rgb = read_photo(source)
    engine = open_engine(args.model, args.device, settings.tile)
    check_dreamable(source, *rgb.shape[:2], engine.min_size)
    octave_count = len(octave_sizes(*rgb.shape[:2], settings, engine.min_size))
    started = time.perf_counter()
    base = to_nchw(rgb)
    rng = np.random.default_rng(seed)
    detail, _ = dream(engine, base, settings, rng, on_octave=octave_timer(octave_count))
    write_photo(args.output, to_rgb(dreamed_image(base, detail)))
    console.print(f"wrote {args.output} in {time.perf_counter() - started:.1f} s (seed {seed})")
    return 0


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


def dream_video(source: Path, args: argparse.Namespace, settings: AscentSettings, seed: int) -> int:
    with VideoReader(source) as reader:
        info = reader.info
        engine = open_engine(args.model, args.device, settings.tile)
        check_dreamable(source, info.height, info.width, engine.min_size)
        later = frame_settings(settings, args.frame_steps)
        console.print(
            f"{info.frame_count} frames {info.width}x{info.height} at {info.fps:g} fps; "
            f"{settings.steps} steps per octave on the first frame, {later.steps} after (seed {seed})"
        )
        frames = CoherentFrames(engine, settings, later, args.decay, seed)
        started = time.perf_counter()
        with AtomicVideoWriter(args.output, info.fps, info.width, info.height) as writer:
            try:
                with video_progress() as progress:
                    task = progress.add_task("dreaming", total=info.frame_count or None)
                    for frame_rgb in reader:
                        writer.write(frames.dream_frame(frame_rgb))
                        progress.advance(task)
            except KeyboardInterrupt:
                writer.commit()  # the frames done so far, as a valid (shorter) video
                if writer.frames_written:
                    console.print(f"kept the {writer.frames_written} frames dreamed so far in {args.output}")
                raise
            writer.commit()
    console.print(f"wrote {args.output}: {writer.frames_written} frames in {time.perf_counter() - started:.1f} s")
    return 0


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
