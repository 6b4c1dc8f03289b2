"""The sequencer plays its playlist on the clock it is given: steps, loop, seeded shuffle."""

from __future__ import annotations

import pytest

from livedream.config import parse_config
from livedream.control.presets import PresetBank, Sequencer
from livedream.errors import UserError
from livedream.params import Params

LIBRARY = {name: {"strength": value} for name, value in (("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4))}


def make(**sequencer) -> tuple[Sequencer, PresetBank]:
    config = parse_config({"presets": dict(LIBRARY), "sequencer": {"enabled": True, "hold": 10.0, "fade": 2.0, **sequencer}})
    bank = PresetBank(config.presets, Params())
    return Sequencer(config.sequencer, bank), bank


def shown_at(sequencer: Sequencer, bank: PresetBank, times: list[float]) -> list[str | None]:
    params = Params()
    names = []
    for now in times:
        params = bank.update(sequencer.update(params, now), now)
        names.append(bank.current)
    return names


def test_advances_on_the_fake_clock_and_loops() -> None:
    sequencer, bank = make(playlist=["a", "b", "c"])
    assert shown_at(sequencer, bank, [0, 9.9, 10, 19.9, 20, 30, 40]) == ["a", "a", "b", "b", "c", "a", "b"]


def test_each_step_crossfades_with_its_own_fade_and_hold() -> None:
    sequencer, bank = make(playlist=["a", {"preset": "b", "hold": 30.0, "fade": 4.0}])
    params = Params()
    for now in (0.0, 2.0, 10.0):
        params = bank.update(sequencer.update(params, now), now)
    assert params.strength == 0.1
    params = bank.update(sequencer.update(params, 12.0), 12.0)
    assert 0.1 < params.strength < 0.2  # halfway through the 4 s fade into b
    params = bank.update(sequencer.update(params, 14.0), 14.0)
    assert params.strength == 0.2
    assert shown_at(sequencer, bank, [39.9, 40.0]) == ["b", "a"]


def test_without_loop_it_stays_on_the_last_step() -> None:
    sequencer, bank = make(playlist=["a", "b"], loop=False)
    assert shown_at(sequencer, bank, [0, 10, 20, 30, 100]) == ["a", "b", "b", "b", "b"]
    assert sequencer.status(100).endswith("(end)")


def test_shuffle_is_deterministic_for_a_seed_and_covers_every_step_each_round() -> None:
    times = [10.0 * i for i in range(12)]
    first = shown_at(*make(playlist=["a", "b", "c", "d"], shuffle=True, seed=7), times)
    again = shown_at(*make(playlist=["a", "b", "c", "d"], shuffle=True, seed=7), times)
    other = shown_at(*make(playlist=["a", "b", "c", "d"], shuffle=True, seed=8), times)
    assert first == again
    assert first != other
    for round_start in (0, 4, 8):
        assert sorted(first[round_start : round_start + 4]) == ["a", "b", "c", "d"]
    assert first[:4] != first[4:8] or first[4:8] != first[8:12]  # reshuffled each round


def test_status_names_position_and_time_left() -> None:
    sequencer, bank = make(playlist=["a", "b"])
    shown_at(sequencer, bank, [0.0, 3.0])
    assert sequencer.status(3.0) == "program 1/2 a, next in 7 s"


def test_unknown_playlist_preset_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"\[sequencer\] playlist names 'zz'"):
        make(playlist=["a", "zz"])


def test_bad_playlist_entry_is_a_one_line_config_error() -> None:
    with pytest.raises(UserError, match="playlist entry"):
        parse_config({"sequencer": {"playlist": [{"preset": "calm", "hold": "long"}]}})
