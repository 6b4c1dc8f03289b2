"""`kill -9` in the middle of a recording: every finished segment plays, whole; only the
open segment (under its `incomplete-` name) is lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
from pythonosc.udp_client import SimpleUDPClient

SEGMENT_FRAMES = 10  # record_fps 10 × segment_seconds 1


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def decoded_frames(path: Path) -> int:
    video = cv2.VideoCapture(str(path))
    count = 0
    while video.read()[0]:
        count += 1
    video.release()
    return count


def test_kill_9_mid_recording_keeps_every_finished_segment_playable(small_graph: Path, tmp_path: Path) -> None:
    recordings, port = tmp_path / "rec", free_udp_port()
    config = tmp_path / "show.toml"
    config.write_text(
        f'[source]\nkind = "demo"\nwidth = 160\nheight = 120\n'
        f'[dream]\ndream_width = 128\ndream_height = 96\nsteps = 1\n'
        f'[display]\nfullscreen = false\nwindow_width = 160\nwindow_height = 120\nhud = false\n'
        f'[osc]\nport = {port}\nquery_port = 0\n[log]\ndir = "{tmp_path / "log"}"\n'
        f'[outputs]\nrecord_folder = "{recordings}"\nrecord_fps = 10\nsegment_seconds = 1.0\nmin_free_mb = 0\n'
    )
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "XDG_STATE_HOME": str(tmp_path / "state")}
    app = subprocess.Popen([sys.executable, "-m", "livedream", "run", "--config", str(config), "--model", str(small_graph)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        deadline = time.monotonic() + 120
        finished: list[Path] = []
        while len(finished) < 2:
            assert app.poll() is None, f"the app ended: {app.stderr.read().decode()[-800:]}"
            assert time.monotonic() < deadline, "no two finished segments within two minutes"
            if not recordings.exists() or not any(recordings.iterdir()):
                client.send_message("/livedream/record", 1)
            time.sleep(0.2)
            finished = sorted(p for p in recordings.glob("*.mp4") if not p.name.startswith("incomplete-")) \
                if recordings.exists() else []
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
        app.stderr.close()
    assert app.returncode == -signal.SIGKILL
    finished = sorted(p for p in recordings.glob("*.mp4") if not p.name.startswith("incomplete-"))
    incomplete = list(recordings.glob("incomplete-*"))
    print("after kill -9:", [p.name for p in finished], "open:", [p.name for p in incomplete])
    assert len(finished) >= 2 and len(incomplete) <= 1
    assert [p.name[-7:] for p in finished] == [f"{i:03d}.mp4" for i in range(1, len(finished) + 1)]
    assert all(decoded_frames(p) == SEGMENT_FRAMES for p in finished)  # each one plays, whole
