"""Kinds of bad path, generated: each `make(kind, folder, name, good)` builds one in `folder`.

`good` is the bytes of a valid file of the right format (so "truncated" is half of it, and
"huge" is its format's header claiming 30000x30000). The kinds are the space the fuzz tables
walk; a new kind here is tried against every entry point at once.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

INPUT_KINDS = ("missing", "empty", "directory", "symlink loop", "dangling symlink", "fifo", "garbage",
               "truncated", "unreadable")
PHOTO_KINDS = (*INPUT_KINDS, "huge dimensions")
OUTPUT_KINDS = ("a directory", "in a missing folder", "in a read-only folder", "the input itself",
                "a link to the input", "under a file")


def huge_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims width x height (the data would not fill it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def make_input(kind: str, folder: Path, name: str, good: bytes) -> Path:
    path = folder / name
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink loop":
        other = folder / f"loop-{name}"
        path.symlink_to(other)
        other.symlink_to(path)
    elif kind == "dangling symlink":
        path.symlink_to(folder / "gone" / name)
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif kind == "garbage":
        path.write_bytes(b"this is not what the name says it is\n" * 20)
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "unreadable":
        path.write_bytes(good)
        path.chmod(0)
    elif kind == "huge dimensions":
        path.write_bytes(huge_png())
    else:
        raise ValueError(kind)
    return path


def make_output(kind: str, folder: Path, name: str, source: Path) -> Path:
    if kind == "a directory":
        (folder / name).mkdir()
        return folder / name
    if kind == "in a missing folder":
        return folder / "no" / "such" / name
    if kind == "in a read-only folder":
        locked = folder / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked / name
    if kind == "the input itself":
        return source
    if kind == "a link to the input":
        link = folder / f"link{source.suffix}"
        link.symlink_to(source)
        return link
    if kind == "under a file":
        (folder / "plain").write_bytes(b"x")
        return folder / "plain" / name
    raise ValueError(kind)


def permissions_bind() -> bool:
    """False as root, who reads and writes whatever the mode bits say."""
    return os.geteuid() != 0
