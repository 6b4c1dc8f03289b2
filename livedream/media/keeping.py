"""Nothing of the source is lost but the picture it replaces: every sound track, subtitles,
attachments, chapters and the metadata go into the dreamed file, or are named in one line
with FFmpeg's reason before any work.

`plan` decides, per stream, the first way the output's container takes (copy; else sound
encoded as AAC, Opus, FLAC or PCM; text subtitles in the container's own text format), each
tried by a real join of a tiny piece in a scratch folder, then reads that scratch file back
to see which chapters and tags the container kept. `join` does the same for the real
pieces: their packets copied (never encoded again), the kept streams interleaved by time.
The picture is written upright, so no rotation is carried: a player shows it as it is.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from livedream.errors import UserError
from livedream.media.carrying import (
    COPY,
    SOUND_ENCODERS,
    TEXT_SUBTITLE_ENCODERS,
    Carrier,
    Copied,
    SoundEncoded,
    SubtitlesConverted,
    Timed,
    carried_tags,
    label_like,
    restamped,
)
from livedream.media.clips import FFMPEG, Canvas, ClipInfo, ffmpeg_reason, open_input, open_written
from livedream.media.targets import PICTURE, VIDEO, Target
from livedream.media.writing import VideoFileWriter

DISCARDED_BY_DEMUXER = 48  # AVDISCARD_ALL: a track the demuxer keeps out itself (an MP4's chapter titles)
TRY_PACKETS = 3  # packets of each stream the scratch join carries (an empty track is left out of an MP4)
TRY_CANVAS = 64  # pixels a side of the scratch piece's picture
WORDS = {"audio": "sound track", "subtitle": "subtitle track", "data": "data track", "attachment": "attachment",
         "video": "second picture"}


@dataclass(frozen=True)
class Way:
    """How one source stream goes into the output: COPY or an encoder's name."""

    index: int
    type: str  # FFmpeg's stream type: audio, subtitle, data, attachment, video
    how: str


@dataclass(frozen=True)
class Keeping:
    """What of the source goes into the dreamed file beside the picture, and what cannot."""

    ways: tuple[Way, ...] = ()
    chapters: bool = False  # the source's chapters go in
    tags: bool = True  # the source's and its picture's tags go in
    lost: tuple[str, ...] = ()  # one phrase each, with the reason
    kept_chapters: int = 0
    kept_tags: tuple[str, ...] = ()

    def kept_line(self) -> str | None:
        parts = [_counted(self.ways, kind) for kind in WORDS]
        encoded = [way for way in self.ways if way.how != COPY]
        parts += [f"{self.kept_chapters} chapter{'s' * (self.kept_chapters != 1)}"] if self.kept_chapters else []
        parts += [f"tags {listed(self.kept_tags)}"] if self.kept_tags else []
        parts = [part for part in parts if part]
        if not parts:
            return None
        how = f" ({'; '.join(f'track {w.index} as {w.how}' for w in encoded)})" if encoded else ""
        return f"keeps {', '.join(parts)}{how}"

    def lost_line(self) -> str | None:
        return f"not kept: {'; '.join(self.lost)}" if self.lost else None


def listed(names, most: int = 6) -> str:
    """Names for a line: the first `most`, then how many more (an MXF file brings a dozen tags)."""
    names = list(names)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _counted(ways: tuple[Way, ...], kind: str) -> str:
    count = sum(1 for way in ways if way.type == kind)
    return f"{count} {WORDS[kind]}{'s' * (count != 1)}" if count else ""


def plan(source: Path, clip: ClipInfo, target: Target) -> Keeping:
    """What `target` keeps of `source` beside the dreamed picture, each way tried."""
    if clip.reader != FFMPEG:  # OpenCV's animations hold their pictures only
        return Keeping(lost=_transparency_lost(clip, target))
    with open_input(source) as container:
        streams = [s for s in container.streams if s.index != clip.stream_index and s.discard != DISCARDED_BY_DEMUXER
                   and not _carried_as_tag(s, container.streams[clip.stream_index])]
        chapters = container.chapters()
        tags = carried_tags(container.metadata)
        if target.kind != VIDEO:
            return Keeping(lost=_transparency_lost(clip, target) + _nowhere(streams, chapters, tags, target))
        with tempfile.TemporaryDirectory(prefix="livedream-keep-") as folder:
            piece = _scratch_piece(Path(folder), clip, target)
            ways, lost = [], list(_transparency_lost(clip, target))
            for stream in streams:
                way, why = _first_way(source, clip, target, piece, stream)
                if way is None:
                    lost.append(f"{_name(stream)}: {why}")
                else:
                    ways.append(way)
            scratch = Path(folder) / ("all" + target.path.suffix)
            keeping = _whole(piece, source, clip, Keeping(tuple(ways), bool(chapters)), scratch, target, lost)
            return _read_back(scratch, keeping, streams, chapters, tags, lost, target)


