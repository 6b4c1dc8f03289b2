"""Malformed config files, many of them (seeded, so a failure reproduces): each one either
parses or gives a one-line UserError; nothing else escapes `load_config`."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from livedream.config import Config, load_config, parse_config
from livedream.errors import UserError

DOCUMENTED = (Path(__file__).parents[1] / "config.toml").read_text()
SECTIONS = [f.name for f in dataclasses.fields(Config)]
KEYS = {
    section.name: [f.name for f in dataclasses.fields(section.default_factory)]
    for section in dataclasses.fields(Config)
}

# TOML values of every kind, including those that are never a setting.
ODD_VALUES = [
    "0", "-1", "1", "3", "true", "false", '""', '"x"', '"default"', '"09:00"', '"/dev/video0"',
    "1e308", "-1e308", "1e-320", "nan", "+nan", "-nan", "inf", "-inf", "+inf",
    "99999999999999999999999999999999", "-99999999999999999999999999999999", "9223372036854775808",
    "0.5", "-0.0", "2.0", "65536", "07:30:00", "1979-05-27", "1979-05-27T07:32:00Z",
    "[]", "[1, 2]", '["a", "b"]', "[[1], [2]]", '[{ preset = "calm" }]', '[{ preset = "calm", hold = "x" }]',
    "{}", "{ a = 1 }", '{ preset = "calm", hold = nan }', '{ "1" = "strength" }',
    '"\\u0000"', '"' + "x" * 5000 + '"', "'literal'", '"""multi\nline"""',
]
GARBAGE = [b"\xff\xfe", b"\x80", b"\xc3\x28", b"\x00", b"\xef\xbb\xbf", b"[", b"]]", b"=", b"= 1", b'"', b"\n[dream\n", b"\t"]


def mutate(rng: random.Random) -> bytes:
    """One malformed file: the documented config with a few random edits, or random junk."""
    kind = rng.random()
    if kind < 0.05:
        return b""
    if kind < 0.1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    lines = DOCUMENTED.splitlines()
    for _ in range(rng.randrange(1, 5)):
        edit = rng.randrange(9)
        index = rng.randrange(len(lines))
        if edit <= 2 and "=" in lines[index]:  # a wrong value for a real key
            key = lines[index].split("=", 1)[0].strip()
            lines[index] = f"{key} = {rng.choice(ODD_VALUES)}"
        elif edit == 3:  # an unknown key or section
            lines.insert(index, rng.choice(["colour = 1", "[nosuchsection]", "[dream.sub]", "a.b.c = 1"]))
        elif edit == 4:  # a table where a scalar belongs
            section = rng.choice(SECTIONS)
            key = rng.choice(KEYS[section] or ["x"])
            lines.append(f"[{section}.{key}]\nvalue = {rng.choice(ODD_VALUES)}")
        elif edit == 5:  # a section that is a scalar, or an array of tables
            section = rng.choice(SECTIONS)
            lines.insert(0, rng.choice([f"{section} = 1", f"[[{section}]]", f'{section} = "x"']))
        elif edit == 6:  # a duplicated line (duplicate key or table: a TOML error)
            lines.insert(index, lines[index])
        elif edit == 7:  # a line deleted
            del lines[index]
        else:  # a key set in a random section
            section = rng.choice(SECTIONS)
            key = rng.choice(KEYS[section] or ["x"])
            lines.append(f"[{section}]\n{key} = {rng.choice(ODD_VALUES)}")
    data = "\n".join(lines).encode()
    if rng.random() < 0.15:
        cut = rng.randrange(len(data) + 1)
        data = data[:cut] + rng.choice(GARBAGE) + data[cut:]
    if rng.random() < 0.05:
        data = data[: rng.randrange(len(data) + 1)]
    return data


def assert_parses_or_one_line_user_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load_config(path)
    except UserError as error:
        message = str(error)
        assert message and "\n" not in message, f"multi-line error for {data[:300]!r}: {message!r}"
    except Exception as error:  # noqa: BLE001 - this is what the test hunts for
        pytest.fail(f"{type(error).__name__}: {error} for the file {data[:500]!r}")


@pytest.mark.parametrize("seed", range(8))
def test_malformed_config_files_give_a_one_line_user_error_or_parse(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "config.toml"
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(150):
        data = mutate(rng)
        assert_parses_or_one_line_user_error(path, data)
        try:
            load_config(path)
            outcomes["parsed"] += 1
        except UserError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50  # the generator really produces broken files


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00[dream]",
        b"[dream]\nstrength = nan\n",
        b"[dream]\nstrength = inf\n",
        b"[dream]\nsteps = 99999999999999999999999999999999\n",
        b"[source]\ncamera = -99999999999999999999999999999999\n",
        b"[display]\nfullscreen = { a = 1 }\n",
        b"[display.fit]\nx = 1\n",
        b"[[dream]]\nsteps = 1\n",
        b"[schedule]\non = 07:30:00\n",
        b"[log]\nmax_bytes = 1e308\n",
        b"[log]\nhealth_interval_s = -inf\n",
        b"dream = 3\n",
        b'[schedule]\non = """9\n00"""\n',
        b'[presets.calm]\nstrength = """a\nb"""\n',
        b'[outputs]\nrecord_folder = "\\u0000"\n',
    ],
)
def test_named_malformed_files(tmp_path: Path, data: bytes) -> None:
    assert_parses_or_one_line_user_error(tmp_path / "config.toml", data)


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"")
    assert load_config(path) == Config()


def test_random_values_in_every_key_of_every_section() -> None:
    """The parsed-document level: every key of every section, every odd Python value."""
    values = [None, 0, -1, 2**70, -(2**70), 1.5, float("nan"), float("inf"), True, "", "x" * 1000,
              [], [1], ["a"], [{}], {}, {"a": 1}, {"preset": "calm"}, b"bytes"]
    for section, keys in KEYS.items():
        for key in [*keys, "unknown_key"]:
            for value in values:
                try:
                    parse_config({section: {key: value}})
                except UserError as error:
                    assert "\n" not in str(error)
                except Exception as error:  # noqa: BLE001
                    pytest.fail(f"[{section}] {key} = {value!r}: {type(error).__name__}: {error}")
