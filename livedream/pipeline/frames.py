"""What every source hands out: the frame, the source's states, and the newest-frame hand-off.

Its own module so the sources and the NDI receiver (an optional extra) share them without
importing each other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

STARTING = "starting"
LIVE = "live"
ENDED = "ended"
CLOSED = "closed"
LOST = "lost"  # every fault state starts with this word

CLOSE_WAIT_S = 0.5  # how long close() waits for a reader thread to leave the driver


def is_lost(state: str) -> bool:
    """True for the states worth a banner (the source is showing a frozen frame)."""
    return state.startswith(LOST)


@dataclass(frozen=True, slots=True)
class Frame:
    """One RGB frame. `index` grows by one per new frame, so equal index = same pixels.

    `image` is uint8 (H, W, 3) RGB and is only valid until the next-but-one `read()`: sources
    recycle their buffers instead of allocating per frame. Copy it to keep it longer.
    """

    image: np.ndarray
    index: int
    timestamp: float  # time.monotonic() when captured


class Source(Protocol):
    """A stream of frames; `read` never blocks on hardware."""

    noun: str  # what the banner calls it: "camera", "video", "NDI source", …

    @property
    def state(self) -> str:
        """E.g. "live", "starting", "lost — reconnecting in 2 s", "ended"; `is_lost` spots faults."""
        ...

    def start(self) -> None: ...

    def read(self) -> Frame | None:
        """The newest frame (None before the first one); the same object if nothing new came."""
        ...

    def close(self) -> None: ...


# --- hand-off of the newest frame between a capture thread and the consumer --------------


class NewestFrameSlot:
    """Keeps only the newest frame; triple buffered so neither side ever waits or allocates.

    The producer writes into a back buffer that is neither the published one nor the one
    the consumer last took, then publishes it. Nothing queues: an unread frame is simply
    overwritten by the next.
    """

    BUFFERS = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: list[np.ndarray] = []
        self._published: int | None = None
        self._held: int | None = None
        self._frame: Frame | None = None
        self._count = 0

    def back_buffer(self, shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
        """A buffer of `shape` the consumer is not using; a new shape reallocates once."""
        with self._lock:
            if not self._buffers or self._buffers[0].shape != shape:
                # The consumer may still hold an old buffer; it stays valid, we just stop reusing it.
                self._buffers = [np.zeros(shape, np.uint8) for _ in range(self.BUFFERS)]
                self._published = self._held = None
            in_use = (self._published, self._held)
            slot = next(i for i in range(self.BUFFERS) if i not in in_use)
            return slot, self._buffers[slot]

    def publish(self, slot: int, timestamp: float) -> None:
        with self._lock:
            self._count += 1
            self._published = slot
            self._frame = Frame(self._buffers[slot], self._count, timestamp)

    def newest(self) -> Frame | None:
        with self._lock:
            self._held = self._published
            return self._frame
