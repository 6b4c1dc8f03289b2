"""The shipped sharpen graph (`livedream/assets/sharpen.onnx`): up to date, and the host's
"show sharp" (frame + upscaled dream detail, saturated) on any pair of sizes."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from livedream.manifest import SHARPEN_GRAPH
from livedream.runtime.devices import CPU

SIZES = [((h, w), (H, W)) for (h, w) in ((90, 160), (75, 77), (120, 90))
         for (H, W) in ((720, 1280), (151, 263), (240, 180))]


def test_the_shipped_graph_is_what_the_builder_makes():
    pytest.importorskip("onnxscript")  # the export extra
    from livedream.export.sharpen import sharpen_model

    assert onnx.load(str(SHARPEN_GRAPH)).graph == sharpen_model().graph, "run: python -m livedream.export.sharpen"


@pytest.mark.parametrize("small,big", SIZES)
def test_sharpen_graph_is_the_host_formula(small, big):
    session = ort.InferenceSession(str(SHARPEN_GRAPH), providers=[CPU])
    rng = np.random.default_rng(small[0] * big[1])
    base = rng.integers(0, 256, (*small, 3), dtype=np.uint8)
    dream = np.clip(base.astype(int) + rng.integers(-80, 80, base.shape), 0, 255).astype(np.uint8)
    frame = rng.integers(0, 256, (*big, 3), dtype=np.uint8)
    shown = session.run(None, {"dream": dream, "base": base, "frame": frame})[0]
    detail = cv2.resize(np.subtract(dream, base, dtype=np.int16), big[::-1], interpolation=cv2.INTER_LINEAR)
    want = cv2.add(frame, detail, dtype=cv2.CV_8U)
    assert shown.shape == (*big, 3) and shown.dtype == np.uint8
    difference = np.abs(shown.astype(int) - want)
    assert difference.max() <= 1 and difference.mean() < 0.01  # cv2 interpolates integers in fixed point


def test_ties_round_half_to_even_as_rint_does():
    """The graph rounds by Floor (WebGPU has no Round): a 2 → 3 pixel upscale puts the middle
    pixel exactly between its two neighbours, so odd sums are ties; they go to the even side."""
    session = ort.InferenceSession(str(SHARPEN_GRAPH), providers=[CPU])
    left = np.arange(-9, 9)
    right = left + np.array([1, 2, 3])[np.arange(left.size) % 3]
    base = np.full((left.size, 2, 3), 100, np.uint8)
    dream = base.astype(int).copy()
    dream[:, 0], dream[:, 1] = 100 + left[:, None], 100 + right[:, None]
    frame = np.full((left.size, 3, 3), 128, np.uint8)
    shown = session.run(None, {"dream": dream.astype(np.uint8), "base": base, "frame": frame})[0]
    middle = shown[:, 1, 0].astype(int) - 128
    assert np.array_equal(middle, np.rint((left + right) / 2).astype(int))
    assert ((left + right) % 2 == 1).sum() >= 6  # the table holds ties
