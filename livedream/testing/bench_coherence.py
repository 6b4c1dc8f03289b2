"""`python tools/bench.py --coherence`: how well a video dream sticks to what moves.

A clip with exactly known motion: the sample photo panning (the camera moves right by PAN_PX
a frame) with a textured disc crossing it faster (OBJECT_PX a frame). For each dreamer:

- warp ratio = change between consecutive output frames that the true motion does not explain,
  over how much the dream changed the frame (mean |dream − source|), on the background (both
  frames background, the column the pan reveals left out) and on the disc;
- trail = correlation of the dream's detail on the background the disc uncovered this frame
  with the disc's detail that was there the frame before (0: nothing smeared behind it);
- objective gain = the default objective's loss on the dream over the source's;
- sharpness = mean |Laplacian| of the dream over the source's.

Dreamers: naive (every frame from scratch with the carried frames' steps), today's carry
without its occlusion check, and today's (`livedream dream CLIP`'s defaults). The README's
"earlier release" row ran this clip and these metrics on the previous release's dreamer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PAN_PX, OBJECT_PX = 2, 6  # per frame, in output pixels
SIZE = (192, 256)  # (height, width) of the clip
RADIUS = 28
RATE = 25.0


@dataclass(frozen=True)
class Clip:
    frames: list[np.ndarray]  # uint8 RGB
    discs: list[tuple[float, float]]  # the disc's centre (x, y) in each frame


def make_clip(count: int = 24) -> Clip:
    """`count` frames; the disc stays wholly inside the frame for up to 36."""
    from livedream.media.pictures import read_image
    from livedream.pipeline.images import SAMPLE_PHOTO

    height, width = SIZE
    photo = cv2.resize(read_image(SAMPLE_PHOTO), (width + PAN_PX * count + 8, height + 8), interpolation=cv2.INTER_AREA)
    rows, columns = np.mgrid[0:2 * RADIUS, 0:2 * RADIUS]
    # the disc shows the astronaut's face and mission patch, mirrored: real texture, unlike its background
    texture = cv2.resize(read_image(SAMPLE_PHOTO)[40:300, 120:380], (2 * RADIUS, 2 * RADIUS))[:, ::-1]
    inside = (rows - RADIUS + 0.5) ** 2 + (columns - RADIUS + 0.5) ** 2 < RADIUS ** 2
    frames, discs = [], []
    for t in range(count):
        frame = photo[4:4 + height, t * PAN_PX:t * PAN_PX + width].copy()
        x, y = RADIUS + 4 + OBJECT_PX * t, height // 2  # always wholly inside the frame
        frame[y - RADIUS:y + RADIUS, x - RADIUS:x + RADIUS][inside] = texture[inside]
        frames.append(frame)
        discs.append((x, y))
    return Clip(frames, discs)


def disc_mask(centre: tuple[float, float], margin: float = 0.0) -> np.ndarray:
    height, width = SIZE
    rows, columns = np.mgrid[0:height, 0:width]
    return (columns - centre[0] + 0.5) ** 2 + (rows - centre[1] + 0.5) ** 2 < (RADIUS + margin) ** 2


def warp_ratios(dreamed: list[np.ndarray], clip: Clip) -> dict[str, float]:
    """Mean over frame pairs of each region's unexplained change over the dream amount."""
    height, width = SIZE
    regions: dict[str, list[float]] = {"background": [], "object": [], "trail": []}
    for t in range(1, len(dreamed)):
        now, before = dreamed[t].astype(np.float32), dreamed[t - 1].astype(np.float32)
        amount = np.abs(now - clip.frames[t].astype(np.float32)).mean(axis=2)
        disc_now, disc_before = disc_mask(clip.discs[t], 2), disc_mask(clip.discs[t - 1], 2)
        # background: content moves left by PAN_PX; the disc moves right by OBJECT_PX (in frame pixels)
        moved_background = np.zeros_like(now)
        moved_background[:, :width - PAN_PX] = before[:, PAN_PX:]
        moved_disc = np.zeros_like(now)
        moved_disc[:, OBJECT_PX:] = before[:, :width - OBJECT_PX]
        valid = np.ones((height, width), bool)
        valid[:, width - PAN_PX - 2:] = False  # the column the pan reveals
        was_disc = np.roll(disc_before, -PAN_PX, axis=1)  # where the disc was, in this frame's background
        background = valid & ~disc_now & ~was_disc
        uncovered = valid & ~disc_now & np.roll(disc_mask(clip.discs[t - 1], -2), -PAN_PX, axis=1)
        inner_disc = disc_mask(clip.discs[t], -3)
        if uncovered.any():  # the disc's old detail left behind on the background it uncovered
            detail_now = (now - clip.frames[t].astype(np.float32))[uncovered].ravel()
            detail_before = np.zeros_like(now)
            detail_before[:, :width - PAN_PX] = (before - clip.frames[t - 1].astype(np.float32))[:, PAN_PX:]
            left_behind = detail_before[uncovered].ravel()
            regions["trail"].append(float(np.corrcoef(detail_now, left_behind)[0, 1]))
        for name, mask, moved in (("background", background, moved_background), ("object", inner_disc, moved_disc)):
            if mask.any():
                change = np.abs(now - moved).mean(axis=2)[mask].mean()
                regions[name].append(float(change / max(amount[mask].mean(), 1e-6)))
    return {name: float(np.mean(values)) for name, values in regions.items()}