def _transparency_lost(clip: ClipInfo, target: Target) -> tuple[str, ...]:
    if not clip.alpha or target.alpha:
        return ()
    if target.kind == PICTURE:
        return (f"the transparency ({target.path.suffix or target.path.name} has none; .png, .webp, .tiff or .tga "
                f"keep it)",)
    return (f"the transparency ({target.codec.name} has none; .mov with --codec prores4444, .gif, .webp "  # type: ignore[union-attr]
            f"or .png keep it)",)


def _carried_as_tag(stream: av.stream.Stream, picture: av.stream.Stream) -> bool:
    """A timecode track: the picture's `timecode` tag carries it, and a QuickTime muxer
    writes the track anew from that tag."""
    return stream.type == "data" and "timecode" in stream.metadata and "timecode" in picture.metadata


def _nowhere(streams: list[av.stream.Stream], chapters: list, tags: dict, target: Target) -> tuple[str, ...]:
    """Everything but the picture, when the output holds pictures only."""
    what = [_name(stream) for stream in streams]
    what += [f"{len(chapters)} chapters"] if chapters else []
    what += [f"tags {listed(tags)}"] if tags else []
    if not what:
        return ()
    return (f"{', '.join(what)} ({target.path.suffix or target.path.name} holds pictures only; "
            f"write a video such as .mkv or .mp4 to keep them)",)


def _name(stream: av.stream.Stream) -> str:
    codec = stream.codec_context.name if stream.codec_context is not None else stream.type
    language = stream.metadata.get("language")
    details = ", ".join(part for part in (codec, language if language != "und" else None) if part)
    return f"{WORDS.get(stream.type, stream.type)} {stream.index} ({details})"


def _scratch_piece(folder: Path, clip: ClipInfo, target: Target) -> Path:
    """Two black frames encoded as the real pieces are, at the clip's clock."""
    piece = folder / ("piece" + target.piece_suffix)
    writer = VideoFileWriter(piece, Canvas(TRY_CANVAS, TRY_CANVAS, clip.rate, clip.time_base), target.piece_codec,
                             muxer=target.piece_muxer)
    black = np.zeros((TRY_CANVAS, TRY_CANVAS, 3), np.uint8)
    for index in range(2):
        writer.write(black, index * clip.frame_ticks)
    writer.close()
    return piece


def _candidates(stream: av.stream.Stream) -> tuple[str, ...]:
    if stream.type == "audio":
        return (COPY, *SOUND_ENCODERS)
    if stream.type == "subtitle" and _is_text(stream):
        return (COPY, *TEXT_SUBTITLE_ENCODERS)
    return (COPY,)


def _is_text(stream: av.stream.Stream) -> bool:
    codec = stream.codec_context.codec if stream.codec_context is not None else None
    return bool(codec is not None and codec.text_sub)


def _first_way(source: Path, clip: ClipInfo, target: Target, piece: Path,
               stream: av.stream.Stream) -> tuple[Way | None, str]:
    """The first way the container takes `stream`, or None and FFmpeg's reason for the copy."""
    reasons = []
    for how in _candidates(stream):
        way = Way(stream.index, stream.type, how)
        scratch = piece.with_name(f"try-{stream.index}-{how}{target.path.suffix}")
        try:
            join([piece], source, clip, Keeping((way,)), scratch, target, packets_per_stream=TRY_PACKETS)
            return way, ""
        except (av.error.FFmpegError, ValueError, OSError) as error:
            reasons.append(ffmpeg_reason(error))
    return None, reasons[0]


def _whole(piece: Path, source: Path, clip: ClipInfo, keeping: Keeping, scratch: Path, target: Target,
           lost: list[str]) -> Keeping:
    """`keeping` as the scratch join takes it whole; where it does not, without the chapters,
    then without the tags (each taken alone passed), the part left out named in `lost`."""
    reason = ""
    for chapters, tags in ((keeping.chapters, True), (False, True), (keeping.chapters, False), (False, False)):
        tried = Keeping(keeping.ways, chapters, tags)
        try:
            join([piece], source, clip, tried, scratch, target, packets_per_stream=TRY_PACKETS)
        except (av.error.FFmpegError, ValueError) as error:
            reason = reason or ffmpeg_reason(error)
            continue
        left_out = ["the chapters"] * (keeping.chapters and not chapters) + ["the tags"] * (not tags)
        if left_out:
            lost.append(f"{' and '.join(left_out)} ({reason})")
        return tried
    raise UserError(f"FFmpeg cannot write {target.path.name} with the source's streams ({reason}); "
                    f"write .mkv, which takes nearly everything")


