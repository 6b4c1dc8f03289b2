"""Every kind of file FFmpeg makes is dreamed: a generated table of containers × codecs × pixel
formats × rotations × sound layouts (and sizes, timing, chapters, subtitles, output kinds, five
frames or one),
each file made with PyAV here (`tests/media_kinds.py`), so that every pair of two axes' values
FFmpeg can make meets in at least one file. Each dreams to a readable output with the
source's frame count, its picture turned as a player shows it, its transparency, every
sound track (pitch, channels, language, title) and its tags, chapters and subtitles — or the
one line before the dream says which of them the output has no place for; or it is refused
in one line before any work."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from livedream.cli import main
from tests.media_kinds import (
    AXES,
    PICTURE_AXES,
    Facts,
    Kind,
    PictureKind,
    brightest_third,
    facts_of,
    made_table,
    make,
    make_picture,
    upright_picture,
)

FAST = ["--steps", "6", "--step-size", "0.1", "--frame-steps", "1", "--octaves", "1", "--seed", "3"]
STILL = ["--steps", "6", "--step-size", "0.1", "--octaves", "1"]
MOVING_ONLY_IN_ONE_PICTURE = (".jpg",)  # a still picture's kind: a clip of several frames is refused
# Where one picture cannot go: a picture kind nothing here writes, a container of sound only.
# A video's container takes it (a one-frame video).
NOT_FOR_A_PICTURE = (".heic", ".wav")
VIDEOS = (".mp4", ".mov", ".mkv", ".webm")  # the table's outputs that are a video's container
# Grey levels between the source and its dream: these dreams change >= 16, a plain copy through
# H.264, VP9 or a GIF palette changes <= 1.4 (measured on this table's pictures).
DREAMED = 5.0


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> list[tuple[Kind, Path]]:
    return made_table(tmp_path_factory.mktemp("kinds"), AXES, Kind, make)


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
    if kind.output_suffix() in MOVING_ONLY_IN_ONE_PICTURE and kind.frames > 1:
        return refusal_problems(out, code, printed, errors)
    if code != 0:
        return [f"exit {code}: {errors.strip()[-300:]}"]
    before, after = facts_of(source), facts_of(out)
    lost = " ".join(line for line in printed.splitlines() if line.startswith("not kept")).lower()
    return (kind_problems(out, after) + picture_problems(before, after, printed)
            + transparency_problems(before, after, lost) + sound_problems(kind, before, after, lost)
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


def kind_problems(out: Path, after: Facts) -> list[str]:
    """A video's name holds a video, even of one frame, not a picture under that name."""
    return [f"{out.suffix} written as {after.format}"] if out.suffix in VIDEOS and not after.a_video else []


def picture_problems(before: Facts, after: Facts, printed: str) -> list[str]:
    """The output has the source's frames (a one-frame clip or a picture: one, whatever the
    output's kind), at its size, turned as a player shows it, dreamed."""
    problems = []
    if after.frames != before.frames:
        problems.append(f"{after.frames} frames, the source has {before.frames}")
    width, height = before.shown
    cropped = (width - width % 2, height - height % 2)
    if after.shown != before.shown and not (after.shown == cropped and "needs even sizes" in printed):
        problems.append(f"shown at {after.shown}, the source at {before.shown}")
    if brightest_third(after.first) != "top-left":
        problems.append(f"turned wrong: the top-left block is {brightest_third(after.first)}")
    return problems + dream_problems(before, after)


def dream_problems(before: Facts, after: Facts) -> list[str]:
    """The picture was dreamed, not copied: it differs from the source more than an encoder's noise."""
    height, width = (min(a, b) for a, b in zip(before.first.shape[:2], after.first.shape[:2]))
    change = float(np.abs(after.first[:height, :width].astype(np.int16) - before.first[:height, :width]).mean())
    return [] if change > DREAMED else [f"not dreamed: mean |dream - source| {change:.2f} grey levels"]


def transparency_problems(before: Facts, after: Facts, lost: str) -> list[str]:
    if not before.clear or "transparency" in lost:
        return []
    if abs(after.clear - before.clear) > 0.03:
        return [f"{after.clear:.0%} of the picture clear, the source's {before.clear:.0%}, and no line says so"]
    return []


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


