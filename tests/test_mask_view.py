"""The operator's mask view (`live.maskview`): key v, OSC `/livedream/mask_view` and the web
panel's button toggle it; with it on, the window shows the visitors tinted over the picture,
while the outputs and the controls get the picture itself, byte for byte, as without it."""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.request

import numpy as np
import pygame
import pytest
from pythonosc.udp_client import SimpleUDPClient

from livedream.live.app import LiveApp
from livedream.live.controls import PassiveControls
from livedream.live.maskview import MaskView
from livedream.outputs.seam import Outputs
from livedream.pipeline.visitors import Visitors, VisitorState
from tests.test_app import ScriptedSource, grey_picture, make_app, post_key  # noqa: F401 - make_app: a fixture
from tests.test_app_wiring import show, step_until  # noqa: F401 - show: a fixture

PICTURE = (96, 128)  # DREAM's size: the mask's rows and columns map onto the picture's 1:1 … 4:1
MASK = (48, 64)  # the visitors' analysis size in these tests
BLOCK = (slice(12, 36), slice(16, 40))  # the visitor, in mask pixels
FAR = 6  # picture pixels beyond the block's edge where neither its outline nor its box reaches


def one_visitor() -> Visitors:
    """A visitor on the block, with its box, as `VisitorMask` would answer."""
    mask = np.zeros(MASK, np.float32)
    mask[BLOCK] = 1.0
    height, width = MASK
    box = (BLOCK[1].start / width, BLOCK[0].start / height, BLOCK[1].stop / width, BLOCK[0].stop / height)
    return Visitors(mask, VisitorState.WATCHING, (box,))


