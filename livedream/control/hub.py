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
from livedream.control.outputs import Recorder, VirtualCamera
from livedream.control.presets import PresetBank, Sequencer
from livedream.control.web import WebPanel
from livedream.errors import UserError
from livedream.files import DiskFloor, state_dir
from livedream.params import Params

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
        outputs = config.outputs
        self.recorder = Recorder(Path(outputs.record_folder), outputs.record_fps, outputs.record_codec,
                                 outputs.segment_seconds, DiskFloor(outputs.min_free_mb), outputs.keep_recordings_mb)
        self.osc: OscServer | None = None
        self.query: OscQueryServer | None = None
        self.feedback = OscFeedback(config.osc.feedback)
        self.web: WebPanel | None = None
        self.midi: MidiInput | None = None
        self.audio_input: AudioInput | None = None
        self.virtualcam: VirtualCamera | None = None
        self._configured = config.dream
        self._base: Params | None = None  # the persistent live params
        self._last: Params | None = None  # what update returned last
        self._commands: list[str] = []
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
            if open_devices and config.outputs.virtualcam:
                self.virtualcam = VirtualCamera.open(config.outputs)
        except BaseException:
            self.close()
            raise

    # --- once per frame --------------------------------------------------------------------

    def update(self, params: Params, now: float) -> Params:
        """The params for this frame. Pass back last frame's result (with key changes applied)."""
        live = self._take_over_outside_changes(params)
        for control in (self.inbox, self.sequencer, self.presets):
            if control is not None:
                live = control.update(live, now)
        self._base = live
        shown = live
        for overlay in (self.audio, self.attract):
            if overlay is not None:
                shown = overlay.update(shown, now)
        self._run_commands()
        self._last = shown
        return shown

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        """The camera frame (before dreaming), for motion detection."""
        if self.attract is not None:
            self.attract.observe(frame_rgb, now)

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        """The dreamed frame as shown, for recording, the virtual camera and the web preview."""
        if self.recorder.recording:
            self.recorder.write(frame_rgb)
        if self.virtualcam is not None:
            self.virtualcam.send(frame_rgb)
        if self.web is not None and now - self._last_preview >= PREVIEW_INTERVAL:
            self.web.preview.publish(frame_rgb, fps)
            self._last_preview = now
        params, preset = self._applied()
        self.feedback.send(params, preset, fps, self.attract.motion_level if self.attract else None, now)

    def drain_commands(self) -> list[str]:
        """Commands for the loop since the last call: "screenshot", "pause" (recording is handled here)."""
        self._run_commands()
        commands, self._commands = self._commands, []
        return commands

    # --- keys and state --------------------------------------------------------------------

    def select_preset(self, key: int | str, now: float) -> bool:
        """Keys 1–9 (or a name): crossfade to that preset; False (warning logged) when there is none."""
        return self.presets.select(key, now)

    def set_recording(self, on: bool) -> Path | None:
        """Start (returns the final path) or stop (returns the saved file) a recording."""
        return self.recorder.start() if on else self.recorder.stop()

    @property
    def attract_active(self) -> bool:
        return self.attract is not None and self.attract.active

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
        if self.inbox.learning is not None:
            lines.append(f"MIDI learn: move a control for {self.inbox.learning}")
        lines.extend(self.midi_mapping.bindings_lines())
        if self.audio is not None:
            lines.append(f"audio {self.audio.level:.2f}" + ("" if self.audio_input else " (no input)"))
        if self.recorder.recording:
            lines.append(f"REC {self.recorder.frames_written} frames, segment {len(self.recorder.saved) + 1}")
        elif self.recorder.warning:
            lines.append(self.recorder.warning)
        return lines

    def close(self) -> None:
        """Stop listeners and devices; finish a running recording under its final name."""
        self.recorder.stop()
        for resource in (self.osc, self.query, self.web, self.midi, self.audio_input, self.virtualcam):
            if resource is not None:
                try:
                    resource.close()
                except Exception as error:  # closing must not hide the reason the show stopped
                    log.warning("closing %s failed: %s", type(resource).__name__, error)
        self.osc = self.query = self.web = self.midi = self.audio_input = self.virtualcam = None

    # --- inside ----------------------------------------------------------------------------

    def _take_over_outside_changes(self, params: Params) -> Params:
        if self._base is None or self._last is None:
            return params
        changed = params.changes_from(self._last)
        return dataclasses.replace(self._base, **changed) if changed else self._base

    def _select_queued_preset(self, name_or_index: str | int, now: float) -> None:
        self.presets.select(name_or_index, now)

    def _run_commands(self) -> None:
        self._commands.extend(command for command in self.inbox.drain_commands() if not self._run_command(command))

    def _run_command(self, command: str) -> bool:
        """Handle recording here; True when handled."""
        if command in ("record_start", "record_stop"):
            self.set_recording(command == "record_start")
            return True
        return False

    def _applied(self) -> tuple[Params, str | None]:
        """The Params the loop applied last (the configured ones before the first frame), and the preset."""
        return self._last or self._base or self._configured, self.presets.current

    def _web_state(self) -> dict:
        params = self._applied()[0]
        return {"params": dataclasses.asdict(params), "preset": self.presets.current, "status": self.status_lines()}


def _check_preset_names(config: Config, presets: PresetBank) -> None:
    """Preset names used by other sections must exist (one line naming the key)."""
    known = ", ".join(presets.names)
    if config.attract.enabled and presets.resolve(config.attract.preset) is None:
        raise UserError(f'config: [attract] preset = "{config.attract.preset}" is not a preset; presets: {known}')
    for note, name in config.midi.notes:
        if presets.resolve(name) is None:
            raise UserError(f'config: [midi.notes] {note} = "{name}" is not a preset; presets: {known}')
