"""The pygame window: shows a frame scaled to the screen, the HUD, banners; keys → actions.

It knows nothing of sources, the network or the dream: it is given an RGB image and some
text, and reports what the viewer pressed as `Action`s for the app to act on.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np
import pygame

from livedream.config import DisplayConfig
from livedream.errors import UserError

log = logging.getLogger(__name__)

# --- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Something the viewer asked for; `value` is the preset number for "preset"."""

    name: str
    value: int | None = None


@dataclass(frozen=True)
class KeyBinding:
    """Keys → action. `chars` match the typed character (layout-proof: "+" is "+" on any
    keyboard); `keys` match pygame key names for keys that type nothing ("escape", "[+]")."""

    label: str  # how help screens show the keys
    action: str
    description: str
    chars: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


KEY_BINDINGS: tuple[KeyBinding, ...] = (
    KeyBinding("Esc / q", "quit", "quit", chars=("q",), keys=("escape",)),
    KeyBinding("f", "toggle_fullscreen", "full screen on/off", chars=("f",)),
    KeyBinding("h", "toggle_hud", "stats overlay on/off", chars=("h",)),
    KeyBinding("space", "pause", "freeze / resume", keys=("space",)),
    KeyBinding("+ / -", "strength_up", "stronger dream", chars=("+", "="), keys=("[+]",)),
    KeyBinding("-", "strength_down", "weaker dream", chars=("-",), keys=("[-]",)),
    KeyBinding("] / [", "steps_up", "more steps per frame", chars=("]",)),
    KeyBinding("[", "steps_down", "fewer steps per frame", chars=("[",)),
    KeyBinding("s", "screenshot", "save a screenshot (PNG)", chars=("s",)),
    KeyBinding("r", "record", "start / stop recording (video)", chars=("r",)),
    KeyBinding("m", "learn", "MIDI learn: then a parameter's key (+ strength, ] steps)", chars=("m",)),
    KeyBinding("g / G", "guide", "the camera's frame becomes the guide (G: no guide)", chars=("g",)),
    KeyBinding("G", "guide_clear", "no guide", chars=("G",)),
    KeyBinding("v", "mask_view", "the visitor mask over the picture on/off (this window only)", chars=("v",)),
    KeyBinding("w", "where", "who dreams: all → visitors → room (the people a still camera sees)", chars=("w",)),
    KeyBinding("1 … 9", "preset", "recall preset 1 … 9", chars=tuple("123456789")),
    KeyBinding("?", "help", "this help", chars=("?",), keys=("f1",)),
)


def key_help_rows() -> list[tuple[str, str]]:
    """The key table as (keys, what they do) rows; up/down twins share one row."""
    rows = []
    for binding in KEY_BINDINGS:
        if binding.action in ("strength_down", "steps_down", "guide_clear"):
            continue  # shown on the row of their "up" twin
        description = {
            "strength_up": "stronger / weaker dream",
            "steps_up": "more / fewer steps per frame",
        }.get(binding.action, binding.description)
        rows.append((binding.label, description))
    return rows


def key_help_lines() -> list[str]:
    """The key table as aligned text lines (for `livedream --help`)."""
    return [f"{keys:<9} {description}" for keys, description in key_help_rows()]


def action_for_key(char: str, key_name: str) -> Action | None:
    """The action bound to a key press, given its typed character and pygame key name."""
    for binding in KEY_BINDINGS:
        if key_name in binding.keys or (char and char in binding.chars):
            if binding.action == "preset":
                return Action("preset", int(char))
            return Action(binding.action)
    return None


# --- layout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where the image goes: `source` is the part of the image shown, `target` where on screen."""

    source: pygame.Rect
    target: pygame.Rect


