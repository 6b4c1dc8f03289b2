"""What the visitor mask costs per frame, beside the dream it steers. `tools/bench.py --visitors`.

Columns, per source size: the visitor mask's update (`pipeline.visitors.VisitorMask`, on the
CPU whatever the dream runs on: OpenCV on a 160-px copy, the person model at most 10 times a
second), its mean per frame fed 10 and 30 frames a second, and one gradient of the default
graph at the dream size without a mask and with the frame's mask (the graph resizes it to each
layer: its share of the graph's time), with the ratios side by side. The source is the walk-in
clip of `testing.visitor_clip`, so the models see a figure, not an empty room.
"""

from __future__ import annotations

import statistics
import time

import cv2
import numpy as np

from livedream.manifest import DEFAULT_MODEL, default_models_dir, find_graph
from livedream.media.pictures import read_image
from livedream.pipeline.images import SAMPLE_PHOTO, to_nchw
from livedream.pipeline.visitors import VisitorMask
from livedream.testing.visitor_clip import Schedule, gallery_room, visitor_clip

GRADIENT_REPEATS = 9


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def mask_ms(size: tuple[int, int], fps: float) -> tuple[float, np.ndarray]:
    """The mean update time per frame over the clip at `size` (height, width) fed `fps` frames a
    second (the person model runs on every frame at 10, every third at 30), and a mask it made."""
    height, width = size
    visitors = VisitorMask()
    times, mask = [], None
    for frame in visitor_clip(gallery_room(height, width), fps, Schedule(empty=3.0, walk_in=1.0, stand=2.0,
                                                                          walk_out=0.0, after=0.0)):
        started = time.perf_counter()
        seen = visitors.update(frame.rgb, 1.0 / fps)
        times.append(time.perf_counter() - started)
        mask = seen.mask.copy() if seen.mask is not None else mask
    assert mask is not None
    return statistics.mean(times) * 1000, mask


def gradient_ms(engine, size: tuple[int, int], masks: tuple[np.ndarray, ...]) -> list[float]:
    """The median gradient time at `size` under each mask, measured in turn (drift hits all alike)."""
    height, width = size
    image = to_nchw(cv2.resize(read_image(SAMPLE_PHOTO), (width, height), interpolation=cv2.INTER_AREA))
    times: list[list[float]] = [[] for _ in masks]
    for repeat in range(GRADIENT_REPEATS + 1):
        for mask, samples in zip(masks, times):
            started = time.perf_counter()
            engine.gradient(image.copy(), mask)
            if repeat:  # the first round warms up
                samples.append(time.perf_counter() - started)
    return [_median_ms(samples) for samples in times]


def run(sizes: list[tuple[int, int]], dream_size: tuple[int, int] = (360, 640)) -> None:
    from livedream.runtime.engine import NO_VISITORS, Engine

    path, _ = find_graph(DEFAULT_MODEL, default_models_dir())
    engine = Engine(path, "cpu")
    print(f"The visitor mask beside the dream (CPU; the dream's gradient at {dream_size[0]}x{dream_size[1]})")
    print(f"  {'source':>10} {'mask ms 10/s':>12} {'30/s':>6} {'gradient ms':>12} {'with mask':>10} "
          f"{'mask/gradient':>14} {'in graph':>9}")
    for size in sizes:
        update, mask = mask_ms(size, 10.0)
        shown, _ = mask_ms(size, 30.0)
        plain, masked = gradient_ms(engine, dream_size, (NO_VISITORS, mask))
        print(f"  {size[0]:>4}x{size[1]:<5} {update:12.2f} {shown:6.2f} {plain:12.1f} {masked:10.1f} "
              f"{update / plain:14.4f} {masked / plain - 1:+9.1%}")
