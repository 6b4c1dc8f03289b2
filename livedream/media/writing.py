"""Frames into a video or an animated image, on PyAV (FFmpeg).

PyAV's wheels bundle FFmpeg with libx264, libx265, ProRes, libvpx, libwebp and the GIF and
APNG encoders, so real codecs come from a plain pip install. Each frame is written with its
source frame's timestamp, so a variable frame rate is kept. Video encoders run without
B-frames so that pieces rendered apart (resume, chunks on several workers) join by copying
packets, never by encoding again. A GIF gets a palette made for each frame (FFmpeg's
palettegen and paletteuse), not a fixed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np

from livedream.errors import UserError
from livedream.media.clips import Canvas, ffmpeg_reason, open_written, split_alpha


@dataclass(frozen=True)
class Codec:
    """An encoder as `--codec` (or an output kind) names it, and how FFmpeg is asked for it."""

    name: str
    encoder: str
    pixel_format: str
    options: tuple[tuple[str, str], ...] = ()
    quality_option: str | None = None  # "crf" where the encoder takes one; ProRes picks its quality by profile
    even_sizes: bool = True  # chroma at half the width (and height): the encoder wants even sizes
    alpha_format: str | None = None  # the pixel format that keeps transparency; None: the codec has none


CODECS = {
    "h264": Codec("h264", "libx264", "yuv420p", (("preset", "medium"), ("bf", "0")), "crf"),
    "hevc": Codec("hevc", "libx265", "yuv420p", (("preset", "medium"), ("x265-params", "bframes=0:log-level=error")),
                  "crf"),
    "prores": Codec("prores", "prores_ks", "yuv422p10le", (("profile", "2"),)),  # 2 = ProRes 422
    # 4 = ProRes 4444, with an alpha plane: the edit's codec for a picture with transparency
    "prores4444": Codec("prores4444", "prores_ks", "yuv444p10le", (("profile", "4"),), alpha_format="yuva444p10le"),
    # WebM's codec; alternate reference frames stay inside one packet, so pieces still join by copying
    "vp9": Codec("vp9", "libvpx-vp9", "yuv420p", (("b", "0"), ("deadline", "good"), ("cpu-used", "4"),
                                                  ("row-mt", "1")), "crf"),
    "vp8": Codec("vp8", "libvpx", "yuv420p", (("b", "0"), ("deadline", "good"), ("cpu-used", "4")), "crf"),  # Ogg's
}
# The animated image formats, by FFmpeg's muxer name; each loops for ever, as the web's do.
ANIMATED = {
    "gif": Codec("gif", "gif", "pal8", even_sizes=False, alpha_format="pal8"),  # one colour of the palette is clear
    "apng": Codec("apng", "apng", "rgb24", even_sizes=False, alpha_format="rgba"),
    "webp": Codec("webp", "libwebp_anim", "yuv420p", (("quality", "90"),), even_sizes=False, alpha_format="yuva420p"),
}
LOOP_FOREVER = {"gif": (("loop", "0"),), "apng": (("plays", "0"),), "webp": (("loop", "0"),)}
# An animation is rendered in lossless pieces and encoded once at the end (a GIF's palettes and
# an animated WebP's frames do not join by copying packets).
LOSSLESS = Codec("ffv1", "ffv1", "bgr0", even_sizes=False, alpha_format="bgra")
LOSSLESS_SUFFIX, LOSSLESS_MUXER = ".mkv", "matroska"


class EncoderRefused(UserError):
    """FFmpeg would not open `codec` for this file: the container does not take it, or not at
    this size (`reason`: FFmpeg's words)."""

    def __init__(self, codec: Codec, where: str, reason: str) -> None:
        super().__init__(f"FFmpeg cannot write {codec.name} {where} ({reason}); choose another --codec or -o")
        self.codec, self.where, self.reason = codec, where, reason


class VideoFileWriter:
    """Encodes uint8 RGB frames into `path` (video only) with the canvas's time base and the
    frames' own timestamps. `muxer` names FFmpeg's output format where the file name does
    not (an animated PNG under .png); with `alpha` (and a codec that has it) each frame's
    alpha is written too."""

    def __init__(self, path: Path, canvas: Canvas, codec: Codec, crf: int = 18, muxer: str | None = None,
                 muxer_options: tuple[tuple[str, str], ...] = (), alpha: bool = False) -> None:
        self._container = av.open(str(path), "w", format=muxer, container_options=dict(muxer_options))
        options = dict(codec.options)
        if codec.quality_option:
            options[codec.quality_option] = str(crf)
        try:
            self._stream = self._container.add_stream(codec.encoder, rate=canvas.rate, options=options)
        except (av.error.FFmpegError, ValueError) as error:
            self._container.close()
            raise EncoderRefused(codec, "here", ffmpeg_reason(error)) from None
        width, height = written_size(canvas.width, canvas.height, codec)
        self._stream.width, self._stream.height = width, height
        self._alpha = alpha and codec.alpha_format is not None
        self._stream.pix_fmt = codec.alpha_format if self._alpha else codec.pixel_format
        # The source's time base on both sides, so each pts is kept exactly (a variable rate too)
        self._stream.codec_context.time_base = self._stream.time_base = canvas.time_base
        self._time_base = canvas.time_base
        paletted = codec.pixel_format == "pal8"
        self._palettes = Palettes(width, height, canvas.time_base, self._alpha) if paletted else None
        self._last_muxed = -1
        self.frames_written = 0
        try:
            self._container.start_encoding()  # the file exists from now, and a codec that cannot open says so here
        except (av.error.FFmpegError, ValueError) as error:
            self._container.close()
            where = f"at {width}x{height} into {path.suffix or path.name}"
            raise EncoderRefused(codec, where, ffmpeg_reason(error)) from None
        self._to_muxer = self._time_base / self._stream.time_base  # the muxer may keep its own clock

    def write(self, rgb: np.ndarray, pts: int, alpha: np.ndarray | None = None) -> None:
        """One frame at `pts` (in the canvas's time base); `alpha` where it was asked for."""
        height, width = self._stream.height, self._stream.width
        pixels = np.dstack((rgb, alpha)) if self._alpha and alpha is not None else rgb
        if pixels.shape[:2] != (height, width):  # an odd size the codec cannot take
            pixels = pixels[:height, :width]
        layout = "rgba" if pixels.shape[2] == 4 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=layout)
        frame.pts, frame.time_base = self._rising(pts), self._time_base
        for ready in self._palettes.apply(frame) if self._palettes else (frame,):
            self._container.mux(self._stream.encode(ready))
        self.frames_written += 1

    def _rising(self, pts: int) -> int:
        """`pts`, moved on just enough that the muxer's clock rises: a coarse clock (a GIF's
        hundredths of a second) gives two quick frames one time, which a muxer refuses."""
        muxed = round(pts * self._to_muxer)
        if muxed <= self._last_muxed:
            pts = math.ceil((self._last_muxed + 1) / self._to_muxer)
            muxed = round(pts * self._to_muxer)
        self._last_muxed = muxed
        return pts

    def close(self) -> None:
        for ready in self._palettes.finish() if self._palettes else ():
            self._container.mux(self._stream.encode(ready))
        self._container.mux(self._stream.encode(None))  # the encoder's last frames
        self._container.close()


