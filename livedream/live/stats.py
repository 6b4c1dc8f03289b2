"""What the live loop measured: stage times, source frame counts, fps, and the exit summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from livedream.params import NOMINAL_FRAME_S

STAGES = ("capture", "flow", "dream", "display")


@dataclass(frozen=True)
class RunStats:
    """What one `LiveApp.run` did. Stage times are medians over the last `StageTimes.WINDOW` frames."""

    frames: int  # frames shown
    dreamed: int  # frames that ran the dreamer (fewer when paused)
    seconds: float
    fps: float  # frames shown per second
    stage_ms: Mapping[str, float]  # median ms per stage, keys = STAGES
    source_frames: int  # distinct source frames that passed while running
    dropped: int  # source frames never read (the dream was slower than the source)
    reused: int  # reads that returned the frame already read (the source was slower)
    stopped_by: str  # "frames", "seconds", "quit", "signal SIGTERM", …
    dream_size: tuple[int, int]  # (height, width) at the end, after any budget cut
    provider: str
    screenshots: tuple[Path, ...] = ()
    quality: str | None = None  # what adaptive quality chose and why (None = off)

    def summary(self) -> str:
        """A few lines for the terminal on exit."""
        stages = "  ".join(f"{name} {self.stage_ms[name]:.1f}" for name in STAGES)
        total_ms = sum(self.stage_ms.values())
        height, width = self.dream_size
        return "\n".join([
            f"LiveDream: {self.frames} frames in {self.seconds:.1f} s = {self.fps:.2f} fps "
            f"({self.dreamed} dreamed at {width}x{height} on {self.provider or '?'}; stopped by {self.stopped_by})",
            f"  median ms/frame: {stages}  total {total_ms:.1f}"
            + (f" (= {1000 / total_ms:.1f} fps once warm; the figure above includes start-up)" if total_ms > 0 else ""),
            f"  source frames {self.source_frames}: dropped {self.dropped}, read again {self.reused}",
            *([f"  {self.quality}"] if self.quality else []),
            *(f"  screenshot {path}" for path in self.screenshots),
        ])


class StageTimes:
    """The last WINDOW milliseconds of each stage in preallocated rings, for medians."""

    WINDOW = 600

    def __init__(self) -> None:
        self._samples = np.zeros((len(STAGES), self.WINDOW), np.float64)
        self._counts = [0] * len(STAGES)

    def record(self, stage: str, ms: float) -> None:
        row = STAGES.index(stage)
        self._samples[row, self._counts[row] % self.WINDOW] = ms
        self._counts[row] += 1

    def median(self, stage: str, last: int = WINDOW) -> float:
        """Median of the newest `last` samples of `stage` (0 when there are none)."""
        row = STAGES.index(stage)
        count = min(self._counts[row], self.WINDOW, last)
        if count == 0:
            return 0.0
        end = self._counts[row] % self.WINDOW
        indices = np.arange(end - count, end) % self.WINDOW
        return float(np.median(self._samples[row, indices]))

    def medians(self, last: int = WINDOW) -> dict[str, float]:
        return {name: self.median(name, last) for name in STAGES}


@dataclass
class SourceCounters:
    """How the source's frame indices went by: how many passed, were skipped or read twice."""

    source_frames: int = 0
    dropped: int = 0
    reused: int = 0
    last_index: int | None = None

    def saw(self, index: int) -> None:
        if self.last_index is None or index < self.last_index:  # first frame, or the source restarted
            self.source_frames += 1
        elif index == self.last_index:
            self.reused += 1
        else:
            self.source_frames += index - self.last_index
            self.dropped += index - self.last_index - 1
        self.last_index = index


class FrameClock:
    """Seconds between consecutive dreams on the loop's clock (a fake one in tests), which turn
    the per-second feedback into one frame's share; the nominal frame time before the first."""

    def __init__(self) -> None:
        self._last: float | None = None

    def tick(self, now: float) -> float:
        frame_s = NOMINAL_FRAME_S if self._last is None else now - self._last
        self._last = now
        return frame_s


class FpsMeter:
    """Frames per second from the start times of consecutive frames, smoothed."""

    def __init__(self) -> None:
        self.fps = 0.0
        self._last_start: float | None = None

    def frame_started(self, now: float) -> None:
        if self._last_start is not None:
            interval = now - self._last_start
            instant = 1.0 / interval if interval > 0 else 0.0
            self.fps = instant if self.fps == 0 else 0.9 * self.fps + 0.1 * instant
        self._last_start = now
