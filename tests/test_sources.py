"""Sources: newest frame only, live faults as states, recovery, files, demo, choosing one."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from livedream.config import SourceConfig
from livedream.errors import UserError
from livedream.pipeline.frames import LIVE, Frame, is_lost
from livedream.pipeline.sources import (
    CameraSource,
    DemoSource,
    StillSource,
    VideoFileSource,
    open_source,
)

WIDTH, HEIGHT = 64, 48


def encode_number(image: np.ndarray, number: int) -> None:
    """Write `number` into three grey pixels, so channel order does not matter."""
    for place in range(3):
        image[0, place] = (number >> (8 * place)) & 255


def decode_number(image: np.ndarray) -> int:
    return sum(int(image[0, place, 0]) << (8 * place) for place in range(3))


class FakeCamera:
    """A scriptable camera; every capture the factory opens follows the same `mode`.

    mode: "ok" numbered frames as fast as asked · "fail" grab() returns False ·
    "raise" grab() raises · "hang" grab() blocks until `unhang` · "wrong_size" frames of
    another size · "unplugged" captures do not open. `gate` cleared = the camera pauses.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.fail_every = 0
        self.produced = 0
        self.grabs = 0
        self.opens = 0
        self.released_by: list[str] = []  # names of the threads that released a capture
        self.unhang = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def open(self, device: int | str) -> "FakeCapture":
        self.opens += 1
        return FakeCapture(self)


