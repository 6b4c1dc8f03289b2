"""`livedream channels --layer L`: a contact sheet of a layer's strongest channels, each
dreamed alone and labelled `layer:channel`, so an artist can pick motifs for an objective."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livedream.manifest import DEFAULT_MODEL
from livedream.objective import LAYER_CHANNELS
from livedream.offline.imageio import write_photo
from livedream.offline.model import console, open_engine
from livedream.pipeline.dream import AscentSettings, dream, guide_image
from livedream.pipeline.images import to_nchw, to_rgb
from livedream.runtime.engine import NO_VISITORS
from livedream.runtime.objective import Aim

TILE = 192  # each channel's dream, in pixels (square)
LABEL_HEIGHT = 22
COLUMNS = 4
SHEET_STEPS = AscentSettings(steps=16, step_size=0.04, octaves=3, octave_scale=1.4, tile=512, jitter=True)


@dataclass(frozen=True)
class SheetJob:
    layer: str
    output: Path
    count: int = 12
    source: np.ndarray | None = None  # uint8 RGB to dream on; None = grey noise (the motifs alone)
    device: str = "auto"
    seed: int = 0
    model: str = DEFAULT_MODEL  # the default graph gives way to the deep one for mixed6 and deeper


def strongest_channels(engine, layer: str, image: np.ndarray, count: int) -> list[int]:
    """The `count` channels of `layer` with the highest mean activation on `image`."""
    engine.gradient(image, NO_VISITORS)
    index = engine.objective.layers.index(layer)
    start, end = engine.objective.offsets[index], engine.objective.offsets[index + 1]
    return [int(c) for c in np.argsort(engine.channel_means[start:end])[::-1][:count]]


def labelled(rgb: np.ndarray, label: str) -> np.ndarray:
    strip = np.full((LABEL_HEIGHT, rgb.shape[1], 3), 16, np.uint8)
    cv2.putText(strip, label, (6, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([rgb, strip])


def contact_sheet(tiles: list[np.ndarray], columns: int = COLUMNS) -> np.ndarray:
    rows = -(-len(tiles) // columns)
    height, width = tiles[0].shape[:2]
    sheet = np.full((rows * height, columns * width, 3), 8, np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        sheet[row * height:(row + 1) * height, column * width:(column + 1) * width] = tile
    return sheet


def channel_sheet(job: SheetJob) -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(job.seed)
    if job.source is None:
        start_rgb = np.clip(128 + rng.normal(0, 12, (TILE, TILE, 3)), 0, 255).astype(np.uint8)
    else:
        start_rgb = cv2.resize(job.source, (TILE, TILE), interpolation=cv2.INTER_AREA)
    engine = open_engine(job.model, job.device, SHEET_STEPS.tile, objective=((job.layer, 1.0),))
    ranking_image = job.source if job.source is not None else start_rgb
    channels = strongest_channels(engine, job.layer, guide_image(ranking_image, engine.min_size), job.count)
    base = to_nchw(start_rgb)
    tiles = []
    for number, channel in enumerate(channels, 1):
        engine.objective.set(Aim(((f"{job.layer}:{channel}", 1.0),)))
        detail, _ = dream(engine, base, SHEET_STEPS, np.random.default_rng(job.seed))
        tiles.append(labelled(to_rgb(np.clip(base + detail, -1, 1)), f"{job.layer}:{channel}"))
        console.print(f"{number}/{len(channels)}  {job.layer}:{channel}")
    write_photo(job.output, contact_sheet(tiles))
    console.print(f"wrote {job.output}: the {len(channels)} strongest channels of {job.layer} "
                  f"({LAYER_CHANNELS[job.layer]} in all) in {time.perf_counter() - started:.0f} s")
