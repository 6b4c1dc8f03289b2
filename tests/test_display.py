"""Display under SDL's dummy driver: geometry, HUD, banner, screenshots, keys → actions."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from livedream.config import DisplayConfig  # noqa: E402
from livedream.pipeline.display import (  # noqa: E402
    ALERT_EVERY_S,
    ALERT_S,
    KEY_BINDINGS,
    Action,
    Display,
    action_for_key,
    fit_layout,
    key_help_lines,
)

WHITE_IMAGE = np.full((100, 200, 3), 255, np.uint8)  # 2:1
HUD_LINES = (" 29.7 fps shown   dream   31.0 ms", "CPU   objective mixed3=1, mixed5=1", "strength 0.020   steps 2",
             "source live")


@pytest.fixture
def open_display():
    opened: list[Display] = []

    def make(**settings) -> Display:
        cfg = DisplayConfig(fullscreen=False, window_width=400, window_height=400, **settings)
        display = Display(cfg)
        display.open()
        opened.append(display)
        return display

    yield make
    for display in opened:
        display.close()


def window_pixels() -> np.ndarray:
    """The window as (height, width, 3)."""
    return pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)


def test_letterbox_puts_bars_above_and_below_a_wide_image(open_display) -> None:
    display = open_display(fit="letterbox", hud=False)
    display.show(WHITE_IMAGE)
    pixels = window_pixels()
    # 200x100 in 400x400 → 400x200 image from y=100 to y=299, black bars elsewhere.
    assert pixels[:100].max() == 0 and pixels[300:].max() == 0
    assert pixels[100:300].min() == 255


def test_crop_fills_the_window(open_display) -> None:
    display = open_display(fit="crop", hud=False)
    display.show(WHITE_IMAGE)
    assert window_pixels().min() == 255


def test_stretch_fills_the_window(open_display) -> None:
    display = open_display(fit="stretch", hud=False)
    display.show(WHITE_IMAGE)
    assert window_pixels().min() == 255


@pytest.mark.parametrize(
    ("fit", "source", "target"),
    [
        ("letterbox", (0, 0, 640, 360), (0, 180, 1280, 720)),  # 16:9 in a 16:12 screen
        ("crop", (106, 0, 427, 360), (0, 0, 1280, 1080)),  # centre 1/3 of the width
        ("stretch", (0, 0, 640, 360), (0, 0, 1280, 1080)),
    ],
)
def test_fit_layout_geometry(fit: str, source: tuple, target: tuple) -> None:
    layout = fit_layout((640, 360), (1280, 1080), fit)
    assert tuple(layout.source) == source and tuple(layout.target) == target


def test_hud_pixels_change_when_toggled(open_display) -> None:
    display = open_display(hud=True)
    stats = HUD_LINES
    grey = np.full((200, 200, 3), 128, np.uint8)  # fills the window: the box darkens it
    display.show(grey, stats)
    with_hud = window_pixels().copy()
    display.toggle_hud()
    display.show(grey, stats)
    without_hud = window_pixels()
    changed = np.any(with_hud != without_hud, axis=2)
    assert changed[:60, :200].mean() > 0.3, "no HUD box in the top-left corner"
    assert not changed[300:].any(), "the HUD drew outside its corner"


def test_banner_is_drawn_in_the_centre(open_display) -> None:
    display = open_display(hud=False)
    black = np.zeros((100, 200, 3), np.uint8)
    display.show(black)
    plain = window_pixels().copy()
    display.show(black, banner="CAMERA LOST — reconnecting")
    changed = np.any(plain != window_pixels(), axis=2)
    assert changed[180:220, 100:300].any() and not changed[:100].any()


def test_screenshot_is_a_png_of_the_window_size(open_display, tmp_path: Path) -> None:
    display = open_display()
    display.show(WHITE_IMAGE, HUD_LINES)
    path = display.screenshot(tmp_path / "shots" / "frame.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pygame.image.load(str(path)).get_size() == display.size == (400, 400)


def test_scaled_surface_is_reused_between_frames(open_display) -> None:
    display = open_display()
    display.show(WHITE_IMAGE)
    surface, pixels = display._scaled, display._target_pixels
    display.show(np.zeros_like(WHITE_IMAGE))
    assert display._scaled is surface and display._target_pixels is pixels
    assert pixels.max() == 0  # the surface shows the new frame through the shared buffer


def post_key(key: int, char: str = "") -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, unicode=char, mod=0, scancode=0))


def test_key_presses_become_actions(open_display) -> None:
    display = open_display()
    display.poll()  # drop start-up events
    post_key(pygame.K_ESCAPE)
    post_key(pygame.K_f, "f")
    post_key(pygame.K_KP_PLUS, "+")
    post_key(pygame.K_RIGHTBRACKET, "]")
    post_key(pygame.K_3, "3")
    post_key(pygame.K_x, "x")  # unbound: ignored
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert display.poll() == [
        Action("quit"), Action("toggle_fullscreen"), Action("strength_up"),
        Action("steps_up"), Action("preset", 3), Action("quit"),
    ]


@pytest.mark.parametrize(
    ("char", "key_name", "expected"),
    [
        ("q", "q", Action("quit")), ("", "escape", Action("quit")), (" ", "space", Action("pause")),
        ("-", "-", Action("strength_down")), ("", "[-]", Action("strength_down")),
        ("[", "[", Action("steps_down")), ("s", "s", Action("screenshot")), ("h", "h", Action("toggle_hud")),
        ("?", "/", Action("help")), ("9", "9", Action("preset", 9)), ("0", "0", None),
    ],
)
def test_key_table(char: str, key_name: str, expected: Action | None) -> None:
    assert action_for_key(char, key_name) == expected


def test_every_action_is_in_the_help_text() -> None:
    help_text = "\n".join(key_help_lines())
    for binding in KEY_BINDINGS:
        assert binding.label.split()[0] in help_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


GREY = np.full((200, 200, 3), 128, np.uint8)
STATS = HUD_LINES


@pytest.fixture
def full_screen():
    """A full-screen window (the dummy driver's desktop) on a fake clock, HUD hiding after 10 s."""
    clock = FakeClock()
    display = Display(DisplayConfig(fullscreen=True, fit="stretch", hud=True, hud_seconds=10.0, vsync=False),
                      clock=clock)
    display.open()
    yield display, clock
    display.close()


def test_in_full_screen_the_hud_is_drawn_at_start_and_gone_after_the_delay(full_screen) -> None:
    display, clock = full_screen
    display.show(GREY, STATS)
    assert display.hud_visible and window_pixels().min() < 128  # the HUD's dark box
    clock.now += 20.0  # the must-show: a full-screen window after 20 s
    assert not display.hud_visible
    display.show(GREY, STATS)
    assert (window_pixels() == 128).all(), "something covers the picture"


def test_h_brings_the_hud_back_and_it_stays(full_screen) -> None:
    display, clock = full_screen
    clock.now += 20.0
    display.toggle_hud()
    clock.now += 600.0
    assert display.hud_visible
    display.toggle_hud()
    assert not display.hud_visible


def test_the_hud_sits_small_in_a_corner(full_screen) -> None:
    display, _ = full_screen
    display.show(GREY, STATS)
    covered = np.any(window_pixels() != 128, axis=2)
    height, width = covered.shape
    assert covered.mean() < 0.08 and not covered[height // 2:].any() and not covered[:, width // 2:].any()


def test_an_operator_alert_shows_briefly_and_small_while_the_hud_is_hidden(full_screen) -> None:
    display, clock = full_screen
    clock.now += 20.0
    display.show(GREY, STATS, banner="camera lost — reconnecting in 2 s")
    covered = np.any(window_pixels() != 128, axis=2)
    height, width = covered.shape
    assert covered[height // 2:].any() and covered.mean() < 0.05  # small, at the bottom
    clock.now += ALERT_S + 1
    display.show(GREY, STATS, banner="camera lost — reconnecting in 2 s")
    assert (window_pixels() == 128).all()
    clock.now += ALERT_EVERY_S - ALERT_S - 1  # a minute after it appeared: once more
    display.show(GREY, STATS, banner="camera lost — reconnecting in 2 s")
    assert not (window_pixels() == 128).all()


def test_the_help_hides_itself_in_full_screen_too(full_screen) -> None:
    display, clock = full_screen
    display.toggle_help()
    assert display.overlays.help(True)
    clock.now += 11.0
    assert not display.overlays.help(True)


def test_in_a_window_the_hud_stays() -> None:
    clock = FakeClock()
    display = Display(DisplayConfig(fullscreen=False, hud=True, hud_seconds=1.0), clock=clock)
    clock.now += 600.0
    assert display.hud_visible
