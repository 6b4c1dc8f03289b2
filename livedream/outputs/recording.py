"""The recording output: the dreamed frames as video files in `[outputs] record_folder`.

It writes in segments: each is written under an `incomplete-…` name and renamed when it
closes, so a crash never leaves a broken file under a final name and loses at most the open
segment. Its names come from the clock, never from a control message. It is an `Output`:
frames arrive on its worker's thread, start/stop come from the loop's, so a lock orders them.
"""

from __future__ import annotations

import datetime
import logging
import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.files import DiskFloor
from livedream.media.clips import Canvas
from livedream.media.writing import CODECS, VideoFileWriter

log = logging.getLogger(__name__)

INCOMPLETE_PREFIX = "incomplete-"


class Recorder:
    """Start/stop recording of RGB frames to `folder`/<name>-001.mp4, -002.mp4, …

    A recording is cut into segments of `segment_seconds` of video, each a finished,
    playable file: the open segment is written under an `incomplete-` name and renamed when
    it closes, so a crash (even `kill -9`) loses at most the open segment. Before each
    segment the disk floor is checked; below it the recording stops with a HUD warning.
    With `keep_mb` > 0 the oldest finished recordings are deleted beyond that many MB.
    """

    def __init__(self, folder: Path, fps: int = 30, codec: str = "h264", segment_seconds: float = 60.0,
                 disk: DiskFloor | None = None, keep_mb: int = 0, crf: int = 20) -> None:
        self.folder = Path(folder)
        self.fps = fps
        self.codec = CODECS[codec]
        self.crf = crf
        self.suffix = ".mov" if codec == "prores" else ".mp4"
        self.segment_frames = max(1, round(segment_seconds * fps))
        self.disk = disk or DiskFloor(0)
        self.keep_mb = keep_mb
        self._writer: VideoFileWriter | None = None
        self._base: str | None = None  # the recording's name without extension, while recording
        self._segment = 0
        self._partial: Path | None = None
        self._final: Path | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the file
        self._resized: np.ndarray | None = None
        self.frames_written = 0  # in this recording, over all its segments
        self._segment_frames_written = 0
        self.saved: list[Path] = []  # finished segments of this recording
        self.warning: str | None = None  # why the last recording stopped by itself
        self._lock = threading.Lock()

    name = "recording"

    @property
    def active(self) -> bool:
        return self.recording

    def send(self, frame_rgb: np.ndarray) -> None:
        self.write(frame_rgb)

    def close(self) -> None:
        self.stop()

    @property
    def status(self) -> str:
        if self.recording:
            return f"REC {self.frames_written} frames, segment {len(self.saved) + 1}"
        return self.warning or ""

    def toggle(self) -> Path | None:
        """Key r: start (returns the final path) or stop (returns the last saved segment)."""
        return self.stop() if self.recording else self.start()

    @property
    def recording(self) -> bool:
        return self._base is not None

    def path_for(self, name: str) -> Path:
        """`folder/name`, refused (UserError) when it would land anywhere else."""
        folder = self.folder.resolve()
        path = (folder / name).resolve()
        if path.parent != folder or not name or name.startswith("."):
            raise UserError(f"recording name {name!r} is not allowed; recordings go only into {folder}")
        return path

    def start(self, name: str | None = None) -> Path:
        """Begin a recording; the first segment opens with the first frame. Returns its final path."""
        with self._lock:
            return self._start(name)

    def write(self, frame_rgb: np.ndarray) -> None:
        with self._lock:
            self._write(frame_rgb)

    def stop(self) -> Path | None:
        """Finish the open segment; returns the last saved segment (None when nothing was recorded)."""
        with self._lock:
            return self._stop()

    def _start(self, name: str | None) -> Path:
        if self.recording:
            return self._final  # type: ignore[return-value]
        name = name or datetime.datetime.now().strftime(f"livedream-%Y%m%d-%H%M%S{self.suffix}")
        first = self.path_for(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._base, self._segment = first.stem, 0
        self.frames_written, self.saved, self.warning = 0, [], None
        self._next_segment_names()
        log.info("recording to %s (segments of %d frames)", self._final, self.segment_frames)
        return self._final  # type: ignore[return-value]

    def _write(self, frame_rgb: np.ndarray) -> None:
        if not self.recording:
            return
        if self._writer is None and not self._open(frame_rgb.shape[1], frame_rgb.shape[0]):
            return
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self._size:  # the dream size changed mid-recording
            frame_rgb = cv2.resize(frame_rgb, self._size, dst=self._resized, interpolation=cv2.INTER_AREA)
        self._writer.write(frame_rgb, self._segment_frames_written)  # type: ignore[union-attr]  # in 1/fps
        self.frames_written += 1
        self._segment_frames_written += 1
        if self._segment_frames_written >= self.segment_frames:
            self._close_segment()
            self._next_segment_names()

    def _stop(self) -> Path | None:
        if not self.recording:
            return None
        self._close_segment()
        self._base = self._final = self._partial = None
        if not self.saved:
            log.warning("recording stopped with no frames; nothing saved")
            return None
        log.info("recording saved: %d segment(s), %d frames, last %s", len(self.saved), self.frames_written,
                 self.saved[-1])
        return self.saved[-1]

    def _next_segment_names(self) -> None:
        self._segment += 1
        self._final = self.folder.resolve() / f"{self._base}-{self._segment:03d}{self.suffix}"
        self._partial = self._final.with_name(INCOMPLETE_PREFIX + self._final.name)

    def _open(self, width: int, height: int) -> bool:
        problem = self.disk.problem(self.folder)
        if problem is not None:
            self._stop_by_itself(f"recording stopped: {problem}")
            return False
        width, height = width - width % 2, height - height % 2  # most codecs need even sizes
        canvas = Canvas(width, height, Fraction(self.fps), Fraction(1, self.fps))
        try:
            writer = VideoFileWriter(self._partial, canvas, self.codec, self.crf)  # type: ignore[arg-type]
        except (UserError, OSError) as error:
            self._stop_by_itself(f"recording off: {error}; try another [outputs] record_codec")
            return False
        self._writer, self._size = writer, (width, height)
        self._resized = np.empty((height, width, 3), np.uint8)
        self._segment_frames_written = 0
        return True

    def _close_segment(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if self._segment_frames_written and self._partial is not None and self._partial.exists():
            self._partial.replace(self._final)  # type: ignore[arg-type]
            self.saved.append(self._final)  # type: ignore[arg-type]
            self._rotate()
        self._segment_frames_written = 0

    def _stop_by_itself(self, why: str) -> None:
        log.warning("%s", why)
        self.warning = why
        self._stop()

    def _rotate(self) -> None:
        """Delete the oldest finished recordings while all of them take more than `keep_mb`."""
        if self.keep_mb <= 0:
            return
        finished = sorted((p for p in self.folder.glob(f"*{self.suffix}") if not p.name.startswith(INCOMPLETE_PREFIX)),
                          key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in finished)
        for oldest in finished[:-1]:  # never the segment just finished
            if total <= self.keep_mb * 2**20:
                break
            total -= oldest.stat().st_size
            oldest.unlink()
            log.info("recording rotated out (keep %d MB): %s", self.keep_mb, oldest.name)
