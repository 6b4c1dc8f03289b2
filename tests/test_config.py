"""config.toml: the documented file equals the defaults; every mistake is one line naming the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from livedream.config import (
    Config,
    DisplayConfig,
    SourceConfig,
    apply_overrides,
    load_config,
    parse_config,
)
from livedream.errors import UserError
from livedream.params import Params

DOCUMENTED_CONFIG = Path(__file__).parents[1] / "config.toml"


def user_error_message(document: dict) -> str:
    with pytest.raises(UserError) as error:
        parse_config(document)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_documented_config_file_parses_to_exactly_the_defaults() -> None:
    assert load_config(DOCUMENTED_CONFIG) == Config()


def test_documented_config_file_shows_every_key_with_a_comment() -> None:
    text = DOCUMENTED_CONFIG.read_text()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(section.default_factory):
            lines = [line for line in text.splitlines() if line.startswith(f"{key.name} ")]
            assert lines, f"[{section.name}] {key.name} is not documented in config.toml"


def test_no_file_gives_builtin_defaults() -> None:
    config = load_config(None)
    assert config.dream == Params() and config.display == DisplayConfig() and config.source == SourceConfig()


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[display]\nfit = "crop"\n[dream]\nstrength = 0.1\n')
    config = load_config(path)
    assert config.display.fit == "crop" and config.dream.strength == 0.1
    assert config.display.fullscreen is True and config.dream.steps == Params().steps


def test_integer_is_accepted_for_a_float_key() -> None:
    assert parse_config({"dream": {"half_life": 1}}).dream.half_life == 1.0


def test_camera_may_be_an_index_or_a_device_path() -> None:
    assert parse_config({"source": {"camera": "/dev/video2"}}).source.camera == "/dev/video2"
    assert parse_config({"source": {"camera": 2}}).source.camera == 2


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"display": {"fit": "zoom"}}, '[display] fit = "zoom" is not allowed; use one of letterbox, crop, stretch'),
        ({"model": {"device": "tpu"}}, '[model] device = "tpu" is not allowed; use one of auto, cuda, webgpu, cpu'),
        ({"dream": {"strength": 3.0}}, "[dream] strength = 3.0 is not allowed; use a number in 0..0.5"),
        ({"dream": {"steps": "two"}}, '[dream] steps = "two" is not allowed; use an integer'),
        ({"dream": {"steps": True}}, "[dream] steps = true is not allowed; use an integer"),
        ({"dream": {"dream_width": 10}}, "[dream] dream_width = 10 is not allowed; use an integer in 75..7680"),
        ({"display": {"fullscreen": "yes"}}, '[display] fullscreen = "yes" is not allowed; use true or false'),
        ({"source": {"camera": 1.5}}, "[source] camera = 1.5 is not allowed; use an integer or a string"),
        ({"display": {"target_fps": -1}}, '[display] target_fps = -1 is not allowed; use "auto" (the camera\'s rate, [source] fps), 0 (adaptive quality off) or a frame rate in 1..240'),
        ({"display": {"target_fps": "fast"}}, '[display] target_fps = "fast" is not allowed; use "auto"'),
        ({"source": {"kind": "video"}}, '[source] kind = "video" needs path'),
        ({"display": {"fulscreen": True}}, "[display] unknown key 'fulscreen'; did you mean 'fullscreen'?"),
        ({"dispaly": {}}, "unknown section [dispaly]; did you mean 'display'?"),
        ({"model": "default"}, "[model] must be a section"),
    ],
)
def test_bad_value_is_a_one_line_user_error_naming_the_key(document: dict, expected: str) -> None:
    message = user_error_message(document)
    assert message.startswith("config.toml: ")
    assert expected in message


def test_unknown_key_without_a_close_match_lists_the_known_ones() -> None:
    message = user_error_message({"model": {"colour": "red"}})
    assert "'colour'" in message and "known: device, threads" in message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[display]\nfit = "crop"\nhud = \n')
    with pytest.raises(UserError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}:3: TOML syntax error") and "\n" not in message


def test_missing_config_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_overrides_apply_by_bare_or_section_key_and_skip_none() -> None:
    config = apply_overrides(Config(), strength=0.1, display__fullscreen=False, device=None, kind="demo")
    assert config.dream.strength == 0.1
    assert config.display.fullscreen is False
    assert config.model.device == "auto"
    assert config.source.kind == "demo"


def test_override_is_validated_like_the_file() -> None:
    with pytest.raises(UserError) as error:
        apply_overrides(Config(), fit="zoom")
    assert str(error.value) == (
        'command line: [display] fit = "zoom" is not allowed; use one of letterbox, crop, stretch'
    )


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().display.fit = "crop"  # type: ignore[misc]
