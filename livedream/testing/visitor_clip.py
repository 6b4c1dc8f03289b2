"""A clip whose truth is known: a still room, a figure walking in, standing, walking out.

Tests judge the visitor mask against the figure's own silhouette (`truth`), and the README's
where = visitors / room pictures are dreamed from it. The room is a photo with sensor noise
each frame, as a camera sees it; the figure is a person's outline (head, body, legs) in
striped clothes, so neither is a flat colour a threshold would find.
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


@dataclass(frozen=True)
class ClipFrame:
    rgb: np.ndarray  # (H, W, 3) uint8
    truth: np.ndarray  # (H, W) bool: where the figure is
    part: str  # "empty", "walk_in", "stand", "walk_out" or "after"


def figure_silhouette(height: int, width: int, centre_x: float) -> np.ndarray:
    """A standing person's outline, 0.8 of the frame tall, centred at `centre_x` (pixels)."""
    mask = np.zeros((height, width), np.uint8)
    tall = 0.8 * height
    top = height - tall - 0.02 * height
    cx = int(round(centre_x))
    head = int(tall * 0.08)
    cv2.circle(mask, (cx, int(top + head)), head, 1, -1)
    cv2.ellipse(mask, (cx, int(top + tall * 0.42)), (int(tall * 0.13), int(tall * 0.24)), 0, 0, 360, 1, -1)
    leg_top, leg_bottom = int(top + tall * 0.6), int(top + tall)
    leg = int(tall * 0.05)
    cv2.rectangle(mask, (cx - 2 * leg, leg_top), (cx - leg // 2, leg_bottom), 1, -1)
    cv2.rectangle(mask, (cx + leg // 2, leg_top), (cx + 2 * leg, leg_bottom), 1, -1)
    return mask.astype(bool)


def _clothes(height: int, width: int) -> np.ndarray:
    """Striped, shaded cloth: a colour the room does not have, with texture to dream on."""
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    stripes = 0.5 + 0.5 * np.sin(rows / 3.0 + cols / 9.0)
    cloth = np.stack([40 + 150 * stripes, 60 + 40 * stripes, 170 - 90 * stripes], axis=2)
    return np.broadcast_to(cloth, (height, width, 3)).astype(np.float32)


def _centre_x(t: float, schedule: Schedule, width: int) -> float | None:
    """Where the figure stands at `t` seconds, or None while the room is empty."""
    outside, standing = -0.2 * width, 0.5 * width
    t -= schedule.empty
    if t < 0:
        return None
    if t < schedule.walk_in:
        return outside + (standing - outside) * t / schedule.walk_in
    t -= schedule.walk_in
    if t < schedule.stand:
        return standing
    t -= schedule.stand
    if t < schedule.walk_out:
        return standing + (width * 1.2 - standing) * t / schedule.walk_out
    return None


def _part(t: float, schedule: Schedule) -> str:
    ends = np.cumsum([schedule.empty, schedule.walk_in, schedule.stand, schedule.walk_out])
    names = ("empty", "walk_in", "stand", "walk_out")
    return next((name for name, end in zip(names, ends) if t < end), "after")


def visitor_clip(room_rgb: np.ndarray, fps: float, schedule: Schedule = Schedule(),
                 seed: int = 0) -> Iterator[ClipFrame]:
    """The clip's frames at the room photo's size, `fps` a second."""
    height, width = room_rgb.shape[:2]
    generator = np.random.default_rng(seed)
    room = room_rgb.astype(np.float32)
    clothes = _clothes(height, width)
    for index in range(int(round(schedule.seconds * fps))):
        t = index / fps
        centre = _centre_x(t, schedule, width)
        truth = np.zeros((height, width), bool) if centre is None else figure_silhouette(height, width, centre)
        frame = np.where(truth[..., None], clothes, room)
        frame = frame + generator.normal(0.0, NOISE, frame.shape).astype(np.float32)
        yield ClipFrame(np.clip(frame, 0, 255).astype(np.uint8), truth, _part(t, schedule))


def panning_clip(room_rgb: np.ndarray, frames: int, size: tuple[int, int], shift_px: float,
                 zoom: float = 0.0, seed: int = 0) -> Iterator[np.ndarray]:
    """A camera moving over a room photo: `size` (height, width) views shifted `shift_px` and
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


def write_clip(path: Path, room_rgb: np.ndarray, fps: int, schedule: Schedule = Schedule()) -> list[ClipFrame]:
    """The clip as an H.264 file (near-lossless, as a camera recording would be); its frames."""
    import av

    frames = list(visitor_clip(room_rgb, fps, schedule))
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
    """`python -m livedream.testing.visitor_clip OUT.mp4 [WxH]`: the walk-in clip over the sample photo."""
    import sys

    from livedream.media.pictures import read_image
    from livedream.pipeline.images import SAMPLE_PHOTO

    args = sys.argv[1:] if argv is None else argv
    width, height = (int(n) for n in (args[1] if len(args) > 1 else "640x360").split("x"))
    room = cv2.resize(read_image(SAMPLE_PHOTO), (width, height), interpolation=cv2.INTER_AREA)
    frames = write_clip(Path(args[0]), room, 10)
    print(f"{args[0]}: {len(frames)} frames at 10 fps, {width}x{height}: the room {Schedule().empty:.0f} s, "
          f"a figure walking in, standing {Schedule().stand:.0f} s, leaving")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
