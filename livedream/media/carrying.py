"""How one stream of the source is carried into the dreamed file: its packets copied, its
sound encoded anew, or its subtitles turned into the text the container takes.

A `Carrier` adds its output stream (with the source stream's language, title and
disposition) when it is made, and later yields that stream's packets keyed by time, for the
join to interleave with the dreamed picture's. The same carriers are made in the scratch
file that tries a plan before any work (`keeping.plan`) and in the real join, so what was
tried is what is done.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import av
from av.subtitles.subtitle import SubtitleSet

COPY = "copy"
SOUND_ENCODERS = ("aac", "libopus", "flac", "pcm_s16le")  # the first a container takes, for sound it cannot copy
TEXT_SUBTITLE_ENCODERS = ("mov_text", "subrip", "ass", "webvtt")  # MP4/MOV's text, then Matroska's and WebM's
# Tags a muxer writes about itself; carried over they would only be stale.
MUXER_TAGS = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands", "duration",
                        "number_of_frames", "number_of_bytes", "_statistics_tags", "_statistics_writing_app",
                        "_statistics_writing_date_utc", "bps", "vendor_id", "rotate", "handler_name", "software"})

# FFmpeg's default layout for a channel count (av_channel_layout_default), for sound that states none.
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

Timed = tuple[float, int, av.Packet]  # (seconds, the stream's place in the merge, packet)


class Carrier(Protocol):
    """One source stream's way into the output."""

    def packets(self, source: av.container.InputContainer) -> Iterator[Timed]:
        """The output stream's packets, keyed by time (`source` is opened afresh for the join)."""
        ...


def carried_tags(metadata: dict[str, str]) -> dict[str, str]:
    """A stream's or a container's own tags, without those its muxer wrote about itself (and
    without the language "und", which says no language). FFmpeg reads a QuickTime track's
    name as `name` but writes it from `title`, Matroska's word too, so `name` goes as `title`."""
    tags = {}
    for key, value in metadata.items():
        if key.lower() in MUXER_TAGS or key.upper().startswith(("DURATION", "ENCODER", "NUMBER_OF_")):
            continue
        if key.lower() == "language" and value == "und":
            continue
        tags["title" if key == "name" else key] = value
    return tags


def label_like(output_stream: av.stream.Stream, source_stream: av.stream.Stream) -> None:
    """The source stream's language, title, handler and disposition on `output_stream`."""
    output_stream.metadata.update(carried_tags(source_stream.metadata))
    output_stream.disposition = source_stream.disposition


def restamped(packets: Iterator[av.Packet], stream: av.stream.Stream, order: int) -> Iterator[Timed]:
    """`packets` moved onto `stream`, keyed by time; a flush packet (empty) carries nothing."""
    for packet in packets:
        if packet.size == 0:
            continue
        when = packet.dts if packet.dts is not None else packet.pts
        packet.stream = stream
        yield float((when or 0) * packet.time_base), order, packet


class Copied:
    """The stream's packets, as they are."""

    def __init__(self, output: av.container.OutputContainer, source_stream: av.stream.Stream, order: int) -> None:
        self._out = output.add_stream_from_template(source_stream)
        label_like(self._out, source_stream)
        self._index, self._order = source_stream.index, order

    def packets(self, source: av.container.InputContainer) -> Iterator[Timed]:
        stream = source.streams[self._index]
        return restamped(source.demux(stream), self._out, self._order)


class SoundEncoded:
    """The stream's sound decoded and encoded with `encoder`, at a rate and sample format it takes."""

    def __init__(self, output: av.container.OutputContainer, source_stream: av.audio.stream.AudioStream,
                 order: int, encoder: str) -> None:
        context = source_stream.codec_context
        codec = av.Codec(encoder, "w")
        rates = codec.audio_rates or ()
        rate = context.sample_rate if not rates or context.sample_rate in rates else 48000
        self._out = output.add_stream(encoder, rate=rate)
        self._out.layout = _layout_of(context)
        self._out.format = codec.audio_formats[0].name if codec.audio_formats else "fltp"
        label_like(self._out, source_stream)
        self._out.codec_context.open()  # before the first packet: the muxer's header needs it
        self._index, self._order = source_stream.index, order
        self._resampler = av.AudioResampler(format=self._out.format, layout=self._out.layout, rate=rate)

    def packets(self, source: av.container.InputContainer) -> Iterator[Timed]:
        stream = source.streams[self._index]
        for frame in _sound_frames(source, stream):
            when = float(frame.time or 0.0)
            for resampled in self._resampler.resample(frame):
                resampled.pts = None  # the encoder numbers its own samples
                for packet in self._out.encode(resampled):
                    yield when, self._order, packet
        for resampled in self._resampler.resample(None):
            for packet in self._out.encode(resampled):
                yield float("inf"), self._order, packet
        for packet in self._out.encode(None):  # the encoder's last samples, after everything else
            yield float("inf"), self._order, packet


def _layout_of(context: av.audio.codeccontext.AudioCodecContext) -> str:
    """The source's channel layout, or the usual one for its channel count when it states none."""
    layout = context.layout
    if layout.name and not layout.name.endswith("channels"):  # "2 channels": a count in no stated order
        return layout.name
    return DEFAULT_LAYOUTS.get(layout.nb_channels or context.channels, "stereo")


def _sound_frames(source: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[av.AudioFrame]:
    for packet in source.demux(stream):
        try:
            yield from packet.decode()
        except av.error.FFmpegError:  # a damaged packet: a moment of silence, as players make it
            continue


class SubtitlesConverted:
    """Text subtitles decoded and written with `encoder` (SubRip in Matroska to MP4's mov_text,
    and back), each at its source packet's time."""

    def __init__(self, output: av.container.OutputContainer, source_stream: av.stream.Stream, order: int,
                 encoder: str) -> None:
        decoder = source_stream.codec_context
        if not decoder.is_open:
            decoder.open()  # its header (the styles) is what the encoder starts from
        self._out = output.add_stream(encoder)
        self._out.codec_context.subtitle_header = decoder.subtitle_header
        self._out.codec_context.time_base = source_stream.time_base
        self._out.codec_context.open()
        label_like(self._out, source_stream)
        self._index, self._order = source_stream.index, order

    def packets(self, source: av.container.InputContainer) -> Iterator[Timed]:
        stream = source.streams[self._index]
        for packet in source.demux(stream):
            if packet.size == 0:
                continue
            subtitles = stream.codec_context.decode2(packet)
            if not isinstance(subtitles, SubtitleSet) or not len(subtitles.rects):
                continue
            converted = self._out.codec_context.encode_subtitle(subtitles)
            converted.pts, converted.dts, converted.duration = packet.pts, packet.dts, packet.duration
            converted.time_base = packet.time_base
            yield from restamped(iter([converted]), self._out, self._order)
