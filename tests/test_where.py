"""`where`: the visitors and the room dream apart, judged on a clip whose figure is known.

The clip (`testing.visitor_clip`: a still room, a figure walking in, standing, leaving) is
written with PyAV and dreamed by `livedream dream CLIP --where W` as a user would; the
dream's amount is |dreamed − source| inside the figure's true silhouette and outside it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from livedream.cli import main
from livedream.config import OscConfig, parse_config
from livedream.control.inbox import Inbox
from livedream.control.osc import OscServer
from livedream.errors import UserError
from livedream.objective import GUIDE_MODES
from livedream.params import WHERE, Params
from livedream.media.pictures import read_image
from livedream.pipeline.images import SAMPLE_PHOTO
from livedream.testing.visitor_clip import ClipFrame, Schedule, write_clip

FPS = 10
SCHEDULE = Schedule(empty=3.0, walk_in=1.0, stand=3.0, walk_out=1.0, after=1.0)
FAST = ["--steps", "4", "--frame-steps", "2", "--octaves", "1", "--seed", "3", "--step-size", "0.05"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[ClipFrame]]:
    room = cv2.resize(read_image(SAMPLE_PHOTO), (320, 180), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("where") / "walk.mp4"
    return path, write_clip(path, room, FPS, SCHEDULE)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.float32) for frame in container.decode(video=0)]


def amounts(source: Path, out: Path, frames: list[ClipFrame]) -> tuple[float, float]:
    """The dream's mean amount (grey levels) inside and outside the standing figure."""
    inside, outside = [], []
    for before, after, frame in zip(decoded(source), decoded(out), frames):
        if frame.part != "stand":
            continue
        core = cv2.erode(frame.truth.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0  # the soft edge aside
        away = cv2.dilate(frame.truth.astype(np.uint8), np.ones((31, 31), np.uint8)) == 0
        change = np.abs(after - before).mean(axis=2)
        inside.append(change[core].mean())
        outside.append(change[away].mean())
    return float(np.mean(inside)), float(np.mean(outside))


@pytest.fixture(scope="module")
def dreamed(clip, small_graph, tmp_path_factory) -> dict[str, tuple[float, float]]:
    path, frames = clip
    folder = tmp_path_factory.mktemp("where-out")
    results = {}
    for where in ("all", "visitors", "room"):
        out = folder / f"{where}.mp4"
        assert main(["dream", str(path), "-o", str(out), "--model", str(small_graph), *FAST, "--where", where]) == 0
        results[where] = amounts(path, out, frames)
        print(f"--where {where}: dream inside the figure {results[where][0]:.2f}, outside {results[where][1]:.2f} grey levels")
    return results


def test_where_visitors_dreams_the_figure_and_leaves_the_room(dreamed):
    inside, outside = dreamed["visitors"]
    assert inside >= 5 * outside
    assert inside > 0.5 * dreamed["all"][0]  # the figure is dreamed as much as with where = all, near enough


def test_where_room_dreams_the_room_and_leaves_the_figure(dreamed):
    inside, outside = dreamed["room"]
    assert outside >= 5 * inside
    assert outside > 0.5 * dreamed["all"][1]



# Bad values, generated: near misses of every name (case, a letter short, padding), other types,
# and terms the visitors' objective cannot take. Each is refused in one line; nothing changes.
def near_misses(names: tuple[str, ...]) -> list[object]:
    misses = {variant for name in names for variant in (name.upper(), name[:-1], f" {name}", f"{name}s", name + "\n")}
    return sorted(misses - set(names), key=repr) + ["", "none", "everyone", 1, 0.5, True, b"room"]


BAD_CHOICES = [(name, value) for name, names in (("where", tuple(WHERE)), ("guide_mode", GUIDE_MODES))
               for value in near_misses(names)]
BAD_TOML_CHOICES = [(name, value) for name, value in BAD_CHOICES if not isinstance(value, bytes)]  # OSC: a blob
BAD_VISITOR_TERMS = ["mixed99", "mixed4:9999", "mixed4:-1", "Mixed_4", "conv", "mixed4:x", ""]


@pytest.fixture
def rig():
    inbox = Inbox()
    server = OscServer(OscConfig(port=0), inbox)
    client = SimpleUDPClient("127.0.0.1", server.address[1])
    yield inbox, server, client
    server.close()


def sent_and_refused(rig, caplog, address: str, value: object) -> Params:
    """Send `value` to `address`, then a good message behind it (so the bad one was handled)."""
    inbox, _, client = rig
    before = Params(strength=0.1)
    with caplog.at_level(logging.WARNING):
        client.send_message(address, value)
        client.send_message("/livedream/strength", 0.2)
        deadline = time.monotonic() + 5.0
        params = before
        while params.strength != pytest.approx(0.2):
            params = inbox.update(params, 0.0)
            assert time.monotonic() < deadline, "the OSC messages never arrived"
            time.sleep(0.002)
    return params


@pytest.mark.parametrize(("name", "value"), BAD_CHOICES, ids=[f"{n}={v!r}" for n, v in BAD_CHOICES])
def test_a_bad_choice_over_osc_is_one_line_and_changes_nothing(rig, caplog, name, value):
    params = sent_and_refused(rig, caplog, f"/livedream/{name}", value)
    assert getattr(params, name) == getattr(Params(), name)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and name in lines[0] and "\n" not in lines[0].rstrip()


@pytest.mark.parametrize("term", BAD_VISITOR_TERMS)
def test_a_bad_visitor_term_over_osc_is_one_line_and_changes_nothing(rig, caplog, term):
    params = sent_and_refused(rig, caplog, f"/livedream/visitor_objective/{term}", 1.0)
    assert params.visitor_objective == ()
    assert len(caplog.records) == 1


@pytest.mark.parametrize(("name", "value"), BAD_TOML_CHOICES, ids=[f"{n}={v!r}" for n, v in BAD_TOML_CHOICES])
def test_a_bad_choice_in_the_config_file_is_one_line(name, value):
    with pytest.raises(UserError) as error:
        parse_config({"dream": {name: value}})
    assert f"[dream] {name}" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("command", ["dream", "run"])
@pytest.mark.parametrize(("flag", "value"), [("--where", "nobody"), ("--where", "Visitors"), ("--guide-mode", "best"),
                                             ("--visitor-objective", "mixed99=1"), ("--visitor-objective", "mixed4=x")])
def test_a_bad_value_on_the_command_line_is_one_line_before_any_work(command, flag, value, capsys, tmp_path):
    target = ["--sample", "-o", str(tmp_path / "out.png")] if command == "dream" else ["--seconds", "1"]
    if command == "dream" and flag == "--where":
        target = [str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out.mp4")]
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(main([command, *target, flag, value]))
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and ("error" in err)
    assert not list(tmp_path.iterdir())  # nothing written
