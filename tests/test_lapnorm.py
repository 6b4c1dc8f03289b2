"""The Laplacian-pyramid normalisation of the gradient (Google's TF1 notebook, `lap_normalize`):
the host's (OpenCV) and the graphs' (torch → ONNX) against a float64 numpy reference written
from the definition, and the ascent step that uses it."""

from __future__ import annotations

import numpy as np
import pytest

from livedream.manifest import LAP_LEVELS, LAP_TAPS, LAPLACIAN_NORM
from livedream.pipeline.dream import Ascent, AscentSettings
from livedream.pipeline.lapnorm import LaplacianNormaliser
from livedream.runtime.engine import NO_VISITORS

KERNEL = np.outer(LAP_TAPS, LAP_TAPS) / 256.0
SIZES = [(37, 50), (48, 64), (75, 91), (96, 97)]  # odd and even sides: the crops of the upsampling


def down(level: np.ndarray) -> np.ndarray:
    """(C, H, W) → (C, ⌈H/2⌉, ⌈W/2⌉): the 5x5 kernel at every second pixel, zeros outside."""
    channels, height, width = level.shape
    padded = np.pad(level, ((0, 0), (2, 2), (2, 2)))
    low = np.zeros((channels, (height + 1) // 2, (width + 1) // 2))
    for i in range(low.shape[1]):
        for j in range(low.shape[2]):
            low[:, i, j] = (padded[:, 2 * i: 2 * i + 5, 2 * j: 2 * j + 5] * KERNEL).sum((1, 2))
    return low


def up(low: np.ndarray, height: int, width: int) -> np.ndarray:
    """The adjoint of `down`, times 4: each low pixel spreads 4 x the kernel around twice its place."""
    spread = np.zeros((low.shape[0], height + 4, width + 4))
    for i in range(low.shape[1]):
        for j in range(low.shape[2]):
            spread[:, 2 * i: 2 * i + 5, 2 * j: 2 * j + 5] += low[:, i: i + 1, j: j + 1] * 4 * KERNEL
    return spread[:, 2: height + 2, 2: width + 2]


def reference(grad: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the normalised gradient, its bands as merged: finest first, then the rest less its
    per-channel mean), in float64."""
    level = grad[0].astype(np.float64)
    bands = []
    for _ in range(LAP_LEVELS):
        low = down(level)
        bands.append(level - up(low, *level.shape[1:]))
        level = low
    scaled = [band / np.sqrt(np.mean(band**2)) for band in [*bands, level]]
    scaled[-1] -= scaled[-1].mean(axis=(1, 2), keepdims=True)  # the rest at the notebook's scale, less its colour cast
    merged = scaled[-1]
    for band in reversed(scaled[:-1]):
        merged = up(merged, *band.shape[1:]) + band
    return merged[None], scaled


def gradient(height: int, width: int, seed: int) -> np.ndarray:
    """Gradient-like: tiny values (1e-7, as on random weights), energy at fine and coarse scales."""
    rng = np.random.default_rng(seed)
    fine = rng.standard_normal((1, 3, height, width))
    ys, xs = np.mgrid[0:height, 0:width]
    coarse = np.sin(ys / 7.0 + seed) * np.cos(xs / 11.0)
    return ((fine + 3 * coarse) * 1e-7).astype(np.float32)


@pytest.mark.parametrize("height, width", SIZES)
def test_host_normalisation_matches_the_float64_reference(height, width):
    grad = gradient(height, width, height)
    expected, expected_bands = reference(grad)
    normaliser = LaplacianNormaliser(grad.shape)
    normalised = normaliser.normalise(grad.copy())
    scale = np.abs(expected).max()
    assert np.abs(normalised - expected).max() <= 1e-5 * scale
    for band, want in zip(normaliser.bands, expected_bands):
        assert np.abs(band - want).max() <= 1e-5 * np.abs(want).max()
    for band in normaliser.bands[:-1]:
        assert np.sqrt(np.mean(np.square(band, dtype=np.float64))) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(normaliser.bands[-1].mean(axis=(1, 2))).max() < 1e-5  # the rest: no colour cast


def test_normalisation_lifts_the_coarse_bands_of_a_fine_gradient():
    """What it is for: a gradient of fine texture only (white noise) gets as much energy in its
    coarsest band as in its finest."""
    grad = (np.random.default_rng(5).standard_normal((1, 3, 96, 128)) * 1e-7).astype(np.float32)

    def coarse_share(image: np.ndarray) -> float:
        level = image[0].astype(np.float64)
        return float(np.sqrt(np.mean(down(down(down(level))) ** 2)) / np.sqrt(np.mean(level**2)))

    normalised = LaplacianNormaliser(grad.shape).normalise(grad.copy())
    assert coarse_share(normalised) > 5 * coarse_share(grad)


def test_a_zero_gradient_stays_zero():
    """Nobody to dream under where = "visitors": the gradient is zeros, and must not become NaN."""
    grad = np.zeros((1, 3, 40, 60), np.float32)
    assert not LaplacianNormaliser(grad.shape).normalise(grad).any()


def test_a_laplacian_step_moves_pixels_as_far_as_a_std_step():
    """The same step size moves the same RMS: the normalisation changes where, not how far."""
    class Fixed:
        min_size = 1

        def gradient(self, image, mask=NO_VISITORS):  # a real net's scale: the std's 1e-8 does not count
            return 0.0, gradient(*image.shape[2:], 3) * 1e4

    moved = {}
    for norm in ("std", LAPLACIAN_NORM):
        image = np.zeros((1, 3, 48, 64), np.float32)
        settings = AscentSettings(steps=1, step_size=0.05, octaves=1, tile=64, jitter=False, gradient_norm=norm)
        Ascent(image.shape).step(Fixed(), image, settings, np.random.default_rng(0))
        moved[norm] = float(np.std(image))
    assert moved[LAPLACIAN_NORM] == pytest.approx(moved["std"], rel=1e-3)
    assert moved["std"] == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("height, width", SIZES)
def test_graph_normalisation_matches_the_float64_reference(height, width):
    torch = pytest.importorskip("torch")
    from livedream.export.backward import laplacian_normalised

    grad = gradient(height, width, width)
    expected, _ = reference(grad)
    got = laplacian_normalised(torch.from_numpy(grad.astype(np.float64))).numpy()
    assert np.abs(got - expected).max() <= 1e-9 * np.abs(expected).max()
