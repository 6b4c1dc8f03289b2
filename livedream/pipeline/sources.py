"""Where frames come from: camera, looping video file, still image, or the built-in demo.

Every source hands out the NEWEST frame without waiting on hardware. Live faults (camera
unplugged, stalled, garbage frames) are states, not exceptions: the last good frame stays
on offer, `state` says what is wrong, and the source recovers by itself.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import cv2
import numpy as np

from livedream.config import SourceConfig
from livedream.errors import UserError
from livedream.files import file_problem, native_stderr_silenced
from livedream.media.pictures import read_image
from livedream.pipeline.frames import (
    CLOSE_WAIT_S,
    CLOSED,
    ENDED,
    LIVE,
    LOST,
    STARTING,
    Frame,
    NewestFrameSlot,
    Source,
)
from livedream.pipeline.images import SAMPLE_PHOTO

log = logging.getLogger(__name__)


class Capture(Protocol):
    """The part of cv2.VideoCapture the sources use (so tests can pass a fake)."""

    def isOpened(self) -> bool: ...
    def grab(self) -> bool: ...
    def retrieve(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]: ...
    def read(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]: ...
    def set(self, prop: int, value: float) -> bool: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[Any], Capture]


# --- camera --------------------------------------------------------------------------------


def ask_for_mode(capture: Capture, width: int, height: int, fps: int) -> None:
    """Ask an open camera for a mode (it may choose another) and for the shortest queue; the
    app's cameras and `livedream doctor`'s probe ask alike, so the probe sees the app's mode."""
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    capture.set(cv2.CAP_PROP_FPS, fps)
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # drivers that honour it queue less


def open_opencv_capture(device: int | str) -> Capture:
    return cv2.VideoCapture(device)


