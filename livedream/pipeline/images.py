"""Pixels between the world and the network: uint8 RGB (H, W, 3) ↔ NCHW float32 in [-1, 1],
and fitting a picture to a dream's size. The one definition of each, used by the live
sources, the dreamer and the offline commands (an image file is read by `media.pictures`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# NASA photo of astronaut Eileen Collins (public domain), from scikit-image's data set
# (skimage.data.astronaut): the demo source and `livedream dream --sample`.
SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample.jpg"

# uint8 → [-1, 1] as a lookup: one exact pass with no temporaries.
_UNIT_FROM_BYTE = (np.arange(256, dtype=np.float32) / np.float32(127.5) - 1).astype(np.float32)


def resized_into(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`image` resized to `out`'s size, into `out`: area-averaged when it shrinks (no aliasing),
    bilinear when it grows."""
    height, width = out.shape[:2]
    shrinking = image.shape[0] * image.shape[1] > height * width
    return cv2.resize(image, (width, height), dst=out, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


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
