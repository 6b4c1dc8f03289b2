"""What a live dream makes up for (`pipeline.lag`), and the carry's map on a slow pan
(`overlay.Chain`, made good by `DetailWarper.refine`): the two reasons the demo's pan left the
content it brought in undreamed."""

from __future__ import annotations

import cv2
import numpy as np

from livedream.pipeline.coherence import DetailWarper
import pytest

from livedream.pipeline.lag import DEPTH_CELL_PX, ENTERING_MIN, LagMap, entering_band
from livedream.pipeline.overlay import REFINE_EVERY, Chain
from livedream.pipeline.sources import DemoSource

HEIGHT, WIDTH = 96, 160


def detail_with_rows(depths: list[float], seed: int = 0) -> np.ndarray:
    """Carried detail (1, 3, H, W) in [-1, 1] units whose mean |detail| is `depths[i]` grey
    levels in the i-th band of rows (texture of random signs, as a dream's is)."""
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(1, 3, HEIGHT, WIDTH)).astype(np.float32)
    rows = np.repeat(np.asarray(depths, np.float32), HEIGHT // len(depths))
    return signs * rows[None, None, :, None] / 127.5


def test_an_evenly_dreamed_picture_lags_only_where_the_carry_was_not_trusted():
    confidence = np.ones((HEIGHT, WIDTH), np.float32)
    confidence[:, :40] = 0.25
    lag = LagMap().of(detail_with_rows([20.0] * 4), confidence)
    assert np.allclose(lag[:, :40], 0.75) and np.allclose(lag[:, 48:], 0.0, atol=1e-6)


def test_a_shallow_band_lags_by_how_far_it_is_below_the_pictures_depth():
    """The bottom quarter is a quarter as deep as the rest (what a pan just brought in): it lags
    about 0.75; the rest, as deep as the picture's well-dreamed part, not at all."""
    lag = LagMap().of(detail_with_rows([20.0, 20.0, 20.0, 5.0]), np.ones((HEIGHT, WIDTH), np.float32))
    inner = DEPTH_CELL_PX  # away from the band's edge, where the cells blend
    assert np.allclose(lag[:3 * HEIGHT // 4 - inner], 0.0, atol=1e-6)
    assert 0.7 < float(lag[3 * HEIGHT // 4 + inner:].mean()) < 0.8


def test_nothing_lags_behind_a_picture_not_dreamed_yet():
    lag = LagMap().of(np.zeros((1, 3, HEIGHT, WIDTH), np.float32), np.ones((HEIGHT, WIDTH), np.float32))
    assert not lag.any()


def demo_chain(start: float, refine_every: int) -> tuple[DemoSource, DetailWarper, Chain]:
    """The carry's chain over a second of the demo's pan from `start`, at 640x360."""
    demo = DemoSource(1280, 720, clock=lambda: 0.0)
    warper = DetailWarper()
    chain: Chain | None = None
    for index in range(31):
        frame = cv2.resize(demo.render(start + index / 30), (640, 360), interpolation=cv2.INTER_AREA)
        moved = warper.track(frame)
        if moved is None:
            small_width, small_height = warper.small_size
            chain = Chain(small_height, small_width)
            chain.restart(warper.newest_grey)
            continue
        chain.extend(*moved)
        chain.make_good(warper, refine_every)
    assert chain is not None
    return demo, warper, chain


def demo_chain_error(refine_every: int) -> float:
    """The median distance (dream pixels at 640x360) between the chain's map after a second of
    the demo's pan and the demo's own motion (its affine per time is known)."""
    height, width, start = 360, 640, 15.0
    demo, warper, chain = demo_chain(start, refine_every)
    small_width, small_height = warper.small_size
    mapped = cv2.resize(chain.map, (width, height), interpolation=cv2.INTER_LINEAR)
    mapped = (mapped + 0.5) * np.array([width / small_width, height / small_height], np.float32) - 0.5

    def to_dream(t: float) -> np.ndarray:  # the photo to dream pixels at time t (a 1280 frame halved)
        halve = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]])
        return halve @ np.vstack([demo.ken_burns(t), [0, 0, 1]])

    truth = to_dream(start) @ np.linalg.inv(to_dream(start + 1.0))  # a pixel now → where it was
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    true_x = truth[0, 0] * xs + truth[0, 1] * ys + truth[0, 2]
    true_y = truth[1, 0] * xs + truth[1, 1] * ys + truth[1, 2]
    inside = (true_x > 8) & (true_x < width - 8) & (true_y > 8) & (true_y < height - 8)
    return float(np.median(np.hypot(mapped[..., 0] - true_x, mapped[..., 1] - true_y)[inside]))


def test_a_second_of_a_slow_pan_is_followed_within_a_pixel():
    """Per-frame flows of a pan moving a fraction of a small pixel a frame are biased toward no
    motion and a chain adds the biases up (measured 2-3 px a second at 640x360); one flow straight
    back every REFINE_EVERY frames keeps the map within a pixel (measured 0.3)."""
    unrefined, refined = demo_chain_error(0), demo_chain_error(REFINE_EVERY)
    print(f"chain error after 1 s of the demo's pan: {unrefined:.2f} px per-frame only, {refined:.2f} px made good")
    assert unrefined > 2.0
    assert refined < 1.0


BARE_ROWS = round(0.1 * HEIGHT)
BARE_COLUMNS = round(0.1 * WIDTH)


@pytest.mark.parametrize("edge, expected", [
    ("top", (0.0, 0.0, 1.0, BARE_ROWS / HEIGHT)),
    ("bottom", (0.0, 1.0 - BARE_ROWS / HEIGHT, 1.0, 1.0)),
    ("left", (0.0, 0.0, BARE_COLUMNS / WIDTH, 1.0)),
    ("right", (1.0 - BARE_COLUMNS / WIDTH, 0.0, 1.0, 1.0)),
])
def test_a_pan_brings_in_a_bare_band_along_the_edge_it_comes_in_by(edge, expected):
    confidence = np.ones((HEIGHT, WIDTH), np.float32)
    bare = {"top": np.s_[:BARE_ROWS], "bottom": np.s_[-BARE_ROWS:],
            "left": np.s_[:, :BARE_COLUMNS], "right": np.s_[:, -BARE_COLUMNS:]}[edge]
    confidence[bare] = 0.0
    assert entering_band(confidence) == pytest.approx(expected)


@pytest.mark.parametrize("case", ["still camera", "a hole inside", "a sliver", "half-trusted edge"])
def test_no_band_where_the_carry_holds_the_edges(case):
    """A still camera, a flow that failed inside the frame (a moving visitor), a band thinner than
    ENTERING_MIN, an edge the carry still half trusts: nothing to dream first."""
    confidence = np.ones((HEIGHT, WIDTH), np.float32)
    if case == "a hole inside":
        confidence[20:70, 30:120] = 0.0
    elif case == "a sliver":
        confidence[-max(1, int(ENTERING_MIN * HEIGHT) - 1):] = 0.0
    elif case == "half-trusted edge":
        confidence[-20:] = 0.6
    assert entering_band(confidence) is None


def test_the_demos_pan_brings_in_a_band_as_wide_as_it_moved():
    """A second of the demo's pan followed by the carry's chain: the band found is on the edge
    the photo moved in by, as wide (within 2 % of the side) as the part of the frame whose true
    origin lies outside the frame a second before."""
    height, width, start = 360, 640, 28.5
    demo, _, chain = demo_chain(start, REFINE_EVERY)
    confidence = cv2.resize(chain.confidence, (width, height), interpolation=cv2.INTER_LINEAR)
    band = entering_band(confidence)
    halve = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]])
    to_dream = [halve @ np.vstack([demo.ken_burns(t), [0, 0, 1]]) for t in (start, start + 1.0)]
    truth = to_dream[0] @ np.linalg.inv(to_dream[1])  # a pixel now → where it was a second before
    rows = np.arange(height, dtype=np.float64)
    was_y = truth[1, 1] * rows + truth[1, 0] * width / 2 + truth[1, 2]  # the middle column
    outside = (was_y < 0) | (was_y > height - 1)
    assert outside[-1] and not outside[0]  # the demo at 28.5 s pans down: the photo comes in from below
    assert band is not None and band[1] > 0.5
    assert abs((1.0 - band[1]) - outside.mean()) < 0.02
