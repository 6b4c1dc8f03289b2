"""`livedream dream` end to end through `cli.main`, on the small random-weight graph."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from livedream.cli import main
from livedream.offline import photo as offline_photo
from livedream.media.pictures import read_image
from livedream.runtime.devices import CPU, CUDA

from .media_kinds import facts_of
from .test_imageio import moving_pattern, read_video, write_test_video

FAST = ["--steps", "2", "--octaves", "2"]


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    return inputs, outputs


def dream_args(small_graph: Path, *args: str | Path) -> list[str]:
    return ["dream", *map(str, args), "--model", str(small_graph)]


def test_sample_dream_writes_png_of_input_size_and_reports_octaves(small_graph, folders, capsys, sample_image):
    out = folders[1] / "dream.png"
    assert main(dream_args(small_graph, "--sample", "-o", out, *FAST)) == 0
    dreamed = read_image(out)
    assert dreamed.shape == sample_image.shape and dreamed.dtype == np.uint8
    assert np.abs(dreamed.astype(int) - sample_image).mean() > 1
    printed = capsys.readouterr().out
    assert "provider: CPU" in printed
    assert "octave 1/2" in printed and "octave 2/2" in printed


def test_seed_repeats_a_photo_dream_bit_for_bit(small_graph, folders):
    outs = [folders[1] / name for name in ("a.png", "b.png", "c.png")]
    for out, seed in zip(outs, ("3", "3", "4")):
        assert main(dream_args(small_graph, "--sample", "-o", out, "--seed", seed, "--tile", "200", *FAST)) == 0
    first, again, other = (read_image(out) for out in outs)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_video_round_trip_keeps_frame_count_and_size(small_graph, folders):
    frames = moving_pattern(frames=6, height=96, width=128)
    source = write_test_video(folders[0] / "clip.mkv", frames)
    out = folders[1] / "dream.mp4"
    assert main(dream_args(small_graph, source, "-o", out, "--steps", "3", "--octaves", "1", "--seed", "1")) == 0
    dreamed = read_video(out)
    assert len(dreamed) == 6
    assert all(frame.shape == (96, 128, 3) for frame in dreamed)
    assert np.abs(dreamed[0].astype(int) - read_video(source)[0]).mean() > 1
    assert [p.name for p in folders[1].iterdir()] == ["dream.mp4"]  # no state folder left behind


def interrupt_after(calls: int, monkeypatch) -> None:
    """Make the dream raise KeyboardInterrupt (a Ctrl-C) on call number `calls` + 1."""
    real_dream = offline_photo.dream
    done = 0

    def dream_then_interrupt(*args, **kwargs):
        nonlocal done
        if done == calls:
            raise KeyboardInterrupt
        done += 1
        return real_dream(*args, **kwargs)

    monkeypatch.setattr(offline_photo, "dream", dream_then_interrupt)


def test_ctrl_c_during_photo_writes_nothing(small_graph, folders, monkeypatch):
    interrupt_after(0, monkeypatch)
    assert main(dream_args(small_graph, "--sample", "-o", folders[1] / "dream.png", *FAST)) == 130
    assert list(folders[1].iterdir()) == []


def make_input(folder: Path, kind: str) -> Path:
    if kind == "photo":
        path = folder / "photo.png"
        cv2.imwrite(str(path), np.full((100, 120, 3), 128, np.uint8))
    elif kind == "tiny":
        path = folder / "tiny.png"
        cv2.imwrite(str(path), np.full((60, 60, 3), 128, np.uint8))
    elif kind == "broken":
        path = folder / "broken.png"
        path.write_bytes(b"this is not a png")
    elif kind == "video":
        path = write_test_video(folder / "clip.mp4", moving_pattern(frames=2))
    elif kind == "one frame":
        path = write_test_video(folder / "one.mp4", moving_pattern(frames=1))
    else:
        path = folder / "missing.jpg"
    return path


ERROR_CASES = {
    "missing input": ("missing", "out.png", [], "does not exist"),
    "unreadable input": ("broken", "out.png", [], "cannot read"),
    "unknown model": ("photo", "out.png", ["--model", "no-such-model"], "is not in"),
    "output folder missing": ("photo", "nowhere/out.png", [], "does not exist"),
    "a picture kind nothing writes": ("photo", "out.heic", [], "writes .heic pictures"),
    "photo into a container of sound only": ("photo", "out.wav", [], "FFmpeg writes none of h264"),
    "photo into a name nothing knows": ("photo", "out.xyz", [], "neither OpenCV nor FFmpeg here writes .xyz"),
    "codec for a photo": ("photo", "out.png", ["--codec", "h264"], "--codec is for videos; out.png is written as a picture"),
    "codec a photo's video container refuses": ("photo", "out.mp4", ["--codec", "prores"], "cannot write prores into .mp4"),
    "one frame into a container of sound only": ("one frame", "out.wav", [], "FFmpeg writes none of h264"),
    "one frame with a video's option": ("one frame", "out.mp4", ["--workers", "2"], "are for clips of several frames"),
    "image too small": ("tiny", "out.png", [], "smaller than the model's minimum"),
    "bad steps": ("photo", "out.png", ["--steps", "0"], "--steps 0"),
    "tile below model minimum": ("photo", "out.png", ["--tile", "50"], "--tile 50"),
    "input and sample": ("photo", "out.png", ["--sample"], "drop one of them"),
    "unknown codec": ("video", "out.mp4", ["--codec", "av1"], "--codec 'av1' is not allowed"),
    "video into a still picture": ("video", "out.jpg", [], "the input has 2 frames and .jpg holds one picture"),
    "video into a format FFmpeg does not know": ("video", "out.xyz", [], "FFmpeg knows no format named .xyz"),
    "codec for an animation": ("video", "out.gif", ["--codec", "h264"], "--codec is for video containers"),
    "prores into mp4": ("video", "out.mp4", ["--codec", "prores"], "cannot write prores into .mp4"),
    "bad crf": ("video", "out.mp4", ["--crf", "60"], "--crf 60"),
    "bad chunk": ("video", "out.mp4", ["--chunk", "3/2", "--seed", "1"], "--chunk '3/2' is not allowed"),
    "chunk without seed": ("video", "out.mp4", ["--chunk", "1/2"], "needs the same --seed"),
    "resume with nothing to resume": ("video", "out.mp4", ["--resume", "--seed", "1"], "nothing to resume"),
    "resume for a photo": ("photo", "out.png", ["--resume"], "are for clips of several frames"),
    "dream height zero": ("video", "out.mp4", ["--dream-height", "0"], "--dream-height 0"),
    "dream height negative": ("video", "out.mp4", ["--dream-height", "-5"], "--dream-height -5"),
    "dream height above the clip": ("video", "out.mp4", ["--dream-height", "4000"], "is above clip.mp4's 96 rows"),
    "dream height below the model minimum": ("video", "out.mp4", ["--dream-height", "40"], "use at least 75"),
    "dream height for a photo": ("photo", "out.png", ["--dream-height", "80"], "are for clips of several frames"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_errors_exit_2_with_one_line_and_leave_no_file(case, small_graph, folders, capfd, monkeypatch):
    kind, output, extra, fragment = ERROR_CASES[case]
    source = make_input(folders[0], kind)
    inputs = {path: path.read_bytes() for path in folders[0].iterdir()}
    capfd.readouterr()
    # `extra` comes last: argparse keeps an option's last value, so a case's --model wins.
    args = ["dream", str(source), "-o", str(folders[1] / output), "--model", str(small_graph), *FAST, *extra]
    assert main(args) == 2
    captured = capfd.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("livedream: error:"), captured.err
    assert fragment in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert list(folders[1].iterdir()) == []
    assert {path: path.read_bytes() for path in folders[0].iterdir()} == inputs  # the input is as it was


def test_no_input_at_all_is_a_user_error(small_graph, folders, capfd):
    assert main(["dream", "-o", str(folders[1] / "out.png"), "--model", str(small_graph)]) == 2
    assert "--sample" in capfd.readouterr().err


# ---- one picture into whatever the output's name can hold --------------------------------------

VIDEOS = (".mp4", ".mov", ".mkv", ".webm")
FFMPEG = shutil.which("ffmpeg")
# One-frame clips as the FFmpeg command line makes them (Debian's ffmpeg: code that is not ours).
ONE_FRAME_CLIPS = {
    "silent": ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-frames:v", "1"],
    # One picture held for a second of a 440 Hz tone: `-frames:v 1` would end the sound with
    # the first frame (FFmpeg stops the file at the first stream's limit), so the picture's
    # rate is one a second.
    "with sound": ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=1", "-f", "lavfi", "-i", "sine=frequency=440",
                   "-t", "1"],
}


def ffmpeg_clip(folder: Path, name: str) -> Path:
    if FFMPEG is None:
        pytest.skip("the FFmpeg command line is not installed (apt-get install ffmpeg); it makes these clips "
                    "with code that is not ours")
    path = folder / f"{name.replace(' ', '-')}.mp4"
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", *ONE_FRAME_CLIPS[name], str(path)],
                   check=True, timeout=120)
    return path


def test_the_command_lines_one_frame_mp4_is_dreamed_into_a_one_frame_mp4(small_graph, folders):
    source = ffmpeg_clip(folders[0], "silent")
    out = folders[1] / "out.mp4"
    assert main(dream_args(small_graph, source, "-o", out, *FAST)) == 0
    before, after = facts_of(source), facts_of(out)
    assert before.frames == 1 and after.frames == 1 and after.a_video and after.shown == before.shown
    assert np.abs(after.first.astype(int) - before.first).mean() > 1  # dreamed, not copied


@pytest.mark.parametrize("output", [*VIDEOS, ".png", ".jpg", ".gif"])
def test_a_one_frame_clip_with_sound_keeps_it_in_a_video_and_says_a_picture_cannot(
        output, small_graph, folders, capsys):
    source = ffmpeg_clip(folders[0], "with sound")
    out = folders[1] / f"dream{output}"
    assert main(dream_args(small_graph, source, "-o", out, *FAST, "--seed", "1")) == 0
    printed = capsys.readouterr().out
    before, after = facts_of(source), facts_of(out)
    assert before.frames == 1 and len(before.tracks) == 1  # as the command line made it
    assert after.frames == 1 and after.shown == before.shown
    assert np.abs(after.first.astype(int) - before.first).mean() > 1
    if output in VIDEOS:
        assert after.a_video and "keeps 1 sound track" in printed
        [(channels, _, _, pitch)] = after.tracks
        assert channels == before.tracks[0][0] and abs(pitch - 440) < 5
    else:
        assert not after.a_video and not after.tracks and "not kept: sound track 1" in printed


@pytest.mark.parametrize("output", [*VIDEOS, ".gif", ".webp", ".png"])
def test_a_photo_into_any_kind_named_is_one_picture_of_it(output, small_graph, folders):
    """A photo into a video's name is a one-frame video; into an animated image's, one picture."""
    source = folders[0] / "photo.png"
    cv2.imwrite(str(source), cv2.cvtColor(moving_pattern(frames=1, height=100, width=120)[0], cv2.COLOR_RGB2BGR))
    out = folders[1] / f"dream{output}"
    assert main(dream_args(small_graph, source, "-o", out, *FAST, "--seed", "3")) == 0
    after = facts_of(out)
    assert after.frames == 1 and after.shown == (120, 100) and after.a_video == (output in VIDEOS)
    assert [path.name for path in folders[1].iterdir()] == [out.name]  # no piece or state left behind


def test_a_photos_one_frame_video_holds_the_stills_dream(small_graph, folders):
    """The same seed dreams the same picture into a .png and into a one-frame ProRes 4444 video
    (its colour conversion aside); another seed's dream is more than twice as far from it."""
    source = folders[0] / "photo.png"
    cv2.imwrite(str(source), cv2.cvtColor(moving_pattern(frames=1, height=100, width=120)[0], cv2.COLOR_RGB2BGR))
    outs = {name: folders[1] / name for name in ("still.png", "video.mov", "other.png")}
    for (name, out), seed in zip(outs.items(), ("3", "3", "4")):
        extra = ["--codec", "prores4444"] if name.endswith(".mov") else []
        assert main(dream_args(small_graph, source, "-o", out, *FAST, "--seed", seed, *extra)) == 0
    still, video, other = (facts_of(out).first.astype(int) for out in outs.values())
    assert np.abs(video - still).mean() < np.abs(other - still).mean() / 2


