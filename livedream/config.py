"""config.toml → one frozen `Config`: every default, every validation message, parsed once.

Each `[section]` of the file is one frozen dataclass; `Config` lists them, and that list IS
the schema. To add a section (presets, osc, midi, record, …):

    1. write a frozen dataclass whose field defaults are the defaults, constraining fields
       with `choice(...)` / `bounded(...)` (or a `__post_init__` that raises `UserError`
       for rules that span fields);
    2. add one line to `Config`:  `osc: OscConfig = section(OscConfig)`;
    3. document every key, with its default and a one-line comment, in config.toml
       (`tests/test_config.py` fails until the file and the defaults agree).

A section whose table is not flat key = value (e.g. one sub-table per preset) can define a
classmethod `from_toml(cls, table: dict, where: str)` and parse itself; raise `UserError`
with `where` as the message prefix.

Stages receive only their own section; nothing else reads the file or the environment.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Mapping

from livedream.errors import UserError
from livedream.files import file_problem
from livedream.params import LIVE_PARAMS, PARAM_RANGES, RENAMED, Params, Range

# --- field constraints -------------------------------------------------------------------

_CHOICES = "choices"
_RANGE = "range"
_RANGES = "ranges"  # on a Config field: per-key ranges of a section that cannot carry metadata


def choice(default: str, *allowed: str) -> Any:
    """A string field that must be one of `default, *allowed`."""
    return field(default=default, metadata={_CHOICES: (default, *allowed)})


def bounded(default: float, low: float, high: float) -> Any:
    """A numeric field that must lie in low..high (inclusive)."""
    return field(default=default, metadata={_RANGE: Range(low, high)})


def section(section_type: type, ranges: dict[str, Range] | None = None) -> Any:
    """A `Config` field for one [section]; `ranges` constrains keys of a foreign dataclass."""
    return field(default_factory=section_type, metadata={_RANGES: ranges or {}})


# --- sections ------------------------------------------------------------------------------

DEFAULT_CONFIG = Path("config.toml")  # read from the current folder when no --config is given
SOURCE_KINDS = ("auto", "camera", "video", "image", "demo", "ndi")  # auto = camera, else the demo
DEVICES = ("auto", "cuda", "webgpu", "cpu")  # the order `auto` tries them in: runtime/devices.py
DEVICE_HELP = "auto (CUDA, else a WebGPU GPU, else the CPU), cuda, webgpu or cpu"


@dataclass(frozen=True)
class ModelConfig:
    """[model]: where the graph runs. Which graph is `[dream] model` (a live value presets can change)."""

    device: str = choice(*DEVICES)
    threads: int = bounded(0, 0, 256)  # 0 = let ONNX Runtime decide


@dataclass(frozen=True)
class SourceConfig:
    """[source]: where frames come from."""

    kind: str = choice(*SOURCE_KINDS)
    camera: int | str = 0  # OpenCV index, or a device path / stream URL
    path: str = ""  # the file for kind = "video" or "image"
    width: int = bounded(1280, 16, 7680)  # requested from the camera; the demo's size
    height: int = bounded(720, 16, 4320)
    fps: int = bounded(30, 1, 240)
    ndi_source: str = ""  # kind = "ndi": the sender as NDI lists it, "MACHINE (Name)"; "" = the first found

    def __post_init__(self) -> None:
        if self.kind in ("video", "image") and not self.path:
            raise UserError(f'[source] kind = "{self.kind}" needs path = "<file>"')
        if isinstance(self.camera, str) and not self.camera.strip():
            raise UserError('[source] camera = "" is not allowed; use an index such as 0, or a device path / stream URL')
        if isinstance(self.camera, int) and self.camera < 0:
            raise UserError(f"[source] camera = {self.camera} is not allowed; use an index >= 0 or a device path")


@dataclass(frozen=True)
class DisplayConfig:
    """[display]: the window and what is drawn on it."""

    fullscreen: bool = True
    display: int = bounded(0, 0, 16)  # monitor index for full screen
    window_width: int = bounded(1280, 64, 7680)
    window_height: int = bounded(720, 64, 4320)
    fit: str = choice("letterbox", "crop", "stretch")
    vsync: bool = True
    hud: bool = True  # shown at start
    hud_seconds: float = bounded(10.0, 0.0, 3600.0)  # full screen: the HUD and help hide after this; 0 = they stay
    screenshot_dir: str = "screenshots"
    # The shown rate: "auto" = [source] fps (the camera's); 0 = that rate too, with adaptive quality off.
    target_fps: int | str = "auto"
    window: bool = True  # false: no window, outputs only (NDI, Spout/Syphon, virtual camera, recording)

    def __post_init__(self) -> None:
        fps = self.target_fps
        if fps != "auto" and not (isinstance(fps, int) and 0 <= fps <= 240):
            shown = f'"{fps}"' if isinstance(fps, str) else fps
            raise UserError(f'[display] target_fps = {shown} is not allowed; use "auto" (the camera\'s rate, '
                            f'[source] fps), 0 (adaptive quality off) or a frame rate in 1..240')


# --- show control sections (livedream/control/) ----------------------------------------------



@dataclass(frozen=True)
class Preset:
    """A named change of [dream] values; its Params are the [dream] section with `changes` applied."""

    name: str
    changes: tuple[tuple[str, Any], ...]

    def params(self, base: Params) -> Params:
        return dataclasses.replace(base, **dict(self.changes))


DEFAULT_PRESETS = (
    Preset("calm", (("strength", 0.01), ("steps", 1), ("half_life", 1.0))),
    Preset("deep", (("strength", 0.08), ("steps", 4), ("octaves", 2), ("half_life", 0.5))),
    Preset("infinite", (("strength", 0.03), ("steps", 2), ("half_life", 2.0), ("zoom_per_s", 0.2), ("rotate_per_s", 4.0))),
    # Looks that differ in WHAT is dreamed: a switch crossfades the objective's weights.
    Preset("strokes", (("objective", (("mixed0", 1.0), ("mixed1", 1.0))),)),
    Preset("eyes", (("objective", (("mixed4", 1.0),)),)),
    Preset("pagodas", (("objective", (("mixed7", 1.0), ("mixed8", 0.5))), ("strength", 0.05))),
    Preset("orbs", (("objective", (("mixed4:68", 1.0),)),)),
)


@dataclass(frozen=True)
class PresetsConfig:
    """[presets] plus one [presets.<name>] table of [dream] keys per preset.

    `order` holds the presets in key order (keys 1–9 = the first nine). In the file it is a
    list of names; tables it does not list follow in file order. Any preset table replaces
    the built-in library.
    """

    crossfade: float = bounded(2.0, 0.0, 600.0)
    order: tuple[Preset, ...] = DEFAULT_PRESETS

    def names(self) -> list[str]:
        return [preset.name for preset in self.order]

    @classmethod
    def from_toml(cls, table: dict[str, Any], where: str) -> "PresetsConfig":
        scalars = {key: value for key, value in table.items() if key == "crossfade"}
        tables = {key: value for key, value in table.items() if key not in ("crossfade", "order")}
        library = {preset.name: preset for preset in DEFAULT_PRESETS}
        if tables:
            library = {name: _preset_from_toml(name, values, where) for name, values in tables.items()}
        order = list(library)
        if "order" in table:
            listed = _string_list(table["order"], "order", where)
            for name in listed:
                if name not in library:
                    raise UserError(f"{where} order names {name!r}, which has no [presets.{name}] table{_suggestion(name, library)}")
            order = listed + [name for name in library if name not in listed]
        return cls(order=tuple(library[name] for name in order), **_checked_table(cls, scalars, where))


@dataclass(frozen=True)
class SequenceStep:
    """One playlist entry: show `preset` for `hold` seconds, fading into it over `fade`."""

    preset: str
    hold: float
    fade: float


@dataclass(frozen=True)
class SequencerConfig:
    """[sequencer]: a timed playlist of presets for unattended shows."""

    enabled: bool = False
    playlist: tuple[SequenceStep, ...] = tuple(SequenceStep(name, 60.0, 5.0) for name in ("calm", "deep", "infinite"))
    hold: float = bounded(60.0, 1.0, 86400.0)
    fade: float = bounded(5.0, 0.0, 600.0)
    loop: bool = True
    shuffle: bool = False
    seed: int = bounded(0, 0, 2**31 - 1)

    @classmethod
    def from_toml(cls, table: dict[str, Any], where: str) -> "SequencerConfig":
        values = _checked_table(cls, {k: v for k, v in table.items() if k != "playlist"}, where)
        hold, fade = values.get("hold", 60.0), values.get("fade", 5.0)
        entries = table.get("playlist", ["calm", "deep", "infinite"])
        if not isinstance(entries, list) or not entries:
            raise UserError(f"{where} playlist = {_show(entries)} is not allowed; use a list of preset names")
        steps = []
        for entry in entries:
            if isinstance(entry, str):
                steps.append(SequenceStep(entry, hold, fade))
            elif isinstance(entry, dict) and isinstance(entry.get("preset"), str):
                step = {"preset": entry["preset"], "hold": entry.get("hold", hold), "fade": entry.get("fade", fade)}
                extra = set(entry) - set(step)
                for key in ("hold", "fade"):
                    if _coerce(float, step[key]) is None or not 0 <= step[key] <= 86400 or extra:
                        raise UserError(f"{where} playlist entry {entry} is not allowed; use {{ preset = \"name\", hold = 60.0, fade = 5.0 }}")
                steps.append(SequenceStep(step["preset"], float(step["hold"]), float(step["fade"])))
            else:
                raise UserError(f"{where} playlist entry {_show(entry)} is not allowed; use a preset name or {{ preset = \"name\", hold = 60.0 }}")
        return cls(playlist=tuple(steps), **values)


@dataclass(frozen=True)
class AttractConfig:
    """[attract]: nobody in front of the camera for a while → an attract program; motion → back to live."""

    enabled: bool = True
    preset: str = "infinite"  # the attract program (a preset name)
    threshold: float = bounded(0.02, 0.0, 1.0)  # motion level below this counts as "nobody there"
    still_seconds: float = bounded(60.0, 0.0, 86400.0)
    fade_in: float = bounded(5.0, 0.0, 600.0)
    fade_out: float = bounded(1.5, 0.0, 600.0)
    pixel_change: int = bounded(12, 1, 255)  # grey levels a pixel must change by to count as moving
    smoothing: float = bounded(0.5, 0.0, 60.0)  # seconds; time constant of the motion level
    motion_width: int = bounded(64, 16, 640)  # width of the small grey frames compared


@dataclass(frozen=True)
class OscConfig:
    """[osc]: Open Sound Control server (python-osc)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = bounded(9000, 0, 65535)  # 0 = any free port
    query: bool = True  # OSCQuery: the address tree as JSON over HTTP, on the same host
    query_port: int = bounded(9001, 0, 65535)  # 0 = any free port
    feedback: tuple[str, ...] = ()  # "host:port" targets that receive every applied change

    @classmethod
    def from_toml(cls, table: dict[str, Any], where: str) -> "OscConfig":
        values = _checked_table(cls, {k: v for k, v in table.items() if k != "feedback"}, where)
        return cls(feedback=_host_ports(table.get("feedback", []), "feedback", where), **values)


