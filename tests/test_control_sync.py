"""Several screens, one show: two app instances on loopback, one leading, one following."""

from __future__ import annotations

import time
from pathlib import Path

import pygame
import pytest

from livedream.config import parse_config
from livedream.control.hub import ControlHub
from livedream.errors import UserError
from livedream.live.build import open_app
from livedream.params import Params
from tests.test_app import post_key
from tests.test_app_wiring import FRAME_S, FakeClock, Tick, show_config

MAX_LATENCY_S = 0.1  # the bound: a preset switch on the leader reaches the follower within 100 ms
PRESETS = {"order": ["calm", "deep", "infinite"], "crossfade": 1.0, "calm": {"strength": 0.01, "steps": 1},
           "deep": {"strength": 0.05, "steps": 1, "zoom_per_s": 0.01}, "infinite": {"strength": 0.03, "steps": 1}}


class Station:
    """One screen: a real hub (OSC on a free port) and an app on a fake clock."""

    def __init__(self, small_graph: Path, folder: Path, sync: dict) -> None:
        folder.mkdir()
        config = show_config(small_graph, folder, presets=PRESETS, sync=sync, attract={"enabled": False})
        self.clock = FakeClock()
        self.hub = ControlHub(config, clock=self.clock, open_devices=False, state_folder=folder / "state")
        self.app = open_app(config, controls=[self.hub, Tick(self.clock)], recall_preset=self.hub.select_preset,
                            models_dir=small_graph.parent, clock=self.clock, open_devices=False)
        self.app.open()

    @property
    def port(self) -> int:
        return self.hub.osc.address[1]

    def close(self) -> None:
        self.app.close()
        self.hub.close()


@pytest.fixture
def stations(small_graph: Path, tmp_path: Path):
    follower = Station(small_graph, tmp_path / "follower", {"role": "follower", "leader_timeout_s": 2.0})
    leader = Station(small_graph, tmp_path / "leader", {"role": "leader", "peers": [f"127.0.0.1:{follower.port}"]})
    yield leader, follower
    leader.close()
    follower.close()


def test_a_preset_switch_on_the_leader_reaches_the_follower_within_100_ms(stations) -> None:
    leader, follower = stations
    leader.app.step()
    follower.app.step()
    pygame.event.clear()
    post_key(pygame.K_2, "2")  # key 2 on the leader: preset "deep"
    leader.app.step()
    sent = time.perf_counter()
    while follower.hub.presets.current != "deep":
        follower.app.step()
        assert time.perf_counter() - sent < 5, "the follower never switched"
    latency = time.perf_counter() - sent
    print(f"preset switch leader → follower: {latency * 1000:.1f} ms")
    assert latency <= MAX_LATENCY_S
    for _ in range(int(2.0 / FRAME_S)):  # past the 1 s crossfade on both fake clocks
        leader.app.step()
        follower.app.step()
    assert leader.app.params == follower.app.params
    assert leader.app.params.strength == 0.05 and leader.app.params.zoom_per_s == 0.01


def test_a_live_change_on_the_leader_is_applied_on_the_follower(stations) -> None:
    leader, follower = stations
    leader.app.step()
    follower.app.step()
    pygame.event.clear()  # one event queue for both windows: the key goes to whoever steps next
    post_key(pygame.K_PLUS, "+")  # a key on the leader: strength up one step
    leader.app.step()
    wanted = leader.app.params.strength
    deadline = time.monotonic() + 5
    while follower.app.params.strength != pytest.approx(wanted, abs=1e-6):  # OSC sends float32
        follower.app.step()
        assert time.monotonic() < deadline, "the change never arrived"


def test_a_follower_that_loses_its_leader_runs_on_and_says_so(small_graph: Path, tmp_path: Path) -> None:
    follower = Station(small_graph, tmp_path / "alone", {"role": "follower", "leader_timeout_s": 1.0})
    try:
        follower.hub.inbox.sync_message("beat", (0, 0.0), "test")  # one beat heard, then silence
        follower.app.step()
        assert "sync: following the leader" in follower.app.hud_stats.extra
        for _ in range(int(2.0 / FRAME_S)):
            follower.app.step()
        assert any(line.startswith("sync: LEADER LOST") for line in follower.app.hud_stats.extra)
    finally:
        follower.close()


