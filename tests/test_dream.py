"""The dream algorithm on real (random-weight) ONNX graphs: gain, sizes, octaves, tiles, seeds,
and agreement with a plain torch-autograd version of the TensorFlow tutorial's loop."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from livedream.runtime.engine import NO_VISITORS, DreamInterrupted
import pytest

from livedream.pipeline.dream import (
    AscentSettings,
    dream,
    dreamed_image,
    octave_sizes,
    tile_starts,
    tiled_gradient,
)
from livedream.pipeline.images import to_nchw

from .conftest import LIVELY_LAYERS, lively_model


def photo(sample_image: np.ndarray, height: int, width: int, contrast: float = 1.0) -> np.ndarray:
    """The sample photo at (height, width) as NCHW [-1, 1], contrast scaled about mid-grey."""
    rgb = cv2.resize(sample_image, (width, height), interpolation=cv2.INTER_AREA)
    return (to_nchw(rgb) * np.float32(contrast)).astype(np.float32)


class RecordingEngine:
    """Passes calls to a real engine and records the image sizes it was asked about."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.min_size = engine.min_size
        self.sizes: list[tuple[int, int]] = []

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS):
        self.sizes.append(tuple(image.shape[2:]))
        return self.engine.gradient(image, mask)


def test_dream_raises_objective_several_fold(lively_engine, sample_image):
    base = photo(sample_image, 128, 160, contrast=0.25)
    before, _ = lively_engine.gradient(base)
    settings = AscentSettings(steps=20, step_size=0.02, octaves=2)
    detail, _ = dream(lively_engine, base, settings, np.random.default_rng(0))
    after, _ = lively_engine.gradient(dreamed_image(base, detail))
    assert before > 0
    assert after >= 4 * before


@pytest.mark.parametrize("octaves_above", [0, 1])
def test_dream_keeps_input_size_and_dtype(small_engine, sample_image, octaves_above):
    base = photo(sample_image, 101, 133)
    settings = AscentSettings(steps=2, octaves=2, octaves_above=octaves_above)
    detail, loss = dream(small_engine, base, settings, np.random.default_rng(0))
    assert detail.shape == base.shape and detail.dtype == np.float32
    assert dreamed_image(base, detail).dtype == np.float32
    assert np.isfinite(loss) and np.abs(detail).max() > 0


def test_octave_sizes_follow_the_tutorials_scales():
    settings = AscentSettings(octaves=3, octaves_above=2, octave_scale=1.3)
    # int(size * 1.3 ** octave) for octave -2..2, as the tutorial's tf.cast(..., tf.int32)
    assert octave_sizes(200, 300, settings, min_size=75) == [
        (118, 177), (153, 230), (200, 300), (260, 390), (338, 507),
    ]


def test_octaves_below_model_minimum_are_skipped():
    settings = AscentSettings(octaves=3)
    assert octave_sizes(100, 120, settings, min_size=75) == [(76, 92), (100, 120)]
    assert octave_sizes(80, 80, AscentSettings(octaves=5), min_size=75) == [(80, 80)]


def test_dream_visits_the_octave_pyramid_in_order(small_engine, sample_image):
    base = photo(sample_image, 200, 300)
    settings = AscentSettings(steps=2, octaves=3, octaves_above=1)
    recorder = RecordingEngine(small_engine)
    reported: list[tuple[int, tuple[int, int]]] = []
    detail, _ = dream(
        recorder, base, settings, np.random.default_rng(0),
        on_octave=lambda index, size, loss: reported.append((index, size)),
    )
    expected = [(118, 177), (153, 230), (200, 300), (260, 390)]
    assert reported == list(enumerate(expected))
    assert recorder.sizes == [size for size in expected for _ in range(settings.steps)]
    assert detail.shape == base.shape


def untiled_ascent(engine, base: np.ndarray, steps: int, step_size: float) -> np.ndarray:
    """The tutorial's step written out plainly on the whole image: the reference for tiling."""
    image = base.copy()
    for _ in range(steps):
        _, grad = engine.gradient(image)
        image = np.clip(image + grad * (step_size / (grad.std() + 1e-8)), -1, 1).astype(np.float32)
    return image


@pytest.mark.parametrize("steps", [1, 5])
def test_tile_covering_image_matches_untiled_ascent(lively_engine, sample_image, steps):
    """One step element-wise; five in aggregate, because chained steps amplify one-ulp
    differences (a ReLU decision flips and that pixel takes another path)."""
    base = photo(sample_image, 101, 133)
    settings = AscentSettings(steps=steps, step_size=0.02, octaves=1, tile=133, jitter=False)
    detail, _ = dream(lively_engine, base, settings, np.random.default_rng(0))
    reference = untiled_ascent(lively_engine, base, settings.steps, settings.step_size)
    tiled = dreamed_image(base, detail)
    if steps == 1:
        np.testing.assert_allclose(tiled, reference, atol=1e-5)
    else:
        assert np.linalg.norm(tiled - reference) / np.linalg.norm(reference - base) < 1e-3


def test_tiled_dream_raises_objective_at_least_half_as_much_as_untiled(lively_engine, sample_image):
    base = photo(sample_image, 200, 300, contrast=0.25)
    before, _ = lively_engine.gradient(base)

    def gain(tile: int) -> float:
        settings = AscentSettings(steps=15, step_size=0.02, octaves=1, tile=tile)
        detail, _ = dream(lively_engine, base, settings, np.random.default_rng(0))
        return lively_engine.gradient(dreamed_image(base, detail))[0] - before

    # Tiles see less context than the whole image and roll differently, so the gains are
    # not equal; what tiling must not do is lose the dream (seams, untouched tiles).
    untiled, tiled = gain(512), gain(100)  # 2 x 3 tiles
    assert untiled > 0.5 * before
    assert tiled > 0.5 * untiled