def _host_ports(given: Any, key: str, where: str) -> tuple[str, ...]:
    """A list of "host:port" (one string without brackets also does), each checked."""
    if isinstance(given, str):  # one target without brackets
        given = [given]
    targets = _string_list(given, key, where)
    for target in targets:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise UserError(f'{where} {key} = {_show(target)} is not allowed; use "host:port", e.g. "127.0.0.1:9002"')
    return tuple(targets)


@dataclass(frozen=True)
class MidiConfig:
    """[midi]: CC numbers → [dream] keys (scaled over their range), notes → presets."""

    enabled: bool = False
    input: str = ""  # MIDI input port name; "" = the first one
    channel: int = bounded(0, 0, 16)  # 0 = any channel
    cc: tuple[tuple[int, str], ...] = ((1, "strength"), (2, "steps"), (3, "half_life"), (4, "zoom_per_s"), (5, "rotate_per_s"))
    notes: tuple[tuple[int, str], ...] = ((36, "calm"), (37, "deep"), (38, "infinite"))

    @classmethod
    def from_toml(cls, table: dict[str, Any], where: str) -> "MidiConfig":
        values = _checked_table(cls, {k: v for k, v in table.items() if k not in ("cc", "notes")}, where)
        if "cc" in table:
            values["cc"] = _midi_map(table["cc"], "cc", where, allowed=LIVE_PARAMS)
        if "notes" in table:
            values["notes"] = _midi_map(table["notes"], "notes", where, allowed=None)
        return cls(**values)


