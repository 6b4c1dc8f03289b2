"""Long video renders that survive a crash and spread over workers.

A render is cut into chunks of frames (one unless `--workers`, `--ray` or `--chunk`); each
chunk is written as finished pieces of `segment_frames` frames, and after every piece its
state is saved next to the output in `OUT.livedream-render/`: the frames done, the pieces,
the carried dream detail and the random state. `--resume` continues from the last piece,
so the finished file is as if the render had never stopped. A chunk after the first starts
`warmup` frames early and throws them away, so the carried detail has settled when its
first kept frame is dreamed. When every chunk is done the pieces are joined by copying
packets (no second encoding), the source's sound is added once, the file is renamed onto
OUT, and the state folder is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from livedream.errors import UserError
from livedream.files import write_atomically
from livedream.media.clips import ClipFrame, ClipInfo, frames
from livedream.media.keeping import Keeping, join
from livedream.media.targets import VIDEO, Target
from livedream.media.writing import VideoFileWriter, encode_pieces

STATE_SUFFIX = ".livedream-render"
STATE_VERSION = 2  # 2: pieces of an animation are lossless, and the output's kind is part of the job
# The video defaults, here once (the CLI's help and `OfflineJob` read them).
DEFAULT_CRF = 18  # x264's "looks like the source"
DEFAULT_PIECE_FRAMES = 48  # a crash loses at most this many frames
DEFAULT_WARMUP = 24  # frames a later chunk dreams before its first kept one
# A resume shows the optical flow the two frames before the checkpoint: the flow of the
# last pair is where the next one starts its search, as it was in the uninterrupted render.
PRIME_FRAMES = 2


@dataclass(frozen=True)
class RenderJob:
    """What is rendered and how: everything a piece depends on, so a resume can check it."""

    source: Path
    output: Path
    target: Target  # how OUT is written (`media.targets`); its pieces follow from it
    crf: int = DEFAULT_CRF
    segment_frames: int = DEFAULT_PIECE_FRAMES  # frames per finished piece
    warmup: int = DEFAULT_WARMUP
    settings: tuple[tuple[str, object], ...] = ()  # the dream's settings, for the resume check
    seed: int = 0

    @property
    def state_folder(self) -> Path:
        return self.output.with_name(self.output.name + STATE_SUFFIX)

    def fingerprint(self) -> dict:
        stat = self.source.stat()
        return {"version": STATE_VERSION, "source": str(self.source.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "kind": self.target.kind, "codec": self.target.piece_codec.name,
                "crf": self.crf,
                "segment_frames": self.segment_frames, "warmup": self.warmup,
                "settings": [[k, repr(v)] for k, v in self.settings], "seed": self.seed}


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of the clip, chunk `index` of `count` (0-based)."""

    index: int
    count: int
    start: int
    stop: int

    @property
    def label(self) -> str:
        return f"chunk-{self.index + 1:03d}-of-{self.count:03d}"


def chunks_of(frame_count: int, count: int) -> list[Chunk]:
    """`count` chunks of nearly equal length covering every frame."""
    count = max(1, min(count, frame_count))
    bounds = [round(i * frame_count / count) for i in range(count + 1)]
    return [Chunk(i, count, bounds[i], bounds[i + 1]) for i in range(count)]


def parse_chunk(text: str) -> tuple[int, int]:
    """`--chunk i/N` (1-based) as (i, N); a one-line UserError otherwise."""
    left, _, right = text.partition("/")
    if not (left.isdigit() and right.isdigit() and 1 <= int(left) <= int(right)):
        raise UserError(f"--chunk {text!r} is not allowed; use i/N with 1 <= i <= N, e.g. --chunk 2/8")
    return int(left), int(right)


class FrameDreamer(Protocol):
    """What a chunk needs from the coherent dreamer: dream the next frame, and save / restore
    the state carried between frames (the detail and the random state)."""

    def dream_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """The dreamed frame (uint8 RGB), carrying the previous frame's detail along the flow."""
        ...

    def prime(self, frame_rgb: np.ndarray) -> None:
        """See `frame_rgb` as a previous frame (for the flow) without dreaming it."""

    def carried_state(self) -> tuple[np.ndarray | None, dict]:
        """The detail carried to the next frame and the random generator's state."""
        ...

    def restore(self, detail: np.ndarray | None, rng_state: dict) -> None:
        """Continue from a saved `carried_state()`."""


@dataclass
class ChunkState:
    """The saved progress of one chunk: `done` = the next frame to dream (absolute index)."""

    job: dict
    done: int
    pieces: list[str]
    rng: dict | None = None

    @classmethod
    def load(cls, folder: Path) -> "ChunkState | None":
        path = folder / "state.json"
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as error:
            raise UserError(f"{path} is damaged ({error}); delete {folder.parent} to render from the start") from None

    def save(self, folder: Path) -> None:
        write_atomically(folder / "state.json", json.dumps(asdict(self)).encode())


