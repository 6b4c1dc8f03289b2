"""The checks on every path of the offline `livedream dream`, and writing its pictures (what a
file holds and how an output is written are `livedream.media`'s).

Outputs are written to a temp file in the destination folder and renamed at the end, so a
failure or Ctrl-C never leaves half a file under the requested name. Every user mistake
(missing input, no such folder, a kind nothing writes, image too small) is a one-line
`UserError` naming the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from livedream.errors import UserError
from livedream.files import file_problem, write_atomically
from livedream.media.clips import ClipInfo, probe
from livedream.media.pictures import encode_picture

# ---- checks before any work ------------------------------------------------------------------


def check_input(path: Path) -> ClipInfo:
    """What the file at `path` holds (a picture or a clip, decided by its content, not its
    name), after the checks that a path is a readable file."""
    problem = file_problem(path)
    if problem is not None:
        raise UserError(f"input {path} {problem}; give a picture or video file, or use --sample")
    return probe(path)


def check_output(path: Path, source: Path | None = None) -> None:
    """Raise unless `path` can be written: the folder exists and is writable, and `path` is
    neither a folder nor the input itself (through a link or another spelling)."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output {path} is inside {folder}, which is a file, not a folder; choose another -o")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist; create it first (mkdir -p {folder})")
    if path.is_dir():
        raise UserError(f"output {path} is a folder; give a file name, e.g. {path / ('dream' + path.suffix.lower())}")
    if source is not None and path.exists() and os.path.samefile(path, source):
        raise UserError(f"output {path} is the input itself; choose another -o so the input is kept")
    if not os.access(folder, os.W_OK):
        raise UserError(f"output folder {folder} is not writable; choose another -o or fix its permissions")


def check_dreamable(path: Path, height: int, width: int, min_size: int) -> None:
    """Raise if the image is smaller than the model's minimum input."""
    if min(height, width) < min_size:
        raise UserError(
            f"{path} is {width}x{height}, smaller than the model's minimum {min_size}x{min_size}; "
            f"use a larger image"
        )


# ---- pictures ------------------------------------------------------------------------------


def write_photo(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write uint8 RGB (and its alpha, where given) to `path` (its kind from the name), atomically."""
    check_output(path)
    write_atomically(path, encode_picture(path.suffix.lower(), rgb, alpha))
