"""The web panel: a real HTTP server; POSTs are checked and clamped like OSC, GET serves a JPEG."""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.error
import urllib.request

import numpy as np
import pytest

from livedream.config import AttractConfig, Config, OscConfig, WebConfig
from livedream.control.hub import ControlHub
from livedream.params import Params


@pytest.fixture
def hub():
    config = dataclasses.replace(
        Config(), osc=OscConfig(enabled=False), web=WebConfig(enabled=True, port=0), attract=AttractConfig(enabled=False)
    )
    hub = ControlHub(config, clock=lambda: 0.0, open_devices=False)
    yield hub
    hub.close()


def request(hub: ControlHub, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, bytes, str]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(hub.web.url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:
            return answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def test_post_param_clamps_and_applies_on_the_next_frame(hub: ControlHub, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        status, body, _ = request(hub, "/param", {"name": "strength", "value": 3.0})
    assert status == 200
    assert json.loads(body) == {"ok": True, "name": "strength", "value": 0.5, "clamped": True}
    assert "clamped to 0.5" in caplog.text
    assert hub.update(Params(), 0.0).strength == 0.5


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        ({"name": "strength", "value": "high"}, "strength needs a number"),
        ({"name": "strength", "value": None}, "strength needs a number"),
        ({"name": "colour", "value": 1}, "unknown parameter 'colour'"),
        ({"name": "steps"}, "steps needs a number"),
    ],
)
def test_bad_param_post_is_400_with_a_warning(hub: ControlHub, caplog, body: dict, warning: str) -> None:
    with caplog.at_level(logging.WARNING):
        status, answer, _ = request(hub, "/param", body)
    assert status == 400 and json.loads(answer)["ok"] is False
    assert warning in caplog.text
    assert hub.update(Params(), 0.0) == Params()


def test_malformed_and_oversized_bodies_are_refused(hub: ControlHub, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert request(hub, "/param", raw=b"{not json")[0] == 400
        assert request(hub, "/param", raw=b"[1, 2]")[0] == 400
        assert request(hub, "/param", raw=b"x" * 10000)[0] == 413
        assert request(hub, "/nowhere", {"a": 1})[0] == 404
    assert "not a JSON object" in caplog.text
    status, _, _ = request(hub, "/state")
    assert status == 200  # still serving


def test_preview_is_a_jpeg_of_the_published_frame(hub: ControlHub) -> None:
    status, body, kind = request(hub, "/preview.jpg")
    assert status == 200 and kind == "image/jpeg" and body[:2] == b"\xff\xd8"  # placeholder before any frame
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[:, :320] = (255, 0, 0)
    hub.publish(frame, fps=24.5, now=1.0)
    status, body, kind = request(hub, "/preview.jpg")
    import cv2

    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (180, 320, 3)
    assert image[90, 40, 2] > 200 and image[90, 280, 2] < 40  # red on the left (BGR), black on the right


def test_preset_and_command_posts(hub: ControlHub) -> None:
    assert request(hub, "/preset", {"preset": "deep"})[0] == 200
    assert request(hub, "/preset", {"preset": "nope"})[0] == 400
    assert request(hub, "/command", {"command": "screenshot"})[0] == 200
    assert request(hub, "/command", {"command": "format_disk"})[0] == 400
    hub.update(Params(), 0.0)
    assert hub.presets.current == "deep"
    assert hub.drain_commands() == ["screenshot"]


def test_state_and_page(hub: ControlHub) -> None:
    hub.publish(np.zeros((90, 160, 3), np.uint8), fps=30.0, now=0.0)
    hub.update(Params(strength=0.07), 0.0)
    state = json.loads(request(hub, "/state")[1])
    assert state["presets"][:3] == ["calm", "deep", "infinite"] and state["fps"] == 30.0
    assert state["params"]["strength"] == 0.07
    status, page, kind = request(hub, "/")
    assert status == 200 and kind.startswith("text/html")
    for element in ('id="strength"', 'id="steps"', 'id="half_life"', 'id="zoom_per_s"', '"/preview.jpg?t="', 'id="presets"'):
        assert element.encode() in page


def test_the_visitor_controls_choose_where_and_the_visitors_objective(hub: ControlHub) -> None:
    page = request(hub, "/")[1].decode()
    assert all(f'data-choice="where" data-value="{name}"' in page for name in ("all", "visitors", "room"))
    assert 'id="visitor_objective/mixed5"' in page and 'data-choice="guide_mode" data-value="mean"' in page
    assert request(hub, "/choice", {"name": "where", "value": "visitors"})[0] == 200
    assert request(hub, "/param", {"name": "visitor_objective/mixed7", "value": 2.0})[0] == 200
    assert request(hub, "/choice", {"name": "where", "value": "garden"})[0] == 400
    assert request(hub, "/choice", {"name": "strength", "value": "room"})[0] == 400
    params = hub.update(Params(), 0.0)
    assert params.where.name == "visitors" and dict(params.visitor_objective) == {"mixed7": 2.0}
    state = json.loads(request(hub, "/state")[1])
    assert state["params"]["where"] == "visitors" and state["params"]["visitor_objective/mixed7"] == 2.0
