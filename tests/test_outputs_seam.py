"""The output seam: the loop never waits on an output, a busy one gets only the newest frame,
a failing one logs once and retries with back-off, and Spout/Syphon speak their libraries'
APIs (against fakes: they cannot run on Linux)."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from livedream.config import parse_config
from livedream.errors import UserError
from livedream.outputs.build import open_outputs
from livedream.outputs.seam import BACKOFF_S, Outputs, OutputWorker
from livedream.outputs.texture import GL_RGBA, SpoutOutput, SyphonOutput


def frame(value: int, shape: tuple[int, int] = (24, 32)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


class GatedOutput:
    """Blocks inside `send` until the test opens the gate; keeps what it was sent."""

    name = "gated"
    active = True
    status = ""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.received: list[int] = []
        self.closed = False

    def send(self, frame_rgb: np.ndarray) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.received.append(int(frame_rgb[0, 0, 0]))

    def close(self) -> None:
        self.closed = True


class FlakyOutput:
    """Fails its first `failures` sends with the same message, then works."""

    name = "flaky"
    active = True
    status = ""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[int] = []

    def send(self, frame_rgb: np.ndarray) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("receiver gone")
        self.received.append(int(frame_rgb[0, 0, 0]))

    def close(self) -> None:
        pass


def test_a_blocked_output_never_blocks_the_sender_and_gets_only_the_newest_frame() -> None:
    output = GatedOutput()
    outputs = Outputs([output])
    outputs.send(frame(1))
    assert output.entered.wait(5)  # the worker holds frame 1 inside send
    for value in range(2, 11):  # the loop goes on: each send only replaces the pending copy
        outputs.send(frame(value))
    output.gate.set()
    assert outputs.flush()
    assert output.received == [1, 10]
    assert outputs.workers[0].dropped == 8
    outputs.close()
    assert output.closed


def test_the_worker_sends_a_copy_so_the_loop_may_reuse_its_buffer() -> None:
    output = GatedOutput()
    output.gate.set()
    outputs = Outputs([output])
    buffer = frame(7)
    outputs.send(buffer)
    buffer[:] = 99  # the dreamer writes the next frame into the same array
    assert outputs.flush() and output.received == [7]
    outputs.close()


def test_a_failing_output_logs_once_backs_off_and_recovers(caplog) -> None:
    clock = SimpleNamespace(now=0.0)
    output = FlakyOutput(failures=2)
    worker = OutputWorker(output, clock=lambda: clock.now)
    with caplog.at_level(logging.INFO, logger="livedream.outputs.seam"):
        worker.offer(frame(1))
        assert worker.flush()
        assert worker.problem == "receiver gone" and "retrying" in worker.status
        worker.offer(frame(2))  # inside the back-off: not even copied
        assert worker.flush() and worker.failures == 1
        clock.now += BACKOFF_S[0]
        worker.offer(frame(3))  # fails again: the wait doubles
        assert worker.flush() and worker.failures == 2
        clock.now += BACKOFF_S[0]
        worker.offer(frame(4))
        assert worker.flush() and worker.failures == 2  # still backing off (2 s)
        clock.now += BACKOFF_S[1]
        worker.offer(frame(5))
        assert worker.flush()
    assert output.received == [5] and worker.problem is None
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures == ["output flaky failed: receiver gone; retrying in 1 s"]  # one line, not one per retry
    assert any("working again" in r.getMessage() for r in caplog.records)
    worker.close()


def test_an_inactive_output_is_handed_nothing() -> None:
    output = GatedOutput()
    output.active = False
    outputs = Outputs([output])
    outputs.send(frame(1))
    assert outputs.flush() and output.received == [] and outputs.status_lines() == []
    outputs.close()


def test_the_recorder_is_always_an_output_and_idle_until_asked(tmp_path) -> None:
    config = parse_config({"outputs": {"record_folder": str(tmp_path / "rec")}})
    outputs, recorder = open_outputs(config, open_devices=False)
    assert [worker.output for worker in outputs.workers] == [recorder] and not recorder.active
    recorder.start()
    for value in range(3):
        outputs.send(frame(value))
        outputs.flush()
    assert outputs.status_lines() == ["REC 3 frames, segment 1"]
    outputs.close()
    assert [path.name for path in (tmp_path / "rec").iterdir()][0].endswith("-001.mp4")


# --- Spout and Syphon, against fakes of SpoutGL and syphon-python ----------------------------


class FakeSpoutSender:
    def __init__(self, log: list) -> None:
        self.log = log
        self.ok = True

    def setSenderName(self, name: str) -> None:
        self.log.append(("setSenderName", name))

    def sendImage(self, buffer, width, height, gl_format, invert, host_fbo) -> bool:
        self.log.append(("sendImage", buffer.copy(), width, height, gl_format, invert, host_fbo))
        return self.ok

    def setFrameSync(self, name: str) -> None:
        self.log.append(("setFrameSync", name))

    def releaseSender(self) -> None:
        self.log.append(("releaseSender",))


def test_spout_sends_rgba_with_its_sender_name_and_releases_it() -> None:
    calls: list = []
    sender = FakeSpoutSender(calls)
    spout = SimpleNamespace(SpoutSender=lambda: sender)
    output = SpoutOutput("LiveDream", spout=spout)
    picture = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    output.send(picture)
    output.close()
    assert calls[0] == ("setSenderName", "LiveDream")
    name, buffer, width, height, gl_format, invert, fbo = calls[1]
    assert (width, height, gl_format, invert, fbo) == (32, 24, GL_RGBA, False, 0)
    assert np.array_equal(buffer[..., :3], picture) and (buffer[..., 3] == 255).all()
    assert calls[2:] == [("setFrameSync", "LiveDream"), ("releaseSender",)]


def test_a_spout_send_that_fails_is_an_output_failure_the_worker_retries() -> None:
    calls: list = []
    sender = FakeSpoutSender(calls)
    sender.ok = False
    worker = OutputWorker(SpoutOutput("LiveDream", spout=SimpleNamespace(SpoutSender=lambda: sender)))
    worker.offer(frame(5))
    assert worker.flush() and worker.failures == 1 and "OpenGL context" in worker.problem
    worker.close()


def test_syphon_publishes_a_metal_texture_of_the_frame_and_stops() -> None:
    published, copies, made = [], [], []

    class FakeServer:
        def __init__(self, name: str) -> None:
            self.name, self.device, self.stopped = name, "metal-device", False
            made.append(self)

        def publish_frame_texture(self, texture) -> None:
            published.append(texture)

        def stop(self) -> None:
            self.stopped = True

    tools = SimpleNamespace(create_mtl_texture=lambda device, w, h: ("texture", device, w, h),
                            copy_image_to_mtl_texture=lambda image, texture: copies.append((image.copy(), texture)))
    output = SyphonOutput("LiveDream", syphon=SimpleNamespace(SyphonMetalServer=FakeServer), textures=tools)
    output.send(frame(40))
    output.send(frame(41, (48, 64)))  # a new size: a new texture
    output.close()
    assert made[0].name == "LiveDream" and made[0].stopped and len(made) == 1
    assert published == [("texture", "metal-device", 32, 24), ("texture", "metal-device", 64, 48)]
    assert copies[1][0].shape == (48, 64, 4) and (copies[1][0][..., :3] == 41).all()


@pytest.mark.parametrize("key, library", [("spout", "SpoutGL"), ("syphon", "syphon")])
def test_a_texture_output_without_its_library_says_how_to_install_it(key: str, library: str, tmp_path) -> None:
    config = parse_config({"outputs": {key: True, "record_folder": str(tmp_path)}})
    with pytest.raises(UserError) as error:
        open_outputs(config, open_devices=False)
    assert str(error.value) == f'{library} is not installed; install it with: pip install "livedream[{key}]"'


@pytest.mark.parametrize("wanted, names, chosen", [
    ("", ["VM (A)", "VM (B)"], "VM (A)"),
    ("VM (B)", ["VM (A)", "VM (B)"], "VM (B)"),
    ("B", ["VM (A)", "STUDIO (B)"], "STUDIO (B)"),  # the machine part changes from room to room
    ("C", ["VM (A)"], None),
    ("", [], None),
])
def test_an_ndi_source_is_found_by_its_full_name_or_its_name_alone(wanted, names, chosen) -> None:
    from livedream.pipeline.ndi import matching_source

    assert matching_source(wanted, names) == chosen


def test_headless_runs_without_a_window_and_saves_the_frame_as_a_screenshot(tmp_path) -> None:
    from livedream.config import DisplayConfig
    from livedream.pipeline.display import Headless, open_screen

    screen = open_screen(DisplayConfig(window=False))
    assert isinstance(screen, Headless) and not screen.hud_visible
    screen.open()
    picture = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    screen.show(picture, None, "a banner nobody sees")
    assert screen.poll() == []
    saved = screen.screenshot(tmp_path / "shot.png")
    import cv2

    assert np.array_equal(cv2.cvtColor(cv2.imread(str(saved)), cv2.COLOR_BGR2RGB), picture)