@pytest.fixture
def fake_exports(small_graph, tmp_path, monkeypatch):
    """A models folder holding both default graphs, and an export that copies the small graph
    under the name the real one would write; returns (models, exported names)."""
    import shutil

    from livedream.export.graph import ExportRequest, graph_name
    from livedream.manifest import read_manifest, write_manifest_entry
    from livedream.runtime import exporting

    models = tmp_path / "models"
    models.mkdir()
    info = read_manifest(small_graph.parent)["small"]
    for name in ("default", "deep"):  # both default graphs are there: only the device's are missing
        shutil.copy(small_graph, models / f"{name}.onnx")
        write_manifest_entry(models, dataclasses.replace(info, name=name, file=f"{name}.onnx"))
    exported = []

    def fake_export(out_dir, **options):
        name = graph_name(ExportRequest(**options))
        shutil.copy(models / "default.onnx", out_dir / f"{name}.onnx")
        write_manifest_entry(out_dir, dataclasses.replace(info, name=name, file=f"{name}.onnx"))
        exported.append(name)

    monkeypatch.setattr(exporting, "export_in_child", fake_export)
    return models, exported


def test_first_live_run_on_a_cuda_machine_also_exports_the_gpu_live_graphs(fake_exports, monkeypatch):
    """With the CUDA build of ONNX Runtime, `ensure_model("default", live=True)` makes the frame
    and step graphs once; on later runs, without CUDA, or for a still it exports nothing."""
    import onnxruntime

    from livedream.runtime import exporting

    models, exported = fake_exports
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU])
    exporting.ensure_model("default", models, "cpu", live=True)
    assert exported == []
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, CPU])
    exporting.ensure_model("default", models)
    assert exported == []  # a still needs only the gradient graph
    exporting.ensure_model("default", models, live=True)
    assert exported == [f"default-fp16-{kind}" for kind in exporting.LIVE_GPU_GRAPHS]  # the shipped Params' own
    assert any("frame" in name for name in exported) and any("step" in name for name in exported)
    exporting.ensure_model("default", models, live=True)
    assert len(exported) == len(exporting.LIVE_GPU_GRAPHS)


