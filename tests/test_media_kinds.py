"""Every kind of file FFmpeg makes is dreamed: a generated table of containers × codecs × pixel
formats × rotations × sound layouts (and sizes, timing, chapters, subtitles, output kinds),
each file made with PyAV here (`tests/media_kinds.py`), so that every pair of two axes' values
FFmpeg can make meets in at least one file. Each dreams to a readable output with the
source's frame count, its picture turned as a player shows it, every sound track (pitch,
channels, language, title) and its tags, chapters and subtitles — or the one line before the
dream says which of them the output's container has no place for; or it is refused in one
line before any work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livedream.cli import main
from tests.media_kinds import AXES, FRAMES, Facts, Kind, brightest_third, covering, facts_of, make

FAST = ["--steps", "1", "--frame-steps", "1", "--octaves", "1", "--seed", "3"]
MOVING_ONLY_IN_ONE_PICTURE = (".jpg",)  # a still picture's kind: a clip of several frames is refused


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> list[tuple[Kind, Path]]:
    folder = tmp_path_factory.mktemp("kinds")

    def make_one(candidate: dict) -> tuple[Kind, Path] | None:
        kind = Kind(**candidate)
        path = folder / f"{len(list(folder.iterdir())):03d}{kind.container}"
        return (kind, path) if make(kind, path) else None

    return covering(AXES, make_one)


def test_the_table_covers_every_axis_value_ffmpeg_can_make(table) -> None:
    """The generator is not stuck on a few kinds: every value of every axis is in the table,
    but the containers' own limits (a GIF has no sound and no rotation)."""
    kinds = [kind for kind, _ in table]
    for axis, values in AXES.items():
        present = {getattr(kind, axis) for kind in kinds}
        assert set(values) <= present, f"{axis}: never made {set(values) - present}"
    assert len(kinds) >= 60


def test_every_kind_dreams_with_its_frames_turn_sound_and_tags_or_is_refused_before_work(
        table, small_graph, tmp_path, capfd) -> None:
    problems = []
    for number, (kind, source) in enumerate(table):
        out = tmp_path / f"{number:03d}-dream{kind.output_suffix()}"
        capfd.readouterr()
        code = main(["dream", str(source), "-o", str(out), "--model", str(small_graph), *FAST])
        said = capfd.readouterr()
        problems += [f"{kind.name}: {problem}" for problem in judged(kind, source, out, code, said.out, said.err)]
    print(f"{len(table)} kinds dreamed")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def judged(kind: Kind, source: Path, out: Path, code: int, printed: str, errors: str) -> list[str]:
    """What is wrong with one kind's dream (empty when nothing)."""
    if kind.output_suffix() in MOVING_ONLY_IN_ONE_PICTURE:
        return refusal_problems(out, code, printed, errors)
    if code != 0:
        return [f"exit {code}: {errors.strip()[-300:]}"]
    before, after = facts_of(source), facts_of(out)
    lost = " ".join(line for line in printed.splitlines() if line.startswith("not kept")).lower()
    return (picture_problems(before, after, printed)
            + sound_problems(kind, before, after, lost)
            + extras_problems(before, after, lost))


def refusal_problems(out: Path, code: int, printed: str, errors: str) -> list[str]:
    lines = errors.strip().splitlines()
    problems = []
    if code != 2 or len(lines) != 1 or not lines[0].startswith("livedream: error: "):
        problems.append(f"not a one-line refusal: exit {code}, {errors!r}")
    if re.search(r"octave|frames: |wrote", printed):
        problems.append("refused only after dreaming")
    if out.exists() or out.with_name(out.name + ".livedream-render").exists():
        problems.append("left a file behind")
    return problems


def picture_problems(before: Facts, after: Facts, printed: str) -> list[str]:
    problems = []
    if after.frames != before.frames or after.frames != FRAMES:
        problems.append(f"{after.frames} frames, the source has {before.frames}")
    width, height = before.shown
    cropped = (width - width % 2, height - height % 2)
    if after.shown != before.shown and not (after.shown == cropped and "needs even sizes" in printed):
        problems.append(f"shown at {after.shown}, the source at {before.shown}")
    if brightest_third(after.first) != "top-left":
        problems.append(f"turned wrong: the top-left block is {brightest_third(after.first)}")
    return problems


def sound_problems(kind: Kind, before: Facts, after: Facts, lost: str) -> list[str]:
    if not before.tracks:
        return [f"{len(after.tracks)} sound tracks from a silent source"] if after.tracks else []
    if not after.tracks:
        return [] if "sound track" in lost else ["the sound is gone and no line says so"]
    if len(after.tracks) != len(before.tracks):
        return [f"{len(after.tracks)} sound tracks of {len(before.tracks)}"]
    problems = []
    for number, (source, dreamed) in enumerate(zip(before.tracks, after.tracks), start=1):
        channels, language, title, pitch = source
        if dreamed[0] != channels or abs(dreamed[3] - pitch) > 5:
            problems.append(f"track {number}: {dreamed[0]} channels at {dreamed[3]:.0f} Hz, "
                            f"the source's {channels} at {pitch:.0f} Hz")
        for name, wanted, got in (("language", language, dreamed[1]), ("title", title, dreamed[2])):
            if wanted and got != wanted and name not in lost and "title" not in lost:
                problems.append(f"track {number}: {name} {got!r}, the source's {wanted!r}, and no line says so")
    return problems


def extras_problems(before: Facts, after: Facts, lost: str) -> list[str]:
    problems = []
    if before.chapters and after.chapters != before.chapters and "chapters" not in lost:
        problems.append(f"{after.chapters} chapters of {before.chapters}, and no line says so")
    if before.subtitles and after.subtitles != before.subtitles and "subtitle" not in lost:
        problems.append(f"{after.subtitles} subtitle tracks of {before.subtitles}, and no line says so")
    for tag in ("title", "comment"):
        if before.tags.get(tag) and after.tags.get(tag) != before.tags[tag] and tag not in lost:
            problems.append(f"tag {tag} {after.tags.get(tag)!r}, the source's {before.tags[tag]!r}, "
                            f"and no line says so")
    return problems