@dataclass(frozen=True)
class AudioConfig:
    """[audio]: input level (or one band) drives a [dream] key (sounddevice, optional)."""

    enabled: bool = False
    input_device: int | str = ""  # sounddevice index or name; "" = the default input
    param: str = choice("strength", "zoom_per_s", "rotate_per_s", "half_life", "steps")
    amount: float = bounded(0.05, -50.0, 50.0)  # added to the param at full level
    band_low: float = bounded(0.0, 0.0, 24000.0)  # Hz; band_high = 0 means the whole signal
    band_high: float = bounded(0.0, 0.0, 24000.0)
    floor_db: float = bounded(-50.0, -120.0, -1.0)  # level 0 at or below this dBFS, 1 at 0 dBFS
    attack: float = bounded(0.05, 0.0, 10.0)  # seconds to follow a rise
    release: float = bounded(0.5, 0.0, 10.0)  # seconds to follow a fall


@dataclass(frozen=True)
class OutputsConfig:
    """[outputs]: video recording and the virtual camera."""

    record_folder: str = "recordings"
    record_fps: int = bounded(30, 1, 240)
    record_codec: str = choice("h264", "hevc", "prores")  # prores files end in .mov
    segment_seconds: float = bounded(60.0, 1.0, 3600.0)  # a recording is cut into finished files this long
    min_free_mb: int = bounded(2000, 0, 10_000_000)  # recordings and screenshots stop below this much free disk
    keep_recordings_mb: int = bounded(0, 0, 100_000_000)  # 0 = keep all; else delete the oldest beyond this
    virtualcam: bool = False
    virtualcam_width: int = bounded(1280, 64, 7680)
    virtualcam_height: int = bounded(720, 64, 4320)
    virtualcam_fps: int = bounded(30, 1, 240)
    spout: bool = False  # Windows: a Spout sender named share_name (pip install "livedream[spout]")
    syphon: bool = False  # macOS: a Syphon server named share_name (pip install "livedream[syphon]")
    share_name: str = "LiveDream"

    def __post_init__(self) -> None:
        if not self.share_name.strip():
            raise UserError('[outputs] share_name = "" is not allowed; give the name receivers will list, e.g. "LiveDream"')