def sharpness(rgb: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())


def scores(dreamed: list[np.ndarray], clip: Clip, engine) -> dict[str, float]:
    from livedream.pipeline.images import to_nchw
    from livedream.runtime.engine import NO_VISITORS

    def loss(rgb: np.ndarray) -> float:
        return engine.gradient(to_nchw(rgb), NO_VISITORS)[0]

    gain = np.mean([loss(d) / loss(s) for d, s in zip(dreamed, clip.frames)])
    sharp = np.mean([sharpness(d) / sharpness(s) for d, s in zip(dreamed, clip.frames)])
    return {**warp_ratios(dreamed, clip), "gain": float(gain), "sharpness": float(sharp)}


def dream_clip(clip: Clip, engine, kind: str, seed: int = 0, frame_steps: int | None = None,
               half_life: float | None = None) -> list[np.ndarray]:
    """The clip dreamed by `livedream dream`'s defaults: "naive" (nothing carried), "no
    occlusion check" (today's carry without it) or "today"."""
    from livedream.cli.dream import STILL
    from livedream.offline.photo import VIDEO_HALF_LIFE_S
    from livedream.offline.video import VideoFrames, frame_settings, video_warper

    later = frame_settings(STILL, frame_steps)
    half_life = 0.0 if kind == "naive" else VIDEO_HALF_LIFE_S if half_life is None else half_life
    warper = video_warper(occlusion=kind != "no occlusion check")
    # naive: every frame is a first frame, but with the later frames' steps (what a per-frame
    # dream of the same cost would do)
    frames = VideoFrames(engine, later if kind == "naive" else STILL, later, half_life, RATE, seed, warper)
    return [frames.dream_frame(frame) for frame in clip.frames]


def contact_sheet(clip: Clip, rows: dict[str, list[np.ndarray]], every: int = 6) -> np.ndarray:
    """One row per dreamer (the source first), every `every`-th frame, each labelled."""
    from livedream.offline.channels import labelled

    picks = range(every - 1, len(clip.frames), every)
    lines = [np.hstack([labelled(frames[t], f"{name}, frame {t}") for t in picks])
             for name, frames in {"source": clip.frames, **rows}.items()]
    return np.vstack(lines)


def run(count: int = 24, sheet: Path | None = None) -> dict[str, dict[str, float]]:
    import sys

    from livedream.manifest import DEFAULT_MODEL
    from livedream.offline.model import open_engine

    clip = make_clip(count)
    engine = open_engine(DEFAULT_MODEL, "cpu", 512)
    results, dreams = {}, {}
    for kind in ("naive", "no occlusion check", "today"):
        print(f"dreaming the known-motion clip: {kind} …", file=sys.stderr, flush=True)
        dreams[kind] = dream_clip(clip, engine, kind)
        results[kind] = scores(dreams[kind], clip, engine)
    if sheet is not None:
        from livedream.offline.imageio import write_photo

        write_photo(sheet, contact_sheet(clip, {"naive": dreams["naive"], "today": dreams["today"]}))
    print(f"\nCoherence on a clip of known motion ({count} frames, {SIZE[1]}x{SIZE[0]}, pan {PAN_PX} px and a disc "
          f"{OBJECT_PX} px a frame; `livedream dream` defaults). Warp ratio: unexplained change / dream amount")
    print(f"{'dreamer':<20} {'background':>11} {'object':>8} {'trail':>7} {'gain':>6} {'sharpness':>10}")
    for kind, row in results.items():
        print(f"{kind:<20} {row['background']:>11.3f} {row['object']:>8.3f} {row['trail']:>7.3f} "
              f"{row['gain']:>6.2f} {row['sharpness']:>10.2f}")
    return results
