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


def chain_bound(drift: float) -> float:
    """What a computation under test may differ from the host chain by, given `valid_drift`."""
    return max(CHAIN_FLOOR, CHAIN_FACTOR * drift)
