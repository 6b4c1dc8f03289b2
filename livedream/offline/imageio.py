"""Photos in and out, and the checks on every path, for the offline `livedream dream`
(video files themselves are `livedream.media`, on PyAV).

Pixels leave here as uint8 RGB (H, W, 3) and, for the network, as NCHW float32 in [-1, 1].
Outputs are written to a temp file in the destination folder and renamed at the end, so a
failure or Ctrl-C never leaves half a file under the requested name. Every user mistake
(missing input, unknown extension, no such folder, codec missing, image too small) is a
one-line `UserError` naming the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.files import file_problem, write_atomically
from livedream.pipeline.images import read_image

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_IN_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mts", ".m2ts", ".mxf", ".mpg")
VIDEO_OUT_EXTENSIONS = (".mp4", ".mov", ".mkv", ".m4v")
JPEG_QUALITY = 95


def _extension(path: Path) -> str:
    return path.suffix.lower()


def is_video(path: Path) -> bool:
    return _extension(path) in VIDEO_IN_EXTENSIONS


def _known_extensions() -> str:
    return ", ".join(PHOTO_EXTENSIONS + VIDEO_IN_EXTENSIONS)


# ---- checks before any work ------------------------------------------------------------------


def check_input(path: Path) -> None:
    """Raise unless `path` is an existing file with a photo or video extension."""
    problem = file_problem(path)
    if problem is not None:
        raise UserError(f"input {path} {problem}; give a photo or video file, or use --sample")
    if _extension(path) not in PHOTO_EXTENSIONS + VIDEO_IN_EXTENSIONS:
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
    if extension not in PHOTO_EXTENSIONS + VIDEO_IN_EXTENSIONS:
        raise UserError(f"output {path} has an unknown extension; use one of {_known_extensions()}")
    if video and extension not in VIDEO_OUT_EXTENSIONS:
        raise UserError(f"the input is a video, so the output must be one too: use {', '.join(VIDEO_OUT_EXTENSIONS)}")
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
