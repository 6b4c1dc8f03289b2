"""Is the dream visible? The live app as `livedream` runs it, then measured against its source.

    python tools/look.py --seconds 30            # = python -m livedream.testing.look
    python tools/look.py --seconds 30 --out look # also writes look/shown.png, source.png, side.png

It opens the app from the config (adaptive quality included), runs it headless for the
given seconds, and compares the last frame shown with the source frame it was dreamed from,
at the shown (window) resolution:

- mean |shown − source|: how far the dream moved the picture, in grey levels;
- high-frequency energy (mean squared Laplacian) of the detail (shown − source) against the
  source's own: patterns at the screen's resolution, not a blur of a small picture.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from livedream.config import apply_overrides, config_path_or_default, load_config  # noqa: E402
from livedream.control.hub import ControlHub  # noqa: E402
from livedream.errors import UserError  # noqa: E402
from livedream.live.build import open_app  # noqa: E402
from livedream.pipeline.images import cropped_to_aspect  # noqa: E402


def high_frequency_energy(rgb_or_signed: np.ndarray) -> float:
    """Mean squared Laplacian of the grey picture (signed detail works too)."""
    grey = rgb_or_signed.astype(np.float32).mean(axis=2)
    return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))


def visibility(shown: np.ndarray, source: np.ndarray) -> dict[str, float]:
    """The figures above for `shown` against `source` scaled to its size."""
    source = cv2.resize(source, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_AREA)
    detail = shown.astype(np.float32) - source.astype(np.float32)
    return {
        "mean_abs": float(np.abs(detail).mean()),
        "detail_hf": high_frequency_energy(detail),
        "source_hf": high_frequency_energy(source),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for shown.png, source.png and side.png")
    args = parser.parse_args(argv)
    try:
        config = apply_overrides(load_config(config_path_or_default(args.config)), display__fullscreen=False)
        with contextlib.closing(ControlHub(config)) as hub, open_app(
            config, controls=[hub], recall_preset=hub.select_preset, models=hub.preset_models(), open_devices=False,
        ) as app:
            stats = app.run(max_seconds=args.seconds)
            shown = app.shown_image.copy()
            frame = app.source_frame
    except UserError as error:
        print(f"look: error: {error}", file=sys.stderr)
        return 2
    if frame is None:
        print("look: error: no source frame was read; check [source]", file=sys.stderr)
        return 2
    # The shown picture's own aspect, not the budget's box: the dream fits the box at the
    # source's aspect, rounded to even sizes, and the app cuts the source to exactly that.
    source = np.ascontiguousarray(cropped_to_aspect(frame.image, shown.shape[0], shown.shape[1]))
    figures = visibility(shown, source)
    print(stats.summary())
    print(f"look after {args.seconds:g} s at {shown.shape[1]}x{shown.shape[0]}: mean |shown − source| "
          f"{figures['mean_abs']:.1f} grey levels; high-frequency energy of the detail {figures['detail_hf']:.0f} "
          f"(the source's own: {figures['source_hf']:.0f})")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        source = cv2.resize(source, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_AREA)
        for name, image in (("shown", shown), ("source", source), ("side", np.hstack([source, shown]))):
            cv2.imwrite(str(args.out / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(f"  pictures in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
