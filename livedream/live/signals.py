"""SIGINT / SIGTERM during a show: finish the frame, then stop; a second signal stops at once."""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable, Protocol

STOP_CHECK_S = 0.05  # longest sleep between looks at the stop flag


class Stoppable(Protocol):
    @property
    def stopping(self) -> bool: ...

    def stop(self, reason: str = "stop") -> None: ...


class SignalsStopLoop:
    """While inside: SIGINT/SIGTERM ask the loop to stop after this frame; a second one
    interrupts at once. Only the main thread can own signals; elsewhere this does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, app: Stoppable) -> None:
        self._app = app
        self._previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: object) -> None:
        # A plain flag, no locks: a handler can run in the middle of any bytecode.
        if self._app.stopping:
            raise KeyboardInterrupt  # asked twice: the user means it
        self._app.stop(f"signal {signal.Signals(signum).name}")


def sleep_unless_stopped(seconds: float, stopping: Callable[[], bool]) -> None:
    """Sleep `seconds` (nothing if ≤ 0), waking every STOP_CHECK_S to see whether to stop."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not stopping() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, STOP_CHECK_S))
