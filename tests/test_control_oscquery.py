"""OSCQuery serves every /livedream address with type, range and the applied value; OSC
feedback sends the applied values back, a crossfade as a ramp, at most 10 times a second."""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from livedream.config import AttractConfig, Config, OscConfig
from livedream.control.hub import ControlHub
from livedream.control.osc import FEEDBACK_INTERVAL_S, osc_addresses
from livedream.control.oscquery import OscQueryServer
from livedream.params import NUMERIC_PARAMS, PARAM_RANGES, Params


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hub_with(tmp_path: Path, clock=lambda: 0.0, **osc) -> ControlHub:
    config = dataclasses.replace(Config(), attract=AttractConfig(enabled=False),
                                 osc=OscConfig(port=0, query_port=0, **osc))
    return ControlHub(config, clock=clock, open_devices=False, state_folder=tmp_path / "state")


def get(port: int, path: str, host: str | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
    answer = connection.getresponse()
    status, body = answer.status, json.loads(answer.read() or b"{}")
    connection.close()
    return status, body


def test_the_tree_lists_every_address_with_its_type_range_and_value(tmp_path: Path) -> None:
    hub = hub_with(tmp_path)
    try:
        hub.update(dataclasses.replace(Params(), strength=0.125), 0.0)  # what the loop applied
        status, tree = get(hub.query.port, "/")
        assert status == 200
        nodes = tree["CONTENTS"]["livedream"]["CONTENTS"]
        assert set(nodes) == {a.path.split("/")[2] for a in osc_addresses()}
        objective = nodes["objective"]["CONTENTS"]
        assert set(objective) == {f"mixed{i}" for i in range(11)}
        assert objective["mixed3"]["VALUE"] == [1.0] and objective["mixed4"]["VALUE"] == [0.0]
        assert objective["mixed4"]["FULL_PATH"] == "/livedream/objective/mixed4"
        assert get(hub.query.port, "/livedream/objective/mixed5?VALUE")[1] == {"VALUE": [1.0]}
        assert set(NUMERIC_PARAMS) | {"preset", "record", "screenshot", "pause"} <= set(nodes)
        for name in NUMERIC_PARAMS:
            node = nodes[name]
            assert node["FULL_PATH"] == f"/livedream/{name}"
            assert node["RANGE"] == [{"MIN": PARAM_RANGES[name].low, "MAX": PARAM_RANGES[name].high}]
            assert node["TYPE"] == ("i" if isinstance(getattr(Params(), name), int) else "f")
        assert nodes["strength"]["VALUE"] == [0.125]
        assert "TYPE" not in nodes["screenshot"] and nodes["preset"]["TYPE"] == "s"
        assert get(hub.query.port, "/livedream/steps")[1]["FULL_PATH"] == "/livedream/steps"
        assert get(hub.query.port, "/livedream/strength?VALUE")[1] == {"VALUE": [0.125]}
        info = get(hub.query.port, "/?HOST_INFO")[1]
        assert info["OSC_PORT"] == hub.osc.address[1] and info["OSC_TRANSPORT"] == "UDP"
        assert get(hub.query.port, "/livedream/nope")[0] == 404
    finally:
        hub.close()


def test_oscquery_has_the_web_panels_doors(tmp_path: Path) -> None:
    hub = hub_with(tmp_path)
    try:
        assert get(hub.query.port, "/", host="evil.example")[0] == 403
        connection = http.client.HTTPConnection("127.0.0.1", hub.query.port, timeout=5)
        connection.request("POST", "/livedream/strength", body=b"{}", headers={"Content-Type": "application/json"})
        assert connection.getresponse().status == 405
        connection.close()
    finally:
        hub.close()
    beyond = hub_with(tmp_path, host="0.0.0.0")
    try:
        assert get(beyond.query.port, "/")[0] == 401
        assert get(beyond.query.port, f"/?token={beyond.query.guard.token}")[0] == 200
    finally:
        beyond.close()


@pytest.fixture
def receiver():
    """A controller listening for feedback: (port, messages as (address, value))."""
    messages: list[tuple[str, object]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: messages.append((address, args[0])))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1], messages
    server.shutdown()
    server.server_close()


def test_feedback_follows_a_crossfade_as_a_ramp_at_most_ten_times_a_second(tmp_path: Path, receiver) -> None:
    port, messages = receiver
    clock = Clock()
    hub = hub_with(tmp_path, clock=clock, feedback=(f"127.0.0.1:{port}",))
    frame = np.zeros((8, 8, 3), np.uint8)
    try:
        params = hub.update(Config().dream, clock.now)
        target = hub.presets.params_of("deep").strength
        assert hub.select_preset("deep", clock.now)
        frames, seconds = 0, 0.0
        while seconds < Config().presets.crossfade + 0.5:  # 60 fps for the crossfade and a bit
            params = hub.update(params, clock.now)
            hub.publish(frame, 60.0, clock.now)
            clock.now += 1 / 60
            seconds += 1 / 60
            frames += 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(a == "/livedream/strength" and v == pytest.approx(target)
                                                      for a, v in list(messages)):
            time.sleep(0.02)
    finally:
        hub.close()
    ramp = [value for address, value in messages if address == "/livedream/strength"]
    print(f"{frames} frames, {len(ramp)} strength messages:", [round(v, 4) for v in ramp])
    assert ramp[-1] == pytest.approx(target, abs=1e-6) and len(ramp) >= 5
    assert all(b >= a for a, b in zip(ramp, ramp[1:])) or all(b <= a for a, b in zip(ramp, ramp[1:]))
    assert len(ramp) <= seconds / FEEDBACK_INTERVAL_S + 2  # ≤ 10 Hz however fast the loop runs
    assert ("/livedream/preset", "deep") in messages
    assert any(address == "/livedream/fps" for address, _ in messages)


class FakeZeroconf:
    """The part of python-zeroconf used: Zeroconf().register_service / unregister_service / close."""

    registered: list = []
    closed = False

    class ServiceInfo:
        def __init__(self, service_type: str, name: str, port: int, parsed_addresses: list[str], server: str) -> None:
            self.type, self.name, self.port, self.addresses = service_type, name, port, parsed_addresses

    class Zeroconf:
        def register_service(self, info, allow_name_change: bool = False) -> None:
            FakeZeroconf.registered.append(info)

        def unregister_service(self, info) -> None:
            FakeZeroconf.registered.remove(info)

        def close(self) -> None:
            FakeZeroconf.closed = True


@pytest.mark.parametrize("host, advertised", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_oscquery_is_advertised_on_zeroconf_only_beyond_localhost(tmp_path: Path, host: str, advertised: bool) -> None:
    FakeZeroconf.registered, FakeZeroconf.closed = [], False
    server = OscQueryServer(OscConfig(host=host, query_port=0), 9000, lambda: (Params(), None), tmp_path,
                            zeroconf=FakeZeroconf)
    try:
        if server.advertisement is not None:
            server.advertisement._thread.join(5)
        services = {(info.type, info.port) for info in FakeZeroconf.registered}
        expected = {("_oscjson._tcp.local.", server.port), ("_osc._udp.local.", 9000)} if advertised else set()
        assert services == expected
    finally:
        server.close()
    assert FakeZeroconf.registered == [] and FakeZeroconf.closed == advertised
