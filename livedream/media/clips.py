"""What a file holds, and its frames: FFmpeg (PyAV) first, OpenCV for the animations FFmpeg
cannot decode (animated WebP).

`probe` counts the frames by decoding them, the way `frames` then yields them: a container's
stated count is a guess (an AVI's index over-counts, a raw stream states none), and a render
cut into chunks by a wrong count would lose frames. One frame is a picture, more a clip. The
picture is turned upright by the stream's display matrix (a phone's portrait clip is stored
as turned landscape). A picture with transparency (an alpha plane, or a palette with a
transparent colour, as a GIF sticker has) yields its alpha beside the colour, so the
dreamed picture can be written with the same transparency. Timestamps come out strictly
increasing in the clip's time base: a variable rate is kept; a frame with none, or one that
goes back, gets the next frame's time at the stated rate. A damaged packet is skipped, as FFmpeg's own players skip it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import av.logging
import cv2
import numpy as np

from livedream.errors import UserError, first_line
from livedream.files import native_stderr_silenced
from livedream.media.headers import refuse_huge, refuse_huge_header

FALLBACK_RATE = Fraction(25)  # a stream that states no rate (FFmpeg's own default for raw streams)
ANIMATION_TIME_BASE = Fraction(1, 1000)  # OpenCV gives an animation's frame durations in ms
FFMPEG, OPENCV = "ffmpeg", "opencv"  # which library decodes a file


@dataclass(frozen=True)
class Canvas:
    """What a writer needs of a clip: the upright size and the clock."""

    width: int
    height: int
    rate: Fraction  # average frames per second
    time_base: Fraction  # the unit of the frames' timestamps


@dataclass(frozen=True)
class ClipInfo:
    frame_count: int  # as decoding gives them, exactly what `frames` yields
    rate: Fraction  # average frame rate
    time_base: Fraction
    width: int  # upright, after rotation
    height: int
    rotation: int  # degrees the picture is turned clockwise to stand upright
    audio_tracks: int = 0
    reader: str = FFMPEG
    stream_index: int = 0  # the picture's stream in the container
    alpha: bool = False  # the picture has transparency: frames come with their alpha

    @property
    def moving(self) -> bool:
        return self.frame_count > 1

    @property
    def has_audio(self) -> bool:
        return self.audio_tracks > 0

    def canvas(self) -> Canvas:
        return Canvas(self.width, self.height, self.rate, self.time_base)

    @property
    def frame_ticks(self) -> int:
        """One frame at the stated rate, in the clip's time base (at least one tick)."""
        return max(1, round(1 / (self.rate * self.time_base)))


@dataclass(frozen=True)
class ClipFrame:
    index: int
    pts: int  # in `ClipInfo.time_base`, strictly increasing
    rgb: np.ndarray
    alpha: np.ndarray | None = None  # uint8 (H, W), 0 = transparent, where the clip has transparency


# PyAV puts FFmpeg's own reason ("[matroska] Only audio, video, and subtitles are supported")
# into its exceptions only while it listens to FFmpeg's log; what it hears goes no further
# (its Python logger takes nothing, so no handler anywhere prints FFmpeg's complaints).
av.logging.set_level(av.logging.ERROR)
logging.getLogger("libav").setLevel(logging.CRITICAL + 1)


def ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's words for why `error` happened, without the file name PyAV puts first."""
    text = first_line(error)
    _, found, logged = text.partition("last error log: ")
    if found:
        return logged.strip()
    return error.strerror if isinstance(error, av.error.FFmpegError) and error.strerror else text


class _Unreadable(Exception):
    """FFmpeg read no picture from the file (the reason, in FFmpeg's words)."""


def open_input(path: Path) -> av.container.InputContainer:
    """`path` opened by FFmpeg; a one-line UserError when it cannot be."""
    try:
        return _open(path)
    except _Unreadable as why:
        raise UserError(f"cannot open {path} ({why}); check the file, or re-encode it with FFmpeg") from None


def open_written(path: Path, muxer: str) -> av.container.InputContainer:
    """A file this program wrote, opened as the format it was written in where FFmpeg reads that
    format by the same name: a piece of two black frames in MPEG-TS is too short to be
    recognised by probing."""
    try:
        av.format.ContainerFormat(muxer, "r")
    except ValueError:
        return av.open(str(path), "r")
    return av.open(str(path), "r", format=muxer)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise _Unreadable(ffmpeg_reason(error)) from None