def test_first_run_on_webgpu_exports_the_index_free_variants_once(fake_exports, monkeypatch):
    """On a WebGPU adapter the first run writes `default-webgpu` and `deep-webgpu` (and for the
    live app its float32 live graphs), once."""
    import onnxruntime

    from livedream.runtime import devices, exporting

    models, exported = fake_exports
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU])
    monkeypatch.setattr(devices, "find_webgpu", lambda: devices.WebGpuAdapter(None, "test GPU", "Vulkan", False))
    exporting.ensure_model("default", models)
    assert exported == ["default-webgpu", "deep-webgpu"]
    exporting.ensure_model("default", models, live=True)
    assert exported[2:] == [f"default-webgpu-{kind}" for kind in exporting.LIVE_GPU_GRAPHS]
    exporting.ensure_model("default", models, "webgpu", live=True)
    exporting.ensure_model("default", models, "cpu", live=True)
    assert len(exported) == 2 + len(exporting.LIVE_GPU_GRAPHS)


def test_the_first_runs_export_leaves_the_show_process_without_torch(tmp_path):
    """The export runs in a child (`exporting.export_in_child`): the process that goes on to
    show the dream has not imported torch, so it does not keep the exporter's memory."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from livedream.runtime.exporting import export_in_child\n"
        f"info = export_in_child(out_dir=Path({str(tmp_path)!r}), layers=('mixed0',), name='tiny')\n"
        "print('exported', info.name, 'torch imported here:', 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "exported tiny torch imported here: False" in done.stdout
    assert (tmp_path / "tiny.onnx").exists()
