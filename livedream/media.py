"""Video files on PyAV (FFmpeg): any container in, H.264 / HEVC / ProRes out, sound kept.

PyAV's wheels bundle FFmpeg with libx264, libx265, ProRes and AAC, so real codecs come from
a plain pip install. Frames leave the reader as uint8 RGB with their own timestamps (a
variable frame rate is kept: each dreamed frame is written with its source frame's pts)
and turned upright by the stream's rotation. It serves `livedream dream` (offline) and the
live recording (outputs) alike. Encoders run without B-frames so that pieces
rendered apart (resume, chunks on several workers) join by copying packets, never by
encoding again.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from livedream.errors import UserError

log = logging.getLogger(__name__)

FALLBACK_RATE = Fraction(25)  # a stream that states no rate


@dataclass(frozen=True)
class Codec:
    """An output codec as `--codec` names it, and how FFmpeg is asked for it."""

    name: str
    encoder: str
    pixel_format: str
    options: tuple[tuple[str, str], ...]
    quality_option: str | None  # "crf" for the x26x encoders; ProRes picks its quality by profile


CODECS = {
    "h264": Codec("h264", "libx264", "yuv420p", (("preset", "medium"), ("bf", "0")), "crf"),
    "hevc": Codec("hevc", "libx265", "yuv420p", (("preset", "medium"), ("x265-params", "bframes=0:log-level=error")),
                  "crf"),
    "prores": Codec("prores", "prores_ks", "yuv422p10le", (("profile", "2"),), None),  # 2 = ProRes 422
}
# Audio codecs each container takes as they are (copied); anything else becomes AAC.
AUDIO_COPY = {".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
              ".m4v": {"aac", "mp3", "alac", "ac3", "eac3"},
              ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"},
              ".mkv": None}  # None: every codec


@dataclass(frozen=True)
class ClipInfo:
    frame_count: int  # counted by the demuxer when the container does not say
    rate: Fraction  # average frame rate
    time_base: Fraction
    width: int  # upright, after rotation
    height: int
    rotation: int  # degrees the picture is turned to stand upright
    has_audio: bool


@dataclass(frozen=True)
class ClipFrame:
    index: int
    pts: int | None  # in `ClipInfo.time_base`
    rgb: np.ndarray


def open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (av.error.FFmpegError, OSError) as error:
        raise UserError(f"cannot open {path} as a video ({first_line(error)}); check the file or re-encode it") from None


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def probe(path: Path) -> ClipInfo:
    """What the clip is, without decoding pictures (frames are counted from packets if needed)."""
    with open_input(path) as container:
        if not container.streams.video:
            raise UserError(f"{path} has no video stream; give a video file")
        stream = container.streams.video[0]
        rotation = _rotation(stream, container)
        container.seek(0)
        count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        width, height = (stream.height, stream.width) if rotation % 180 else (stream.width, stream.height)
        return ClipInfo(count, stream.average_rate or stream.guessed_rate or FALLBACK_RATE,
                        stream.time_base or Fraction(1, 90000), width, height, rotation, bool(container.streams.audio))


def _rotation(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> int:
    """The clockwise turn that makes the picture upright (phones store portrait as turned landscape):
    the old `rotate` tag, else the first frame's display matrix (counter-clockwise in PyAV)."""
    text = stream.metadata.get("rotate")
    if text and text.lstrip("-").isdigit():
        return int(text) % 360
    try:
        first = next(container.decode(stream))
    except (StopIteration, av.error.FFmpegError):
        return 0
    return round(-(first.rotation or 0)) % 360


