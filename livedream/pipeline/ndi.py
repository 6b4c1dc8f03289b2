"""The NDI source: a TouchDesigner, OBS or vMix feed over the network, dreamed like a camera.

A receiver thread finds the named sender (`[source] ndi_source`, "MACHINE (Name)"; empty =
the first one seen), takes its newest video frame through NDI's frame sync, and hands it
over like the camera does: newest frame only, no waiting. A sender that goes away is a
state ("lost — …"), the last frame stays up, and the source keeps looking for it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.pipeline.frames import CLOSE_WAIT_S, CLOSED, LIVE, LOST, STARTING, Frame, NewestFrameSlot

log = logging.getLogger(__name__)

INSTALL_HINT = 'install NDI with: pip install "livedream[ndi]" (or: pip install cyndilib)'
FIND_WAIT_S = 1.0  # one look for senders on the network
POLL_S = 1 / 120  # how often the frame sync is asked for a newer frame


def import_cyndilib() -> Any:
    """The cyndilib module, or a one-line UserError saying how to install it."""
    try:
        import cyndilib
    except ImportError:
        raise UserError(f"NDI is not installed; {INSTALL_HINT}") from None
    return cyndilib


def matching_source(wanted: str, names: list[str]) -> str | None:
    """`wanted` among NDI's "MACHINE (Name)" list: the full name, or just the Name in
    brackets (the machine part changes from room to room); "" = the first one."""
    if not wanted:
        return names[0] if names else None
    if wanted in names:
        return wanted
    return next((name for name in names if name.endswith(f"({wanted})")), None)


class NdiSource:
    """Frames from the NDI sender `wanted` ("" = the first one found)."""

    noun = "NDI source"

    def __init__(self, wanted: str = "") -> None:
        self._ndi = import_cyndilib()
        self._wanted = wanted
        self._slot = NewestFrameSlot()
        self._state = STARTING
        self._received = False  # a frame came once: a missing sender is now "lost"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> str:
        return self._state

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ndi-source", daemon=True)
            self._thread.start()

    def read(self) -> Frame | None:
        return self._slot.newest()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT_S * 4)
        self._state = CLOSED

    def _run(self) -> None:
        finder = self._ndi.Finder()
        finder.open()
        try:
            while not self._stop.is_set():
                name = self._find(finder)
                if name is not None:
                    self._receive(finder.get_source(name), name)
        finally:
            finder.close()

    def _find(self, finder: Any) -> str | None:
        finder.wait_for_sources(FIND_WAIT_S)
        names = list(finder.get_source_names())
        chosen = matching_source(self._wanted, names)
        if chosen is None:
            wanted = f"NDI source {self._wanted!r}" if self._wanted else "an NDI source"
            self._state = f"{LOST if self._received else STARTING} — looking for {wanted}"
        return chosen

    def _receive(self, source: Any, name: str) -> None:
        """Take frames from `source` until it goes away or the source closes."""
        ndi = self._ndi
        receiver = ndi.Receiver(color_format=ndi.RecvColorFormat.RGBX_RGBA, bandwidth=ndi.RecvBandwidth.highest)
        video = ndi.VideoFrameSync()
        receiver.frame_sync.set_video_frame(video)
        receiver.set_source(source)
        log.info("NDI source: receiving %s", name)
        last_stamp = None
        try:
            while not self._stop.is_set():
                if not receiver.is_connected():
                    if last_stamp is not None:
                        self._state = f"{LOST} — NDI source {name} went away; looking again"
                        log.warning("NDI source %s went away; looking for it again", name)
                        return
                    time.sleep(POLL_S)
                    continue
                receiver.frame_sync.capture_video()
                stamp = video.get_timestamp_posix()
                if video.xres and video.yres and stamp != last_stamp:
                    last_stamp = stamp
                    self._publish(video)
                time.sleep(POLL_S)
        finally:
            receiver.disconnect()

    def _publish(self, video: Any) -> None:
        width, height = video.xres, video.yres
        rgba = np.asarray(video.get_array()).reshape(height, width, 4)
        slot, buffer = self._slot.back_buffer((height, width, 3))
        cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB, dst=buffer)
        self._slot.publish(slot, time.monotonic())
        self._state, self._received = LIVE, True
