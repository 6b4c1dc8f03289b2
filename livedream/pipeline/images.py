"""Pixels between the world and the network: uint8 RGB (H, W, 3) ↔ NCHW float32 in [-1, 1],
and reading an image file. The one definition of each, used by the live sources, the
dreamer and the offline commands."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from livedream.errors import UserError

# NASA photo of astronaut Eileen Collins (public domain), from scikit-image's data set
# (skimage.data.astronaut): the demo source and `livedream dream --sample`.
SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample.jpg"

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

    A missing, non-file or undecodable path is a one-line `UserError`.
    """
    if not path.exists():
        raise UserError(f"image {path} does not exist; check the path")
    if not path.is_file():
        raise UserError(f"image {path} is not a file; give an image file (png, jpg, webp, bmp)")
    # imdecode of the bytes (not imread) so non-ASCII paths work on every platform.
    bgr = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"cannot read {path} as an image (damaged, or not png, jpg, webp, bmp)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
