"""Pixels between the world and the network: uint8 RGB (H, W, 3) ↔ NCHW float32 in [-1, 1],
and reading an image file. The one definition of each, used by the live sources, the
dreamer and the offline commands."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.files import IMAGE_FORMATS, file_problem

# NASA photo of astronaut Eileen Collins (public domain), from scikit-image's data set
# (skimage.data.astronaut): the demo source and `livedream dream --sample`.
SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample.jpg"

# Refused before decoding: a 30000x30000 header would make the decoder allocate 2.7 GB.
MAX_IMAGE_PIXELS = 64_000_000  # above 8K x 8K (7680 x 4320 is 33 MP)

# uint8 → [-1, 1] as a lookup: one exact pass with no temporaries.
_UNIT_FROM_BYTE = (np.arange(256, dtype=np.float32) / np.float32(127.5) - 1).astype(np.float32)


def unit_from_bytes(rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → `out` (3, H, W) or (1, 3, H, W) float32 in [-1, 1], in place."""
    np.take(_UNIT_FROM_BYTE, rgb.transpose(2, 0, 1), out=out.reshape(3, *rgb.shape[:2]))
    return out


def bytes_from_unit(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32 → `out` uint8 RGB (H, W, 3), clipped to [-1, 1] and rounded.

    Scales `image` in place (it is a scratch buffer), so nothing image-sized is allocated.
    """
    np.clip(image, -1.0, 1.0, out=image)
    image *= np.float32(127.5)
    image += np.float32(128.0)  # 127.5 maps to 0..255, +0.5 so the cast rounds
    np.copyto(out, image[0].transpose(1, 2, 0), casting="unsafe")
    return out


def to_nchw(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → a new float32 (1, 3, H, W) in [-1, 1], as the graph expects."""
    return unit_from_bytes(rgb, np.empty((1, 3, *rgb.shape[:2]), np.float32))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """float32 (1, 3, H, W) in [-1, 1] → a new uint8 RGB (H, W, 3), the inverse of `to_nchw`."""
    return bytes_from_unit(image.astype(np.float32, copy=True), np.empty((*image.shape[2:], 3), np.uint8))


def read_image(path: Path) -> np.ndarray:
    """The image file at `path` as uint8 RGB (H, W, 3); grey and alpha images become RGB.

    A path that is no readable file, a file no decoder reads, or one whose header claims
    more than MAX_IMAGE_PIXELS is a one-line `UserError`.
    """
    problem = file_problem(path)
    if problem is not None:
        raise UserError(f"image {path} {problem}; give an image file ({IMAGE_FORMATS})")
    data = np.fromfile(str(path), dtype=np.uint8)
    size = header_size(data[:65536].tobytes())
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise UserError(f"image {path} is {size[0]}x{size[1]} pixels, more than {MAX_IMAGE_PIXELS // 10**6} MP; "
                        f"shrink it first")
    try:
        # imdecode of the bytes (not imread) so non-ASCII paths work on every platform.
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise UserError(f"cannot read {path} as an image (damaged, or not {IMAGE_FORMATS})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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


def fitted_to_aspect(box_height: int, box_width: int, image_height: int, image_width: int,
                     min_size: int) -> tuple[int, int]:
    """The largest (height, width), even, with the image's aspect inside the box: the dream of
    a 4:3 camera in a 640x360 box is 480x360, the whole picture, nothing cut or squashed."""
    scale = min(box_width / image_width, box_height / image_height)
    height = max(min_size, round(image_height * scale / 2) * 2)
    width = max(min_size, round(image_width * scale / 2) * 2)
    return min(height, max(box_height, min_size)), min(width, max(box_width, min_size))


def cropped_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centred part of `image` with the aspect of height x width, as a view (no copy),
    so a 4:3 dream of a 16:9 camera is cut, not squashed."""
    image_h, image_w = image.shape[:2]
    if abs(image_w * height - image_h * width) < max(height, width):  # within a pixel
        return image
    if image_w * height > image_h * width:  # the image is wider: cut the sides
        kept = max(1, round(image_h * width / height))
        left = (image_w - kept) // 2
        return image[:, left : left + kept]
    kept = max(1, round(image_w * height / width))
    top = (image_h - kept) // 2
    return image[top : top + kept]
