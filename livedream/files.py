"""Files LiveDream keeps and reads: atomic writes (a failure or Ctrl-C never leaves half a file under
the real name) and the state folder (the web token; never the user's config.toml)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import platformdirs

log = logging.getLogger(__name__)

IMAGE_FORMATS = "png, jpg, webp, tiff, tga, exr, or any picture FFmpeg reads"  # what the image reader takes, as error lines name it


def file_digest(path: Path, hash_name: str = "sha256") -> str:
    """The hex digest of the file at `path` (graphs in the manifest, downloaded weights)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, hash_name).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """`data` into a temp file in `path`'s folder, then renamed over `path` in one step."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def state_dir() -> Path:
    """Where LiveDream keeps what it makes for itself (Linux: ~/.local/state/livedream)."""
    return Path(platformdirs.user_state_dir("livedream", appauthor=False))


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a file (None when it can), in words for an error line.

    Catches what would otherwise hang (a pipe) or crash deeper down (a folder, a link loop,
    an empty file) before any decoder sees it.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return "is a link to a file that does not exist" if path.is_symlink() else "does not exist"
    except OSError as error:
        return "is a symlink loop" if error.errno == errno.ELOOP else f"cannot be read ({error.strerror})"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a pipe, socket or device)"
    if info.st_size == 0:
        return "is empty"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """OpenCV's FFmpeg backend prints codec complaints straight to fd 2; we report our own line."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


FreeBytes = Callable[[Path], int]
"""`free(folder)`: bytes free on the disk that holds `folder` (tests pass a fake)."""


def free_bytes(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


class DiskFloor:
    """Recordings and screenshots stop while a disk has less than `min_free_mb` free, so a
    show that runs for weeks never fills it. `problem(folder)` is None while there is room,
    else the line for the HUD; the log gets one line each time the floor is crossed."""

    def __init__(self, min_free_mb: int, free: FreeBytes = free_bytes) -> None:
        self.min_free_mb = min_free_mb
        self._free = free
        self._below: set[Path] = set()

    def problem(self, folder: Path) -> str | None:
        if self.min_free_mb <= 0:
            return None
        free_mb = self._free(folder) / 2**20
        if free_mb >= self.min_free_mb:
            if folder in self._below:
                self._below.discard(folder)
                log.info("disk has room again for %s (%.0f MB free)", folder, free_mb)
            return None
        problem = f"disk nearly full: {free_mb:.0f} MB free under {folder} (floor {self.min_free_mb} MB)"
        if folder not in self._below:
            self._below.add(folder)
            log.warning("%s; recordings and screenshots stop until there is room ([outputs] min_free_mb)", problem)
        return problem
