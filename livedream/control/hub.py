"""`ControlHub`: the one object the live loop talks to for show control.

It builds the enabled controls from `Config` and chains them once per frame:

    inbox (OSC, MIDI, web) → sequencer → preset crossfade   (persistent: the live params)
    → audio → attract mode                                  (overlays: never fed back)

The loop passes back what `update` returned last frame (with its own key changes applied);
the hub keeps the persistent params itself, so overlays never accumulate, and a field the
loop changed since the last frame is taken over as a live change.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from livedream.config import Config
from livedream.control.attract import AttractMode
from livedream.control.audio import AudioInput, AudioReactive
from livedream.control.inbox import Inbox
from livedream.control.midi import MidiInput, MidiMapping
from livedream.control.osc import OscFeedback, OscServer
from livedream.control.oscquery import OscQueryServer
from livedream.control.presets import PresetBank, Sequencer
from livedream.control.sync import SyncFollower, SyncLeader
from livedream.control.web import WebPanel
from livedream.errors import UserError
from livedream.files import state_dir
from livedream.params import NUMERIC_PARAMS, OBJECTIVE_FIELDS, Params, objective_moves, objective_values

log = logging.getLogger(__name__)

PREVIEW_INTERVAL = 0.1  # seconds between web preview thumbnails


class ControlHub:
    """Show control for the live loop. Raises `UserError` (one line) for config mistakes and busy ports."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic, open_devices: bool = True,
                 state_folder: Path | None = None) -> None:
        """`state_folder` keeps what the hub makes for itself (the web token); default: `files.state_dir()`."""
        self._clock = clock
        self.inbox = Inbox(select_preset=self._select_queued_preset)
        self.presets = PresetBank(config.presets, config.dream)
        _check_preset_names(config, self.presets)
        self.sequencer = Sequencer(config.sequencer, self.presets) if config.sequencer.enabled else None
        self.attract = (
            AttractMode(config.attract, self.presets.params_of(self.presets.resolve(config.attract.preset))) if config.attract.enabled else None
        )
        self.audio = AudioReactive(config.audio) if config.audio.enabled else None
        state = state_folder or state_dir()
        self.midi_mapping = MidiMapping(config.midi, self.inbox, state)
        self.osc: OscServer | None = None
        self.query: OscQueryServer | None = None
        self.feedback = OscFeedback(config.osc.feedback)
        self.web: WebPanel | None = None
        self.leader = SyncLeader(config.sync) if config.sync.role == "leader" else None
        self.follower = SyncFollower(config.sync) if config.sync.role == "follower" else None
        self.midi: MidiInput | None = None
        self.audio_input: AudioInput | None = None
        self._configured = config.dream
        self._base: Params | None = None  # the persistent live params
        self._last: Params | None = None  # what update returned last
        self._last_preview = float("-inf")
        try:
            if config.osc.enabled:
                self.osc = OscServer(config.osc, self.inbox, tuple(self.presets.names))
                if config.osc.query:
                    self.query = OscQueryServer(config.osc, self.osc.address[1], self._applied, state)
            if config.web.enabled:
                self.web = WebPanel(config.web, self.inbox, self.presets.names, self._web_state, state)
            if open_devices and config.midi.enabled:
                self.midi = MidiInput.open(config.midi, self.midi_mapping)
            if open_devices and self.audio is not None:
                self.audio_input = AudioInput.open(config.audio, self.audio, clock)
        except BaseException:
            self.close()
            raise

    # --- once per frame --------------------------------------------------------------------

    def update(self, params: Params, now: float) -> Params:
        """The params for this frame. Pass back last frame's result (with key changes applied)."""
        live, key_changes = self._take_over_outside_changes(params)
        received = self.inbox.update(live, now)
        led = self._follow_leader(now)
        if self.sequencer is not None and not led:
            self.sequencer.update(received, now)  # it only selects presets
        before_presets = live
        live = self.presets.update(received, now)
        if self.leader is not None:  # only a leader needs this frame's live changes spelled out
            self._lead({**key_changes, **received.changes_from(before_presets)}, before_presets, now)
        self._base = live
        shown = live
        for overlay in (self.audio, self.attract):
            if overlay is not None:
                shown = overlay.update(shown, now)
        self._last = shown
        return shown

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        """The camera frame (before dreaming), for motion detection."""
        if self.attract is not None:
            self.attract.observe(frame_rgb, now)

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        """The dreamed frame as shown, for the web preview; and the applied values, for OSC feedback."""
        if self.web is not None and now - self._last_preview >= PREVIEW_INTERVAL:
            self.web.preview.publish(frame_rgb, fps)
            self._last_preview = now
        params, preset = self._applied()
        self.feedback.send(params, preset, fps, self.attract.motion_level if self.attract else None, now)

    def drain_commands(self) -> list[str]:
        """Commands for the loop since the last call (one of `inbox.COMMANDS` each)."""
        return self.inbox.drain_commands()

    def take_command(self, command: str) -> None:
        """From the loop's keys: "learn <parameter>" (key m, then the parameter's key) arms MIDI learn."""
        verb, _, target = command.partition(" ")
        if verb == "learn" and target:
            self.inbox.arm_learn(target, "key m", tuple(self.presets.names))

    # --- keys and state --------------------------------------------------------------------

    def select_preset(self, key: int | str, now: float) -> bool:
        """Keys 1–9 (or a name): crossfade to that preset; False (warning logged) when there is none."""
        return self.presets.select(key, now)

    def preset_models(self) -> set[str]:
        """Every model a preset can switch to: make their sessions at start."""
        return self.presets.models()

    def status_lines(self, now: float | None = None) -> list[str]:
        """HUD lines: preset, program position, motion, listeners, recording."""
        now = self._clock() if now is None else now
        preset = f"preset {self.presets.current or '–'}"
        fading = self.presets.fade_progress(now)
        lines = [preset if fading is None else f"{preset} (crossfade {fading:.0%})"]
        if self.sequencer is not None:
            lines.append(self.sequencer.status(now))
        if self.attract is not None:
            motion = f"motion {self.attract.motion_level:.2f}"
            until = self.attract.seconds_until_attract(now)
            if self.attract.active:
                lines.append(f"{motion}   ATTRACT MODE")
            else:
                lines.append(motion if until is None else f"{motion}   attract in {until:.0f} s")
        listeners = []
        if self.osc is not None:
            listeners.append("OSC {}:{}".format(*self.osc.address))
        if self.query is not None:
            listeners.append(f"OSCQuery :{self.query.port}")
        if self.web is not None:
            listeners.append(f"web {self.web.url}")
        if self.midi is not None:
            listeners.append(f"MIDI {self.midi.name}")
        if listeners:
            lines.append("   ".join(listeners))
        if self.leader is not None:
            lines.append(self.leader.status)
        if self.follower is not None:
            lines.append(self.follower.status(now))
        if self.inbox.learning is not None:
            lines.append(f"MIDI learn: move a control for {self.inbox.learning}")
        lines.extend(self.midi_mapping.bindings_lines())
        if self.audio is not None:
            lines.append(f"audio {self.audio.level:.2f}" + ("" if self.audio_input else " (no input)"))
        return lines

    def close(self) -> None:
        """Stop listeners and devices."""
        for resource in (self.osc, self.query, self.web, self.midi, self.audio_input):
            if resource is not None:
                try:
                    resource.close()
                except Exception as error:  # closing must not hide the reason the show stopped
                    log.warning("closing %s failed: %s", type(resource).__name__, error)
        self.osc = self.query = self.web = self.midi = self.audio_input = None

    # --- inside ----------------------------------------------------------------------------

    def _take_over_outside_changes(self, params: Params) -> tuple[Params, dict]:
        """The persistent params with the loop's own changes (keys) since last frame, and those changes."""
        if self._base is None or self._last is None:
            return params, {}
        changed = params.changes_from(self._last)
        return (dataclasses.replace(self._base, **changed) if changed else self._base), changed

    def _follow_leader(self, now: float) -> bool:
        """A follower takes the leader's preset switches and program place; True while it leads."""
        if self.follower is None:
            return False
        messages, heard = self.inbox.take_sync()
        if heard:
            self.follower.heard(now)
        if "preset" in messages:
            name, fade = messages["preset"]
            self.presets.select(name, now, fade=fade)
        if "beat" in messages and self.sequencer is not None:
            self.sequencer.follow(*messages["beat"], now)
        return self.follower.leader_present(now)

    def _lead(self, changes: dict, before: Params, now: float) -> None:
        """A leader sends this frame's live changes (both objectives term by term), a preset
        switch that began, and its beat."""
        self.leader.send_changes({name: value for name, value in changes.items() if name in NUMERIC_PARAMS})
        for prefix, field in OBJECTIVE_FIELDS.items():  # OSC spells a channel term /objective/<layer>/<channel>
            if field in changes:
                moves = objective_moves(getattr(before, field), changes[field], prefix)
                self.leader.send_changes({name.replace(":", "/"): weight for name, weight in moves.items()})
        if self.presets.started is not None:
            self.leader.send_preset(*self.presets.started)
        self.leader.beat(now, self.sequencer.place(now) if self.sequencer is not None else None)

    def _select_queued_preset(self, name_or_index: str | int, now: float) -> None:
        self.presets.select(name_or_index, now)

    def _applied(self) -> tuple[Params, str | None]:
        """The Params the loop applied last (the configured ones before the first frame), and the preset."""
        return self._last or self._base or self._configured, self.presets.current

    def _web_state(self) -> dict:
        params = self._applied()[0]
        values = {**dataclasses.asdict(params), **objective_values(params), "where": params.where.name}
        return {"params": values, "preset": self.presets.current, "status": self.status_lines()}


def _check_preset_names(config: Config, presets: PresetBank) -> None:
    """Preset names used by other sections must exist (one line naming the key)."""
    known = ", ".join(presets.names)
    if config.attract.enabled and presets.resolve(config.attract.preset) is None:
        raise UserError(f'config: [attract] preset = "{config.attract.preset}" is not a preset; presets: {known}')
    for note, name in config.midi.notes:
        if presets.resolve(name) is None:
            raise UserError(f'config: [midi.notes] {note} = "{name}" is not a preset; presets: {known}')