@dataclass(frozen=True)
class NdiConfig:
    """[ndi]: the dream as an NDI source on the network (pip install "livedream[ndi]")."""

    enabled: bool = False
    name: str = "LiveDream"  # receivers list it as "MACHINE (name)"
    width: int = bounded(0, 0, 7680)  # 0 (with height 0) = the dream's own size
    height: int = bounded(0, 0, 4320)
    fps: int = bounded(30, 1, 240)  # the frame rate receivers are told

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise UserError('[ndi] name = "" is not allowed; give the name receivers will list, e.g. "LiveDream"')
        if (self.width == 0) != (self.height == 0):
            raise UserError(f"[ndi] width = {self.width}, height = {self.height}: give both, or both 0 for the dream size")


SYNC_ROLES = ("off", "leader", "follower")


@dataclass(frozen=True)
class SyncConfig:
    """[sync]: several screens, one show. The leader sends preset switches, parameter changes
    and the sequencer's clock to `peers` over OSC; followers crossfade in step."""

    role: str = choice(*SYNC_ROLES)
    peers: tuple[str, ...] = ()  # the leader's followers, "host:port" of their [osc] ports
    leader_timeout_s: float = bounded(3.0, 0.5, 600.0)  # a follower that hears nothing this long runs on its own

    @classmethod
    def from_toml(cls, table: dict[str, Any], where: str) -> "SyncConfig":
        values = _checked_table(cls, {k: v for k, v in table.items() if k != "peers"}, where)
        synced = cls(peers=_host_ports(table.get("peers", []), "peers", where), **values)
        if synced.role == "leader" and not synced.peers:
            raise UserError(f'{where} role = "leader" needs peers = ["host:port", ...], the followers\' [osc] ports')
        return synced