def _read_back(scratch: Path, keeping: Keeping, streams: list[av.stream.Stream], chapters: list, tags: dict,
               lost: list[str], target: Target) -> Keeping:
    """`keeping` with the chapters and tags the scratch join kept, and those it did not."""
    where = target.path.suffix or target.path.name
    # The join adds the picture, then the carried streams, then the attachments.
    expected = [w for w in keeping.ways if w.type != "attachment"] + [w for w in keeping.ways if w.type == "attachment"]
    with open_written(scratch, target.muxer) as written:  # type: ignore[arg-type]
        kept_chapters = len(written.chapters())
        written_tags = {key.lower() for key in carried_tags(written.metadata)}
        written_streams = list(written.streams)[1:]
        for position, way in enumerate(expected):
            source_stream = next(s for s in streams if s.index == way.index)
            if position >= len(written_streams):
                lost.append(f"{_name(source_stream)}: {where} leaves it out")
                continue
            own = {key: value for key, value in carried_tags(source_stream.metadata).items() if tags.get(key) != value}
            dropped = _dropped(own, written_streams[position].metadata)  # a copy of the container's tag is kept there
            if dropped:
                lost.append(f"{listed(dropped)} of {_name(source_stream)} ({where} has no place for them)")
    if chapters and keeping.chapters and kept_chapters < len(chapters):
        lost.append(f"{len(chapters) - kept_chapters} of {len(chapters)} chapters ({where} has no chapters)")
    kept_tags = tuple(key for key in tags if key.lower() in written_tags)
    dropped_tags = [key for key in tags if key.lower() not in written_tags] if keeping.tags else []
    if dropped_tags:
        lost.append(f"tags {listed(dropped_tags)} ({where} has no place for them)")
    return Keeping(keeping.ways, keeping.chapters, keeping.tags, tuple(lost), kept_chapters, kept_tags)


def _dropped(wanted: dict[str, str], written: dict[str, str]) -> list[str]:
    have = {key.lower() for key in carried_tags(written)}
    return [key for key in wanted if key.lower() not in have]


def join(pieces: list[Path], source: Path, clip: ClipInfo, keeping: Keeping, out: Path, target: Target,
         packets_per_stream: int | None = None) -> None:
    """Copy the packets of `pieces` (video only, one codec and size) into `out`, with the
    streams, chapters and tags `keeping` carries from `source`, interleaved by time (a scratch
    join takes only the first `packets_per_stream` of each)."""
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(av.open(str(out), "w", format=target.muxer,
                                             container_options=dict(target.muxer_options)))
        first = stack.enter_context(open_written(pieces[0], target.piece_muxer))  # type: ignore[arg-type]
        video_out = output.add_stream_from_template(first.streams.video[0])
        video_out.codec_context.framerate = clip.rate  # a QuickTime timecode track counts frames at it
        setup = stack.enter_context(open_input(source))
        if keeping.tags:
            label_like(video_out, setup.streams[clip.stream_index])
        carriers = [_carrier(output, setup.streams[way.index], order, way.how)
                    for order, way in enumerate(keeping.ways, start=1) if way.type != "attachment"]
        for way in keeping.ways:
            if way.type == "attachment":
                attached = setup.streams[way.index]
                output.add_attachment(attached.name, attached.mimetype, attached.data)
        if keeping.tags:
            output.metadata.update(carried_tags(setup.metadata))
        if keeping.chapters:
            output.set_chapters(setup.chapters())
        timed = [_pieces_packets(pieces, target.piece_muxer, video_out),  # type: ignore[arg-type]
                 *(_own_packets(carrier, source) for carrier in carriers)]
        output.start_encoding()
        for packet in interleaved(timed, packets_per_stream):
            output.mux(packet)


def interleaved(streams: list[Iterator[Timed]], per_stream: int | None = None) -> Iterator[av.Packet]:
    """The packets of `streams` in order of time (at one time, in the order of the list); with
    `per_stream`, only that many of each, and a stream is not read further once it has given them."""
    heap: list[tuple[float, int, int, av.Packet]] = []
    taken = [0] * len(streams)

    def refill(order: int) -> None:
        if per_stream is not None and taken[order] >= per_stream:
            return
        for when, _, packet in itertools.islice(streams[order], 1):
            heapq.heappush(heap, (when, order, next(tiebreak), packet))

    tiebreak = itertools.count()
    for order in range(len(streams)):
        refill(order)
    while heap:
        _, order, _, packet = heapq.heappop(heap)
        taken[order] += 1
        yield packet
        refill(order)


def _carrier(output: av.container.OutputContainer, stream: av.stream.Stream, order: int, how: str) -> Carrier:
    if how == COPY:
        return Copied(output, stream, order)
    if stream.type == "audio":
        return SoundEncoded(output, stream, order, how)
    return SubtitlesConverted(output, stream, order, how)


def _own_packets(carrier: Carrier, source: Path) -> Iterator[Timed]:
    """The carrier's packets from its own opening of `source` (one demuxer per stream: a
    shared one would hand each stream's packets to whichever asked first)."""
    with open_input(source) as own:
        yield from carrier.packets(own)


def _pieces_packets(pieces: list[Path], muxer: str, stream: av.stream.Stream) -> Iterator[Timed]:
    for piece in pieces:
        with open_written(piece, muxer) as part:
            yield from restamped(part.demux(part.streams.video[0]), stream, 0)

