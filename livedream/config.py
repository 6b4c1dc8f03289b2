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
import difflib
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any

from livedream.errors import UserError
from livedream.params import PARAM_RANGES, Params, Range

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


@dataclass(frozen=True)
class ModelConfig:
    """[model]: which exported graph to run and where."""

    name: str = "default"
    device: str = choice("auto", "cuda", "cpu")
    threads: int = bounded(0, 0, 256)  # 0 = let ONNX Runtime decide


@dataclass(frozen=True)
class SourceConfig:
    """[source]: where frames come from."""

    kind: str = choice("auto", "camera", "video", "image", "demo")
    camera: int | str = 0  # OpenCV index, or a device path / stream URL
    path: str = ""  # the file for kind = "video" or "image"
    width: int = bounded(1280, 16, 7680)  # requested from the camera; the demo's size
    height: int = bounded(720, 16, 4320)
    fps: int = bounded(30, 1, 240)

    def __post_init__(self) -> None:
        if self.kind in ("video", "image") and not self.path:
            raise UserError(f'[source] kind = "{self.kind}" needs path = "<file>"')
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
    hud: bool = True
    screenshot_dir: str = "screenshots"
    target_fps: int = bounded(0, 0, 240)  # 0 = off


@dataclass(frozen=True)
class Config:
    """The whole file. One field per [section]: field name = section name, type = its dataclass."""

    model: ModelConfig = section(ModelConfig)
    dream: Params = section(Params, ranges=PARAM_RANGES)
    source: SourceConfig = section(SourceConfig)
    display: DisplayConfig = section(DisplayConfig)


# --- loading -------------------------------------------------------------------------------


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
        current = dataclasses.asdict(getattr(config, section_name))
        merged = {**current, **values}
        replaced[section_name] = _build_section(sections[section_name], merged, "command line")
    return dataclasses.replace(config, **replaced)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
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
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    hints = typing.get_type_hints(section_type)
    extra_ranges: dict[str, Range] = config_field.metadata.get(_RANGES, {})
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise UserError(f"{where} unknown key {key!r}{_suggestion(key, fields)}")
        values[key] = _checked_value(fields[key], hints[key], extra_ranges.get(key), value, where)
    try:
        return section_type(**values)
    except UserError as error:
        raise UserError(f"{origin}: {error}") from None


def _checked_value(
    spec: dataclasses.Field, hint: Any, extra_range: Range | None, value: Any, where: str
) -> Any:
    def refuse(allowed: str) -> UserError:
        return UserError(f"{where} {spec.name} = {_show(value)} is not allowed; use {allowed}")

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
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known: {', '.join(known)})"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