@dataclass(frozen=True)
class WebConfig:
    """[web]: the control panel in a browser."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = bounded(8080, 0, 65535)  # 0 = any free port
    preview_width: int = bounded(320, 32, 1920)


def _checked_table(section_type: type, table: Mapping[str, Any], where: str,
                   ranges: Mapping[str, Range] | None = None) -> dict[str, Any]:
    """Each key of `table` checked against `section_type`'s fields (and `ranges`, for a type
    whose fields carry none, as `Params`): an unknown key or a wrong value is one line."""
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    hints = typing.get_type_hints(section_type)
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise UserError(f"{where} unknown key {key!r}{_suggestion(key, fields)}")
        values[key] = _checked_value(fields[key], hints[key], (ranges or {}).get(key), value, where)
    return values


def _string_list(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UserError(f"{where} {key} = {_show(value)} is not allowed; use a list of names")
    return list(value)


def _preset_from_toml(name: str, values: Any, where: str) -> Preset:
    where = where.replace("[presets]", f"[presets.{name}]")
    if not isinstance(values, dict):
        raise UserError(f"{where} = {_show(values)} is not allowed; a preset is a table of [dream] keys")
    return Preset(name, tuple(_checked_table(Params, values, where, PARAM_RANGES).items()))


def _midi_map(table: Any, key: str, where: str, allowed: tuple[str, ...] | None) -> tuple[tuple[int, str], ...]:
    where = where.replace("[midi]", f"[midi.{key}]")
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table of number = name")
    pairs = []
    for number, name in table.items():
        if not number.isdigit() or not 0 <= int(number) <= 127:
            raise UserError(f"{where} {number} is not allowed; use a MIDI number in 0..127")
        if not isinstance(name, str) or (allowed is not None and name not in allowed):
            use = f"one of {', '.join(allowed)}" if allowed else "a preset name"
            raise UserError(f"{where} {number} = {_show(name)} is not allowed; use {use}")
        pairs.append((int(number), name))
    return tuple(pairs)


@dataclass(frozen=True)
class LogConfig:
    """[log]: the rotating log file and how often a health line is written."""

    dir: str = ""  # "" = the platform's user log folder (platformdirs)
    level: str = choice("info", "debug", "warning", "error")
    max_bytes: int = bounded(5_000_000, 10_000, 1_000_000_000)  # size at which the file rotates
    backups: int = bounded(5, 1, 100)  # rotated files kept (0 would never rotate)
    health_interval_s: float = bounded(60.0, 1.0, 3600.0)


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


def parse_clock(key: str, text: str) -> datetime.time:
    """'HH:MM' as a time of day; a UserError naming `[schedule] key` otherwise."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise UserError(
            f'[schedule] {key} = {json.dumps(text)} is not allowed; use a 24-hour time "HH:MM", e.g. "09:00"'
        )
    return datetime.time(int(match.group(1)), int(match.group(2)))


