"""What each output costs per frame: the loop's share (the copy into the worker) and the
worker's (encode, convert, send), side by side, per frame size. `tools/bench.py --outputs`.

Outputs that need hardware or another OS (virtual camera, Spout, Syphon) are listed as
skipped with the reason, never guessed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livedream.config import NdiConfig
from livedream.errors import UserError
from livedream.outputs.recording import Recorder
from livedream.outputs.seam import Output, OutputWorker

FRAMES = 60


@dataclass(frozen=True)
class OutputRow:
    output: str
    size: tuple[int, int]  # height, width
    loop_ms: float  # median cost of handing a frame over, on the loop's thread
    worker_ms: float  # median cost of one send, on the output's thread
    frame_ms_at_30fps: float = 1000 / 30

    @property
    def worker_share(self) -> float:
        """The worker's time as a share of a 30 fps frame: above 1 it drops frames."""
        return self.worker_ms / self.frame_ms_at_30fps


def pictures(height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift, axis=1) for shift in range(0, 8 * FRAMES, 8)]


def measure(output: Output, height: int, width: int) -> OutputRow:
    worker = OutputWorker(output)
    loop, sent = [], []
    for picture in pictures(height, width):
        started = time.perf_counter()
        worker.offer(picture)
        loop.append((time.perf_counter() - started) * 1000)
        worker.flush(10.0)  # one at a time: the worker's figure is its own, not a queue's
        sent.append(worker.send_ms)
    worker.close()
    return OutputRow(output.name, (height, width), statistics.median(loop), statistics.median(sent[1:]))


def candidates(folder: Path) -> tuple[list[Output], dict[str, str]]:
    recorder = Recorder(folder, fps=30, segment_seconds=3600)
    recorder.start("bench.mp4")
    chosen: list[Output] = [recorder]
    skipped = {"virtual camera": "needs v4l2loopback / OBS's virtual camera device",
               "Spout": "Windows only", "Syphon": "macOS only"}
    try:
        from livedream.outputs.ndi import NdiOutput

        chosen.append(NdiOutput(NdiConfig(enabled=True, name="LiveDream bench")))
    except UserError as error:
        skipped["NDI"] = str(error)
    return chosen, skipped


def render(rows: list[OutputRow], skipped: dict[str, str]) -> None:
    print("\nOutputs: cost per frame (loop = handing the frame over; worker = on the output's own thread)")
    print(f"{'output':<20} {'size':>9} {'loop ms':>8} {'worker ms':>10} {'of a 30 fps frame':>18}")
    for row in rows:
        print(f"{row.output:<20} {row.size[0]:>4}x{row.size[1]:<4} {row.loop_ms:>8.2f} {row.worker_ms:>10.2f} "
              f"{row.worker_share:>17.0%}")
    for name, reason in skipped.items():
        print(f"{name:<20} skipped: {reason}")


def run(sizes: list[tuple[int, int]]) -> list[OutputRow]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for height, width in sizes:
            outputs, skipped = candidates(Path(folder) / f"{height}x{width}")
            for output in outputs:
                print(f"measuring output {output.name} at {height}x{width} …", file=sys.stderr, flush=True)
                rows.append(measure(output, height, width))
    render(rows, skipped)
    return rows