def regions(picture_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(well inside the visitor, far from the visitor) as boolean maps of the picture."""
    height, width = picture_shape[:2]
    rows = np.arange(height)[:, None] * MASK[0] / height  # each picture pixel's place in the mask
    columns = np.arange(width)[None, :] * MASK[1] / width
    scale = max(height / MASK[0], width / MASK[1])
    margin = FAR / scale  # in mask pixels

    def within(grow: float) -> np.ndarray:
        return ((rows >= BLOCK[0].start - grow) & (rows < BLOCK[0].stop + grow)
                & (columns >= BLOCK[1].start - grow) & (columns < BLOCK[1].stop + grow))

    return within(-margin), ~within(margin)


class FixedVisitors:
    """Stands in for `VisitorMask`: the same visitor on every frame."""

    def __init__(self, visitors: Visitors) -> None:
        self.visitors = visitors

    def update(self, frame_rgb: np.ndarray, frame_s: float) -> Visitors:
        return self.visitors

    def reset(self) -> None:
        pass


class FrameCopies:
    """An output (`outputs.seam.Output`) that keeps a copy of every frame it is sent."""

    name = "copies"
    active = True
    status = ""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def send(self, frame_rgb: np.ndarray) -> None:
        self.frames.append(frame_rgb.copy())

    def close(self) -> None:
        pass


class Published(PassiveControls):
    """A control that keeps what the loop publishes to the controls (the web preview's picture)."""

    def __init__(self) -> None:
        self.frame: np.ndarray | None = None

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        self.frame = frame_rgb.copy()


def watch_window(app: LiveApp) -> list[np.ndarray]:
    """Copies of each picture the app hands its window (before scaling), newest last."""
    shown: list[np.ndarray] = []
    draw = app.display.show

    def keep(image_rgb, hud=None, banner=None) -> None:
        shown.append(image_rgb.copy())
        draw(image_rgb, hud, banner)

    app.display.show = keep  # type: ignore[method-assign]
    return shown


# --- the view itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("picture_shape", [(96, 128, 3), (360, 640, 3), (97, 131, 3)])
def test_the_view_differs_inside_the_mask_and_equals_the_picture_away_from_it(picture_shape) -> None:
    picture = np.random.default_rng(1).integers(0, 256, picture_shape, dtype=np.uint8)
    before = picture.copy()
    view = MaskView().over(picture, one_visitor())
    inside, far = regions(picture_shape)
    assert np.array_equal(picture, before)  # the picture itself is never written
    assert np.all(np.any(view != picture, axis=2)[inside])
    assert np.array_equal(view[far], picture[far])


def test_the_visitors_box_is_drawn_where_the_box_is() -> None:
    picture = np.zeros((96, 128, 3), np.uint8)
    visitors = one_visitor()
    mask_only = MaskView().over(picture, dataclasses.replace(visitors, boxes=())).copy()
    with_box = MaskView().over(picture, visitors)
    drawn = np.any(with_box != mask_only, axis=2)
    rows, columns = np.nonzero(drawn)
    assert drawn.any()
    assert rows.min() >= 24 - 2 and rows.max() <= 72 + 2 and columns.min() >= 32 - 2 and columns.max() <= 80 + 2


def test_without_a_mask_the_view_is_the_picture_itself() -> None:
    picture = grey_picture()
    view = MaskView()
    assert view.over(picture, None) is picture
    assert view.over(picture, Visitors(None, VisitorState.CAMERA_MOVING)) is picture


def test_the_view_draws_into_the_same_buffer_every_frame_of_a_size() -> None:
    view, visitors = MaskView(), one_visitor()
    first = view.over(grey_picture(1), visitors)
    assert view.over(grey_picture(2), visitors) is first
    assert view.over(np.zeros((192, 256, 3), np.uint8), visitors) is not first  # a new size, new buffers


# --- the toggle, from each control ----------------------------------------------------------------


def test_key_v_toggles_the_mask_view(make_app) -> None:
    app = make_app(ScriptedSource(grey_picture()))
    app.step()
    assert not app.mask_view.on
    post_key(pygame.K_v, "v")
    app.step()
    assert app.mask_view.on
    post_key(pygame.K_v, "v")
    app.step()
    assert not app.mask_view.on


def test_osc_mask_view_toggles_it_like_the_key(show) -> None:
    app, hub, _ = show()
    app.step()
    SimpleUDPClient("127.0.0.1", hub.osc.address[1]).send_message("/livedream/mask_view", [])
    step_until(app, lambda: app.mask_view.on)
    SimpleUDPClient("127.0.0.1", hub.osc.address[1]).send_message("/livedream/mask_view", [])
    step_until(app, lambda: not app.mask_view.on)


def test_the_web_panels_mask_view_command_toggles_it(show) -> None:
    app, hub, _ = show(web={"enabled": True, "port": 0})
    app.step()
    body = json.dumps({"command": "mask_view"}).encode()
    request = urllib.request.Request(hub.web.url.rstrip("/") + "/command", body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    step_until(app, lambda: app.mask_view.on)


# --- the window only ------------------------------------------------------------------------------


def visited_app(make_app, outputs: Outputs, published: Published) -> LiveApp:
    app = make_app(ScriptedSource(grey_picture()), outputs=outputs, controls=[published])
    app.visitor_mask = FixedVisitors(one_visitor())  # type: ignore[assignment]
    return app


def test_with_the_view_on_the_window_shows_the_mask_and_the_outputs_the_picture(make_app) -> None:
    copies, published = FrameCopies(), Published()
    outputs = Outputs([copies])
    app = visited_app(make_app, outputs, published)
    window = watch_window(app)
    post_key(pygame.K_v, "v")
    inside, far = regions(PICTURE)
    for _ in range(3):
        app.step()
        outputs.flush()
        picture = app.shown_image
        assert app.mask_view.on and picture.shape[:2] == PICTURE
        assert np.array_equal(copies.frames[-1], picture) and np.array_equal(published.frame, picture)
        assert np.all(np.any(window[-1] != picture, axis=2)[inside])
        assert np.array_equal(window[-1][far], picture[far])


def test_the_outputs_get_the_same_bytes_with_the_view_on_and_off(make_app) -> None:
    """Paused, the picture stays: the frame the outputs (and the web preview) get is the same
    byte for byte with the view off, on, and off again, while the window's changes."""
    threads_before = set(threading.enumerate())
    copies, published = FrameCopies(), Published()
    outputs = Outputs([copies])
    app = visited_app(make_app, outputs, published)
    window = watch_window(app)
    app.step()
    post_key(pygame.K_SPACE, " ")
    sent, windows, previews = [], [], []
    for key in (None, "v", "v"):
        if key:
            post_key(pygame.K_v, key)
        app.step()
        outputs.flush()
        sent.append(copies.frames[-1])
        windows.append(window[-1])
        previews.append(published.frame)
    assert app.paused
    assert all(np.array_equal(frame, sent[0]) for frame in sent + previews)
    assert np.array_equal(windows[0], sent[0]) and np.array_equal(windows[2], sent[0])
    assert not np.array_equal(windows[1], sent[0])
    app.close()
    assert set(threading.enumerate()) <= threads_before


def test_the_hud_counts_the_visitors_and_their_share(make_app) -> None:
    app = visited_app(make_app, Outputs(), Published())
    app.step()
    share = one_visitor().share
    assert any(f"visitors: watching, 1 visitor, {share:.0%} of the picture" in line for line in app.hud_stats.lines())