def check_hours(on: str, off: str) -> None:
    """Both times parse and they differ."""
    if parse_clock("on", on) == parse_clock("off", off):
        raise UserError(
            f"[schedule] on = {json.dumps(on)} and off = {json.dumps(off)} are the same time; give different times, "
            f"or enabled = false to run all day"
        )


@dataclass(frozen=True)
class ScheduleConfig:
    """[schedule]: optional daily opening hours, "HH:MM" local time; off < on spans midnight."""

    enabled: bool = False
    on: str = "09:00"
    off: str = "21:00"

    def __post_init__(self) -> None:
        check_hours(self.on, self.off)


@dataclass(frozen=True)
class Config:
    """The whole file. One field per [section]: field name = section name, type = its dataclass."""

    model: ModelConfig = section(ModelConfig)
    dream: Params = section(Params, ranges=PARAM_RANGES)
    source: SourceConfig = section(SourceConfig)
    display: DisplayConfig = section(DisplayConfig)
    presets: PresetsConfig = section(PresetsConfig)
    sequencer: SequencerConfig = section(SequencerConfig)
    attract: AttractConfig = section(AttractConfig)
    osc: OscConfig = section(OscConfig)
    midi: MidiConfig = section(MidiConfig)
    audio: AudioConfig = section(AudioConfig)
    outputs: OutputsConfig = section(OutputsConfig)
    ndi: NdiConfig = section(NdiConfig)
    sync: SyncConfig = section(SyncConfig)
    web: WebConfig = section(WebConfig)
    log: LogConfig = section(LogConfig)
    schedule: ScheduleConfig = section(ScheduleConfig)


# --- loading -------------------------------------------------------------------------------


def config_path_or_default(given: Path | None) -> Path | None:
    """`given`, else ./config.toml when it exists, else None (the built-in defaults)."""
    if given is not None:
        return given
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_config(path: Path | None) -> Config:
    """Parse and validate `path`; None gives the built-in defaults. Errors are one-line UserErrors."""
    if path is None:
        return Config()
    return parse_config(_read_toml(path), where=str(path))


def parse_config(document: dict[str, Any], where: str = "config.toml") -> Config:
    """Build a `Config` from an already-parsed TOML document."""
    sections = _section_fields()
    for name, table in document.items():
        if name not in sections:
            raise UserError(f"{where}: unknown section [{name}]{_suggestion(name, sections)}")
        if not isinstance(table, dict):
            raise UserError(f"{where}: {name} = {_show(table)} is not allowed; [{name}] must be a section")
    built = {
        name: _build_section(config_field, document.get(name, {}), where)
        for name, config_field in sections.items()
    }
    return Config(**built)


def apply_overrides(config: Config, **cli_values: Any) -> Config:
    """Return `config` with command-line values applied and validated like the file's.

    Keys are `section__key` (`display__fullscreen=False`) or a bare key that names exactly
    one field across sections (`strength=0.05`). None means "flag not given" and is skipped.
    """
    changes: dict[str, dict[str, Any]] = {}
    for key, value in cli_values.items():
        if value is None:
            continue
        section_name, field_name = _resolve_override(key)
        changes.setdefault(section_name, {})[field_name] = value
    sections = _section_fields()
    replaced = {}
    for section_name, values in changes.items():
        current = getattr(config, section_name)
        where = f"command line: [{section_name}]"
        checked = _checked_table(type(current), values, where, sections[section_name].metadata.get(_RANGES, {}))
        try:
            replaced[section_name] = dataclasses.replace(current, **checked)  # __post_init__ checks the whole
        except UserError as error:
            raise UserError(f"command line: {error}") from None
    return dataclasses.replace(config, **replaced)


