"""How far two equally valid float32 ascent chains drift apart, measured, not guessed.

Chained ascent steps amplify one-ulp differences: a ReLU or max-pool decision that sits
within rounding of its threshold flips on one machine's kernels (AVX2 or AVX-512, another
thread split, another fusion) and not on another's, and the pixels behind it take another
path. How far a chain can drift for that reason depends on the weights, the image and the
step, so a fixed bound pins the processor, not the code. Instead a test measures it: the
host chain run again with every step's gradient nudged by a few ulps (what another summation
order does) gives the divergence valid computations show on THIS input; a computation under
test may drift CHAIN_FACTOR times that, or CHAIN_FLOOR where no nudge flips anything. A wrong
step size (10 %) or a missing step moves the chain far more (tests/test_step_graph.py shows
both fail).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Gradient = Callable[[np.ndarray], np.ndarray]
"""The ascent direction at an NCHW float32 image."""

NUDGE = 2.0**-17  # relative size of the nudge: ~64 float32 ulps, a reordered sum over a few thousand terms
# An octave's image resampled by cv2.resize and by ONNX Runtime's Resize differs by 2-4e-6 RMS
# (measured, bilinear, sides 77..176): `NudgedEngine`'s image nudge, uniform in ±IMAGE_NUDGE, has
# that RMS (images are in [-1, 1]).
IMAGE_NUDGE = NUDGE
NUDGES = 8  # chains nudged with different noise: one is enough to find a near-tie the chain passes
CHAIN_FACTOR = 3.0
CHAIN_FLOOR = 2e-3
STD_EPSILON = 1e-8  # the tutorial's, as pipeline.dream and the step graphs use it


def relative_l2(actual: np.ndarray, expected: np.ndarray, start: np.ndarray) -> float:
    """Difference between two ascents, relative to how far the reference moved from `start`."""
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected - start))


def host_chain(gradient: Gradient, start: np.ndarray, steps: int, step_size: float,
               nudge: np.random.Generator | None = None) -> np.ndarray:
    """`steps` of the tutorial's update on the host (std-normalised step, clip), each gradient
    multiplied by 1 + NUDGE·u (u uniform in ±1) when `nudge` is given."""
    image = start.copy()
    for _ in range(steps):
        grad = gradient(image)
        if nudge is not None:
            grad = grad * (1.0 + NUDGE * nudge.uniform(-1.0, 1.0, grad.shape)).astype(np.float32)
        image = np.clip(image + step_size * grad / (grad.std() + STD_EPSILON), -1, 1)
    return image


def valid_drift(gradient: Gradient, start: np.ndarray, steps: int, step_size: float) -> float:
    """The largest relative L2 between the host chain and a nudged one, over NUDGES nudges."""
    reference = host_chain(gradient, start, steps, step_size)
    return max(relative_l2(host_chain(gradient, start, steps, step_size, np.random.default_rng(seed)),
                           reference, start) for seed in range(NUDGES))


class NudgedEngine:
    """A gradient engine that answers for the image nudged by ±IMAGE_NUDGE and nudges the gradient
    by 1 + NUDGE·u (u uniform in ±1 each): a host dream run on it (octaves, a Laplacian
    normalisation, anything `host_chain` does not cover) is another equally valid float32
    computation of that dream, whose resampler rounds the octaves' images otherwise."""

    def __init__(self, engine, seed: int) -> None:
        self.min_size = engine.min_size
        self._engine = engine
        self._nudge = np.random.default_rng(seed)

    def gradient(self, image: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        nudged = image + (IMAGE_NUDGE * self._nudge.uniform(-1.0, 1.0, image.shape)).astype(np.float32)
        loss, grad = self._engine.gradient(nudged, mask)
        return loss, grad * (1.0 + NUDGE * self._nudge.uniform(-1.0, 1.0, grad.shape)).astype(np.float32)


def valid_drift_of(dream: Callable[[object], np.ndarray], engine, start: np.ndarray) -> float:
    """`valid_drift` of any host computation: `dream(engine)` → its result, run on `engine` and on
    NUDGES nudged copies of it; the largest relative L2 (against the move from `start`)."""
    reference = dream(engine)
    return max(relative_l2(dream(NudgedEngine(engine, seed)), reference, start) for seed in range(NUDGES))


def chain_bound(drift: float) -> float:
    """What a computation under test may differ from the host chain by, given `valid_drift`."""
    return max(CHAIN_FLOOR, CHAIN_FACTOR * drift)
