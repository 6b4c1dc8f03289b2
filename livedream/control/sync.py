"""Several screens, one show: a leader sends what changes its show to followers over OSC.

The leader forwards the *causes*, not the blended values: live parameter changes (OSC,
MIDI, web, keys) on the addresses the app listens to, preset switches with their fade time
(`/livedream/sync/preset s f`), and a beat with the sequencer's place (`/livedream/sync/beat
i f`: program step, seconds into it). Each follower then runs the same crossfade itself, so
screens move together without streaming every blended frame. A follower that hears nothing
for `leader_timeout_s` runs its own sequencer from the last place it heard, and says so.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonosc.udp_client import SimpleUDPClient

from livedream.config import SyncConfig

log = logging.getLogger(__name__)

PREFIX = "/livedream"
SYNC_PREFIX = f"{PREFIX}/sync"
BEAT_INTERVAL_S = 0.5  # the leader's heartbeat; a follower's timeout is several of these


class SyncLeader:
    """Sends this show's changes to every peer ("host:port" of a follower's [osc] port)."""

    def __init__(self, config: SyncConfig, interval_s: float = BEAT_INTERVAL_S) -> None:
        self.peers = config.peers
        self._clients = [SimpleUDPClient(host, int(port)) for host, _, port in (p.rpartition(":") for p in config.peers)]
        self._interval_s = interval_s
        self._last_beat = float("-inf")
        self._failed: set[int] = set()

    def send_changes(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            self._send(f"{PREFIX}/{name}", value)

    def send_preset(self, name: str, fade_s: float) -> None:
        self._send(f"{SYNC_PREFIX}/preset", [name, float(fade_s)])

    def beat(self, now: float, program: tuple[int, float] | None) -> None:
        """At most every `interval_s`: "I am here", and where the program is (-1 = no program)."""
        if now - self._last_beat < self._interval_s:
            return
        self._last_beat = now
        position, elapsed = program if program is not None else (-1, 0.0)
        self._send(f"{SYNC_PREFIX}/beat", [int(position), float(elapsed)])

    @property
    def status(self) -> str:
        return f"sync: leader of {len(self.peers)} follower(s)"

    def _send(self, address: str, value: Any) -> None:
        for index, client in enumerate(self._clients):
            try:
                client.send_message(address, value)
            except OSError as error:  # a follower that is off must not stop the leader; say so once
                if index not in self._failed:
                    self._failed.add(index)
                    log.warning("sync: sending to %s failed: %s", self.peers[index], error)


class SyncFollower:
    """Knows whether its leader is still there (anything heard within the timeout)."""

    def __init__(self, config: SyncConfig) -> None:
        self._timeout_s = config.leader_timeout_s
        self._heard_at: float | None = None
        self._was_present = False

    def heard(self, now: float) -> None:
        if not self._was_present:
            log.info("sync: following the leader")
        self._heard_at, self._was_present = now, True

    def leader_present(self, now: float) -> bool:
        present = self._heard_at is not None and now - self._heard_at <= self._timeout_s
        if self._was_present and not present:
            log.warning("sync: leader silent for %.0f s; running this screen's own program", self._timeout_s)
        self._was_present = present
        return present

    def status(self, now: float) -> str:
        if self.leader_present(now):
            return "sync: following the leader"
        if self._heard_at is None:
            return "sync: waiting for the leader (own program meanwhile)"
        return f"sync: LEADER LOST {now - self._heard_at:.0f} s ago, own program"
