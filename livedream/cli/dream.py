"""`livedream dream IN -o OUT`: DeepDream a photo or a video file (`livedream.offline`)."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from livedream.config import DEVICE_HELP, DEVICES
from livedream.errors import UserError
from livedream.manifest import DEFAULT_MODEL, GRADIENT_NORMS
from livedream.media.pictures import read_image
from livedream.media.targets import target_for
from livedream.media.writing import CODECS
from livedream.objective import GUIDE_LAYER, GUIDE_MODES, parse_objective, parse_visitor_objective
from livedream.offline.imageio import check_input, check_output
from livedream.offline.photo import VIDEO_HALF_LIFE_S, OfflineJob, dream_photo
from livedream.offline.render import (
    DEFAULT_CRF,
    DEFAULT_PIECE_FRAMES,
    DEFAULT_WARMUP,
    parse_chunk,
    saved_seed,
)
from livedream.offline.video import dream_video
from livedream.params import WHERE
from livedream.pipeline.dream import AscentSettings
from livedream.pipeline.images import SAMPLE_PHOTO

# Still defaults: the tutorial's look (mixed3 + mixed5, step 0.02, octave scale 1.3) in
# ~15 s for the 512² sample on 2 CPU cores. The tutorial's own -2..2 octave range takes
# ~42 s there (`--octaves 3 --octaves-above 2`), mostly in the two octaves above the photo.
STILL = AscentSettings(steps=20, step_size=0.02, octaves=4, octaves_above=0, octave_scale=1.3, tile=512)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dream",
        help="DeepDream a picture or a video file",
        description="DeepDream IN into OUT. IN is any picture or video FFmpeg or OpenCV reads (a photo, an "
                    "animated GIF/WebP/PNG, a clip in any container), known by what it holds, not by its name. "
                    "OUT's name picks how it is written: a picture (.png, .jpg, .tiff, .tga, .exr…), an animation "
                    "(.gif, .webp, .png) or a video (.mp4, .mov, .mkv, .webm, .avi…) with every sound track, "
                    "subtitles, chapters and tags of IN that its container takes; one picture (a photo, a clip of "
                    "one frame) into a video's name is a one-frame video.",
    )
    parser.add_argument("input", nargs="?", type=Path, metavar="IN", help="picture or video file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="where to write the dream; its name picks the format")
    parser.add_argument("--sample", action="store_true", help="dream the bundled sample photo instead of IN")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="graph name in models/ or an .onnx path (default: %(default)s)")
    parser.add_argument("--objective", default=None, metavar="TERMS", help="what to amplify: layers and layer:channel picks with weights, e.g. mixed4=1,mixed5:139=0.5 (default: the graph's own, mixed3=1,mixed5=1)")
    parser.add_argument("--guide", type=Path, default=None, metavar="IMAGE", help=f"dream toward this image's features (Google's guided dream: each place turned toward the guide's best-matching feature at {GUIDE_LAYER}, whatever layers --objective names)")
    parser.add_argument("--guide-mode", choices=GUIDE_MODES, default="match", help="match: per place, as Google's notebook; mean: the whole picture's mean features (default: %(default)s)")
    parser.add_argument("--where", choices=tuple(WHERE), default="all", help="video: dream the visitors (people the background model finds; the room is learned where nobody moves), the room, or all (default: %(default)s)")
    parser.add_argument("--visitor-objective", default=None, metavar="TERMS", help="video: what the visitors dream, as --objective (default: the same as the room)")
    parser.add_argument("--steps", type=int, default=STILL.steps, help="ascent steps per octave (default: %(default)s)")
    parser.add_argument("--step-size", type=float, default=STILL.step_size, help="size of one normalised step (default: %(default)s)")
    parser.add_argument("--octaves", type=int, default=STILL.octaves, help="octaves at or below the input size (default: %(default)s)")
    parser.add_argument("--octaves-above", type=int, default=STILL.octaves_above, help="extra octaves larger than the input; slow (default: %(default)s)")
    parser.add_argument("--octave-scale", type=float, default=STILL.octave_scale, help="size ratio between octaves (default: %(default)s)")
    parser.add_argument("--tile", type=int, default=STILL.tile, help="gradient tile size in pixels (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed; the same seed repeats a photo dream exactly")
    parser.add_argument("--gradient-norm", choices=GRADIENT_NORMS, default=STILL.gradient_norm,
                        help="how a step normalises its gradient: std (the tutorial's), or laplacian (each "
                             "Laplacian-pyramid band to RMS 1 first: the live default; a still gains at full size "
                             "and a little less at half) (default: %(default)s)")
    parser.add_argument("--carry", action="store_true", help="carry the dreamed image between octaves (the TF tutorial) instead of re-injecting detail")
    parser.add_argument("--device", choices=DEVICES, default="auto", help=DEVICE_HELP + " (default: %(default)s)")
    parser.add_argument("--half-life", type=float, default=VIDEO_HALF_LIFE_S, metavar="S", help="video: seconds the carried dream takes to fade to half, 0 = none (default: %(default)s)")
    parser.add_argument("--frame-steps", type=int, default=None, help="video: steps per octave after the first frame (default: a tenth of --steps, at least 1)")
    video = parser.add_argument_group("video files")
    video.add_argument("--dream-height", type=int, default=None, metavar="H", help="dream at H rows (the width follows the clip's aspect) and add the upscaled dream detail to the full-size frames: sharp and faster (default: the clip's own height)")
    video.add_argument("--codec", default=None, metavar="NAME", help=f"video codec: {', '.join(CODECS)} (ProRes 422 goes into .mov or .mkv, VP9 into .webm, VP8 into .ogv) (default: the first of them OUT's container takes)")
    video.add_argument("--crf", type=int, default=DEFAULT_CRF, metavar="N", help="h264/hevc quality, 0..51, lower is better and bigger (default: %(default)s)")
    video.add_argument("--resume", action="store_true", help="continue the unfinished render of OUT from its last finished piece")
    video.add_argument("--piece-frames", type=int, default=DEFAULT_PIECE_FRAMES, metavar="N", help="frames per finished piece; a crash loses at most this many (default: %(default)s)")
    video.add_argument("--workers", type=int, default=1, metavar="N", help="split the clip into N chunks on N local processes (default: %(default)s)")
    video.add_argument("--ray", metavar="ADDRESS", help='run the chunks on a Ray cluster ("local" = this machine; needs livedream[farm])')
    video.add_argument("--chunk", metavar="i/N", help="render only chunk i of N (for a farm manager); OUT is joined when all N are done")
    video.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, metavar="N", help="frames a chunk dreams before its first kept frame (default: %(default)s)")
    parser.set_defaults(handler=run_dream)


def settings_from(args: argparse.Namespace) -> AscentSettings:
    """The ascent settings the options ask for; each bad value named with what is allowed."""
    checks = [
        (args.steps >= 1, f"--steps {args.steps}: use 1 or more"),
        (args.step_size > 0, f"--step-size {args.step_size}: use a positive number, e.g. 0.02"),
        (args.octaves >= 1, f"--octaves {args.octaves}: use 1 or more"),
        (args.octaves_above >= 0, f"--octaves-above {args.octaves_above}: use 0 or more"),
        (args.octave_scale > 1, f"--octave-scale {args.octave_scale}: use a number above 1, e.g. 1.3"),
        (0 <= args.half_life <= 60, f"--half-life {args.half_life}: use seconds from 0 to 60"),
        (args.frame_steps is None or args.frame_steps >= 1, f"--frame-steps {args.frame_steps}: use 1 or more"),
        (0 <= args.crf <= 51, f"--crf {args.crf}: use 0 to 51 (18 looks like the source, 23 is smaller)"),
        (args.piece_frames >= 1, f"--piece-frames {args.piece_frames}: use 1 or more"),
        (1 <= args.workers <= 256, f"--workers {args.workers}: use 1 to 256"),
        (args.warmup >= 0, f"--warmup {args.warmup}: use 0 or more"),
        (args.dream_height is None or args.dream_height >= 1, f"--dream-height {args.dream_height}: use a number of rows, e.g. 360"),
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
        gradient_norm=args.gradient_norm,
    )


def input_path(args: argparse.Namespace) -> Path:
    if args.sample and args.input is not None:
        raise UserError(f"both IN ({args.input}) and --sample given; drop one of them")
    if not args.sample and args.input is None:
        raise UserError("no input; give a photo or video path, or --sample for the bundled photo")
    return SAMPLE_PHOTO if args.sample else args.input


def run_dream(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    source = input_path(args)
    chunk = parse_chunk(args.chunk) if args.chunk else None
    if chunk and (args.workers > 1 or args.ray):
        raise UserError("--chunk renders one chunk here; drop --workers / --ray (the farm manager runs the others)")
    if chunk and args.seed is None:
        raise UserError("--chunk needs the same --seed N in every chunk's run, so the chunks match; add --seed")
    objective = parse_objective(args.objective) if args.objective is not None else None
    visitor_objective = parse_visitor_objective(args.visitor_objective or "")
    if args.guide is not None:
        read_image(args.guide)  # a missing or unreadable guide is named before any work
    clip = check_input(source)  # after the checks that cost nothing: a clip is decoded once to count its frames
    check_output(args.output, source)
    video = clip.moving  # how IN is dreamed; what OUT can hold of it is `target_for`'s
    if (args.resume or chunk or args.workers > 1 or args.ray or args.dream_height) and not video:
        raise UserError("--resume, --workers, --ray, --chunk and --dream-height are for clips of several frames; "
                        "the input is one picture (dreamed as a still, whatever OUT is)")
    if (args.where != "all" or visitor_objective) and not video:
        raise UserError("--where and --visitor-objective are for clips of several frames: the room is learned from "
                        "the frames where nobody moves; the input is one picture")
    target = target_for(args.output, clip, args.codec, args.crf)
    seed = args.seed if args.seed is not None else saved_seed(args.output) if args.resume else secrets.randbelow(2**31)
    job = OfflineJob(source, args.output, args.model, args.device, settings, seed, clip, target,
                     half_life=args.half_life, frame_steps=args.frame_steps, crf=args.crf,
                     segment_frames=args.piece_frames, warmup=args.warmup, resume=args.resume, workers=args.workers,
                     ray=args.ray, chunk=chunk, objective=objective, guide=args.guide, dream_height=args.dream_height,
                     where=args.where, visitor_objective=visitor_objective, guide_mode=args.guide_mode)
    (dream_video if video else dream_photo)(job)
    return 0
