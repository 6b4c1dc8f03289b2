"""The depth ceiling and the cast fade (`pipeline.depth`): the carried live dream is held under a
local strength where it is deep and left as it is where it is not, and loses its broad colour
casts, so a still scene stays a DeepDream of itself."""

from __future__ import annotations

import cv2
import numpy as np

from livedream.params import Params
from livedream.params import MAX_FRAME_S
from livedream.pipeline.depth import SPREAD, BroadFade, DepthCeiling
from livedream.pipeline.dreamer import LiveDreamer
from tests.conftest import as_model

HEIGHT, WIDTH = 90, 160
CEILING = Params().depth  # the shipped ceiling


def local_rms(detail: np.ndarray) -> np.ndarray:
    """The local RMS as the ceiling defines it, recomputed in float64."""
    power = (detail.astype(np.float64) ** 2).mean(axis=2)
    return np.sqrt(cv2.GaussianBlur(power, (0, 0), max(detail.shape[0] * SPREAD, 1.0), borderType=cv2.BORDER_REFLECT))


def test_a_shallow_detail_is_left_exactly_as_it_is():
    detail = np.random.default_rng(0).normal(0, CEILING / 3, (HEIGHT, WIDTH, 3)).astype(np.float32)
    held = detail.copy()
    DepthCeiling().hold(held, CEILING)
    np.testing.assert_array_equal(held, detail)


def test_a_deep_region_is_held_at_the_ceiling_and_a_shallow_one_beside_it_keeps_its_strength():
    rng = np.random.default_rng(1)
    detail = rng.normal(0, 10, (HEIGHT, WIDTH, 3)).astype(np.float32)
    detail[:, WIDTH // 2:] *= 12  # the right half is 120 grey levels deep: three times the ceiling
    held = detail.copy()
    DepthCeiling().hold(held, CEILING)
    right, left = local_rms(held)[:, WIDTH * 3 // 4], local_rms(held)[:, WIDTH // 8]
    assert np.all(right < CEILING * 1.05) and np.all(right > CEILING * 0.8)
    np.testing.assert_allclose(held[:, : WIDTH // 8], detail[:, : WIDTH // 8])  # far from the deep half: untouched
    assert np.all(left > 8)
    # scaled, not clipped: the pattern keeps its shape (the sign of every value)
    assert np.array_equal(np.sign(held), np.sign(detail))


def test_a_broad_colour_cast_loses_its_share_each_dream_and_a_motif_sized_pattern_keeps_its_strength():
    height, width = 360, 640  # the live dream's size: broad is a Gaussian of 16 px there
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    cast = np.dstack([30 * np.cos(columns / width * np.pi), -20 * np.ones_like(rows),
                      10 * np.sin(rows / height * np.pi)])
    eyes = np.sign(np.sin(columns * np.pi / 8) * np.sin(rows * np.pi / 8))  # 8 px eyes, 16 px apart
    motifs = 30 * eyes[..., None] * np.ones(3, np.float32)
    fade = BroadFade()
    faded_cast, faded_motifs = cast.astype(np.float32), motifs.astype(np.float32)
    fade.fade(faded_cast, MAX_FRAME_S)  # a dream on a CPU: half the broad part goes
    fade.fade(faded_motifs, MAX_FRAME_S)
    middle = np.s_[40:-40, 40:-40]  # the border's reflection aside
    np.testing.assert_allclose(faded_cast[middle], 0.5 * cast[middle], atol=1.5)
    assert np.abs(faded_motifs - motifs).mean() < 0.02 * np.abs(motifs).mean()


def test_a_dream_that_counts_less_drops_less_of_the_cast():
    """A visitor's box dreams come several a second: each drops the share its seconds count for."""
    cast = np.full((HEIGHT, WIDTH, 3), 20.0, np.float32)
    quarter, long_after = cast.copy(), cast.copy()
    BroadFade().fade(quarter, MAX_FRAME_S / 2)
    BroadFade().fade(long_after, 10 * MAX_FRAME_S)  # a hang counts as one dream, not as ten
    np.testing.assert_allclose(quarter, 20.0 * 0.5 ** 0.5, rtol=1e-5)
    np.testing.assert_allclose(long_after, 10.0, rtol=1e-5)


def settled_depth(engine, depth: float = CEILING, dreams: int = 12) -> tuple[float, float]:
    """The live worker's loop on one still frame, each dream starting from the last one's
    detail: (the RMS of the first dream's detail, of the last one's)."""
    params = Params(dream_height=HEIGHT, dream_width=WIDTH, steps=2, strength=0.08, half_life=60.0, octaves=1,
                    depth=depth)
    frame = np.random.default_rng(2).integers(60, 196, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    confidence = np.ones((HEIGHT, WIDTH), np.float32)
    dreamer, model = LiveDreamer(), as_model(engine)
    depths, carried = [], None
    for _ in range(dreams):
        base, detail = dreamer.dream_detail(frame, params, model, carried, frame_s=0.25)
        carried = (detail.astype(np.float32), confidence)
        depths.append(float(np.sqrt((carried[0] ** 2).mean())))
    return depths[0], depths[-1]


def test_a_still_scene_dreamed_over_and_over_settles_within_one_dream_of_the_ceiling(lively_engine):
    first, last = settled_depth(lively_engine)
    assert last > CEILING  # it deepened to the ceiling
    assert last < CEILING + first  # and no further than one dream's steps past it


def test_a_lower_depth_settles_lower(lively_engine):
    """`depth` is the live control of the ceiling: at half of it the same loop settles lower."""
    first, last = settled_depth(lively_engine, depth=CEILING / 2)
    assert CEILING / 2 < last < CEILING / 2 + first


def test_with_depth_0_the_same_dreams_deepen_past_it(lively_engine):
    """What the ceiling is for: the same loop, held nowhere, goes on deepening (its colours clip)."""
    first, last = settled_depth(lively_engine, depth=0.0)
    assert last > CEILING + first  # past where the held loop stops
