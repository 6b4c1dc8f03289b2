"""Clips whose truth is known: a still room, figures walking in, standing, walking out.

Tests judge the visitor mask against the figures' own silhouettes (`truth`), and the README's
where = visitors / room pictures are dreamed from it. The room (`gallery_room`, or a `bare_wall`)
is generated, with no person in it (the sample photo is a portrait: the person model rightly
calls her a visitor), with sensor noise each frame, as a camera sees it; a figure is a
person's outline (head, body, legs) in striped clothes, so neither is a flat colour a threshold
would find. Figures come in sizes (`Figure.tall`: 0.7 covers 5 % of a 16:9 picture, 2.0 about
40 %, its legs cut off by the frame as someone close to the camera), from either side, several
at once; the schedule sets their speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

NOISE = 2.5  # the camera's noise, grey levels (standard deviation)


@dataclass(frozen=True)
class Schedule:
    """Seconds of each part of the clip, in order."""

    empty: float = 3.0  # the room alone (the model learns it)
    walk_in: float = 2.0
    stand: float = 10.0
    walk_out: float = 2.0
    after: float = 2.0  # the room alone again

    @property
    def seconds(self) -> float:
        return self.empty + self.walk_in + self.stand + self.walk_out + self.after

    def parts(self) -> tuple[tuple[str, float, float], ...]:
        """Each part's name (`ClipFrame.part`), start and end, in seconds from the clip's start."""
        spans, start = [], 0.0
        for name, length in (("empty", self.empty), ("walk_in", self.walk_in), ("stand", self.stand),
                             ("walk_out", self.walk_out), ("after", self.after)):
            spans.append((name, start, start + length))
            start += length
        return tuple(spans)


@dataclass(frozen=True)
class ClipFrame:
    rgb: np.ndarray  # (H, W, 3) uint8
    truth: np.ndarray  # (H, W) bool: where the figures are
    part: str  # "empty", "walk_in", "stand", "walk_out" or "after"


@dataclass(frozen=True)
class Figure:
    """One walker: its height as a share of the frame's (above FEET_ON_FLOOR it stands close to
    the camera, head near the top, legs below the frame), where it stands (a share of the
    width), the side it comes in from and leaves by, and how much it sways while it stands."""

    tall: float = 0.8
    stand_at: float = 0.5
    enters_from: str = "left"  # or "right"
    sway: float = 0.0  # while standing, it sways this share of the width to each side (people do)
    # The clothes' stripes move with the figure, as a real visitor's clothes do. False: they stay
    # in place while the outline moves over them, so no optical flow can follow the figure.
    cloth_moves: bool = False


FEET_ON_FLOOR = 0.93  # up to this tall a figure's feet are in the picture
SWAY_S = 2.5  # a swaying figure's period, seconds


def figure_silhouette(height: int, width: int, centre_x: float, tall: float = 0.8) -> np.ndarray:
    """A standing person's outline, `tall` of the frame high, centred at `centre_x` (pixels)."""
    mask = np.zeros((height, width), np.uint8)
    size = tall * height
    top = height - size - 0.02 * height if tall <= FEET_ON_FLOOR else 0.05 * height
    cx = int(round(centre_x))
    head = int(size * 0.08)
    cv2.circle(mask, (cx, int(top + head)), head, 1, -1)
    shoulders = 0.13 + 0.2 * min(1.0, max(0.0, tall - FEET_ON_FLOOR))  # seen close, they fill the view
    cv2.ellipse(mask, (cx, int(top + size * 0.42)), (int(size * shoulders), int(size * 0.24)), 0, 0, 360, 1, -1)
    leg_top, leg_bottom = int(top + size * 0.6), int(top + size)
    leg = int(size * 0.05)
    cv2.rectangle(mask, (cx - 2 * leg, leg_top), (cx - leg // 2, leg_bottom), 1, -1)
    cv2.rectangle(mask, (cx + leg // 2, leg_top), (cx + 2 * leg, leg_bottom), 1, -1)
    return mask.astype(bool)


def _smooth_noise(generator: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Noise in 0..1 that varies over about `cell` pixels."""
    coarse = generator.random((max(2, height // cell), max(2, width // cell)), np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def gallery_room(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A room with nobody in it, (height, width, 3) uint8 RGB: a mottled wall with three framed
    paintings (colour fields), a bench, a plank floor with grain (corners for the camera-motion
    test to track; textures for the dream)."""
    generator = np.random.default_rng(seed)
    wall = 0.75 + 0.1 * _smooth_noise(generator, height, width, max(4, width // 12))
    room = wall[..., None] * np.array([225, 215, 195], np.float32)
    floor = int(0.72 * height)
    rows = np.arange(height - floor, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    wobble = 3 * _smooth_noise(generator, height - floor, width, max(2, width // 40))
    grain = 0.5 + 0.5 * np.sin(cols / max(1.0, width / 90) + wobble)
    planks = (rows / max(1.0, height / 30)).astype(int) % 2 * 0.12
    room[floor:] = (0.55 + 0.15 * grain + planks)[..., None] * np.array([150, 100, 60], np.float32)
    cv2.line(room, (0, floor), (width, floor), (70, 55, 40), max(1, height // 90))
    for left, right, top, bottom in ((0.06, 0.24, 0.18, 0.5), (0.36, 0.62, 0.12, 0.42), (0.74, 0.92, 0.2, 0.55)):
        x0, x1, y0, y1 = int(left * width), int(right * width), int(top * height), int(bottom * height)
        cv2.rectangle(room, (x0 - 3, y0 - 3), (x1 + 3, y1 + 3), (60, 45, 30), -1)
        colours = generator.random((3, 3)).astype(np.float32) * 200 + 30
        cell = max(2, (x1 - x0) // 6)
        weights = np.stack([_smooth_noise(generator, y1 - y0, x1 - x0, cell) for _ in range(3)], axis=2)
        room[y0:y1, x0:x1] = weights @ colours / weights.sum(axis=2, keepdims=True).clip(1e-3)
    bench_top = (int(0.58 * width), int(0.66 * height)), (int(0.86 * width), int(0.7 * height))
    cv2.rectangle(room, *bench_top, (80, 70, 65), -1)
    for leg in (0.6, 0.83):
        cv2.rectangle(room, (int(leg * width), int(0.7 * height)), (int((leg + 0.02) * width), int(0.8 * height)),
                      (70, 60, 55), -1)
    return np.clip(room, 0, 255).astype(np.uint8)


def bare_wall(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A plain wall, as many installations have: a faint, smooth unevenness and nothing to track
    a camera's motion by (its corners are the camera's noise)."""
    generator = np.random.default_rng(seed)
    unevenness = cv2.GaussianBlur(generator.normal(0.0, 6.0, (height, width, 3)).astype(np.float32), (0, 0), 8)
    return np.clip(np.array([205, 200, 190], np.float32) + unevenness, 0, 255).astype(np.uint8)


def _clothes(height: int, width: int, shift_px: float = 0.0) -> np.ndarray:
    """Striped, shaded cloth: a colour the room does not have, with texture to dream on; moved
    `shift_px` to the right."""
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :] - shift_px
    stripes = 0.5 + 0.5 * np.sin(rows / 3.0 + cols / 9.0)
    cloth = np.stack([40 + 150 * stripes, 60 + 40 * stripes, 170 - 90 * stripes], axis=2)
    return np.broadcast_to(cloth, (height, width, 3)).astype(np.float32)


def _centre_x(t: float, schedule: Schedule, width: int, figure: Figure) -> float | None:
    """Where `figure` stands at `t` seconds (pixels), or None while it is out of the room."""
    half_width = 0.25 * figure.tall * width * 9 / 16 + 0.02 * width  # wholly outside beyond this
    outside, standing = -half_width, figure.stand_at * width
    beyond = width + half_width
    if figure.enters_from == "right":
        outside, beyond = beyond, outside
    t -= schedule.empty
    if t < 0:
        return None
    if t < schedule.walk_in:
        return outside + (standing - outside) * t / schedule.walk_in
    t -= schedule.walk_in
    if t < schedule.stand:
        return standing + figure.sway * width * np.sin(2 * np.pi * t / SWAY_S)
    t -= schedule.stand
    if t < schedule.walk_out:
        return standing + (beyond - standing) * t / schedule.walk_out
    return None


def _part(t: float, schedule: Schedule) -> str:
    return next((name for name, _, end in schedule.parts() if t < end), "after")


def visitor_clip(room_rgb: np.ndarray, fps: float, schedule: Schedule = Schedule(), seed: int = 0,
                 figures: tuple[Figure, ...] = (Figure(),)) -> Iterator[ClipFrame]:
    """The clip's frames at the room's size, `fps` a second."""
    height, width = room_rgb.shape[:2]
    generator = np.random.default_rng(seed)
    room = room_rgb.astype(np.float32)
    clothes = _clothes(height, width)
    for index in range(int(round(schedule.seconds * fps))):
        t = index / fps
        truth = np.zeros((height, width), bool)
        frame = room
        for figure in figures:
            centre = _centre_x(t, schedule, width, figure)
            if centre is not None:
                outline = figure_silhouette(height, width, centre, figure.tall)
                cloth = _clothes(height, width, centre - figure.stand_at * width) if figure.cloth_moves else clothes
                frame = np.where(outline[..., None], cloth, frame)
                truth |= outline
        frame = frame + generator.normal(0.0, NOISE, frame.shape).astype(np.float32)
        yield ClipFrame(np.clip(frame, 0, 255).astype(np.uint8), truth, _part(t, schedule))


def panning_clip(room_rgb: np.ndarray, frames: int, size: tuple[int, int], shift_px: float,
                 zoom: float = 0.0, seed: int = 0) -> Iterator[np.ndarray]:
    """A camera moving over a room picture: `size` (height, width) views shifted `shift_px` and
    zoomed by `zoom` (a fraction) each frame, with the camera's noise."""
    height, width = size
    generator = np.random.default_rng(seed)
    for index in range(frames):
        scale = (1.0 + zoom) ** index
        matrix = np.array([[scale, 0.0, -index * shift_px], [0.0, scale, 0.0]], np.float32)
        matrix[:, 2] += (1.0 - scale) * np.array([width / 2, height / 2], np.float32)
        view = cv2.warpAffine(room_rgb, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
        noisy = view.astype(np.float32) + generator.normal(0.0, NOISE, view.shape).astype(np.float32)
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def write_clip(path: Path, room_rgb: np.ndarray, fps: int, schedule: Schedule = Schedule(),
               figures: tuple[Figure, ...] = (Figure(),), seed: int = 0) -> list[ClipFrame]:
    """The clip as an H.264 file (near-lossless, as a camera recording would be); its frames."""
    import av

    frames = list(visitor_clip(room_rgb, fps, schedule, seed, figures))
    height, width = room_rgb.shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "10", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, fps)
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return frames


def main(argv: list[str] | None = None) -> int:
    """`python -m livedream.testing.visitor_clip OUT.mp4 [WxH]`: the walk-in clip in the generated gallery."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    width, height = (int(n) for n in (args[1] if len(args) > 1 else "640x360").split("x"))
    frames = write_clip(Path(args[0]), gallery_room(height, width), 10)
    print(f"{args[0]}: {len(frames)} frames at 10 fps, {width}x{height}: the room {Schedule().empty:.0f} s, "
          f"a figure walking in, standing {Schedule().stand:.0f} s, leaving")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
