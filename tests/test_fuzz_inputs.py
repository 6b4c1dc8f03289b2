"""Every command-line path and value, walked over a generated space of bad kinds
(`tests/badpaths.py`): each must give exit code 2, one line naming the problem and the
fix, no traceback, no partial output, and the input untouched."""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from livedream.cli import main
from tests import badpaths
from tests.test_imageio import moving_pattern, write_test_video

FAST = ["--steps", "1", "--octaves", "1"]
RUN = ["--frames", "1", "--windowed", "--no-hud"]
CONFIG = b"[dream]\nsteps = 1\nstrength = 0.02\n[display]\nhud = true\nwindow_width = 320\n"


@dataclass(frozen=True)
class Entry:
    """An entry point that takes a path: which kinds it is tried with and its command line."""

    kinds: tuple[str, ...]
    name: str  # the file name the kinds are made with (its extension is the right one)
    good: Callable[[Path], bytes]  # a valid file's bytes
    argv: Callable[[Path, Path, Path], list[str]]  # (bad path, output folder, model) → arguments


def png_bytes(_: Path) -> bytes:
    return cv2.imencode(".png", np.full((100, 120, 3), 128, np.uint8))[1].tobytes()


def video_bytes(folder: Path) -> bytes:
    return write_test_video(folder / "good.mp4", moving_pattern(frames=3, height=96, width=128)).read_bytes()


def onnx_bytes(model: Path) -> Callable[[Path], bytes]:
    return lambda _: model.read_bytes()


ENTRIES: dict[str, Callable[[Path], Entry]] = {
    "dream IN photo": lambda model: Entry(badpaths.PHOTO_KINDS, "in put ü.png", png_bytes,
                                          lambda p, out, m: ["dream", str(p), "-o", str(out / "d.png"), "--model", str(m), *FAST]),
    "dream IN video": lambda model: Entry(badpaths.INPUT_KINDS, "clip ü.mp4", video_bytes,
                                          lambda p, out, m: ["dream", str(p), "-o", str(out / "d.mp4"), "--model", str(m), *FAST]),
    "dream --model": lambda model: Entry(badpaths.INPUT_KINDS, "graph.onnx", onnx_bytes(model),
                                         lambda p, out, m: ["dream", "--sample", "-o", str(out / "d.png"), "--model", str(p), *FAST]),
    "run --config": lambda model: Entry(tuple(k for k in badpaths.INPUT_KINDS if k != "empty"), "show.toml",
                                        lambda _: CONFIG,
                                        lambda p, out, m: ["run", "--config", str(p), "--model", str(m), *RUN]),
    "run --video": lambda model: Entry(badpaths.INPUT_KINDS, "loop ü.mp4", video_bytes,
                                       lambda p, out, m: ["run", "--video", str(p), "--model", str(m), *RUN]),
    "run --image": lambda model: Entry(badpaths.PHOTO_KINDS, "still ü.png", png_bytes,
                                       lambda p, out, m: ["run", "--image", str(p), "--model", str(m), *RUN]),
    "run --model": lambda model: Entry(badpaths.INPUT_KINDS, "graph.onnx", onnx_bytes(model),
                                       lambda p, out, m: ["run", "--source", "demo", "--model", str(p), *RUN]),
}
def weights_bytes(folder: Path) -> bytes:
    torch = pytest.importorskip("torch")
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, folder / "good.pth")
    return (folder / "good.pth").read_bytes()


ENTRIES.update({  # the guide and channel-browser images of the live objective
    "dream --guide": lambda model: Entry(badpaths.PHOTO_KINDS, "guide ü.png", png_bytes,
                                         lambda p, out, m: ["dream", "--sample", "-o", str(out / "d.png"), "--guide", str(p),
                                                            "--model", str(m), *FAST]),
    "run --guide": lambda model: Entry(badpaths.PHOTO_KINDS, "guide ü.png", png_bytes,
                                       lambda p, out, m: ["run", "--source", "demo", "--guide", str(p), "--model", str(m),
                                                          *RUN]),
    "channels --image": lambda model: Entry(badpaths.PHOTO_KINDS, "photo ü.png", png_bytes,
                                            lambda p, out, m: ["channels", "--layer", "mixed0", "--count", "1", "--image",
                                                               str(p), "-o", str(out / "s.png"), "--model", str(m)]),
})
ENTRIES["export --weights"] = lambda model: Entry(
    badpaths.INPUT_KINDS, "weights ü.pth", weights_bytes,
    lambda p, out, m: ["export", "--weights", str(p), "--layers", "mixed0", "--out", str(out / "models")])
CASES = [(entry, kind) for entry, make in ENTRIES.items() for kind in make(Path("x")).kinds]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Input and output folders, the log under tmp_path, and the root logger put back after."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    # ./config.toml is read when no --config is given: keep the tests off the machine's OSC port.
    (tmp_path / "config.toml").write_text("[osc]\nenabled = false\n")
    root = logging.getLogger()
    handlers, level, hooks = list(root.handlers), root.level, (sys.excepthook, threading.excepthook)
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    yield inputs, outputs
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None


def expect_one_line_error(argv: list[str], capfd, outputs: Path, why: str) -> str:
    capfd.readouterr()
    code = main(argv)
    captured = capfd.readouterr()
    assert code == 2, f"{why}: exit code {code}; stderr: {captured.err[-500:]}"
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedream: error: "), f"{why}: {captured.err!r}"
    assert "Traceback" not in captured.err + captured.out
    assert sorted(p.name for p in outputs.iterdir()) == [], f"{why}: left {list(outputs.iterdir())}"
    return lines[0]