def frames(path: Path, info: ClipInfo, start: int = 0) -> Iterator[ClipFrame]:
    """Frames `start`… as upright uint8 RGB with their pts (frames before `start` are decoded and dropped)."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        for frame in container.decode(stream):
            if index >= start:
                yield ClipFrame(index, frame.pts, upright(frame.to_ndarray(format="rgb24"), info.rotation))
            index += 1


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """`rgb` turned clockwise by `rotation` degrees (0, 90, 180, 270)."""
    quarter_turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=-quarter_turns)) if quarter_turns else rgb


class VideoFileWriter:
    """Encodes RGB frames into `path` (video only) with the source's time base and pts."""

    def __init__(self, path: Path, info: ClipInfo, codec: Codec, crf: int) -> None:
        self._container = av.open(str(path), "w")
        options = dict(codec.options)
        if codec.quality_option:
            options[codec.quality_option] = str(crf)
        try:
            self._stream = self._container.add_stream(codec.encoder, rate=info.rate, options=options)
        except (av.error.FFmpegError, ValueError) as error:
            self._container.close()
            raise UserError(f"this FFmpeg cannot encode {codec.name} ({first_line(error)}); choose another --codec") from None
        self._stream.width, self._stream.height = info.width - info.width % 2, info.height - info.height % 2
        self._stream.pix_fmt = codec.pixel_format
        # The source's time base on both sides, so each pts is kept exactly (a variable rate too)
        self._stream.codec_context.time_base = self._stream.time_base = info.time_base
        self._time_base = info.time_base  # the muxer may change the stream's own when it starts
        self._next_pts = 0
        self.frames_written = 0
        try:
            self._container.start_encoding()  # the file exists from now, and a codec that cannot open says so here
        except (av.error.FFmpegError, ValueError) as error:
            self._container.close()
            raise UserError(f"this FFmpeg cannot encode {codec.name} at {info.width}x{info.height} "
                            f"({first_line(error)}); choose another --codec") from None

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        height, width = self._stream.height, self._stream.width
        if rgb.shape[:2] != (height, width):  # an odd size: codecs want even ones
            rgb = np.ascontiguousarray(rgb[:height, :width])
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts if pts is not None else self._next_pts
        frame.time_base = self._time_base
        self._next_pts = frame.pts + 1
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))  # the encoder's last frames
        self._container.close()


def join(pieces: list[Path], audio_from: Path | None, out: Path) -> None:
    """Copy the packets of `pieces` (video only, same codec and size) into `out`, in order, with
    the audio of `audio_from` interleaved by time: copied when `out`'s container takes its
    codec, else encoded as AAC."""
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(av.open(str(out), "w"))
        first = stack.enter_context(av.open(str(pieces[0]), "r"))
        video_out = output.add_stream_from_template(first.streams.video[0])
        streams = [_packets_of(pieces, video_out)]
        if audio_from is not None:
            source = stack.enter_context(av.open(str(audio_from), "r"))
            if source.streams.audio:
                streams.append(_audio_packets(source, output, out.suffix.lower()))
        for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            output.mux(packet)


def _packets_of(pieces: list[Path], stream: av.stream.Stream) -> Iterator[tuple[float, int, av.Packet]]:
    for piece in pieces:
        with av.open(str(piece), "r") as part:
            yield from _restamped(part.demux(part.streams.video[0]), stream, 0)


def _restamped(packets: Iterator[av.Packet], stream: av.stream.Stream,
               order: int) -> Iterator[tuple[float, int, av.Packet]]:
    """`packets` moved onto `stream`, keyed (time, order) for the join's merge; flush packets
    (no dts) carry nothing to copy."""
    for packet in packets:
        if packet.dts is not None:
            when = float(packet.dts * packet.time_base)
            packet.stream = stream
            yield when, order, packet


def _audio_packets(source: av.container.InputContainer, output: av.container.OutputContainer,
                   extension: str) -> Iterator[tuple[float, int, av.Packet]]:
    audio_in = source.streams.audio[0]
    allowed = AUDIO_COPY.get(extension, set())
    if allowed is None or audio_in.codec_context.name in allowed:
        audio_out = output.add_stream_from_template(audio_in)
        return _copied(source, audio_in, audio_out)
    log.info("audio %s does not fit %s: encoding it as AAC", audio_in.codec_context.name, extension)
    audio_out = output.add_stream("aac", rate=audio_in.codec_context.sample_rate)
    audio_out.layout = audio_in.codec_context.layout
    audio_out.codec_context.open()  # before the first video packet: the muxer's header needs it
    return _encoded(source, audio_in, audio_out)


def _copied(source: av.container.InputContainer, audio_in: av.stream.Stream,
            audio_out: av.stream.Stream) -> Iterator[tuple[float, int, av.Packet]]:
    return _restamped(source.demux(audio_in), audio_out, 1)


def _encoded(source: av.container.InputContainer, audio_in: av.stream.Stream,
             audio_out: av.stream.Stream) -> Iterator[tuple[float, int, av.Packet]]:
    for frame in source.decode(audio_in):
        when = float(frame.time or 0.0)
        frame.pts = None  # the encoder numbers its own samples
        for packet in audio_out.encode(frame):
            yield when, 1, packet
    for packet in audio_out.encode(None):  # the encoder's last samples, after everything else
        yield float("inf"), 1, packet
