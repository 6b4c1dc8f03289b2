"""Photos and video files in and out, for the offline `livedream dream`.

Pixels leave here as uint8 RGB (H, W, 3) and, for the network, as NCHW float32 in [-1, 1].
Outputs are written to a temp file in the destination folder and renamed at the end, so a
failure or Ctrl-C never leaves half a file under the requested name. Every user mistake
(missing input, unknown extension, no such folder, codec missing, image too small) is a
one-line `UserError` naming the fix.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.files import file_problem, native_stderr_silenced, write_atomically
from livedream.pipeline.images import read_image

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# mp4v and MJPG ship with every opencv-python wheel; H.264 does not.
VIDEO_FOURCC = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
VIDEO_EXTENSIONS = tuple(VIDEO_FOURCC)
JPEG_QUALITY = 95
FALLBACK_FPS = 25.0  # some containers report 0 fps


def _extension(path: Path) -> str:
    return path.suffix.lower()


def is_video(path: Path) -> bool:
    return _extension(path) in VIDEO_EXTENSIONS


def _known_extensions() -> str:
    return ", ".join(PHOTO_EXTENSIONS + VIDEO_EXTENSIONS)


# ---- checks before any work ------------------------------------------------------------------


def check_input(path: Path) -> None:
    """Raise unless `path` is an existing file with a photo or video extension."""
    problem = file_problem(path)
    if problem is not None:
        raise UserError(f"input {path} {problem}; give a photo or video file, or use --sample")
    if _extension(path) not in PHOTO_EXTENSIONS + VIDEO_EXTENSIONS:
        raise UserError(f"input {path} has an unknown extension; use one of {_known_extensions()}")


def check_output(path: Path, video: bool, source: Path | None = None) -> None:
    """Raise unless `path` can be written: folder exists, extension fits the input kind, and
    it is neither a folder nor the input itself (through a link or another spelling)."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output {path} is inside {folder}, which is a file, not a folder; choose another -o")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist; create it first (mkdir -p {folder})")
    if path.is_dir():
        raise UserError(f"output {path} is a folder; give a file name, e.g. {path / ('dream' + _extension(path))}")
    if source is not None and path.exists() and os.path.samefile(path, source):
        raise UserError(f"output {path} is the input itself; choose another -o so the input is kept")
    if not os.access(folder, os.W_OK):
        raise UserError(f"output folder {folder} is not writable; choose another -o or fix its permissions")
    extension = _extension(path)
    if extension not in PHOTO_EXTENSIONS + VIDEO_EXTENSIONS:
        raise UserError(f"output {path} has an unknown extension; use one of {_known_extensions()}")
    if video and extension not in VIDEO_EXTENSIONS:
        raise UserError(f"the input is a video, so the output must be one too: use {', '.join(VIDEO_EXTENSIONS)}")
    if not video and extension not in PHOTO_EXTENSIONS:
        raise UserError(f"the input is a photo, so the output must be one too: use {', '.join(PHOTO_EXTENSIONS)}")


def check_dreamable(path: Path, height: int, width: int, min_size: int) -> None:
    """Raise if the image is smaller than the model's minimum input."""
    if min(height, width) < min_size:
        raise UserError(
            f"{path} is {width}x{height}, smaller than the model's minimum {min_size}x{min_size}; "
            f"use a larger image"
        )


# ---- photos ------------------------------------------------------------------------------


def read_photo(path: Path) -> np.ndarray:
    """The photo at `path` as uint8 RGB (H, W, 3), after the input checks."""
    check_input(path)
    return read_image(path)


def encode_photo(extension: str, rgb: np.ndarray) -> bytes:
    quality = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if extension in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)
    if not ok:
        raise UserError(f"this OpenCV build cannot write {extension} images; choose .png or .jpg")
    return encoded.tobytes()


def write_photo(path: Path, rgb: np.ndarray) -> None:
    """Write uint8 RGB to `path` (format from the extension), atomically."""
    check_output(path, video=False)
    write_atomically(path, encode_photo(_extension(path), rgb))


# ---- video -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int  # as the container reports it; used for progress, not trusted for length
    fps: float
    width: int
    height: int


class VideoReader:
    """Frames of a video file as uint8 RGB, in order. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        check_input(path)
        self.path = path
        with native_stderr_silenced():  # FFmpeg prints its own complaint; ours is the one line
            self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise UserError(f"cannot open {path} as a video (damaged, or a codec OpenCV lacks); try re-encoding it")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.info = VideoInfo(
            frame_count=max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))),
            fps=fps if fps > 0 else FALLBACK_FPS,
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, bgr = self._capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AtomicVideoWriter:
    """A video written to a temp file beside `path` and renamed onto it by `commit()`.

    Leaving the `with` block without `commit()` (an error) deletes the temp file. To keep
    a shorter but valid video after Ctrl-C, call `commit()` before re-raising.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        check_output(path, video=True)
        self.path = path
        self.frames_written = 0
        self._size = (width, height)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
        os.close(fd)
        self._temp = Path(temp)
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[_extension(path)])
        with native_stderr_silenced():
            self._writer = cv2.VideoWriter(str(self._temp), fourcc, fps, self._size)
        if not self._writer.isOpened():
            self._temp.unlink(missing_ok=True)
            raise UserError(
                f"this OpenCV build cannot write {VIDEO_FOURCC[_extension(path)]} video for {path.name}; "
                f"try another output type ({', '.join(VIDEO_EXTENSIONS)})"
            )

    def write(self, rgb: np.ndarray) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self._size:
            raise ValueError(f"frame {rgb.shape[1]}x{rgb.shape[0]} does not match the video's {self._size}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def commit(self) -> None:
        """Finish the file and rename it onto `path`; with no frames, nothing is kept."""
        self._writer.release()
        if self.frames_written == 0:
            self._temp.unlink(missing_ok=True)
            return
        os.replace(self._temp, self.path)

    def discard(self) -> None:
        self._writer.release()
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicVideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._temp.exists():  # not committed: an error left the with block
            self.discard()