def saved_seed(output: Path) -> int:
    """The seed an unfinished render of `output` was started with (a resume keeps it)."""
    folder = output.with_name(output.name + STATE_SUFFIX)
    for chunk_folder in sorted(folder.glob("chunk-*")):
        state = ChunkState.load(chunk_folder)
        if state is not None:
            return int(state.job["seed"])
    raise UserError(f"nothing to resume: no saved render of {output} (looked for {folder}); run without --resume")


def prepare(job: RenderJob, resume: bool, chunk_count: int, one_chunk: bool = False) -> None:
    """Refuses to start over an unfinished render unless resuming (nothing is lost), and to
    resume it cut into another number of chunks. A `--chunk i/N` run (`one_chunk`) always
    continues its own chunk: a farm manager simply runs it again."""
    folder = job.state_folder
    if folder.exists() and not (resume or one_chunk):
        raise UserError(f"an unfinished render of {job.output} is in {folder}; add --resume to continue it, "
                        f"or delete that folder to start again")
    if resume and not folder.exists():
        raise UserError(f"nothing to resume: {folder} does not exist; run without --resume")
    counts = {int(path.name.rsplit("-", 1)[1]) for path in folder.glob("chunk-*-of-*")} if folder.exists() else set()
    if counts - {chunk_count}:
        saved = max(counts - {chunk_count})
        raise UserError(f"the unfinished render in {folder} is cut into {saved} chunks, not {chunk_count}; "
                        f"give --workers {saved} (or --chunk i/{saved}) to continue it")


def render_chunk(job: RenderJob, info: ClipInfo, chunk: Chunk, dreamer: FrameDreamer,
                 on_frame: Callable[[int], None] = lambda index: None,
                 fresh_dreamer: Callable[[], FrameDreamer] | None = None) -> None:
    """Dream `chunk` into finished pieces, saving the state after each; continues saved progress.

    A chunk with a successor dissolves, over its last `warmup` frames, into the dream the next
    chunk's warm-up makes of them (`fresh_dreamer`, started where that warm-up starts: same
    seed, same frames, the same dream). Its last frame is then that dream, which the next chunk
    carries on from, so the seam does not jump, and the chunks still run apart."""
    folder = job.state_folder / chunk.label
    folder.mkdir(parents=True, exist_ok=True)
    state = ChunkState.load(folder)
    fingerprint = job.fingerprint()
    if state is not None and state.job != fingerprint:
        raise UserError(f"the saved render in {job.state_folder} was made with other settings or another "
                        f"source; delete that folder to start again, or give the same options")
    if state is None:
        state = ChunkState(fingerprint, chunk.start, [])
        begin = max(0, chunk.start - (job.warmup if chunk.index else 0))
    else:
        carry = folder / "carry.npy"
        dreamer.restore(np.load(carry) if carry.exists() else None, state.rng or {})
        begin = max(0, state.done - PRIME_FRAMES)  # they prime the flow; their dream is restored, not redone
    if state.done >= chunk.stop:
        return
    resumed = bool(state.pieces)
    dissolve = chunk.index + 1 < chunk.count and job.warmup > 0 and fresh_dreamer is not None
    lead_start = max(0, chunk.stop - job.warmup)  # where the next chunk's warm-up starts
    lead = fresh_dreamer() if dissolve else None  # type: ignore[misc]
    begin = min(begin, lead_start) if dissolve else begin
    writer: VideoFileWriter | None = None
    piece: Path | None = None
    for frame in frames(job.source, info, start=begin):
        if frame.index >= chunk.stop:
            break
        lead_frame = lead.dream_frame(frame.rgb) if lead is not None and frame.index >= lead_start else None
        if frame.index < state.done:
            if not resumed:
                dreamer.dream_frame(frame.rgb)  # warm-up: the detail settles, the frame is thrown away
            elif frame.index >= state.done - PRIME_FRAMES:
                dreamer.prime(frame.rgb)  # the frames before the checkpoint
            continue
        picture = dreamer.dream_frame(frame.rgb)
        if lead_frame is not None:
            picture = cross_dissolve(picture, lead_frame, (frame.index - (chunk.stop - job.warmup) + 1) / job.warmup)
        if writer is None:
            piece = folder / f"piece-{frame.index:07d}{job.target.piece_suffix}"
            writer = VideoFileWriter(piece.with_name("incomplete-" + piece.name), info.canvas(),
                                     job.target.piece_codec, job.crf, job.target.piece_muxer, alpha=job.target.alpha)
        writer.write(picture, frame.pts, frame.alpha)
        on_frame(frame.index)
        if writer.frames_written >= job.segment_frames or frame.index + 1 >= chunk.stop:
            _finish_piece(writer, piece, folder, state, frame.index + 1, dreamer)  # type: ignore[arg-type]
            writer = None
    if writer is not None:  # the clip ended before the chunk's stop (a container that over-counted)
        _finish_piece(writer, piece, folder, state, chunk.stop, dreamer)  # type: ignore[arg-type]
    if state.done < chunk.stop:
        state.done = chunk.stop
        state.save(folder)