def fit_layout(image_size: tuple[int, int], screen_size: tuple[int, int], fit: str) -> Layout:
    """letterbox: whole image, bars; crop: fill the screen, cut the overflow; stretch: fill."""
    image_w, image_h = image_size
    screen_w, screen_h = screen_size
    whole_image = pygame.Rect(0, 0, image_w, image_h)
    if fit == "stretch":
        return Layout(whole_image, pygame.Rect(0, 0, screen_w, screen_h))
    if fit == "letterbox":
        scale = min(screen_w / image_w, screen_h / image_h)
        width, height = max(1, round(image_w * scale)), max(1, round(image_h * scale))
        return Layout(whole_image, pygame.Rect((screen_w - width) // 2, (screen_h - height) // 2, width, height))
    if fit == "crop":
        scale = max(screen_w / image_w, screen_h / image_h)
        width = min(image_w, max(1, round(screen_w / scale)))
        height = min(image_h, max(1, round(screen_h / scale)))
        shown = pygame.Rect((image_w - width) // 2, (image_h - height) // 2, width, height)
        return Layout(shown, pygame.Rect(0, 0, screen_w, screen_h))
    raise ValueError(f"unknown fit {fit!r}")


# --- HUD -----------------------------------------------------------------------------------

HUD_BOX_ALPHA = 170
TEXT_COLOUR = (240, 240, 240)
BANNER_COLOUR = (255, 210, 90)


# --- what covers the picture, and when -------------------------------------------------------

ALERT_S = 8.0  # an operator alert over a full-screen picture shows this long when it appears,
ALERT_EVERY_S = 60.0  # and again this often while it lasts (someone walking past notices it)


class Overlays:
    """When the HUD, the help and an operator alert are drawn over the picture.

    In full screen the picture is the art: the HUD hides itself `hide_after_s` after the show
    starts (key h brings it back, and then it stays: it was asked for), the help likewise
    after it was opened, and an alert (camera lost, engine restart, disk floor) shows for
    ALERT_S when it appears and each ALERT_EVERY_S while it lasts. In a window, where a show
    is set up, whatever is on stays. `hide_after_s` 0 = nothing hides itself.
    """

    def __init__(self, hud: bool, hide_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hide_after = hide_after_s if hide_after_s > 0 else math.inf
        self._hud_until = clock() + self._hide_after if hud else -math.inf  # -inf: off; inf: asked for
        self._help_until = -math.inf
        self._alert: str | None = None
        self._alert_since = 0.0

    def hud(self, fullscreen: bool) -> bool:
        return self._shown(self._hud_until, fullscreen)

    def help(self, fullscreen: bool) -> bool:
        return self._shown(self._help_until, fullscreen)

    def toggle_hud(self, fullscreen: bool) -> None:
        self._hud_until = -math.inf if self.hud(fullscreen) else math.inf

    def toggle_help(self, fullscreen: bool) -> None:
        self._help_until = -math.inf if self.help(fullscreen) else self._clock() + self._hide_after

    def alert(self, text: str | None, fullscreen: bool) -> str | None:
        """`text` while it should show; a new text starts its own ALERT_S."""
        now = self._clock()
        if text != self._alert:
            self._alert, self._alert_since = text, now
        if text is None or not fullscreen:
            return text
        return text if (now - self._alert_since) % ALERT_EVERY_S < ALERT_S else None

    def _shown(self, until: float, fullscreen: bool) -> bool:
        return until > self._clock() if fullscreen else until > -math.inf


# --- the window ----------------------------------------------------------------------------


class Screen(Protocol):
    """What the loop draws on: the pygame `Display`, or `Headless` (outputs only, no window)."""

    cfg: DisplayConfig
    hud_visible: bool

    def open(self) -> None: ...
    def close(self) -> None: ...
    def show(self, image_rgb: np.ndarray, hud: Sequence[str] | None = None, banner: str | None = None) -> None: ...
    def poll(self) -> list[Action]: ...
    def screenshot(self, path: Path) -> Path: ...
    def toggle_fullscreen(self) -> None: ...
    def toggle_hud(self) -> None: ...
    def toggle_help(self) -> None: ...


class Headless:
    """No window (`[display] window = false`): a render box behind a mapper, seen through its
    outputs. No keys come in (signals and controls stop it); a screenshot saves the frame."""

    def __init__(self, cfg: DisplayConfig) -> None:
        self.cfg = cfg
        self.hud_visible = False  # nothing draws a HUD here: outputs get the clean picture
        self._last: np.ndarray | None = None

    def open(self) -> None:
        log.info("no window ([display] window = false): the dream goes to the outputs only")

    def close(self) -> None:
        pass

    def show(self, image_rgb: np.ndarray, hud: Sequence[str] | None = None, banner: str | None = None) -> None:
        self._last = image_rgb

    def poll(self) -> list[Action]:
        return []

    def screenshot(self, path: Path) -> Path:
        path = path.with_suffix(".png")
        if self._last is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(self._last, cv2.COLOR_RGB2BGR))
        return path

    def toggle_fullscreen(self) -> None:
        pass

    def toggle_hud(self) -> None:
        pass

    def toggle_help(self) -> None:
        pass


def open_screen(cfg: DisplayConfig) -> Screen:
    return Display(cfg) if cfg.window else Headless(cfg)


class Display:
    """One window. `show()` draws a frame (plus HUD, banner, help) and flips; `poll()` → actions."""

    def __init__(self, cfg: DisplayConfig, title: str = "LiveDream", clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.overlays = Overlays(cfg.hud, cfg.hud_seconds, clock)
        self.fullscreen = cfg.fullscreen
        self.vsync_active = False
        self._title = title
        self._window: pygame.Surface | None = None
        self._image_size: tuple[int, int] | None = None
        self._target_pixels = np.empty((0, 0, 3), np.uint8)
        self._scaled: pygame.Surface | None = None  # shares _target_pixels' memory
        self._layout: Layout | None = None
        self._box_cache: dict[tuple[int, int], pygame.Surface] = {}

    # lifecycle

    def open(self) -> None:
        """Open the window; no display to open on is a one-line `UserError`."""
        try:
            pygame.display.init()
            pygame.font.init()
            pygame.display.set_caption(self._title)
            self._check_display_index()
            self._set_mode()
        except pygame.error as error:
            raise UserError(f"cannot open a window ({error}); run it on a desktop, set DISPLAY, "
                            f"or set SDL_VIDEODRIVER=dummy to run headless") from None
        # The HUD sits small in a corner (20 px lines at 1080p); the windowed banner is readable
        # from a few metres.
        line_height = max(14, self.size[1] // 54)
        self._font = pygame.font.Font(None, line_height)
        self._banner_font = pygame.font.Font(None, max(36, self.size[1] // 14))

    def close(self) -> None:
        pygame.display.quit()

    @property
    def size(self) -> tuple[int, int]:
        assert self._window is not None, "open() first"
        return self._window.get_size()

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        self._set_mode()

    @property
    def hud_visible(self) -> bool:
        return self.overlays.hud(self.fullscreen)

    def toggle_hud(self) -> None:
        self.overlays.toggle_hud(self.fullscreen)

    def toggle_help(self) -> None:
        self.overlays.toggle_help(self.fullscreen)

    # per frame

    def show(self, image_rgb: np.ndarray, hud: Sequence[str] | None = None, banner: str | None = None) -> None:
        """Draw `image_rgb` (H, W, 3 uint8) scaled to the window, the HUD's lines, the
        banner or the help, and flip."""
        window = self._window
        assert window is not None, "open() first"
        self._scale_into_target(image_rgb)
        if self._layout.target.size != window.get_size():  # type: ignore[union-attr]
            window.fill((0, 0, 0))  # letterbox bars
        window.blit(self._scaled, self._layout.target)  # type: ignore[union-attr, arg-type]
        margin = self._font.get_height() // 2
        if self.hud_visible and hud is not None:
            self._draw_text_box([(line,) for line in hud], self._font, TEXT_COLOUR, (margin, margin))
        alert = self.overlays.alert(banner, self.fullscreen)
        if self.overlays.help(self.fullscreen):
            self._draw_centred([("Keys", ""), *key_help_rows()], self._font, TEXT_COLOUR)
        elif alert and self.fullscreen:  # small, in the corner the HUD leaves free
            _, height, _ = self._text_box_size([(alert,)], self._font)
            self._draw_text_box([(alert,)], self._font, BANNER_COLOUR, (margin, window.get_height() - height - margin))
        elif alert:
            self._draw_centred([(alert,)], self._banner_font, BANNER_COLOUR)
        pygame.display.flip()

    def poll(self) -> list[Action]:
        """Actions from the events since the last call; handles window resizes itself."""
        actions = []
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                actions.append(Action("quit"))
            elif event.type == pygame.KEYDOWN:
                action = action_for_key(event.unicode, pygame.key.name(event.key))
                if action is not None:
                    actions.append(action)
            elif event.type == pygame.WINDOWSIZECHANGED:
                self._window = pygame.display.get_surface()
                self._layout = None  # rebuilt on the next show()
        return actions

    def screenshot(self, path: Path) -> Path:
        """Save what the window shows now as a PNG at `path`."""
        assert self._window is not None, "open() first"
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self._window, str(path.with_suffix(".png")))
        return path.with_suffix(".png")

    # internals

    def _check_display_index(self) -> None:
        count = pygame.display.get_num_displays()
        if self.cfg.display >= count:
            raise UserError(
                f"[display] display = {self.cfg.display} is not allowed; this machine has "
                f"{count} display(s): use 0..{count - 1}"
            )

    def _set_mode(self) -> None:
        if self.fullscreen:
            size = pygame.display.get_desktop_sizes()[self.cfg.display]
            flags = pygame.FULLSCREEN
        else:
            size = (self.cfg.window_width, self.cfg.window_height)
            flags = pygame.RESIZABLE
        self._window = self._set_mode_with_vsync(size, flags)
        pygame.mouse.set_visible(not self.fullscreen)
        self._layout = None

    def _set_mode_with_vsync(self, size: tuple[int, int], flags: int) -> pygame.Surface:
        # pygame only syncs through its renderer (SCALED); drivers may refuse: fall back quietly.
        if self.cfg.vsync:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "no fast renderer")  # software rendering is fine
                    window = pygame.display.set_mode(size, flags | pygame.SCALED, vsync=1, display=self.cfg.display)
                self.vsync_active = True
                return window
            except pygame.error as refusal:
                log.debug("vsync refused (%s); running without", refusal)
        self.vsync_active = False
        return pygame.display.set_mode(size, flags, display=self.cfg.display)

    def _scale_into_target(self, image_rgb: np.ndarray) -> None:
        """Scale the shown part of the image straight into the surface that is blitted.

        OpenCV's SIMD resize writes into a buffer that the pygame surface shares, so a frame
        costs one resize and one blit (pygame's smoothscale of 720p to 1080p took ~10 ms).
        """
        if self._image_size != image_rgb.shape[:2] or self._layout is None:
            self._image_size = image_rgb.shape[:2]
            self._rebuild_layout()
        source = self._layout.source  # type: ignore[union-attr]
        part = image_rgb[source.top : source.bottom, source.left : source.right]
        interpolation = cv2.INTER_AREA if part.shape[1] > self._target_pixels.shape[1] else cv2.INTER_LINEAR
        cv2.resize(part, self._target_pixels.shape[1::-1], dst=self._target_pixels, interpolation=interpolation)

    def _rebuild_layout(self) -> None:
        """Once per image or window size: the layout and the scaled target (buffer + surface)."""
        assert self._image_size is not None and self._window is not None
        height, width = self._image_size
        self._layout = fit_layout((width, height), self._window.get_size(), self.cfg.fit)
        target_w, target_h = self._layout.target.size
        self._target_pixels = np.empty((target_h, target_w, 3), np.uint8)
        self._scaled = pygame.image.frombuffer(self._target_pixels, (target_w, target_h), "RGB")

    def _dark_box(self, size: tuple[int, int]) -> pygame.Surface:
        box = self._box_cache.get(size)
        if box is None:
            box = pygame.Surface(size, pygame.SRCALPHA)
            box.fill((0, 0, 0, HUD_BOX_ALPHA))
            self._box_cache[size] = box
        return box

    def _draw_text_box(
        self,
        rows: list[tuple[str, ...]],
        font: pygame.font.Font,
        colour: tuple[int, int, int],
        top_left: tuple[int, int],
    ) -> None:
        """Rows of cells on a translucent dark box; cells line up in columns."""
        assert self._window is not None
        padding = font.get_height() // 2
        box_w, box_h, column_x = self._text_box_size(rows, font)
        # Round the width up so the box cache holds a few sizes, not one per text width.
        self._window.blit(self._dark_box((-(-box_w // 32) * 32, box_h)), top_left)
        y = top_left[1] + padding
        for row in rows:
            for x, cell in zip(column_x, row):
                if cell:
                    self._window.blit(font.render(cell, True, colour), (top_left[0] + x, y))
            y += font.get_linesize()

    @staticmethod
    def _text_box_size(rows: list[tuple[str, ...]], font: pygame.font.Font) -> tuple[int, int, list[int]]:
        """(width, height, x of each column) of the box for `rows`."""
        padding = font.get_height() // 2
        gap = font.size("  ")[0] * 2
        columns = max(len(row) for row in rows)
        widths = [max((font.size(row[i])[0] for row in rows if i < len(row)), default=0) for i in range(columns)]
        column_x = [padding + sum(widths[:i]) + gap * i for i in range(columns)]
        width = column_x[-1] + widths[-1] + padding
        height = font.get_linesize() * len(rows) + 2 * padding
        return width, height, column_x

    def _draw_centred(self, rows: list[tuple[str, ...]], font: pygame.font.Font, colour: tuple[int, int, int]) -> None:
        assert self._window is not None
        width, height, _ = self._text_box_size(rows, font)
        window_w, window_h = self._window.get_size()
        self._draw_text_box(rows, font, colour, top_left=((window_w - width) // 2, (window_h - height) // 2))