def test_tiled_gradient_of_big_image_is_finite_and_covers_every_pixel(small_engine):
    rng = np.random.default_rng(3)
    image = rng.uniform(-1, 1, (1, 3, 600, 800)).astype(np.float32)
    grad = np.full_like(image, np.nan)  # any pixel no tile wrote stays NaN
    loss = tiled_gradient(small_engine, image, 256, grad)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    # Each tile holds exactly its crop's gradient; the 32-pixel remainder joined the last column.
    assert tile_starts(800, 256, small_engine.min_size) == [0, 256, 512]
    crop = np.ascontiguousarray(image[:, :, 512:, 512:])
    np.testing.assert_array_equal(grad[:, :, 512:, 512:], small_engine.gradient(crop)[1])


def test_jittered_tiled_dream_moves_every_pixel_of_big_image(small_engine):
    # InceptionV3's unpadded stride-2 convs ignore a tile's last rows and columns, so one
    # gradient has zero stripes at the tile edges; the random roll moves them between steps.
    rng = np.random.default_rng(3)
    image = rng.uniform(-0.9, 0.9, (1, 3, 600, 800)).astype(np.float32)
    settings = AscentSettings(steps=3, octaves=1, tile=256)
    detail, _ = dream(small_engine, image, settings, np.random.default_rng(0))
    assert np.isfinite(detail).all()
    assert (np.abs(detail).sum(axis=1) > 0).all()


def test_same_seed_is_bit_identical_and_another_seed_differs(small_engine, sample_image):
    base = photo(sample_image, 120, 160)
    settings = AscentSettings(steps=3, octaves=2, tile=100)  # tiled and jittered

    def run(seed: int) -> np.ndarray:
        return dream(small_engine, base, settings, np.random.default_rng(seed))[0]

    first, again, other = run(7), run(7), run(8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


# ---- agreement with the TensorFlow tutorial's loop in plain torch autograd ------------------


def tutorial_dream_in_torch(model, base: np.ndarray, steps: int, step_size: float, octaves: range, scale: float):
    """The TF tutorial's `run_deep_dream_with_octaves` (no roll, one tile), in torch autograd."""
    import torch
    import torch.nn.functional as F

    from livedream.export.inception import dream_loss

    weights = {"Mixed_5b": 1.0}
    height, width = base.shape[2:]
    image = torch.from_numpy(base.copy())
    for octave in octaves:
        size = (int(height * scale**octave), int(width * scale**octave))
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        for _ in range(steps):
            image.requires_grad_(True)
            loss = dream_loss(model(image, LIVELY_LAYERS), weights)
            (gradient,) = torch.autograd.grad(loss, image)
            gradient = gradient / (gradient.std(correction=0) + 1e-8)  # tf.math.reduce_std: population std
            image = torch.clamp(image.detach() + gradient * step_size, -1, 1)
    return image


def test_loss_gain_matches_torch_autograd_tutorial_loop(lively_engine, sample_image):
    torch = pytest.importorskip("torch")
    from livedream.export.inception import dream_loss

    model = lively_model()
    base = photo(sample_image, 150, 200, contrast=0.5)
    settings = AscentSettings(steps=8, step_size=0.02, octaves=2, tile=512, jitter=False, reinject=False)

    detail, _ = dream(lively_engine, base, settings, np.random.default_rng(0))
    ours = dreamed_image(base, detail)
    reference = tutorial_dream_in_torch(model, base, settings.steps, settings.step_size, range(-1, 1), 1.3)

    def objective(image) -> float:
        with torch.no_grad():
            return float(dream_loss(model(torch.as_tensor(image), LIVELY_LAYERS), {"Mixed_5b": 1.0}))

    before = objective(base)
    gain_ours, gain_reference = objective(ours) - before, objective(reference) - before
    assert gain_reference > before  # a real dream, not a rounding error
    assert gain_ours == pytest.approx(gain_reference, rel=0.03)
    assert np.abs(ours - reference.numpy()).mean() < 0.02


def test_an_interrupt_ends_the_run_in_flight_and_the_next_run_is_whole(small_engine):
    """`Engine.interrupt` from another thread ends a gradient run mid-way (a visitor cannot wait
    for a room's half-second step), and the session then runs the same image to the same result."""
    # A run of about a third of a second here: the interrupting thread, waking every millisecond,
    # gets a turn within it even on a loaded machine.
    image = np.random.default_rng(3).uniform(-1, 1, (1, 3, 1024, 1024)).astype(np.float32)
    expected_loss, gradient = small_engine.gradient(image)
    expected = gradient.copy()
    done = threading.Event()

    def keep_interrupting() -> None:
        while not done.is_set():
            small_engine.interrupt()
            time.sleep(0.001)

    interrupter = threading.Thread(target=keep_interrupting)
    interrupter.start()
    try:
        with pytest.raises(DreamInterrupted):
            small_engine.gradient(image)
    finally:
        done.set()
        interrupter.join()
    loss, gradient = small_engine.gradient(image)
    assert loss == expected_loss and np.array_equal(gradient, expected)