class CameraSource:
    """A camera on its own daemon thread: grabs continuously, keeps only the newest frame.

    A failed or wrong-sized read is dropped (the last good frame stays on offer). No good
    frame for `stall_timeout` s — failing reads or a grab() that hangs — means the camera
    is lost: it is reopened with exponential back-off until frames flow again. A hung
    worker cannot be interrupted, so a fresh worker replaces it and the old one retires
    when (if ever) its call returns.
    """

    noun = "camera"

    MAX_HUNG_WORKERS = 2  # beyond this, wait for one to return instead of leaking threads

    def __init__(
        self,
        device: int | str = 0,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        capture_factory: CaptureFactory = open_opencv_capture,
        stall_timeout: float = 2.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        open_timeout: float = 10.0,
    ) -> None:
        self.device = device
        self.requested = (width, height, fps)
        self._factory = capture_factory
        self._stall_timeout = stall_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._open_timeout = open_timeout  # some drivers take seconds to open a camera
        self._slot = NewestFrameSlot()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._state = STARTING
        self._retry_at: float | None = None
        self._progress_deadline = math.inf  # the worker must report back by then, or it hangs
        self._watchdog: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._hung_workers: list[threading.Thread] = []

    # consumer side

    @property
    def state(self) -> str:
        with self._lock:
            if self._retry_at is not None:
                seconds = max(0, math.ceil(self._retry_at - time.monotonic()))
                return f"{LOST} — reconnecting in {seconds} s"
            return self._state

    def start(self) -> None:
        if self._watchdog is not None:
            return
        self._start_worker()
        self._watchdog = threading.Thread(target=self._watch, name="camera-watchdog", daemon=True)
        self._watchdog.start()

    def read(self) -> Frame | None:
        return self._slot.newest()

    def close(self) -> None:
        """Stop the threads and wait up to CLOSE_WAIT_S for them to leave the driver.

        The worker releases its capture itself on the way out: OpenCV torn down at
        interpreter exit under a thread still inside a cv2 call aborts the process (exit
        134). A worker hung inside the driver cannot be interrupted; it is left as a daemon.
        """
        self._stop.set()
        with self._lock:
            self._generation += 1  # retires the worker
            self._state, self._retry_at = CLOSED, None
        threads = [thread for thread in (self._worker, self._watchdog, *self._hung_workers) if thread is not None]
        if _join_within(threads, CLOSE_WAIT_S):
            log.warning("camera %s: a reader thread is stuck in the driver; leaving it behind", self.device)

    # worker side

    def _start_worker(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._progress_deadline = math.inf
        self._worker = threading.Thread(
            target=self._run, args=(generation,), name=f"camera-{self.device}-{generation}", daemon=True
        )
        self._worker.start()

    def _is_current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _set_state(self, generation: int, state: str, retry_at: float | None = None) -> None:
        with self._lock:
            if generation == self._generation:
                self._state, self._retry_at = state, retry_at

    def _run(self, generation: int) -> None:
        backoff = self._backoff_initial
        while self._is_current(generation):
            capture = self._open(generation)
            if capture is not None:
                try:
                    if self._stream(generation, capture):
                        backoff = self._backoff_initial  # it delivered: next loss starts afresh
                finally:
                    _release_quietly(capture)
            if not self._is_current(generation):
                return
            # Warn when the camera goes; the retries of a long outage are only worth a debug line.
            log.log(
                logging.WARNING if backoff == self._backoff_initial else logging.DEBUG,
                "camera %s lost; reconnecting in %.1f s", self.device, backoff,
            )
            self._set_state(generation, LOST, retry_at=time.monotonic() + backoff)
            self._expect_progress_within(generation, backoff + self._stall_timeout)
            self._stop.wait(backoff)
            backoff = min(self._backoff_max, backoff * 2)

    def _open(self, generation: int) -> Capture | None:
        self._set_state(generation, STARTING if self._slot.newest() is None else f"{LOST} — reconnecting")
        self._expect_progress_within(generation, self._open_timeout)
        try:
            capture = self._factory(self.device)
            if not capture.isOpened():
                _release_quietly(capture)
                return None
            ask_for_mode(capture, *self.requested)
            return capture
        except Exception:  # noqa: BLE001 - a driver fault must not kill the thread
            log.exception("camera %s: opening failed", self.device)
            return None

    def _stream(self, generation: int, capture: Capture) -> bool:
        """Grab until the camera stalls or this worker is retired; True if any frame came."""
        bgr: np.ndarray | None = None
        stream_shape: tuple[int, ...] | None = None  # set by the first good frame after opening
        last_good = time.monotonic()
        delivered = reported_error = False
        while self._is_current(generation):
            self._expect_progress_within(generation, self._stall_timeout)
            try:
                ok = capture.grab()
                if ok:
                    ok, bgr = capture.retrieve(bgr)
            except Exception:  # noqa: BLE001 - a driver fault must not kill the thread
                if not reported_error:  # once per connection: a broken driver fails 200 times a second
                    log.exception("camera %s: read failed", self.device)
                    reported_error = True
                ok = False
            now = time.monotonic()
            if ok and _is_colour_frame(bgr) and stream_shape in (None, bgr.shape):
                stream_shape = bgr.shape
                self._publish(generation, bgr, now)
                last_good, delivered = now, True
                continue
            bgr = None  # a wrong-sized buffer must not be reused as the output
            if now - last_good > self._stall_timeout:
                return delivered
            time.sleep(0.005)  # a failing driver returns at once; do not spin a core
        return delivered

    def _publish(self, generation: int, bgr: np.ndarray, timestamp: float) -> None:
        slot, rgb = self._slot.back_buffer(bgr.shape)
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=rgb)
        if self._is_current(generation):
            self._slot.publish(slot, timestamp)
            self._set_state(generation, LIVE)

    def _expect_progress_within(self, generation: int, seconds: float) -> None:
        with self._lock:
            if generation == self._generation:
                self._progress_deadline = time.monotonic() + seconds

    def _watch(self) -> None:
        """Replace a worker stuck inside a driver call past its deadline with a fresh one."""
        interval = min(0.25, self._stall_timeout / 4)
        while not self._stop.wait(interval):
            with self._lock:
                hung = time.monotonic() > self._progress_deadline
            if hung:
                self._replace_hung_worker()

    def _replace_hung_worker(self) -> None:
        self._hung_workers = [worker for worker in self._hung_workers if worker.is_alive()]
        if len(self._hung_workers) >= self.MAX_HUNG_WORKERS:
            self._set_state(self._generation, f"{LOST} — camera not responding")
            return
        log.warning("camera %s hangs; abandoning it and reconnecting", self.device)
        if self._worker is not None:
            self._hung_workers.append(self._worker)
        self._start_worker()