@pytest.fixture(scope="module")
def picture_table(tmp_path_factory) -> list[tuple[PictureKind, Path]]:
    return made_table(tmp_path_factory.mktemp("picture-kinds"), PICTURE_AXES, PictureKind, make_picture, plain=False)


def test_every_picture_kind_dreams_to_its_size_turn_and_transparency_or_is_refused_before_work(
        picture_table, small_graph, tmp_path, capfd) -> None:
    """Pictures FFmpeg reads and OpenCV does not (TGA, QOI, DPX, EXR, PCX, SGI, XWD…), 16-bit,
    grey, with transparency, known by their content under a misleading name, written as the
    same kind or another, or into a video's container as a one-frame video; a kind nothing
    writes, or a container of sound only, is refused in one line."""
    problems = []
    kinds = {kind.codec for kind, _ in picture_table}
    assert set(PICTURE_AXES["codec"]) <= kinds and len(picture_table) >= 30, f"the table made only {sorted(kinds)}"
    for number, (kind, source) in enumerate(picture_table):
        out = tmp_path / f"{number:03d}-dream{kind.output_suffix()}"
        capfd.readouterr()
        code = main(["dream", str(source), "-o", str(out), "--model", str(small_graph), *STILL])
        said = capfd.readouterr()
        if kind.output in NOT_FOR_A_PICTURE:
            problems += [f"{kind.name}: {problem}" for problem in refusal_problems(out, code, said.out, said.err)]
            continue
        if code != 0:
            problems.append(f"{kind.name}: exit {code}: {said.err.strip()[-300:]}")
            continue
        before, after = facts_of(source), facts_of(out)
        lost = " ".join(line for line in said.out.splitlines() if line.startswith("not kept")).lower()
        found = (kind_problems(out, after) + transparency_problems(before, after, lost)
                 + picture_problems(before, after, said.out))
        problems += [f"{kind.name}: {problem}" for problem in found]
    print(f"{len(picture_table)} picture kinds dreamed")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_a_stream_without_timestamps_gets_the_stated_rate_and_keeps_every_frame(small_graph, tmp_path) -> None:
    """A raw H.264 stream states no timestamps: each frame gets the next one at the stated rate
    (FFmpeg's 25 fps for raw streams), none is dropped, and the dream plays at that rate."""
    import av

    from livedream.media.clips import frames, probe

    source = tmp_path / "camera.h264"
    with av.open(str(source), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 96, 80, "yuv420p"
        for index in range(7):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(upright_picture(index, 96, 80), format="rgb24")))
        container.mux(stream.encode(None))
    info = probe(source)
    stamps = [frame.pts for frame in frames(source, info)]
    assert info.frame_count == len(stamps) == 7
    assert all(later > earlier for earlier, later in zip(stamps, stamps[1:]))
    out = tmp_path / "dream.mp4"
    assert main(["dream", str(source), "-o", str(out), "--model", str(small_graph), *FAST]) == 0
    with av.open(str(out)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == 7 and times[-1] - times[0] == pytest.approx(6 / float(info.rate), abs=0.002)


def test_a_damaged_packet_is_skipped_and_the_count_is_what_decoding_gives(small_graph, tmp_path) -> None:
    """One picture of a PNG-in-MOV clip damaged (its compressed data zeroed): PyAV's plain decode
    stops there with an error; the frames FFmpeg still decodes are dreamed, as many as `probe`
    counted, none lost to the count the container states."""
    import av

    from livedream.media.clips import frames, probe

    source = tmp_path / "clip.mov"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("png", rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 80, "rgb24"
        for index in range(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(upright_picture(index, 96, 80), format="rgb24")))
        container.mux(stream.encode(None))
    data = bytearray(source.read_bytes())
    damaged = data.find(b"IDAT", len(data) // 2) + 4
    data[damaged:damaged + 200] = bytes(200)
    source.write_bytes(bytes(data))
    with pytest.raises(av.error.FFmpegError), av.open(str(source)) as container:
        sum(1 for _ in container.decode(video=0))
    info = probe(source)
    assert info.frame_count == sum(1 for _ in frames(source, info)) == 11
    out = tmp_path / "dream.mp4"
    assert main(["dream", str(source), "-o", str(out), "--model", str(small_graph), *FAST]) == 0
    assert facts_of(out).frames == 11
