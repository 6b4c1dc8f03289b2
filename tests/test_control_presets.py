"""Presets: [presets.<name>] tables validated like [dream]; switching crossfades, never cuts."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from livedream.config import Config, PresetsConfig, parse_config
from livedream.control.presets import PresetBank, blend
from livedream.errors import UserError
from livedream.params import Params

DOCUMENT = {
    "presets": {
        "crossfade": 4.0,
        "order": ["b", "a"],
        "a": {"strength": 0.1, "steps": 2, "model": "default"},
        "b": {"strength": 0.3, "steps": 10, "model": "other", "dream_width": 1280},
        "c": {"zoom_per_s": 0.05},
    }
}


def bank(base: Params = Params()) -> PresetBank:
    return PresetBank(parse_config(DOCUMENT).presets, base)


def test_order_maps_keys_and_unlisted_presets_follow_in_file_order() -> None:
    presets = bank()
    assert presets.names == ["b", "a", "c"]
    assert presets.resolve(1) == "b" and presets.resolve("2") == "a" and presets.resolve(3) == "c"
    assert presets.resolve(4) is None and presets.resolve(0) is None and presets.resolve("zzz") is None


def test_preset_is_the_dream_section_with_its_changes() -> None:
    base = dataclasses.replace(Params(), half_life=0.5, dream_height=480)
    params = bank(base).params_of("c")
    assert params == dataclasses.replace(base, zoom_per_s=0.05)


def test_switch_crossfades_with_blends_between_exact_endpoints() -> None:
    presets = bank()
    start = presets.params_of("a")
    params = presets.update(start, 0.0)
    assert presets.select("b", now=10.0)
    seen = []
    for now in (10.0, 11.0, 12.0, 13.0, 14.0, 15.0):
        params = presets.update(params, now)  # the live loop feeds each result back
        seen.append(params)
    assert seen[0] == start  # t = 0: exactly where it was
    assert seen[-2] == seen[-1] == presets.params_of("b")  # t = 1: exactly the preset, then it stays
    strengths = [p.strength for p in seen]
    assert strengths == sorted(strengths) and len(set(strengths)) == len(strengths) - 1
    middle = seen[2]
    assert 0.1 < middle.strength < 0.3
    assert isinstance(middle.steps, int) and 2 < middle.steps < 10
    # model and dream size cannot blend: they switch once, at the midpoint
    assert seen[1].model == "default" and seen[1].dream_width == 640
    assert seen[3].model == "other" and seen[3].dream_width == 1280


def test_no_crossfade_time_still_goes_through_update() -> None:
    presets = PresetBank(dataclasses.replace(PresetsConfig(), crossfade=0.0), Params())
    presets.select(1, now=0.0)
    assert presets.update(Params(), 0.0) == presets.params_of(presets.names[0])


def test_switch_during_a_crossfade_continues_from_the_blend() -> None:
    presets = bank()
    presets.select("a", 0.0)
    halfway = [presets.update(Params(), now) for now in (0.0, 2.0)][-1]
    presets.select("c", 2.0)
    assert presets.update(halfway, 2.0) == halfway


def test_unknown_preset_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    presets = bank()
    with caplog.at_level(logging.WARNING):
        assert not presets.select("nope", 0.0)
        assert not presets.select(9, 0.0)
    assert "no preset 'nope'" in caplog.text and "no preset 9" in caplog.text
    assert presets.update(Params(), 1.0) == Params()


def test_blend_of_equal_values_is_exact() -> None:
    a = dataclasses.replace(Params(), half_life=0.9, strength=0.1)
    b = dataclasses.replace(Params(), half_life=0.9, strength=0.2)
    for t in (0.1, 0.33, 0.7):
        assert blend(a, b, t).half_life == 0.9


def test_default_library_is_calm_deep_infinite_with_zoom_feedback_then_the_objective_looks() -> None:
    presets = PresetBank(Config().presets, Params())
    assert presets.names == ["calm", "deep", "infinite", "strokes", "eyes", "pagodas", "orbs"]
    infinite = presets.params_of("infinite")
    assert infinite.zoom_per_s > 0 and infinite.rotate_per_s != 0
    looks = {name: dict(presets.params_of(name).objective) for name in ("strokes", "eyes", "pagodas", "orbs")}
    assert looks == {"strokes": {"mixed0": 1.0, "mixed1": 1.0}, "eyes": {"mixed4": 1.0},
                     "pagodas": {"mixed7": 1.0, "mixed8": 0.5}, "orbs": {"mixed4:68": 1.0}}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"presets": {"x": {"strength": 2.0}}}, "[presets.x] strength = 2.0 is not allowed; use a number in 0..0.5"),
        ({"presets": {"x": {"stenght": 0.1}}}, "[presets.x] unknown key 'stenght'; did you mean 'strength'?"),
        ({"presets": {"x": {"steps": 1.5}}}, "[presets.x] steps = 1.5 is not allowed; use an integer"),
        ({"presets": {"x": 3}}, "[presets.x] = 3 is not allowed; a preset is a table"),
        ({"presets": {"order": ["y"], "x": {}}}, "[presets] order names 'y', which has no [presets.y] table"),
        ({"presets": {"crossfade": -1.0}}, "[presets] crossfade = -1.0 is not allowed; use a number in 0..600"),
    ],
)
def test_bad_preset_config_is_one_line_naming_the_key(document: dict, expected: str) -> None:
    with pytest.raises(UserError) as error:
        parse_config(document)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_live_change_during_a_crossfade_wins_over_the_preset() -> None:
    presets = bank()
    presets.select("b", 0.0)
    params = presets.update(presets.params_of("a"), 0.0)
    params = presets.update(params, 1.0)
    knob = dataclasses.replace(params, steps=42)  # upstream (MIDI/OSC) turns steps mid-fade
    params = presets.update(knob, 2.0)
    assert params.steps == 42 and 0.1 < params.strength < 0.3
    params = presets.update(params, 4.0)
    assert params.steps == 42 and params.strength == 0.3


def test_command_line_overrides_keep_the_control_sections_intact() -> None:
    from livedream.config import apply_overrides

    config = apply_overrides(Config(), presets__crossfade=1.0, midi__enabled=True, sequencer__enabled=True)
    assert config.presets == dataclasses.replace(Config().presets, crossfade=1.0)
    assert config.midi.cc == Config().midi.cc and config.midi.enabled
    assert config.sequencer.playlist == Config().sequencer.playlist and config.sequencer.enabled
