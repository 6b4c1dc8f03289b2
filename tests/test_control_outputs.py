"""Recording writes a playable file under its final name only when stopped, inside its folder only."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from livedream.config import OutputsConfig
from livedream.control.outputs import Recorder, VirtualCamera
from livedream.errors import UserError


def frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    return [np.full((height, width, 3), (i * 20 % 256, 100, 200 - i * 10 % 200), np.uint8) for i in range(count)]


def test_recording_is_playable_with_every_frame(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "recordings", fps=25)
    final = recorder.start("show.mp4")
    for frame in frames(12):
        recorder.write(frame)
    assert not final.exists()  # only the incomplete file exists while recording
    assert (final.parent / "incomplete-show.mp4").exists()
    assert recorder.stop() == final
    assert not (final.parent / "incomplete-show.mp4").exists()
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
