"""Picture sizes read from file headers without decoding: a header that claims 30000x30000
would make a decoder allocate 2.7 GB, so such a file is refused before any decoder sees it."""

from __future__ import annotations

import struct
from pathlib import Path

from livedream.errors import UserError

MAX_IMAGE_PIXELS = 64_000_000  # above 8K x 8K (7680 x 4320 is 33 MP)
HEAD_BYTES = 65536  # where the headers below keep their size


def refuse_huge(path: Path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise UserError(f"{path} is {width}x{height} pixels, more than {MAX_IMAGE_PIXELS // 10**6} MP; shrink it first")


def refuse_huge_header(path: Path) -> None:
    """Refuse `path` when its PNG, JPEG, BMP or WebP header claims more than MAX_IMAGE_PIXELS."""
    with open(path, "rb") as file:
        size = header_size(file.read(HEAD_BYTES))
    if size is not None:
        refuse_huge(path, *size)


def header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or WebP header, without decoding; None if unknown."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        return _webp_size(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame marker (SOF0..SOF15 but DHT, JPG, DAC)."""
    at = 2
    while at + 9 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        length = struct.unpack(">H", head[at + 2:at + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None
