"""What an output's name asks to be written, decided and tried before any work.

What the input holds decides how it is read and dreamed; the output's name decides what is
written, and only what the named kind cannot hold is refused. One picture (a photo, or a
clip of one frame) is written as a picture wherever the name is a picture's (.png, .jpg,
.tga, .exr, .avif…, and .gif, .webp), and as a one-frame video in a video's container (.mp4,
.mov, .mkv…). A moving clip is written as an animation where the name is an animated
image's (.gif, .webp, .png/.apng: animated PNG) and as a video in any other container
FFmpeg writes (.mp4, .mov, .mkv, .webm, .avi, .ts…), with the first codec of `CODECS` the
container takes unless `--codec` names one; a picture's name (.jpg) cannot hold it. Each
choice is tried on a frame or two of the clip's size in a scratch folder, so what FFmpeg or
OpenCV cannot write is said in one line before the dream starts, never after hours of it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from livedream.errors import UserError
from livedream.media.clips import ClipInfo, ffmpeg_reason
from livedream.media.pictures import PICTURE_HINT, encode_picture, keeps_alpha
from livedream.media.writing import (
    ANIMATED,
    CODECS,
    LOOP_FOREVER,
    LOSSLESS,
    LOSSLESS_MUXER,
    LOSSLESS_SUFFIX,
    Codec,
    EncoderRefused,
    VideoFileWriter,
    written_size,
)

PICTURE, ANIMATION, VIDEO = "picture", "animation", "video"
MOVING_HINT = "use .mp4, .mov, .mkv or .webm for a video, or .gif, .webp or .png for an animation"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".ogv")  # where a refused codec is offered a home
IMAGE_MUXERS = ("image2", "ico")  # FFmpeg's one-picture-per-file formats
TRIAL_FRAMES = 2


@dataclass(frozen=True)
class Target:
    """How `path` is written: a picture, an animation or a video, with which codec and muxer."""

    path: Path
    kind: str
    codec: Codec | None = None  # None for a picture (its encoder follows from the name)
    muxer: str | None = None  # FFmpeg's output format (for an animated PNG, not the one the name says)
    muxer_options: tuple[tuple[str, str], ...] = ()
    alpha: bool = False  # the source's transparency is written too

    @property
    def piece_codec(self) -> Codec:
        """What a render's pieces are encoded with: the output's codec, or lossless pieces that
        are encoded once as the animation at the end."""
        return LOSSLESS if self.kind == ANIMATION else self.codec  # type: ignore[return-value]

    @property
    def piece_suffix(self) -> str:
        return LOSSLESS_SUFFIX if self.kind == ANIMATION else self.path.suffix.lower()

    @property
    def piece_muxer(self) -> str | None:
        return LOSSLESS_MUXER if self.kind == ANIMATION else self.muxer


def target_for(path: Path, clip: ClipInfo, codec_name: str | None = None, crf: int = 18) -> Target:
    """The way `path` writes `clip`'s dream, tried; a one-line UserError naming the fix when
    there is none."""
    extension = path.suffix.lower()
    if codec_name is not None and codec_name not in CODECS:
        raise UserError(f"--codec {codec_name!r} is not allowed; use one of {', '.join(CODECS)}")
    muxer = muxer_of(path)
    if not clip.moving and _names_a_picture(path, muxer):
        if codec_name is not None:
            raise UserError(f"--codec is for videos; {path.name} is written as a picture (its format follows "
                            f"from its name)")
        return picture_target(path, clip.alpha)
    animated = "apng" if muxer == "image2" and extension == ".png" else muxer
    if animated in ANIMATED:
        if codec_name is not None:
            raise UserError(f"--codec is for video containers; {path.name} is written as an animated "
                            f"{animated.upper()}")
        codec = ANIMATED[animated]
        target = Target(path, ANIMATION, codec, animated, LOOP_FOREVER[animated], clip.alpha)
        _try(target, clip, crf)
        return target
    if muxer is None:
        raise UserError(f"FFmpeg knows no format named {extension or path.name}; {MOVING_HINT}")
    if muxer in IMAGE_MUXERS:
        raise UserError(f"the input has {clip.frame_count} frames and {extension} holds one picture; {MOVING_HINT}")
    return _video_target(path, clip, codec_name, crf, muxer)  # one frame in a video's container: a one-frame video


def _names_a_picture(path: Path, muxer: str | None) -> bool:
    """Whether one picture goes into `path` as a picture: FFmpeg's one-picture formats, an
    animated image's name (one frame of it is a picture), a name FFmpeg knows no format for
    (OpenCV's own kinds; `picture_target` names what nothing writes), or a kind a picture
    encoder writes although its muxer is a video's (AVIF). Anything else is a video's container."""
    if muxer is None or muxer in IMAGE_MUXERS or muxer in ANIMATED:
        return True
    try:
        encode_picture(path.suffix.lower(), np.zeros((16, 16, 3), np.uint8))
    except UserError:
        return False
    return True


def picture_target(path: Path, alpha: bool = False) -> Target:
    """`path` as a picture, tried: a kind nothing here writes, or a video's name, says so now.
    With `alpha` (a picture with transparency), whether the kind keeps it."""
    if not _names_a_picture(path, muxer_of(path)):
        raise UserError(f"{path.suffix} is a video's and this writes one picture; {PICTURE_HINT}")
    encode_picture(path.suffix.lower(), np.zeros((16, 16, 3), np.uint8))
    return Target(path, PICTURE, alpha=alpha and keeps_alpha(path.suffix.lower()))


def _video_target(path: Path, clip: ClipInfo, codec_name: str | None, crf: int, muxer: str) -> Target:
    where = path.suffix or path.name
    if codec_name is None:
        # A clip with transparency goes first to a codec that keeps it (ProRes 4444 in .mov).
        for codec in sorted(CODECS.values(), key=lambda codec: clip.alpha and codec.alpha_format is None):
            target = _video(path, codec, muxer, clip)
            if _refusal(target, clip, crf) is None:
                return target
        raise UserError(f"FFmpeg writes none of {', '.join(CODECS)} into {where} here; {MOVING_HINT}")
    target = _video(path, CODECS[codec_name], muxer, clip)
    refusal = _refusal(target, clip, crf)
    if refusal is None:
        return target
    others = [name for name, other in CODECS.items()
              if name != codec_name and _refusal(_video(path, other, muxer, clip), clip, crf) is None]
    homes = [suffix for suffix in VIDEO_SUFFIXES if suffix != path.suffix.lower() and _refusal(
        _video(path.with_suffix(suffix), target.codec, muxer_of(path.with_suffix(suffix)), clip), clip, crf) is None]
    fixes = [f"use --codec {others[0]}"] * bool(others) + [f"write {' or '.join(homes)} for {codec_name}"] * bool(homes)
    raise UserError(f"FFmpeg cannot write {codec_name} into {where} ({refusal}); {', or '.join(fixes) or MOVING_HINT}")


def _video(path: Path, codec: Codec, muxer: str | None, clip: ClipInfo) -> Target:
    """`path` as a video in `codec`, with the clip's transparency where the codec has it."""
    return Target(path, VIDEO, codec, muxer, alpha=clip.alpha and codec.alpha_format is not None)


def _try(target: Target, clip: ClipInfo, crf: int) -> None:
    refusal = _refusal(target, clip, crf)
    if refusal is not None:
        raise UserError(f"FFmpeg cannot write {target.path.name} as {target.kind} ({refusal}); {MOVING_HINT}")


def _refusal(target: Target, clip: ClipInfo, crf: int) -> str | None:
    """Why a frame or two of the clip's size cannot be written as `target` (FFmpeg's words), or
    None when they can: the muxer, the encoder and the size all answer in a scratch folder."""
    black = np.zeros((clip.height, clip.width, 3), np.uint8)
    clear = np.zeros((clip.height, clip.width), np.uint8) if target.alpha else None
    with tempfile.TemporaryDirectory(prefix="livedream-try-") as folder:
        scratch = Path(folder) / ("try" + target.path.suffix)
        try:
            writer = VideoFileWriter(scratch, clip.canvas(), target.codec, crf, target.muxer,  # type: ignore[arg-type]
                                     target.muxer_options, target.alpha)
            for index in range(TRIAL_FRAMES):
                writer.write(black, index * clip.frame_ticks, clear)
            writer.close()
        except EncoderRefused as refused:
            return refused.reason
        except (av.error.FFmpegError, ValueError) as error:
            return ffmpeg_reason(error)
    return None


def muxer_of(path: Path) -> str | None:
    """FFmpeg's output format for a file named like `path`, or None when it knows none."""
    with tempfile.TemporaryDirectory(prefix="livedream-name-") as folder:
        try:
            with av.open(str(Path(folder) / ("name" + path.suffix.lower())), "w") as container:
                return container.format.name
        except (av.error.FFmpegError, ValueError):
            return None


def size_note(target: Target, clip: ClipInfo) -> str | None:
    """The line to say when the output is a pixel smaller than the clip (odd sizes in 4:2:0)."""
    if target.kind == PICTURE:
        return None
    width, height = written_size(clip.width, clip.height, target.codec)  # type: ignore[arg-type]
    if (width, height) == (clip.width, clip.height):
        return None
    return (f"{clip.width}x{clip.height} is written as {width}x{height}: "
            f"{target.codec.name} needs even sizes")  # type: ignore[union-attr]
