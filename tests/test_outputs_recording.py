"""Recording writes a playable file under its final name only when stopped, inside its folder only."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from livedream.config import OutputsConfig
from livedream.errors import UserError
from livedream.files import DiskFloor
from livedream.outputs.recording import Recorder
from livedream.outputs.virtualcam import VirtualCamera


def frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    return [np.full((height, width, 3), (i * 20 % 256, 100, 200 - i * 10 % 200), np.uint8) for i in range(count)]


def test_recording_is_playable_with_every_frame(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "recordings", fps=25)
    final = recorder.start("show.mp4")
    assert final.name == "show-001.mp4"
    for frame in frames(12):
        recorder.write(frame)
    assert not final.exists()  # only the incomplete file exists while recording
    assert (final.parent / "incomplete-show-001.mp4").exists()
    assert recorder.stop() == final
    assert not (final.parent / "incomplete-show-001.mp4").exists()
    video = cv2.VideoCapture(str(final))
    decoded = 0
    while True:
        ok, image = video.read()
        if not ok:
            break
        assert image.shape == (96, 128, 3)
        decoded += 1
    assert decoded == 12
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(25)


def test_odd_and_changing_frame_sizes_still_record(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.start("odd.mp4")
    for frame in frames(3, 75, 101) + frames(2, 120, 160):
        recorder.write(frame)
    final = recorder.stop()
    video = cv2.VideoCapture(str(final))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 5 and video.get(cv2.CAP_PROP_FRAME_WIDTH) == 100


@pytest.mark.parametrize("name", ["../escape.mp4", "/tmp/escape.mp4", "sub/dir.mp4", ".hidden.mp4", ""])
def test_refuses_a_path_outside_its_folder(tmp_path: Path, name: str) -> None:
    recorder = Recorder(tmp_path / "recordings")
    if name == "":
        with pytest.raises(UserError):
            recorder.path_for(name)
        return
    with pytest.raises(UserError, match="recordings go only into"):
        recorder.start(name)
    assert not recorder.recording


def test_default_name_is_timestamped_inside_the_folder(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    final = recorder.start()
    assert final.parent == tmp_path.resolve() and final.name.startswith("livedream-") and final.suffix == ".mp4"


def test_stop_without_frames_leaves_no_file(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.start("empty.mp4")
    assert recorder.stop() is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(importlib.util.find_spec("pyvirtualcam") is not None, reason="pyvirtualcam is installed here")
def test_missing_pyvirtualcam_says_how_to_install(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert VirtualCamera.open(OutputsConfig(virtualcam=True)) is None
    assert "pip install pyvirtualcam" in caplog.text and len(caplog.records) == 1


def decoded_frames(path: Path) -> int:
    video = cv2.VideoCapture(str(path))
    count = 0
    while video.read()[0]:
        count += 1
    return count


def test_a_recording_is_cut_into_finished_segments(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, fps=10, segment_seconds=1.0)  # 10 frames a segment
    recorder.start("show.mp4")
    for frame in frames(25):
        recorder.write(frame)
    finished = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("incomplete-"))
    assert finished == ["show-001.mp4", "show-002.mp4"]  # closed and playable while recording goes on
    assert [decoded_frames(tmp_path / name) for name in finished] == [10, 10]
    assert (tmp_path / "incomplete-show-003.mp4").exists()
    recorder.stop()
    assert decoded_frames(tmp_path / "show-003.mp4") == 5 and recorder.frames_written == 25


class FakeDisk:
    def __init__(self, free_mb: float) -> None:
        self.free_mb = free_mb

    def __call__(self, folder: Path) -> int:
        return int(self.free_mb * 2**20)


def test_recording_stops_at_the_free_space_floor_with_one_warning(tmp_path: Path, caplog) -> None:
    disk = FakeDisk(5000)
    recorder = Recorder(tmp_path, fps=10, segment_seconds=1.0, disk=DiskFloor(2000, free=disk))
    recorder.start("show.mp4")
    with caplog.at_level(logging.WARNING):
        for frame in frames(10):
            recorder.write(frame)
        disk.free_mb = 1500  # the disk fills while the first segment is written
        for frame in frames(10):
            recorder.write(frame)
    assert not recorder.recording and recorder.warning and "1500 MB free" in recorder.warning
    assert [p.name for p in tmp_path.iterdir()] == ["show-001.mp4"]  # the finished segment is kept
    floor_lines = [r for r in caplog.records if "floor 2000 MB" in r.getMessage()]
    assert len(floor_lines) == 2  # one from the floor, one saying the recording stopped
    recorder.start("again.mp4")
    recorder.write(frames(1)[0])
    assert not recorder.recording and not (tmp_path / "incomplete-again-001.mp4").exists()


def test_the_floor_lets_recording_start_again_when_there_is_room(tmp_path: Path) -> None:
    disk = FakeDisk(100)
    floor = DiskFloor(2000, free=disk)
    assert floor.problem(tmp_path) is not None
    disk.free_mb = 3000
    assert floor.problem(tmp_path) is None
    assert DiskFloor(0, free=disk).problem(tmp_path) is None  # 0 turns the floor off


def test_old_recordings_rotate_out_beyond_the_kept_size(tmp_path: Path) -> None:
    old = tmp_path / "old-001.mp4"
    old.write_bytes(b"x" * 3 * 2**20)
    os.utime(old, (1, 1))
    recorder = Recorder(tmp_path, fps=10, segment_seconds=1.0, keep_mb=2)
    recorder.start("new.mp4")
    for frame in frames(10):
        recorder.write(frame)
    recorder.stop()
    assert not old.exists() and (tmp_path / "new-001.mp4").exists()


def test_screenshots_stop_at_the_floor_and_say_so(tmp_path: Path) -> None:
    from livedream.live.screenshots import Screenshots

    class FakeDisplay:
        def screenshot(self, path: Path) -> Path:
            path.write_bytes(b"png")
            return path

    disk = FakeDisk(100)
    shots = Screenshots(tmp_path / "shots", DiskFloor(2000, free=disk))
    shots.request(1)
    shots.save_if_due(1, FakeDisplay())  # type: ignore[arg-type]
    assert shots.saved == [] and "disk nearly full" in shots.warning
    disk.free_mb = 5000
    shots.request(2)
    shots.save_if_due(2, FakeDisplay())  # type: ignore[arg-type]
    assert len(shots.saved) == 1 and shots.warning is None
