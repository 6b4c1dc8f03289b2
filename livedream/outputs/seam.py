"""The output seam: the `Output` contract, a thread per output, and the fan-out the loop calls.

An output's own work (encoding, a network send, a GPU texture copy) never delays the frame
loop: `Outputs.send` copies the frame into the worker's pending buffer and returns. A worker
that is still sending when the next frame comes only ever sends the newest one; the ones it
skipped are counted as dropped. A failure logs once, waits (1 s, 2 s, 4 s … 30 s) and retries,
so a projector's NDI receiver that vanishes or a full USB bus never stops the show.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # waits after the 1st, 2nd, … failure in a row


class Output(Protocol):
    """A place frames go. `send` runs on the output's own thread and may raise (it is retried);
    `close` finishes whatever is open (a recording's segment) and frees the device."""

    @property
    def name(self) -> str:
        """Short, for the HUD and the log: "NDI LiveDream", "recording", "Spout LiveDream"."""
        ...

    @property
    def active(self) -> bool:
        """False while it wants no frames (a recorder that is not recording): nothing is copied."""
        ...

    @property
    def status(self) -> str:
        """Its HUD line ("REC 120 frames, segment 2"); "" for the plain "name: cost" line, or none when idle."""
        ...

    def send(self, frame_rgb: np.ndarray) -> None:
        """Deliver one uint8 (H, W, 3) RGB frame; the array is the worker's and stays valid meanwhile."""
        ...

    def close(self) -> None: ...


class OpaqueRgba:
    """RGB frames as RGBA with opaque alpha, in one buffer reused while the size stays (NDI,
    Spout and Syphon all take four channels)."""

    def __init__(self) -> None:
        self.buffer = np.empty((0, 0, 4), np.uint8)

    def of(self, frame_rgb: np.ndarray) -> np.ndarray:
        """The buffer holding `frame_rgb`; a new size makes a new buffer (its alpha set once)."""
        if self.buffer.shape[:2] != frame_rgb.shape[:2]:
            self.buffer = np.full((*frame_rgb.shape[:2], 4), 255, np.uint8)
        self.buffer[..., :3] = frame_rgb
        return self.buffer


class OutputWorker:
    """One output on its own thread: newest frame only, drop while busy, back off on failure."""

    def __init__(self, output: Output, clock: Callable[[], float] = time.monotonic,
                 backoff_s: Sequence[float] = BACKOFF_S) -> None:
        self.output = output
        self.sent = self.dropped = self.failures = 0
        self.send_ms = 0.0  # the last send's cost, on the worker's thread (the loop pays only the copy)
        self.problem: str | None = None  # the last failure, while it is failing
        self._clock = clock
        self._backoff_s = tuple(backoff_s)
        self._failures_in_row = 0
        self._retry_at = float("-inf")
        self._wake = threading.Condition()
        self._pending: np.ndarray | None = None  # filled by the loop
        self._sending: np.ndarray | None = None  # owned by the worker while it sends
        self._has_pending = False
        self._busy = False  # the worker is sending
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"output {output.name}", daemon=True)
        self._thread.start()

    def offer(self, frame_rgb: np.ndarray) -> None:
        """From the loop: take a copy of `frame_rgb` for the next send; never waits on the output."""
        if not self.output.active or self._clock() < self._retry_at:
            return
        with self._wake:
            if self._has_pending:
                self.dropped += 1  # the worker is still busy with an older frame: newest wins
            if self._pending is None or self._pending.shape != frame_rgb.shape:
                self._pending = np.empty_like(frame_rgb)
            np.copyto(self._pending, frame_rgb)
            self._has_pending = True
            self._wake.notify()

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is pending, then close the output (a recording's last segment is kept)."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("output %s did not finish within %.0f s; closing it anyway", self.output.name, timeout_s)
        try:
            self.output.close()
        except Exception as error:  # closing must not hide why the show stopped
            log.warning("output %s: closing failed: %s", self.output.name, error)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the pending frame is sent; False if it was not within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._wake:
            while (self._has_pending or self._busy) and time.monotonic() < deadline:
                self._wake.wait(0.01)
            return not (self._has_pending or self._busy)

    @property
    def status(self) -> str:
        """The HUD line: the failure while failing, else the output's own line, else its cost."""
        if self.problem is not None:
            return f"{self.output.name}: retrying ({self.problem})"
        if self.output.status:
            return self.output.status
        return f"{self.output.name} {self.send_ms:.1f} ms, {self.dropped} dropped" if self.output.active else ""

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._has_pending and not self._closing:
                    self._wake.wait()
                if not self._has_pending:
                    return
                self._pending, self._sending = self._sending, self._pending  # swap: the loop never waits on a send
                self._has_pending, self._busy = False, True
            self._send(self._sending)  # type: ignore[arg-type]
            with self._wake:
                self._busy = False
                self._wake.notify_all()

    def _send(self, frame: np.ndarray) -> None:
        started = time.perf_counter()
        try:
            self.output.send(frame)
        except Exception as error:  # any output's fault is the output's: the show runs on
            self._failed(error)
            return
        self.send_ms = (time.perf_counter() - started) * 1000
        self.sent += 1
        if self.problem is not None:
            log.info("output %s: working again", self.output.name)
        self.problem, self._failures_in_row = None, 0

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        wait = self._backoff_s[min(self._failures_in_row, len(self._backoff_s) - 1)]
        self._failures_in_row += 1
        self._retry_at = self._clock() + wait
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        if problem != self.problem:  # one line per new problem, not one per retry
            log.warning("output %s failed: %s; retrying in %.0f s", self.output.name, problem, wait)
        self.problem = problem


class Outputs:
    """Every enabled output; the loop calls `send` once per finished frame."""

    def __init__(self, outputs: Sequence[Output] = (), clock: Callable[[], float] = time.monotonic) -> None:
        self.workers = [OutputWorker(output, clock) for output in outputs]

    def send(self, frame_rgb: np.ndarray) -> None:
        for worker in self.workers:
            worker.offer(frame_rgb)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every output has sent what it was handed (tests, and before a recording stops)."""
        return all([worker.flush(timeout_s) for worker in self.workers])  # a list: wait for every one

    def status_lines(self) -> list[str]:
        return [line for line in (worker.status for worker in self.workers) if line]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