@pytest.mark.parametrize("entry, kind", CASES, ids=[f"{e}: {k}" for e, k in CASES])
def test_a_bad_input_path_is_one_line_and_touches_nothing(entry, kind, small_graph, sandbox, capfd) -> None:
    if kind == "unreadable" and not badpaths.permissions_bind():
        pytest.skip("running as root: mode bits do not stop root from reading")
    inputs, outputs = sandbox
    spec = ENTRIES[entry](small_graph)
    path = badpaths.make_input(kind, inputs, spec.name, spec.good(inputs))
    before = digest(path)
    message = expect_one_line_error(spec.argv(path, outputs, small_graph), capfd, outputs, f"{entry} {kind}")
    assert path.name in message, f"the message does not name the file: {message}"
    assert digest(path) == before


@pytest.mark.parametrize("kind", badpaths.OUTPUT_KINDS)
@pytest.mark.parametrize("medium", ["photo", "video"])
def test_a_bad_output_path_is_one_line_and_the_input_is_kept(kind, medium, small_graph, sandbox, capfd) -> None:
    if kind == "in a read-only folder" and not badpaths.permissions_bind():
        pytest.skip("running as root: mode bits do not stop root from writing")
    inputs, outputs = sandbox
    source = inputs / ("photo ü.png" if medium == "photo" else "clip ü.mp4")
    source.write_bytes(png_bytes(inputs) if medium == "photo" else video_bytes(inputs))
    (inputs / "good.mp4").unlink(missing_ok=True)
    target = badpaths.make_output(kind, outputs if kind != "the input itself" else inputs, source.name, source)
    made = sorted(p.name for p in outputs.iterdir())
    before = digest(source)
    capfd.readouterr()
    code = main(["dream", str(source), "-o", str(target), "--model", str(small_graph), *FAST])
    captured = capfd.readouterr()
    assert code == 2, f"{kind}: exit {code}: {captured.err[-400:]}"
    assert captured.err.startswith("livedream: error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    assert digest(source) == before
    assert sorted(p.name for p in outputs.iterdir()) == made  # nothing left beside what the kind made


@pytest.mark.parametrize("entry", ["dream IN photo", "run --image"])
def test_non_ascii_names_with_spaces_just_work(entry, small_graph, sandbox, capfd) -> None:
    inputs, outputs = sandbox
    spec = ENTRIES[entry](small_graph)
    path = inputs / "Träume am Meer ✓ 1.png"
    path.write_bytes(spec.good(inputs))
    assert main(spec.argv(path, outputs, small_graph)) == 0, capfd.readouterr().err


VALUES = {
    "export --layers": [["--layers", "nope"], ["--layers", ","], ["--layers", "mixed11"], ["--layers", "Mixed_9z"]],
    "export --layer-weights": [["--layers", "mixed3,mixed5", "--layer-weights", "1"], ["--layer-weights", "1,x"],
                               ["--layer-weights", "nan"], ["--layer-weights", "inf"]],
    # laplacian alone: the gradient graph has no norm to bake in
    "export --gradient-norm": [["--gradient-norm", "l2"], ["--gradient-norm", "laplacian"]],
    "export --octaves": [["--octaves", "3"], ["--frame", "--steps-per-run", "1", "--octaves", "0"],
                         ["--frame", "--steps-per-run", "1", "--octaves", "x"],
                         ["--frame", "--steps-per-run", "1", "--octaves", "2", "--octave-scale", "9"],
                         ["--frame", "--steps-per-run", "1", "--octaves", "2", "--octave-scale", "nan"]],
    "run --source": [["--source", "webcam"], ["--source", ""], ["--source", "video"]],
    "run --camera": [["--camera", "-1"], ["--camera", ""], ["--camera", " "]],
    "run --size": [["--size", "640"], ["--size", "0x0"], ["--size", "-5x10"], ["--size", "99999x99999"]],
    "run numbers": [["--strength", "lots"], ["--steps", "-1"], ["--frames", "0"], ["--half-life", "nan"]],
}
VALUE_CASES = [(entry, args) for entry, cases in VALUES.items() for args in cases]


@pytest.mark.parametrize("entry, args", VALUE_CASES, ids=[f"{e}: {' '.join(a)}" for e, a in VALUE_CASES])
def test_a_bad_value_is_one_line(entry, args, small_graph, sandbox, capfd) -> None:
    _, outputs = sandbox
    if entry.startswith("export"):
        pytest.importorskip("torch")
        argv = ["export", "--out", str(outputs / "models"), *args]
        outputs = outputs  # an export that refuses must not create its folder either
    else:
        argv = ["run", "--model", str(small_graph), *RUN, *args]
    expect_one_line_error(argv, capfd, outputs, f"{entry} {args}")


@pytest.mark.parametrize("kind", ["a file", "under a file", "in a read-only folder"])
def test_export_out_that_cannot_be_a_folder_is_one_line(kind, sandbox, capfd) -> None:
    pytest.importorskip("torch")
    if kind == "in a read-only folder" and not badpaths.permissions_bind():
        pytest.skip("running as root: mode bits do not stop root from writing")
    inputs, outputs = sandbox
    if kind == "a file":
        target = outputs / "models"
        target.write_bytes(b"x")
    else:
        target = badpaths.make_output(kind, outputs, "models", inputs)
    made = sorted(p.name for p in outputs.iterdir())
    capfd.readouterr()
    assert main(["export", "--layers", "mixed0", "--out", str(target)]) == 2
    captured = capfd.readouterr()
    assert captured.err.startswith("livedream: error: ") and captured.err.count("\n") == 1, captured.err
    assert sorted(p.name for p in outputs.iterdir()) == made
