"""Large frames: seconds per video frame and peak memory at 1080p and 2160p, CPU (GPU when lent).

Each size runs in its own process (peak RSS is per process): a first frame, then
`--frames` carried frames with `livedream dream`'s video settings (tiles of 512 keep the
gradient's memory bounded; the image itself is the only full-size buffer). The table
shows both, with the megapixels beside them so the growth per pixel reads at a glance.
`tools/bench.py --large 1080x1920,2160x3840`.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np

LARGE_STEPS = 4  # first frame; carried frames take 1 (`--frame-steps 1`), as a long render would


def measure(height: int, width: int, frames: int, device: str) -> dict:
    """In this process: the dream of `frames` + 1 frames of a moving picture at height x width."""
    from livedream.manifest import DEFAULT_MODEL
    from livedream.offline.model import open_engine
    from livedream.offline.photo import VIDEO_HALF_LIFE_S
    from livedream.offline.video import VideoFrames, frame_settings
    from livedream.pipeline.dream import AscentSettings

    settings = AscentSettings(steps=LARGE_STEPS, step_size=0.02, octaves=4, octaves_above=0, octave_scale=1.3, tile=512)
    engine = open_engine(DEFAULT_MODEL, device, settings.tile)
    dreamer = VideoFrames(engine, settings, frame_settings(settings, 1), VIDEO_HALF_LIFE_S, 25.0, seed=0)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width + 8 * (frames + 1), 3), dtype=np.uint8)
    times = []
    for index in range(frames + 1):
        started = time.perf_counter()
        dreamer.dream_frame(np.ascontiguousarray(base[:, index * 8: index * 8 + width]))
        times.append(time.perf_counter() - started)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"height": height, "width": width, "first_s": times[0], "carried_s": float(np.median(times[1:])),
            "peak_rss_mib": peak_mib, "provider": engine.provider}


def run(sizes: list[tuple[int, int]], frames: int = 1, device: str = "auto") -> list[dict]:
    rows = []
    for height, width in sizes:
        print(f"measuring a {width}x{height} video frame …", file=sys.stderr, flush=True)
        code = (f"import json; from livedream.testing.bench_large import measure; "
                f"print(json.dumps(measure({height}, {width}, {frames}, {device!r})))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"\nLarge frames ({LARGE_STEPS} steps on the first frame, 1 on each carried frame, 4 octaves, tiles of 512)")
    print(f"{'size':>10} {'MP':>5} {'first s':>8} {'carried s/frame':>16} {'peak RSS MiB':>13}  provider")
    for row in rows:
        megapixels = row["height"] * row["width"] / 1e6
        print(f"{row['width']:>5}x{row['height']:<4} {megapixels:>5.1f} {row['first_s']:>8.1f} {row['carried_s']:>16.1f} "
              f"{row['peak_rss_mib']:>13.0f}  {row['provider']}")
    return rows