def picture_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The stream that is the picture: the default video stream, else the first; never a cover
    (an attached picture is a still beside the sound, not the clip)."""
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    defaults = [s for s in videos if s.disposition & av.stream.Disposition.default]
    return (defaults or videos or [None])[0]


def probe(path: Path) -> ClipInfo:
    """What `path` holds, its frames counted by decoding them; a one-line UserError when it
    holds no picture that FFmpeg or OpenCV can decode."""
    refuse_huge_header(path)
    try:
        return _probe_ffmpeg(path)
    except _Unreadable as why:
        animation = _opencv_animation(path)
        if animation is None:
            raise UserError(f"cannot read {path} as a video or a picture ({why}); check the file, "
                            f"or re-encode it with FFmpeg") from None
        return _animation_info(animation)


def _probe_ffmpeg(path: Path) -> ClipInfo:
    with _open(path) as container:
        stream = picture_stream(container)
        if stream is None:
            if container.streams.audio:
                raise UserError(f"{path} holds sound only; give a video or a picture")
            raise _Unreadable("no video stream")
        refuse_huge(path, stream.codec_context.width, stream.codec_context.height)
        count, first = 0, None
        for frame in _decoded(container, stream):
            first = first or frame
            count += 1
        if first is None:
            raise _Unreadable("no frame could be decoded")
        rotation = _rotation(first)
        width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
        rate = stream.average_rate or stream.guessed_rate or FALLBACK_RATE
        return ClipInfo(count, rate, stream.time_base or Fraction(1, 90000), width, height, rotation,
                        len(container.streams.audio), FFMPEG, stream.index, _transparent(first))


def first_picture(path: Path) -> np.ndarray:
    """The first frame FFmpeg decodes from `path`, upright uint8 RGB, without counting the rest."""
    with open_input(path) as container:
        stream = picture_stream(container)
        if stream is not None:
            refuse_huge(path, stream.codec_context.width, stream.codec_context.height)
            for frame in _decoded(container, stream):
                return upright(frame.to_ndarray(format="rgb24"), _rotation(frame))
    raise UserError(f"cannot read {path} as a picture (FFmpeg decodes none from it)")


def _transparent(frame: av.VideoFrame) -> bool:
    """Whether this frame shows through anywhere: an alpha plane or a palette (a GIF decodes
    with one whether it uses it or not) with a pixel that is not opaque."""
    if not frame.format.has_palette and not any(component.is_alpha for component in frame.format.components):
        return False
    return bool((frame.to_ndarray(format="rgba")[..., 3] < 255).any())


def _rotation(frame: av.VideoFrame) -> int:
    return round(-(frame.rotation or 0)) % 360  # PyAV's angle is counter-clockwise


def _decoded(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    stream.thread_type = "AUTO"
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.FFmpegError:  # a damaged packet: skipped, as players skip it
            continue


def _opencv_animation(path: Path) -> cv2.Animation | None:
    data = np.fromfile(str(path), dtype=np.uint8)
    with native_stderr_silenced():
        try:
            ok, animation = cv2.imdecodeanimation(data)
        except cv2.error:
            return None
    return animation if ok and animation.frames else None


def _animation_info(animation: cv2.Animation) -> ClipInfo:
    height, width = animation.frames[0].shape[:2]
    total_ms = int(np.sum(animation.durations))
    count = len(animation.frames)
    rate = Fraction(1000 * count, total_ms) if total_ms > 0 else FALLBACK_RATE
    first = animation.frames[0]
    alpha = first.shape[2] == 4 and bool((first[..., 3] < 255).any())
    return ClipInfo(count, rate, ANIMATION_TIME_BASE, width, height, 0, 0, OPENCV, alpha=alpha)


def frames(path: Path, info: ClipInfo, start: int = 0) -> Iterator[ClipFrame]:
    """Frames `start`… as upright uint8 RGB (and alpha, where the clip has transparency) with
    their timestamps (frames before `start` are decoded and dropped, so the numbering is always
    the whole clip's)."""
    pictures = _ffmpeg_pictures(path, info) if info.reader == FFMPEG else _opencv_pictures(path)
    last: int | None = None
    for index, (pts, pixels) in enumerate(pictures):
        if pts is None or (last is not None and pts <= last):
            pts = 0 if last is None else last + info.frame_ticks
        last = pts
        if index >= start:
            rgb, alpha = split_alpha(upright(pixels, info.rotation), info.alpha)
            yield ClipFrame(index, pts, rgb, alpha)


def split_alpha(pixels: np.ndarray, keep_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 RGB or RGBA (H, W, 3|4) as contiguous RGB and, when kept, the alpha."""
    if pixels.shape[2] == 3:
        return pixels, None
    return np.ascontiguousarray(pixels[..., :3]), (np.ascontiguousarray(pixels[..., 3]) if keep_alpha else None)


def _ffmpeg_pictures(path: Path, info: ClipInfo) -> Iterator[tuple[int | None, np.ndarray]]:
    layout = "rgba" if info.alpha else "rgb24"
    with open_input(path) as container:
        stream = container.streams[info.stream_index]
        for frame in _decoded(container, stream):
            yield frame.pts, frame.to_ndarray(format=layout)


def _opencv_pictures(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    animation = _opencv_animation(path)
    if animation is None:
        raise UserError(f"cannot read {path} any more (OpenCV decodes no animation from it)")
    pts = 0
    for picture, duration in zip(animation.frames, np.ravel(animation.durations)):
        yield pts, cv2.cvtColor(picture, cv2.COLOR_BGRA2RGBA if picture.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        pts += max(1, int(duration))


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """`rgb` turned clockwise by `rotation` degrees (0, 90, 180, 270)."""
    quarter_turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=-quarter_turns)) if quarter_turns else rgb