def cross_dissolve(own: np.ndarray, next_chunks: np.ndarray, share: float) -> np.ndarray:
    """`own` faded into `next_chunks` by `share` (0..1) of the way."""
    share = min(max(share, 0.0), 1.0)
    blended = own.astype(np.float32) * (1.0 - share) + next_chunks.astype(np.float32) * share
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _finish_piece(writer: VideoFileWriter, piece: Path, folder: Path, state: ChunkState, done: int,
                  dreamer: FrameDreamer) -> None:
    """Close the piece under its final name, then save the carry and the progress (in that order:
    a crash between them only redoes this piece)."""
    writer.close()
    piece.with_name("incomplete-" + piece.name).replace(piece)
    detail, rng = dreamer.carried_state()
    if detail is not None:
        _save_array(folder / "carry.npy", detail)
    state.pieces.append(piece.name)
    state.done, state.rng = done, rng
    state.save(folder)


def _save_array(path: Path, array: np.ndarray) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".carry.", suffix=".npy")
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, array)
    os.replace(temp, path)


def finished(job: RenderJob, chunks: list[Chunk]) -> bool:
    for chunk in chunks:
        state = ChunkState.load(job.state_folder / chunk.label)
        if state is None or state.done < chunk.stop:
            return False
    return True


def stitch(job: RenderJob, chunks: list[Chunk], info: ClipInfo, keeping: Keeping) -> int:
    """Join every chunk's pieces and what `keeping` carries of the source into OUT (an
    animation: encode the lossless pieces as it), atomically; remove the state. Returns the
    frames written."""
    pieces = [job.state_folder / chunk.label / name for chunk in chunks
              for name in ChunkState.load(job.state_folder / chunk.label).pieces]  # type: ignore[union-attr]
    _write_pieces(job, pieces, info, keeping)
    shutil.rmtree(job.state_folder)
    return sum(chunk.stop - chunk.start for chunk in chunks)


def write_one_frame(job: RenderJob, info: ClipInfo, keeping: Keeping, picture: ClipFrame) -> None:
    """One dreamed picture as a one-frame video at OUT (a photo, or a clip of one frame, into
    a video's container), with what `keeping` carries of the source: written and joined as a
    render's one piece would be, atomically, with no state to resume (one frame is done at once)."""
    with tempfile.TemporaryDirectory(prefix="livedream-one-frame-") as folder:
        piece = Path(folder) / ("piece" + job.target.piece_suffix)
        writer = VideoFileWriter(piece, info.canvas(), job.target.piece_codec, job.crf, job.target.piece_muxer,
                                 alpha=job.target.alpha)
        writer.write(picture.rgb, picture.pts, picture.alpha)
        writer.close()
        _write_pieces(job, [piece], info, keeping)


def _write_pieces(job: RenderJob, pieces: list[Path], info: ClipInfo, keeping: Keeping) -> None:
    """`pieces` as OUT: joined with what `keeping` carries (a video), or encoded once (an
    animation), into a temp file beside OUT renamed onto it at the end."""
    fd, temp = tempfile.mkstemp(dir=job.output.parent, prefix=f".{job.output.stem}.", suffix=f".partial{job.output.suffix}")
    os.close(fd)
    try:
        if job.target.kind == VIDEO:
            join(pieces, job.source, info, keeping, Path(temp), job.target)
        else:
            encode_pieces(pieces, Path(temp), info.canvas(), job.target.codec, job.target.muxer,  # type: ignore[arg-type]
                          job.target.muxer_options, job.target.alpha)
        os.replace(temp, job.output)
    finally:
        Path(temp).unlink(missing_ok=True)


class Throughput:
    """Frames done, frames per second and time left, for the progress line."""

    def __init__(self, total: int, already: int = 0) -> None:
        self.total, self.done, self._started, self._already = total, already, time.perf_counter(), already

    def frame(self) -> None:
        self.done += 1

    @property
    def fps(self) -> float:
        elapsed = time.perf_counter() - self._started
        return (self.done - self._already) / elapsed if elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        return (self.total - self.done) / self.fps if self.fps > 0 else None