class FakeCapture:
    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera
        self.number = 0

    def isOpened(self) -> bool:
        return self.camera.mode != "unplugged"

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 0.0

    def grab(self) -> bool:
        camera = self.camera
        camera.gate.wait()
        time.sleep(0.0005)  # a little faster than any consumer, gentle on CI cores
        camera.grabs += 1
        if camera.mode == "hang":
            camera.unhang.wait()
            return False
        if camera.mode == "raise":
            raise RuntimeError("driver exploded")
        if camera.mode in ("fail", "unplugged"):
            return False
        if camera.fail_every and camera.grabs % camera.fail_every == 0:
            return False
        camera.produced += 1
        self.number = camera.produced
        return True

    def retrieve(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray]:
        shape = (HEIGHT * 2, WIDTH, 3) if self.camera.mode == "wrong_size" else (HEIGHT, WIDTH, 3)
        frame = np.full(shape, 100, np.uint8)
        encode_number(frame, self.number)
        return True, frame

    def release(self) -> None:
        self.camera.released_by.append(threading.current_thread().name)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def thread_exceptions(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Collects exceptions that escape any thread (there must be none)."""
    escaped: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))
    return escaped


@pytest.fixture
def camera() -> FakeCamera:
    fake = FakeCamera()
    yield fake
    fake.unhang.set()
    fake.gate.set()


def start_camera(camera: FakeCamera, **timing: float) -> CameraSource:
    settings = {"stall_timeout": 0.3, "backoff_initial": 0.05, "backoff_max": 0.2, **timing}
    source = CameraSource(0, WIDTH, HEIGHT, 30, capture_factory=camera.open, **settings)
    source.start()
    wait_until(lambda: source.read() is not None and source.state == LIVE)
    return source


def test_camera_read_returns_newest_frame_and_nothing_queues(camera: FakeCamera) -> None:
    source = start_camera(camera, stall_timeout=30.0)
    first = source.read()
    wait_until(lambda: camera.produced > first.index + 200)  # fed far faster than read
    camera.gate.clear()  # pause the camera
    time.sleep(0.1)
    newest_produced = camera.produced
    after_pause = [source.read() for _ in range(5)]
    source.close()

    assert decode_number(after_pause[0].image) == newest_produced
    assert after_pause[0].index - first.index > 100, "old frames were delivered instead of skipped"
    # Nothing queued behind the newest frame: every further read is that same frame.
    assert all(frame is after_pause[0] for frame in after_pause)


def test_camera_frame_index_increases_and_buffers_are_recycled(camera: FakeCamera) -> None:
    source = start_camera(camera)
    seen: list[Frame] = []
    for _ in range(30):
        seen.append(source.read())
        time.sleep(0.003)
    source.close()
    indices = [frame.index for frame in seen]
    assert indices == sorted(indices) and indices[-1] > indices[0]
    assert len({id(frame.image) for frame in seen}) <= 3, "a new buffer was allocated per frame"


def test_camera_failing_every_nth_read_keeps_streaming(camera: FakeCamera, thread_exceptions: list) -> None:
    camera.fail_every = 3
    source = start_camera(camera)
    start = source.read().index
    wait_until(lambda: source.read().index > start + 50)
    assert source.state == LIVE
    source.close()
    assert thread_exceptions == []


@pytest.mark.parametrize("fault", ["fail", "raise", "unplugged"])
def test_camera_loss_keeps_last_frame_reports_lost_and_recovers(
    camera: FakeCamera, fault: str, thread_exceptions: list
) -> None:
    source = start_camera(camera)
    camera.mode = fault
    wait_until(lambda: is_lost(source.state))
    frozen = source.read()
    frozen_number = decode_number(frozen.image)
    time.sleep(0.2)
    assert source.read() is frozen and decode_number(frozen.image) == frozen_number
    assert is_lost(source.state)

    opens_while_lost = camera.opens
    camera.mode = "ok"
    wait_until(lambda: source.state == LIVE and source.read().index > frozen.index)
    source.close()
    assert camera.opens >= max(2, opens_while_lost), "the camera was not reopened"
    assert thread_exceptions == []


def test_camera_that_hangs_is_abandoned_and_replaced(camera: FakeCamera, thread_exceptions: list) -> None:
    source = start_camera(camera)
    camera.mode = "hang"
    wait_until(lambda: is_lost(source.state))
    frozen = source.read()
    time.sleep(0.1)
    assert source.read() is frozen

    camera.mode = "ok"  # a fresh capture works even though the old grab() never returns
    wait_until(lambda: source.state == LIVE and source.read().index > frozen.index)
    camera.unhang.set()  # the abandoned workers wake up and must retire quietly
    time.sleep(0.1)
    index = source.read().index
    wait_until(lambda: source.read().index > index)
    source.close()
    assert thread_exceptions == []


def test_camera_wrong_sized_frames_are_dropped_then_stream_recovers(camera: FakeCamera) -> None:
    source = start_camera(camera, backoff_initial=1.0, backoff_max=1.0)
    good = source.read()
    camera.mode = "wrong_size"
    wait_until(lambda: is_lost(source.state))
    assert source.read().image.shape == (HEIGHT, WIDTH, 3), "a wrong-sized frame got through"

    camera.mode = "ok"
    wait_until(lambda: source.state == LIVE and source.read().index > good.index)
    assert source.read().image.shape == (HEIGHT, WIDTH, 3)
    source.close()


def test_camera_that_never_opens_says_lost_with_countdown(camera: FakeCamera) -> None:
    camera.mode = "unplugged"
    source = CameraSource(0, capture_factory=camera.open, backoff_initial=5.0)
    source.start()
    wait_until(lambda: is_lost(source.state))
    assert source.read() is None
    assert "reconnecting in" in source.state
    source.close()


def camera_threads(device: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(f"camera-{device}-")]


def test_close_during_reads_returns_promptly_and_the_reader_thread_is_gone(camera: FakeCamera) -> None:
    source = CameraSource("closing", WIDTH, HEIGHT, 30, capture_factory=camera.open, stall_timeout=0.3)
    source.start()
    wait_until(lambda: source.read() is not None and source.read().index > 5)
    assert len(camera_threads("closing")) == 1
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 1.0
    assert camera_threads("closing") == [] and source.state == "closed"
    assert camera.released_by == ["camera-closing-1"], "the reader thread itself must release the capture"


def test_close_does_not_wait_for_a_driver_that_hangs(camera: FakeCamera) -> None:
    source = CameraSource("hung", WIDTH, HEIGHT, 30, capture_factory=camera.open, stall_timeout=30.0)
    source.start()
    wait_until(lambda: source.read() is not None)
    grabs_before = camera.grabs
    camera.mode = "hang"
    wait_until(lambda: camera.grabs > grabs_before)  # the worker is inside a grab() that will not return
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 1.5
    hung = camera_threads("hung")
    assert len(hung) == 1 and hung[0].daemon  # left behind, cannot keep the process alive
    camera.unhang.set()
    hung[0].join(5)
    assert not hung[0].is_alive() and camera.released_by == [hung[0].name]


CLOSE_AT_EXIT = """
import time
from livedream.testing.faults import FaultPlan, FaultyCamera
from livedream.pipeline.sources import CameraSource
camera = FaultyCamera(FaultPlan(), 1280, 720, fps=240.0)
source = CameraSource("faulty", 1280, 720, 240, capture_factory=camera)
source.start()
deadline = time.monotonic() + 10
while source.read() is None and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.2)
source.close()
"""


def test_the_process_exits_cleanly_right_after_closing_a_busy_camera() -> None:
    # Before close() joined the reader, the thread was still inside OpenCV at interpreter
    # exit and the process aborted ("terminate called without an active exception", 134).
    root = Path(__file__).resolve().parents[1]
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", CLOSE_AT_EXIT], cwd=root, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def numbered_video(tmp_path: Path) -> Path:
    path = tmp_path / "numbered.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 100, (WIDTH, HEIGHT))
    for number in range(8):
        writer.write(np.full((HEIGHT, WIDTH, 3), number * 30, np.uint8))
    writer.release()
    return path


def test_video_file_plays_in_a_loop(numbered_video: Path) -> None:
    source = VideoFileSource(numbered_video)
    assert source.fps == pytest.approx(100)
    source.start()
    wait_until(lambda: source.read() is not None and source.read().index > 20)  # 8 frames: looped twice
    frame = source.read()
    source.close()
    assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
    assert source.state != "ended"
    assert not any(thread.name == "video-file" for thread in threading.enumerate())


@pytest.mark.parametrize("make_source", [VideoFileSource, StillSource])
def test_missing_file_is_a_one_line_user_error(make_source: type, tmp_path: Path) -> None:
    with pytest.raises(UserError) as error:
        make_source(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("make_source", [VideoFileSource, StillSource])
def test_file_that_is_not_media_is_a_user_error(make_source: type, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(UserError, match="notes.txt"):
        make_source(text)


def test_still_source_serves_the_image_forever() -> None:
    source = StillSource(Path(__file__).parents[1] / "livedream" / "assets" / "sample.jpg")
    source.start()
    first, second = source.read(), source.read()
    assert first is second and first.image.shape == (512, 512, 3) and source.state == LIVE


def test_demo_is_deterministic_in_time_and_moves() -> None:
    demo = DemoSource(320, 180)
    at_three = demo.render(3.0)
    assert at_three.shape == (180, 320, 3)
    assert np.array_equal(at_three, DemoSource(320, 180).render(3.0))
    assert np.mean(np.abs(at_three.astype(int) - demo.render(4.0).astype(int))) > 1.0


def test_demo_read_gives_new_frames_with_growing_index() -> None:
    clock = iter(np.arange(0.0, 10.0, 0.5))
    demo = DemoSource(160, 90, clock=lambda: float(next(clock)))
    demo.start()
    first, second = demo.read(), demo.read()
    assert second.index == first.index + 1 and second.timestamp > first.timestamp


def test_auto_falls_back_to_demo_when_no_camera_opens(camera: FakeCamera, caplog) -> None:
    camera.mode = "unplugged"
    with caplog.at_level("INFO"):
        source = open_source(SourceConfig(kind="auto", width=160, height=90), capture_factory=camera.open)
    assert isinstance(source, DemoSource)
    assert sum("demo" in record.message for record in caplog.records) == 1


def test_auto_uses_the_camera_and_does_not_reopen_it(camera: FakeCamera) -> None:
    source = open_source(SourceConfig(kind="auto"), capture_factory=camera.open)
    assert isinstance(source, CameraSource)
    source.start()
    wait_until(lambda: source.read() is not None)
    source.close()
    assert camera.opens == 1