def _read_toml(path: Path) -> dict[str, Any]:
    problem = file_problem(path)
    if problem == "does not exist":
        raise UserError(f"{path}: no such config file; check --config, or copy the shipped config.toml")
    if problem is not None and problem != "is empty":  # an empty file is the built-in defaults
        raise UserError(f"config {path} {problem}; give a config.toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read config file ({error})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(_syntax_error_line(path, error)) from None


def _syntax_error_line(path: Path, error: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's TOMLDecodeError has no lineno attribute; the position is in the message.
    message = str(error)
    position = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if position is None:
        return f"{path}: TOML syntax error: {message}"
    reason = message[: position.start()].strip()
    return f"{path}:{position.group(1)}: TOML syntax error at column {position.group(2)}: {reason}"


def _section_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


def _build_section(config_field: dataclasses.Field, table: dict[str, Any], origin: str) -> Any:
    """One section from its table; `origin` ("config.toml", "command line") starts each message."""
    section_type = config_field.default_factory  # type: ignore[misc]
    where = f"{origin}: [{config_field.name}]"
    if hasattr(section_type, "from_toml"):
        return section_type.from_toml(table, where)
    values = _checked_table(section_type, table, where, config_field.metadata.get(_RANGES, {}))
    try:
        return section_type(**values)
    except UserError as error:
        raise UserError(f"{origin}: {error}") from None


def _checked_value(
    spec: dataclasses.Field, hint: Any, extra_range: Range | None, value: Any, where: str
) -> Any:
    def refuse(allowed: str) -> UserError:
        return UserError(f"{where} {spec.name} = {_show(value)} is not allowed; use {allowed}")

    parser = spec.metadata.get("parse")  # a structured value (the objective) parses itself
    if parser is not None:
        try:
            return parser(value)
        except UserError as error:
            raise UserError(f"{where} {spec.name}: {str(error).removeprefix('objective: ')}") from None
    coerced = _coerce(hint, value)
    if coerced is None:
        raise refuse(_describe_type(hint))
    choices = spec.metadata.get(_CHOICES)
    if choices is not None and coerced not in choices:
        raise refuse(f"one of {', '.join(choices)}")
    allowed_range = spec.metadata.get(_RANGE) or extra_range
    if allowed_range is not None and isinstance(coerced, (int, float)) and coerced not in allowed_range:
        raise refuse(f"{_describe_type(hint)} in {_number(allowed_range.low)}..{_number(allowed_range.high)}")
    return coerced


def _coerce(hint: Any, value: Any) -> Any:
    """`value` as type `hint`, or None when it is the wrong type (bool is never a number)."""
    options = typing.get_args(hint) if isinstance(hint, UnionType) else (hint,)
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return None if value != value else float(value)  # NaN is never a setting
        if option is str and isinstance(value, str):
            return value
    return None


def _describe_type(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    options = typing.get_args(hint) if isinstance(hint, UnionType) else (hint,)
    return " or ".join(names.get(option, str(option)) for option in options)


def _resolve_override(key: str) -> tuple[str, str]:
    sections = _section_fields()
    if "__" in key:
        section_name, field_name = key.split("__", 1)
        if section_name not in sections:
            raise TypeError(f"apply_overrides: unknown section in {key!r}")
        return section_name, field_name
    owners = [
        name
        for name, config_field in sections.items()
        if key in {f.name for f in dataclasses.fields(config_field.default_factory)}  # type: ignore[arg-type]
    ]
    if len(owners) != 1:
        # A programming error in the CLI wiring, not a user mistake.
        raise TypeError(f"apply_overrides: {key!r} matches sections {owners}; use section__{key}")
    return owners[0], key


def _suggestion(name: str, known: typing.Iterable[str]) -> str:
    known = list(known)
    if name in RENAMED and RENAMED[name].successor in known:  # a [dream] key of an earlier release
        return f"; {name} was per frame, {RENAMED[name].hint()}"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known: {', '.join(known)})"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # Escaped as in a TOML basic string: a newline in the value must not split the message.
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
