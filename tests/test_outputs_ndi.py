"""NDI for real, over loopback, between processes (as TouchDesigner or OBS would be):
the headless app's NDI output is received elsewhere and is the app's picture; an NDI
feed sent from elsewhere is what the app dreams. NDI's mDNS finds nothing in a sandbox,
so both sides read an `ndi-config.v1.json` that names 127.0.0.1 (NDI_CONFIG_DIR)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

pytest.importorskip("cyndilib", reason='NDI tests need cyndilib: pip install -e ".[test]"')

from tests.ndi_peer import PATTERN_SIZE, pattern

ROOT = Path(__file__).resolve().parents[1]
DREAM = (160, 90)  # width, height: small, so the CPU keeps tens of frames a second
SOURCE = (320, 180)  # the demo's size: what is shown and sent
NDI_GREY_LEVELS = 3.0  # NDI carries 8-bit 4:2:2 YUV: luma whole, colour at half width, so compare grey


def grey(image_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)


@pytest.fixture
def ndi_env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "ndi"
    folder.mkdir()
    (folder / "ndi-config.v1.json").write_text(json.dumps({"ndi": {"networks": {"ips": "127.0.0.1"}}}))
    return {**os.environ, "NDI_CONFIG_DIR": str(folder), "SDL_VIDEODRIVER": "dummy",
            "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}


def app_config(tmp_path: Path, steps: int) -> Path:
    config = tmp_path / "show.toml"
    config.write_text(
        f'[source]\nkind = "demo"\nwidth = {SOURCE[0]}\nheight = {SOURCE[1]}\n'
        f'[dream]\ndream_width = {DREAM[0]}\ndream_height = {DREAM[1]}\nsteps = {steps}\n'
        f'[osc]\nenabled = false\n[log]\ndir = "{tmp_path / "log"}"\n'
        f'[display]\nscreenshot_dir = "{tmp_path / "shots"}"\ntarget_fps = 0\n'  # the dream size as written
    )
    return config


def start(arguments: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *arguments], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-1500:]
    return output


def received(path: Path) -> np.ndarray:
    return np.load(path)["frames"]


def test_the_headless_apps_ndi_output_is_its_picture(small_graph: Path, tmp_path: Path, ndi_env) -> None:
    out = tmp_path / "received.npz"
    receiver = start(["-m", "tests.ndi_peer", "receive", "LiveDreamTest", str(out), "25"], ndi_env, ROOT)
    app = start(["-m", "livedream", "run", "--config", str(app_config(tmp_path, steps=1)), "--model",
                 str(small_graph), "--no-window", "--ndi", "LiveDreamTest", "--seconds", "12",
                 "--screenshot-after", "150"], ndi_env, tmp_path)
    summary = finish(app)
    finish(receiver)
    frames = received(out)
    [shot_path] = list((tmp_path / "shots").glob("*.png"))
    shot = cv2.cvtColor(cv2.imread(str(shot_path)), cv2.COLOR_BGR2RGB)
    assert len(frames) >= 20, f"only {len(frames)} NDI frames arrived\n{summary}"
    assert frames.shape[1:] == (SOURCE[1], SOURCE[0], 3) == shot.shape  # dreamed small, shown at the source's size
    assert frames.mean() > 20 and frames.std(axis=(1, 2, 3)).min() > 5  # not black, not one flat colour
    assert len({frame.tobytes() for frame in frames}) > len(frames) // 2  # a moving picture, not one frame
    closest = min(np.abs(grey(frame) - grey(shot)).mean() for frame in frames)
    assert closest <= NDI_GREY_LEVELS, f"no received frame within {NDI_GREY_LEVELS} levels of the app's frame: {closest:.2f}"


def test_an_ndi_feed_is_what_the_app_dreams(small_graph: Path, tmp_path: Path, ndi_env) -> None:
    """A feed from another process, the app with no ascent steps (the picture passes through):
    its frame, saved on an OSC screenshot command once it receives, is the feed. (With NDI's
    loopback-IP config only one sender per machine is found, so this leg has the feed's only.)"""
    port = free_udp_port()
    config = app_config(tmp_path, steps=0)
    config.write_text(config.read_text().replace("[osc]\nenabled = false", f"[osc]\nport = {port}\nquery = false"))
    feed = start(["-m", "tests.ndi_peer", "send", "FeedIn", "60"], ndi_env, ROOT)
    app = start(["-m", "livedream", "run", "--config", str(config), "--model", str(small_graph), "--no-window",
                 "--ndi-source", "FeedIn", "--seconds", "60"], ndi_env, tmp_path)
    try:
        wait_for_line(tmp_path / "log" / "livedream.log", "NDI source: receiving", app)
        time.sleep(1.0)  # a few frames of the feed through the loop
        SimpleUDPClient("127.0.0.1", port).send_message("/livedream/screenshot", [])
        shots = wait_for_files(tmp_path / "shots", app)
        app.send_signal(signal.SIGTERM)
        summary = finish(app)
    finally:
        for process in (feed, app):
            process.kill()
            process.wait()
    shot = cv2.cvtColor(cv2.imread(str(shots[0])), cv2.COLOR_BGR2RGB)
    assert PATTERN_SIZE[0] * DREAM[1] == PATTERN_SIZE[1] * DREAM[0]  # same aspect: nothing is cropped
    expected = pattern()  # dreamed at DREAM, shown at the feed's own size
    difference = np.abs(grey(shot) - grey(expected)).mean()
    assert difference <= NDI_GREY_LEVELS, f"the app's picture is not the feed: {difference:.2f} levels\n{summary}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_line(log: Path, text: str, app: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not (log.exists() and text in log.read_text()):
        assert app.poll() is None, f"the app ended: {app.stdout.read()[-1500:]}"
        assert time.monotonic() < deadline, f"no {text!r} in the app's log within {seconds:.0f} s"
        time.sleep(0.1)


def wait_for_files(folder: Path, app: subprocess.Popen, seconds: float = 30) -> list[Path]:
    deadline = time.monotonic() + seconds
    while not (folder.exists() and (found := sorted(folder.glob("*.png")))):
        assert app.poll() is None and time.monotonic() < deadline, "no screenshot came"
        time.sleep(0.1)
    return found