@pytest.mark.parametrize("sync, message", [
    ({"role": "leader"}, 'role = "leader" needs peers'),
    ({"role": "follower", "peers": ["nohost"]}, 'peers = "nohost" is not allowed; use "host:port"'),
    ({"role": "boss"}, "role"),
])
def test_sync_config_mistakes_are_one_line(sync: dict, message: str) -> None:
    with pytest.raises(UserError) as error:
        parse_config({"sync": sync})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_sync_messages_are_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    hub = ControlHub(parse_config({"osc": {"port": 0, "query": False}, "sync": {"role": "follower"}}),
                     open_devices=False, state_folder=tmp_path)
    try:
        for kind, args in [("preset", ("deep",)), ("beat", ("x", 1.0)), ("preset", (3, 1.0)), ("nope", (1, 2.0)),
                           ("beat", (1, float("nan")))]:
            assert not hub.inbox.sync_message(kind, args, "OSC")
        assert hub.inbox.take_sync() == ({}, False)
        assert hub.update(Params(), 0.0) == Params()
    finally:
        hub.close()


def test_a_follower_takes_the_leaders_place_in_the_program(tmp_path: Path) -> None:
    """While the leader beats, the follower's own sequencer does not advance; it keeps the
    leader's place, so that it carries on from there when the leader goes silent."""
    config = parse_config({"osc": {"port": 0, "query": False}, "attract": {"enabled": False},
                           "sync": {"role": "follower", "leader_timeout_s": 1.0},
                           "sequencer": {"enabled": True, "playlist": [{"preset": "calm", "hold": 10},
                                                                     {"preset": "deep", "hold": 10}]}})
    hub = ControlHub(config, open_devices=False, state_folder=tmp_path)
    try:
        hub.inbox.sync_message("beat", (1, 4.0), "test")  # the leader is 4 s into step 2 ("deep")
        hub.update(Params(), 100.0)
        assert hub.sequencer.place(100.0) == (1, 4.0)
        assert "sync: following the leader" in hub.status_lines(100.0)
        hub.update(Params(), 106.5)  # silent past the timeout: its own program, from the leader's place
        assert any(line.startswith("sync: LEADER LOST") for line in hub.status_lines(106.5))
        assert hub.sequencer.place(106.5)[0] == 0  # step 2 ended at 106, so it moved on to step 1 again
    finally:
        hub.close()


def test_a_live_objective_move_on_the_leader_reaches_the_follower(stations) -> None:
    """A fader on the leader moves mixed3 and adds a channel: the follower dreams the same objective."""
    leader, follower = stations
    leader.app.step()
    follower.app.step()
    leader.hub.inbox.set_param("objective/mixed0", 0.5, "test")
    leader.hub.inbox.set_param("objective/mixed0:12", 1.5, "test")
    leader.app.step()
    wanted = leader.app.params.objective
    assert dict(wanted) == {"mixed0": 0.5, "mixed0:12": 1.5, "mixed3": 1.0, "mixed5": 1.0}
    deadline = time.monotonic() + 5
    while dict(follower.app.params.objective) != pytest.approx(dict(wanted)):
        follower.app.step()
        assert time.monotonic() < deadline, f"the objective never arrived: {follower.app.params.objective}"
    leader.hub.inbox.set_param("objective/mixed3", 0.0, "test")  # a term dropped reaches it too
    leader.app.step()
    while "mixed3" in dict(follower.app.params.objective):
        follower.app.step()
        assert time.monotonic() < deadline + 5, "the dropped term stayed"


def test_objective_moves_add_before_they_remove() -> None:
    from livedream.params import objective_moves

    moves = objective_moves((("mixed3", 1.0),), (("mixed4", 1.0), ("mixed4:9", 0.5)))
    assert set(list(moves)[:2]) == {"objective/mixed4", "objective/mixed4:9"} and list(moves)[-1] == "objective/mixed3"
    assert moves["objective/mixed3"] == 0.0 and moves["objective/mixed4:9"] == 0.5