def _is_colour_frame(image: np.ndarray | None) -> bool:
    return image is not None and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def _join_within(threads: list[threading.Thread], seconds: float) -> bool:
    """Join `threads` within one shared deadline; True when any is still alive after it."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    return any(thread.is_alive() for thread in threads if thread is not threading.current_thread())


def _release_quietly(capture: Capture) -> None:
    try:
        capture.release()
    except Exception:  # noqa: BLE001
        log.exception("releasing a capture failed")


# --- video file ----------------------------------------------------------------------------


class VideoFileSource:
    """A video file played in a loop at its own frame rate, on a thread, like a camera."""

    noun = "video"

    def __init__(self, path: Path, capture_factory: CaptureFactory = open_opencv_capture) -> None:
        self.path = Path(path)
        self._factory = capture_factory
        capture = self._open_checked()
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 1 <= fps <= 240 else 30.0
        self._capture: Capture | None = capture
        self._slot = NewestFrameSlot()
        self._stop = threading.Event()
        self._state = STARTING
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> str:
        return self._state

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="video-file", daemon=True)
            self._thread.start()

    def read(self) -> Frame | None:
        return self._slot.newest()

    def close(self) -> None:
        """Stop playback and wait up to CLOSE_WAIT_S for the thread, which releases the capture."""
        self._stop.set()
        self._state = CLOSED
        if self._thread is None:
            if self._capture is not None:  # never started: the capture is still ours to release
                _release_quietly(self._capture)
                self._capture = None
        elif _join_within([self._thread], CLOSE_WAIT_S):
            log.warning("video %s: the decoder thread is stuck; leaving it behind", self.path)

    def _open_checked(self) -> Capture:
        problem = file_problem(self.path)
        if problem is not None:
            raise UserError(f"video {self.path} {problem}; give a video file (--video PATH or [source] path)")
        with native_stderr_silenced():  # FFmpeg prints its own complaint; ours is the one line
            capture = self._factory(str(self.path))
            opened = capture.isOpened() and capture.grab()
        if not opened:
            _release_quietly(capture)
            raise UserError(f"{self.path}: cannot be read as a video (is it a video file?)")
        capture.release()
        return self._factory(str(self.path))

    def _run(self) -> None:
        try:
            self._play_forever()
        except Exception:  # noqa: BLE001 - a decoder fault ends playback, not the app
            log.exception("video %s: playback failed", self.path)
            self._state = ENDED
        finally:
            if self._capture is not None:
                _release_quietly(self._capture)

    def _play_forever(self) -> None:
        frame_interval = 1.0 / self.fps
        next_due = time.monotonic()
        bgr: np.ndarray | None = None
        frames_since_rewind = 0
        while not self._stop.is_set():
            ok, bgr = self._capture.read(bgr)  # type: ignore[union-attr]
            if not ok or not _is_colour_frame(bgr):
                bgr = None
                if frames_since_rewind == 0 or not self._rewind():
                    self._state = ENDED  # not even one frame after rewinding: nothing to loop
                    return
                frames_since_rewind = 0
                continue
            frames_since_rewind += 1
            # Pace by the clock, not by sleeps, so slow decoding does not drift the rate.
            self._stop.wait(max(0.0, next_due - time.monotonic()))
            next_due = max(next_due + frame_interval, time.monotonic() - frame_interval)
            slot, rgb = self._slot.back_buffer(bgr.shape)
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=rgb)
            self._slot.publish(slot, time.monotonic())
            self._state = LIVE

    def _rewind(self) -> bool:
        # Seeking to 0 is unreliable for some codecs; reopening always works.
        _release_quietly(self._capture)  # type: ignore[arg-type]
        self._capture = self._factory(str(self.path))
        return self._capture.isOpened()


# --- still image ---------------------------------------------------------------------------


class StillSource:
    """One image, forever."""

    noun = "image"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._frame = Frame(read_image(self.path), 1, time.monotonic())

    @property
    def state(self) -> str:
        return LIVE

    def start(self) -> None:
        pass

    def read(self) -> Frame | None:
        return self._frame

    def close(self) -> None:
        pass


# --- demo ----------------------------------------------------------------------------------


class DemoSource:
    """The bundled photo with a slow pan and zoom plus drifting shapes: motion with no camera.

    `render(t)` is a pure function of t (seconds), so the demo is the same on every machine.
    A new frame is rendered on each `read()` (a few ms), alternating two buffers.
    """

    noun = "demo"

    PAN_PERIOD_S = 40.0

    def __init__(self, width: int = 1280, height: int = 720, clock: Callable[[], float] = time.monotonic):
        self.size = (width, height)
        self._clock = clock
        self._photo = read_image(SAMPLE_PHOTO)
        self._buffers = [np.empty((height, width, 3), np.uint8) for _ in range(2)]
        self._count = 0
        self._start_time: float | None = None

    @property
    def state(self) -> str:
        return LIVE

    def start(self) -> None:
        if self._start_time is None:
            self._start_time = self._clock()

    def read(self) -> Frame | None:
        self.start()
        now = self._clock()
        self._count += 1
        image = self.render(now - self._start_time, out=self._buffers[self._count % 2])  # type: ignore[operator]
        return Frame(image, self._count, now)

    def close(self) -> None:
        pass

    def render(self, t: float, out: np.ndarray | None = None) -> np.ndarray:
        """The demo frame at time `t` seconds, written into `out` when given."""
        width, height = self.size
        if out is None:
            out = np.empty((height, width, 3), np.uint8)
        cv2.warpAffine(
            self._photo, self.ken_burns(t), (width, height), dst=out,
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT,
        )
        self._draw_shapes(out, t)
        return out

    def ken_burns(self, t: float) -> np.ndarray:
        """Affine photo → frame: a crop of the frame's aspect that slowly zooms and pans."""
        width, height = self.size
        photo_h, photo_w = self._photo.shape[:2]
        phase = 2 * math.pi * t / self.PAN_PERIOD_S
        zoom = 1.15 + 0.15 * math.sin(phase)  # 1.0 .. 1.3 × "crop fills the photo"
        crop_w = min(photo_w, photo_h * width / height) / zoom
        crop_h = crop_w * height / width
        # Lissajous path of the crop centre inside the photo.
        cx = photo_w / 2 + (photo_w - crop_w) / 2 * math.sin(phase * 0.7)
        cy = photo_h / 2 + (photo_h - crop_h) / 2 * math.sin(phase * 1.1 + 1.0)
        scale = width / crop_w
        return np.array(
            [[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]], np.float64
        )

    def _draw_shapes(self, image: np.ndarray, t: float) -> None:
        width, height = self.size
        radius_unit = min(width, height) / 24
        palette = ((250, 200, 60), (80, 200, 230), (230, 90, 140), (120, 230, 120))
        for i, colour in enumerate(palette):
            cx = width * (0.5 + 0.38 * math.sin(t * (0.11 + 0.03 * i) + i * 1.7))
            cy = height * (0.5 + 0.35 * math.sin(t * (0.07 + 0.02 * i) + i * 2.3))
            radius = int(radius_unit * (1.5 + 0.5 * math.sin(t * 0.3 + i)))
            centre = (int(cx), int(cy))
            if i % 2:
                cv2.circle(image, centre, radius, colour, thickness=max(2, radius // 4), lineType=cv2.LINE_AA)
            else:
                angle = math.degrees(t * 0.2 * (1 if i else -1))
                box = ((cx, cy), (radius * 2.2, radius * 1.2), angle)
                points = cv2.boxPoints(box).astype(np.int32)
                cv2.fillConvexPoly(image, points, colour, lineType=cv2.LINE_AA)


# --- choosing a source ---------------------------------------------------------------------


# What a source kind shows when its camera does not open: "auto" falls back to the demo,
# "camera" cannot run. `open_source` and `livedream doctor` both read it, so the doctor's
# verdict is what the app then does.
WITHOUT_CAMERA = {"auto": "the demo"}


def open_source(cfg: SourceConfig, capture_factory: CaptureFactory = open_opencv_capture) -> Source:
    """The source `cfg` asks for, not yet started. "auto" = the camera if it opens, else
    `WITHOUT_CAMERA`'s fallback, the demo."""
    if cfg.kind == "demo":
        return DemoSource(cfg.width, cfg.height)
    if cfg.kind == "image":
        return StillSource(Path(cfg.path))
    if cfg.kind == "video":
        return VideoFileSource(Path(cfg.path), capture_factory)
    if cfg.kind == "camera":
        return _camera(cfg, capture_factory)
    if cfg.kind == "ndi":
        from livedream.pipeline.ndi import NdiSource  # cyndilib is an optional extra

        return NdiSource(cfg.ndi_source)
    probe = _probe_camera(cfg.camera, capture_factory)
    if probe is None:
        log.info("no camera at %r; showing %s", cfg.camera, WITHOUT_CAMERA[cfg.kind])
        return DemoSource(cfg.width, cfg.height)
    return _camera(cfg, _first_then(probe, capture_factory))


def _camera(cfg: SourceConfig, capture_factory: CaptureFactory) -> CameraSource:
    return CameraSource(cfg.camera, cfg.width, cfg.height, cfg.fps, capture_factory)


def _probe_camera(device: int | str, capture_factory: CaptureFactory) -> Capture | None:
    try:
        capture = capture_factory(device)
    except Exception:  # noqa: BLE001
        return None
    if capture.isOpened():
        return capture
    _release_quietly(capture)
    return None


def _first_then(opened: Capture, capture_factory: CaptureFactory) -> CaptureFactory:
    """A factory that hands out the already-open probe once (reopening a camera is slow)."""
    pending = [opened]

    def factory(device: int | str) -> Capture:
        return pending.pop() if pending else capture_factory(device)

    return factory
