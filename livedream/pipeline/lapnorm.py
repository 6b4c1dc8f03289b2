"""The Laplacian-pyramid normalisation of a gradient (Google's TF1 DeepDream notebook, `lap_normalize`).

A raw InceptionV3 gradient is mostly fine texture: its energy sits in the highest octave, so a
step normalised by the gradient's std mostly sharpens. Split into band-pass levels plus the
low-pass rest (`manifest.LAP_LEVELS`: 5x5 binomial kernel, [1,4,6,4,1] outer itself / 256,
stride 2, zero padding), each band divided by its own RMS and merged back, the same step puts as much energy
into every octave: the coarse bands carry the large motifs (eyes, faces) without another
gradient evaluation. The step then divides the result by its std as before, so a step of the
same size moves pixels as far (RMS) either way: the normalisation changes where the step goes,
not how far.

The same definition runs in the graphs (`export.backward.laplacian_normalised`); this is the
host's, on OpenCV, with every buffer made once per size. `tests/test_lapnorm.py` checks both
against a float64 numpy reference.
"""

from __future__ import annotations

import cv2
import numpy as np

from livedream.manifest import LAP_LEVELS, LAP_TAPS, RMS_FLOOR

BINOMIAL = np.array(LAP_TAPS, np.float32) / 16  # the 5x5 kernel is its outer product


def pyramid_sizes(height: int, width: int, levels: int = LAP_LEVELS) -> list[tuple[int, int]]:
    """The sizes of the levels, finest first: each halves its parent's, rounding up."""
    sizes = [(height, width)]
    for _ in range(levels):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class LaplacianNormaliser:
    """`normalise(grad)`: the gradient (1, C, H, W) float32, its pyramid bands each scaled to
    RMS 1 (over all channels, as the notebook's `normalize_std`) and merged back, in place.
    Made for one size; allocates nothing per call."""

    def __init__(self, shape: tuple[int, ...], levels: int = LAP_LEVELS) -> None:
        channels, height, width = shape[1:]
        self.shape = tuple(shape)
        sizes = [(channels, *size) for size in pyramid_sizes(height, width, levels)]
        self._blurred = [np.empty(size[1:], np.float32) for size in sizes[:-1]]
        self._low = [np.empty(size, np.float32) for size in sizes[1:]]
        self._spread = [np.zeros(size[1:], np.float32) for size in sizes[:-1]]  # zeros between the samples
        self._up = [np.empty(size, np.float32) for size in sizes[:-1]]
        self._bands = [np.empty(size, np.float32) for size in sizes[:-1]]

    @property
    def bands(self) -> list[np.ndarray]:
        """The last `normalise`'s bands as merged, each (C, h, w): finest first, each of RMS 1, then the
        rest (at the notebook's scale, less its colour cast)."""
        return [*self._bands, self._low[-1]]

    def normalise(self, grad: np.ndarray) -> np.ndarray:
        """Split into bands (finest first) and the low-pass rest, scale each to RMS 1, merge."""
        level = grad[0]
        for index, band in enumerate(self._bands):
            low = self._down(level, index)
            np.subtract(level, self._upsampled(low, index), out=band)
            level = low
        scale = 1.0 / _rms(level)  # the notebook's scale, its mean included
        level -= level.mean(axis=(1, 2), keepdims=True)  # but no colour cast (`manifest.LAP_LEVELS`)
        level *= scale
        for index in reversed(range(len(self._bands))):
            merged = grad[0] if index == 0 else self._low[index - 1]
            np.add(self._upsampled(level, index), _to_unit_rms(self._bands[index]), out=merged)
            level = merged
        return grad

    def _down(self, level: np.ndarray, index: int) -> np.ndarray:
        """The 5x5 binomial blur (zero padding), every second pixel: the next coarser level."""
        blurred, low = self._blurred[index], self._low[index]
        for channel, plane in enumerate(level):
            cv2.sepFilter2D(plane, cv2.CV_32F, BINOMIAL, BINOMIAL, dst=blurred, borderType=cv2.BORDER_CONSTANT)
            np.copyto(low[channel], blurred[::2, ::2])
        return low

    def _upsampled(self, low: np.ndarray, index: int) -> np.ndarray:
        """The adjoint of `_down` times 4: zeros between the samples, the same blur doubled per axis."""
        spread, up = self._spread[index], self._up[index]
        for channel, plane in enumerate(low):
            spread[::2, ::2] = plane  # the other pixels stay the zeros they were made with
            cv2.sepFilter2D(spread, cv2.CV_32F, 2 * BINOMIAL, 2 * BINOMIAL, dst=up[channel],
                            borderType=cv2.BORDER_CONSTANT)
        return up


def _rms(band: np.ndarray) -> float:
    """`band`'s root mean square, at least RMS_FLOOR (float32 sums: the dot product of BLAS)."""
    flat = band.reshape(-1)
    return max(float(np.sqrt(np.dot(flat, flat) / flat.size)), RMS_FLOOR)


def _to_unit_rms(band: np.ndarray) -> np.ndarray:
    """`band` divided by its root mean square, in place."""
    band *= 1.0 / _rms(band)
    return band