def encode_pieces(pieces: list[Path], out: Path, canvas: Canvas, codec: Codec, muxer: str | None = None,
                  muxer_options: tuple[tuple[str, str], ...] = (), alpha: bool = False) -> None:
    """The frames of `pieces` (lossless, in order) encoded once into `out` at their own times."""
    writer = VideoFileWriter(out, canvas, codec, muxer=muxer, muxer_options=muxer_options, alpha=alpha)
    for piece in pieces:
        with open_written(piece, LOSSLESS_MUXER) as part:
            for frame in part.decode(video=0):
                rgb, kept = split_alpha(frame.to_ndarray(format="rgba" if alpha else "rgb24"), alpha)
                writer.write(rgb, round(frame.pts * frame.time_base / canvas.time_base), kept)
    writer.close()


def written_size(width: int, height: int, codec: Codec) -> tuple[int, int]:
    """The size `codec` writes a width x height picture at: the even part where it needs one."""
    return (width - width % 2, height - height % 2) if codec.even_sizes else (width, height)


class Palettes:
    """RGB(A) frames → 256-colour frames, each with a palette made for it (FFmpeg's palettegen
    per frame feeding paletteuse), as a GIF needs: a fixed palette bands a dream's gradients.
    With `alpha`, one colour is kept clear for the pixels under half opaque."""

    def __init__(self, width: int, height: int, time_base: Fraction, alpha: bool = False) -> None:
        self._graph = av.filter.Graph()
        source = self._graph.add_buffer(width=width, height=height, format="rgba" if alpha else "rgb24",
                                        time_base=time_base)
        split = self._graph.add("split")
        make = self._graph.add("palettegen", "stats_mode=single")
        use = self._graph.add("paletteuse", "new=1:alpha_threshold=128")
        sink = self._graph.add("buffersink")
        source.link_to(split)
        split.link_to(use, 0, 0)
        split.link_to(make, 1, 0)
        make.link_to(use, 0, 1)
        use.link_to(sink)
        self._graph.configure()

    def apply(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        self._graph.push(frame)
        return self._ready()

    def finish(self) -> list[av.VideoFrame]:
        self._graph.push(None)
        return self._ready()

    def _ready(self) -> list[av.VideoFrame]:
        ready = []
        while True:
            try:
                ready.append(self._graph.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return ready
