"""Picture and video files: colour order, exact pixel round trips, atomic writes, one-line errors."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from livedream.errors import UserError
from livedream.media.clips import Canvas, frames, probe, upright
from livedream.media.pictures import read_image
from livedream.media.targets import picture_target
from livedream.media.writing import CODECS, VideoFileWriter
from livedream.offline.imageio import check_dreamable, check_output, write_photo
from livedream.pipeline.images import to_nchw, to_rgb


def moving_pattern(frames: int = 6, height: int = 96, width: int = 128) -> list[np.ndarray]:
    """A textured square drifting right: enough structure for codecs and optical flow."""
    rng = np.random.default_rng(5)
    texture = (rng.random((height, width * 2, 3)) * 255).astype(np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 2)
    return [np.ascontiguousarray(texture[:, 4 * i : 4 * i + width]) for i in range(frames)]


def write_test_video(path: Path, pictures: list[np.ndarray], fps: int = 12, codec: str = "h264") -> Path:
    height, width = pictures[0].shape[:2]
    writer = VideoFileWriter(path, Canvas(width, height, Fraction(fps), Fraction(1, fps)), CODECS[codec], crf=12)
    for index, picture in enumerate(pictures):
        writer.write(picture, index)
    writer.close()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    return [frame.rgb for frame in frames(path, probe(path))]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_read_image_returns_rgb_order(tmp_path):
    bgr = np.zeros((80, 90, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    rgb = read_image(tmp_path / "red.png")
    assert rgb.shape == (80, 90, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == 255).all() and (rgb[..., 1:] == 0).all()


def test_read_image_turns_grey_into_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((80, 90), 77, np.uint8))
    assert read_image(tmp_path / "grey.png").shape == (80, 90, 3)


def test_every_byte_survives_nchw_round_trip():
    rgb = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3).astype(np.uint8)
    image = to_nchw(rgb)
    assert image.shape == (1, 3, 16, 16) and image.dtype == np.float32
    assert image.min() == -1.0 and image.max() == 1.0
    assert np.array_equal(to_rgb(image), rgb)


def test_to_rgb_clips_out_of_range_values():
    image = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], np.float32).reshape(1, 1, 1, 5).repeat(3, axis=1)
    assert to_rgb(image)[0, :, 0].tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("extension", [".png", ".jpg", ".webp", ".bmp"])
def test_write_photo_round_trips_each_format(tmp_path, extension, sample_image):
    path = tmp_path / f"out{extension}"
    write_photo(path, sample_image)
    back = read_image(path)
    assert back.shape == sample_image.shape
    lossless = extension in (".png", ".bmp")
    assert np.array_equal(back, sample_image) if lossless else np.abs(back.astype(int) - sample_image).mean() < 4
    assert leftovers(tmp_path) == []


def test_failed_photo_write_keeps_old_file_and_leaves_no_temp(tmp_path, sample_image, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_photo(path, sample_image)
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("missing.png", None, "does not exist"),
        ("broken.jpg", b"not a jpeg at all", "cannot read"),
        ("notes.png", b"hello", "cannot read"),
    ],
)
def test_bad_inputs_are_one_line_user_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=fragment) as raised:
        read_image(path)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "output, fragment",
    [
        ("no/such/folder/out.png", "does not exist"),
        ("out.heic", "neither OpenCV nor FFmpeg here writes .heic pictures"),
        ("out.mp4", r"\.mp4 is a video's and this writes one picture"),
        ("out", "writes nameless pictures"),
    ],
)
def test_bad_picture_outputs_are_one_line_user_errors(tmp_path, output, fragment):
    with pytest.raises(UserError, match=fragment) as raised:
        check_output(tmp_path / output)
        picture_target(tmp_path / output)
    assert "\n" not in str(raised.value)


def test_image_smaller_than_model_minimum_is_refused():
    check_dreamable(Path("ok.png"), 75, 300, 75)
    with pytest.raises(UserError, match="smaller than the model's minimum 75x75"):
        check_dreamable(Path("small.png"), 74, 300, 75)


@pytest.mark.parametrize("extension, codec", [(".mp4", "h264"), (".mkv", "hevc"), (".mov", "prores")])
def test_video_round_trip_keeps_frame_count_size_and_rate(tmp_path, extension, codec):
    pictures = moving_pattern()
    path = write_test_video(tmp_path / f"clip{extension}", pictures, codec=codec)
    info = probe(path)
    back = read_video(path)
    assert info.frame_count == len(pictures) == len(back)
    assert (info.width, info.height) == (128, 96) and info.rate == 12
    assert all(frame.shape == (96, 128, 3) and frame.dtype == np.uint8 for frame in back)
    assert np.abs(back[3].astype(int) - pictures[3]).mean() < 12  # lossy, but the same picture
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("content", [b"\x00" * 1000, b"", b"RIFF\x00\x00\x00\x00AVI LIST"])
def test_unreadable_video_is_a_user_error(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(UserError, match="cannot read .* as a video or a picture"):
        probe(path)


@pytest.mark.parametrize("rotation, shape", [(0, (2, 3)), (90, (3, 2)), (180, (2, 3)), (270, (3, 2))])
def test_a_rotated_clip_is_turned_upright(rotation, shape):
    picture = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    turned = upright(picture, rotation)
    assert turned.shape[:2] == shape
    if rotation == 90:  # clockwise: the top-left pixel goes to the top-right
        assert np.array_equal(turned[0, -1], picture[0, 0])
    assert np.array_equal(upright(upright(picture, rotation), (360 - rotation) % 360), picture)
