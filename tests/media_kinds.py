"""Kinds of media file, generated: `make(kind, path)` writes one with PyAV (FFmpeg) and reads it
back, so a kind FFmpeg cannot make is known before a test relies on it; `covering(axes)`
picks kinds so that every pair of values of two axes meets in at least one file.

A clip has five frames, or one (a clip of one frame is still a clip: into a video's name it is
a one-frame video). A file shows a picture with a bright block in its upright top-left corner (so a wrong turn
is seen), stored turned and with a display matrix when it has a rotation; a pixel format
with an alpha plane makes the bottom-right corner clear; each sound track is a tone of its
own pitch (so swapped or lost tracks are seen), with a language and a title.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.subtitles.subtitle import SubtitleSet

FRAMES = 5  # a moving kind's frames
SAMPLE_RATE = 48000
TONES = (440.0, 660.0, 880.0)  # one pitch per sound track
LANGUAGES = ("eng", "fra", "spa")
ASS_HEADER = ("[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\nFormat: Name, "
              "Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
              "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
              "MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,"
              "100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, "
              "MarginV, Effect, Text\n")

# The axes the issue names, and a few more: each value is a kind a user's file can be.
AXES: dict[str, tuple] = {
    "container": (".mp4", ".mov", ".mkv", ".webm", ".avi", ".ts", ".nut", ".flv", ".ogv", ".gif", ".apng"),
    "codec": ("libx264", "libx265", "mpeg4", "mjpeg", "libvpx-vp9", "prores_ks", "ffv1", "png", "rawvideo", "gif"),
    "pixels": ("yuv420p", "yuv422p10le", "yuv444p", "yuvj420p", "gray", "rgba", "yuva444p10le", "rgb8"),
    "rotation": (0, 90, 180, 270),
    "sound": ((), ("mono",), ("stereo",), ("5.1",), ("stereo", "mono")),
    "size": ((96, 80), (97, 79)),
    "timing": ("steady", "variable"),
    "extras": ("none", "chapters", "subtitles"),
    "output": (".mp4", ".mkv", ".mov", ".webm", ".gif", ".png", ".jpg", "same"),
    "frames": (FRAMES, 1),
}
SOUND_CODECS = ("aac", "libopus", "flac", "mp2", "libmp3lame", "pcm_s16le")  # the first the container takes
TEXT_SUBTITLES = ("mov_text", "subrip", "ass", "webvtt")


@dataclass(frozen=True)
class Kind:
    container: str
    codec: str
    pixels: str
    rotation: int
    sound: tuple[str, ...]
    size: tuple[int, int]  # upright width, height
    timing: str
    extras: str
    output: str
    frames: int = FRAMES

    @property
    def name(self) -> str:
        sound = "+".join(self.sound) or "silent"
        return (f"{self.codec}-{self.pixels}-r{self.rotation}-{sound}-{self.size[0]}x{self.size[1]}-{self.timing}-"
                f"{self.extras}-{self.frames}f{self.container}-to{self.output}")

    @property
    def suffix(self) -> str:
        return self.container

    def output_suffix(self) -> str:
        return self.container if self.output == "same" else self.output


def upright_picture(index: int, width: int, height: int) -> np.ndarray:
    """Frame `index` as it should be seen: a gradient, a moving stripe and a bright top-left block."""
    x = np.linspace(40, 160, width, dtype=np.float32)
    y = np.linspace(0, 60, height, dtype=np.float32)[:, None]
    picture = np.stack([x + y, 0.5 * x + y, 200 - x + 0 * y], axis=-1)
    picture[:, (8 * index) % width: (8 * index) % width + 4] = (30, 90, 30)
    picture[: height // 3, : width // 3] = 250
    return np.clip(picture, 0, 255).astype(np.uint8)


def upright_alpha(width: int, height: int) -> np.ndarray:
    """The alpha of a kind with transparency: clear in the bottom-right third, opaque elsewhere."""
    alpha = np.full((height, width, 1), 255, np.uint8)
    alpha[-(height // 3):, -(width // 3):] = 0
    return alpha


def with_alpha(pixels: str) -> bool:
    return any(component.is_alpha for component in av.VideoFormat(pixels).components)


def pts_of(index: int, timing: str) -> int:
    """In 1/1200 s: 12 fps steady, or irregular steps."""
    return index * 100 if timing == "steady" else sum((100, 50, 175, 75)[i % 4] for i in range(index))


def make(kind: Kind, path: Path) -> bool:
    """Write `kind` at `path`; False (and no file) when FFmpeg cannot make it or it does not read
    back as made (a container that drops the rotation, a track or the timing)."""
    try:
        _write(kind, path)
        ok = _reads_back(kind, path)
    except (av.error.FFmpegError, ValueError, TypeError, OSError, IndexError):
        ok = False
    if not ok:
        path.unlink(missing_ok=True)
    return ok


def _write(kind: Kind, path: Path) -> None:
    width, height = kind.size
    stored_w, stored_h = (height, width) if kind.rotation % 180 else (width, height)
    time_base = Fraction(1, 1200)
    with av.open(str(path), "w") as container:
        quiet = {"x265-params": "log-level=error"} if kind.codec == "libx265" else {}
        video = container.add_stream(kind.codec, rate=12, options=quiet)
        video.width, video.height, video.pix_fmt = stored_w, stored_h, kind.pixels
        video.codec_context.time_base = time_base
        if kind.rotation:
            video.set_display_rotation(kind.rotation)
        sounds = [_sound_stream(container, layout, track) for track, layout in enumerate(kind.sound)]
        subtitles = _subtitle_stream(container) if kind.extras == "subtitles" else None
        if kind.extras == "chapters":
            container.set_chapters([{"id": i + 1, "start": i * 200, "end": (i + 1) * 200, "time_base": time_base,
                                     "metadata": {"title": f"Part {i + 1}"}} for i in range(2)])
        container.metadata.update({"title": "A kind of clip", "comment": "made by the test"})
        container.start_encoding()
        for index in range(kind.frames):
            upright = upright_picture(index, width, height)
            if with_alpha(kind.pixels):
                upright = np.concatenate((upright, upright_alpha(width, height)), axis=2)
            stored = np.ascontiguousarray(np.rot90(upright, k=-(kind.rotation // 90)))
            frame = av.VideoFrame.from_ndarray(stored, format="rgba" if stored.shape[2] == 4 else "rgb24")
            frame.pts, frame.time_base = pts_of(index, kind.timing), time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        seconds = (pts_of(kind.frames, kind.timing)) / 1200
        for track, stream in enumerate(sounds):
            _tone(container, stream, TONES[track], seconds)
        if subtitles is not None:
            _subtitle(container, subtitles, "Hello", 0, 300)


def _sound_stream(container: av.container.OutputContainer, layout: str, track: int) -> av.audio.stream.AudioStream:
    for codec in SOUND_CODECS:
        try:
            stream = container.add_stream(codec, rate=SAMPLE_RATE)
            stream.layout = layout
            stream.format = av.Codec(codec, "w").audio_formats[0].name
            stream.metadata.update({"language": LANGUAGES[track], "title": f"Track {track + 1}"})
            stream.codec_context.open()
            if container.format.name in ("mp4", "mov") or codec in container.supported_codecs:
                return stream
        except (av.error.FFmpegError, ValueError):
            continue
    raise ValueError(f"no sound codec for {container.format.name}")


def _tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, pitch: float,
          seconds: float) -> None:
    channels = stream.layout.nb_channels
    samples = int(seconds * SAMPLE_RATE)
    tone = (0.4 * np.sin(2 * np.pi * pitch * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
    size = stream.codec_context.frame_size or 1024
    resampler = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=SAMPLE_RATE)
    for start in range(0, samples, size):
        block = np.repeat(tone[None, start:start + size], channels, axis=0)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=stream.layout.name)
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        for ready in resampler.resample(frame):
            container.mux(stream.encode(ready))
    container.mux(stream.encode(None))


def _subtitle_stream(container: av.container.OutputContainer) -> av.stream.Stream:
    for codec in TEXT_SUBTITLES:
        try:
            stream = container.add_stream(codec)
            stream.codec_context.subtitle_header = ASS_HEADER.encode()
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.codec_context.open()
            stream.metadata["language"] = "deu"
            return stream
        except (av.error.FFmpegError, ValueError):
            continue
    raise ValueError("no text subtitles here")


def _subtitle(container: av.container.OutputContainer, stream: av.stream.Stream, text: str, start_ms: int,
              length_ms: int) -> None:
    packet = stream.codec_context.encode_subtitle(SubtitleSet.create(f"0,0,Default,,0,0,0,,{text}".encode(), 0,
                                                                     length_ms, 0))
    packet.pts = packet.dts = start_ms
    packet.duration, packet.time_base, packet.stream = length_ms, Fraction(1, 1000), stream
    container.mux(packet)


def _reads_back(kind: Kind, path: Path) -> bool:
    facts = facts_of(path)
    clear = 1 / 9 if with_alpha(kind.pixels) else 0.0
    return (facts.frames == kind.frames and facts.shown == kind.size and brightest_third(facts.first) == "top-left"
            and abs(facts.clear - clear) < 0.03
            and len(facts.tracks) == len(kind.sound)
            and (kind.extras != "chapters" or facts.chapters == 2)
            and (kind.extras != "subtitles" or facts.subtitles == 1))


def brightest_third(picture: np.ndarray) -> str:
    """Which corner third of the picture is brightest: where the upright block shows."""
    grey = picture.astype(np.float32).mean(axis=2)
    height, width = grey.shape
    rows, columns = height // 3, width // 3
    corners = {"top-left": grey[:rows, :columns], "top-right": grey[:rows, -columns:],
               "bottom-left": grey[-rows:, :columns], "bottom-right": grey[-rows:, -columns:]}
    return max(corners, key=lambda name: corners[name].mean())


@dataclass(frozen=True)
class Facts:
    """What a player would find in a file: frames, the shown size, the first frame as shown,
    each sound track (channels, language, title, pitch), subtitles, chapters, tags."""

    frames: int
    shown: tuple[int, int]
    first: np.ndarray
    clear: float  # the share of the first frame that is transparent
    tracks: tuple[tuple[int, str | None, str | None, float], ...]
    subtitles: int
    chapters: int
    tags: dict
    format: str = ""  # FFmpeg's name for the container (a picture's: "png_pipe", "image2"…)

    @property
    def a_video(self) -> bool:
        """The file is a video's container, not one picture's (whatever its name)."""
        return not self.format.endswith("_pipe") and self.format not in ("image2", "gif", "webp")


def facts_of(path: Path) -> Facts:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pictures, turn = [], 0
        for frame in container.decode(video):
            if not pictures:
                turn = round(frame.rotation or 0)
            pictures.append(frame.to_ndarray(format="rgba"))
        shown = np.rot90(pictures[0], k=turn // 90) if pictures else np.zeros((1, 1, 4), np.uint8)
        clear = float((shown[..., 3] < 128).mean())
        # Over black, as a player shows a clear part: a GIF's clear colour may be any colour.
        first = (shown[..., :3].astype(np.uint16) * shown[..., 3:] // 255).astype(np.uint8)
        tracks = tuple((s.codec_context.channels, s.metadata.get("language"),
                        s.metadata.get("title") or s.metadata.get("name"), _pitch(path, s.index))
                       for s in container.streams.audio)
        return Facts(len(pictures), (first.shape[1], first.shape[0]), first, clear, tracks,
                     len(container.streams.subtitles), len(container.chapters()),
                     {key.lower(): value for key, value in container.metadata.items()}, container.format.name)


def _pitch(path: Path, index: int) -> float:
    with av.open(str(path)) as container:
        stream = container.streams[index]
        samples = np.concatenate([frame.to_ndarray().astype(np.float32).reshape(frame.to_ndarray().shape[0], -1)[0]
                                  for frame in container.decode(stream)])
        rate = stream.codec_context.sample_rate  # the file's own: a tone made elsewhere may be at 44.1 kHz
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def plain_kinds(axes: dict[str, tuple]) -> list[dict]:
    """One plain kind per container: FFmpeg's own default video codec for it, that encoder's
    first pixel format, the first value of every other axis (the starting points of `covering`)."""
    kinds = []
    for container in axes["container"]:
        with tempfile.TemporaryDirectory() as folder:
            with av.open(str(Path(folder) / ("name" + container)), "w") as output:
                encoder = av.Codec(output.default_video_codec, "w")
        formats = [f.name for f in encoder.video_formats or ()]
        kinds.append({name: values[0] for name, values in axes.items()}
                     | {"container": container, "codec": encoder.name, "pixels": formats[0] if formats else "yuv420p"})
    return kinds


def covering(axes: dict[str, tuple], make_one, seed: int = 5, tries: int = 3000, give_up: int = 8,
             plain: bool = True) -> list:
    """Kinds in which every pair of values of two axes meets at least once where FFmpeg can make
    such a file (a greedy covering array, as AETG builds one). For a pair not yet covered the
    first candidate fills the other axes with the values that cover most new pairs; when FFmpeg
    cannot make it, a kind already made gets the pair's two values put in. `make_one(candidate)`
    returns what it made (None: it could not); a pair that failed `give_up` times is taken as one
    FFmpeg cannot make. Deterministic for a seed."""
    names = list(axes)
    uncovered = {((a, va), (b, vb)) for a, b in itertools.combinations(names, 2) for va in axes[a] for vb in axes[b]}
    failures: dict = {}
    made, kinds = [], []
    rng = random.Random(seed)

    def pairs_of(candidate: dict) -> set:
        return {((x, candidate[x]), (y, candidate[y])) for x, y in itertools.combinations(names, 2)
                if x in candidate and y in candidate}

    def attempt(candidate: dict) -> bool:
        result = make_one(candidate)
        if result is None:
            return False
        made.append(result)
        kinds.append(candidate)
        uncovered.difference_update(pairs_of(candidate))
        return True

    def greedy(a: str, va, b: str, vb) -> dict:
        candidate = {a: va, b: vb}
        for name in rng.sample([n for n in names if n not in candidate], len(names) - 2):
            gains = {value: len(pairs_of(candidate | {name: value}) & uncovered) for value in axes[name]}
            best = max(gains.values())
            candidate[name] = rng.choice([value for value, gain in gains.items() if gain == best])
        return {name: candidate[name] for name in names}

    for kind in plain_kinds(axes) if plain else ():  # `plain`: start from each container's own codec
        attempt(kind)
    for _ in range(tries):
        if not uncovered:
            break
        pair = (a, va), (b, vb) = rng.choice(sorted(uncovered, key=repr))
        near = [kind for kind in kinds if kind[a] == va or kind[b] == vb] or kinds
        if attempt(greedy(a, va, b, vb)) or (near and attempt(rng.choice(near) | {a: va, b: vb})):
            continue
        failures[pair] = failures.get(pair, 0) + 1
        if failures[pair] >= give_up:
            uncovered.discard(pair)
    return made


# ---- pictures: one frame in a picture's own format ------------------------------------------

PICTURE_AXES: dict[str, tuple] = {
    "codec": ("png", "mjpeg", "targa", "qoi", "dpx", "exr", "pcx", "sgi", "xwd", "tiff", "libwebp", "bmp",
              "jpeg2000", "gif"),
    "pixels": ("rgb24", "rgba", "gray", "rgb48be", "yuvj420p", "yuv420p", "yuva420p", "gbrpf32le", "rgb8"),
    "size": ((96, 80), (97, 79)),
    "named": ("as its kind", "misleadingly"),  # a kind with a signature is known by it under any name
    # .mp4, .mov: a one-frame video; .heic: a picture nothing here writes; .wav: a container of sound only
    "output": (".png", ".jpg", ".tga", ".exr", ".webp", ".tiff", ".gif", "same", ".mp4", ".mov", ".heic", ".wav"),
}
# The extension FFmpeg's image muxer and other programs give each encoder's pictures.
PICTURE_EXTENSIONS = {"png": ".png", "mjpeg": ".jpg", "targa": ".tga", "qoi": ".qoi", "dpx": ".dpx", "exr": ".exr",
                      "pcx": ".pcx", "sgi": ".sgi", "xwd": ".xwd", "tiff": ".tiff", "libwebp": ".webp",
                      "bmp": ".bmp", "jpeg2000": ".jp2", "gif": ".gif"}
WITHOUT_SIGNATURE = ("targa",)  # a TGA file is known by its name alone


@dataclass(frozen=True)
class PictureKind:
    codec: str
    pixels: str
    size: tuple[int, int]
    named: str
    output: str

    @property
    def name(self) -> str:
        return f"{self.codec}-{self.pixels}-{self.size[0]}x{self.size[1]}-named {self.named}-to{self.output}"

    @property
    def suffix(self) -> str:
        return PICTURE_EXTENSIONS[self.codec] if self.named == "as its kind" else ".dat"

    def output_suffix(self) -> str:
        return PICTURE_EXTENSIONS[self.codec] if self.output == "same" else self.output


def make_picture(kind: PictureKind, path: Path) -> bool:
    """Write `kind` at `path` with FFmpeg's image muxer; False (and no file) when FFmpeg cannot,
    or the picture does not read back as made."""
    if kind.named == "misleadingly" and kind.codec in WITHOUT_SIGNATURE:
        return False
    width, height = kind.size
    upright = upright_picture(0, width, height)
    if with_alpha(kind.pixels):
        upright = np.concatenate((upright, upright_alpha(width, height)), axis=2)
    try:
        # GIF has a muxer of its own; every other picture goes through the image muxer
        muxer, options = ("gif", {}) if kind.codec == "gif" else ("image2", {"update": "1"})
        with av.open(str(path), "w", format=muxer, container_options=options) as container:
            stream = container.add_stream(kind.codec, rate=1)
            stream.width, stream.height, stream.pix_fmt = width, height, kind.pixels
            frame = av.VideoFrame.from_ndarray(upright, format="rgba" if upright.shape[2] == 4 else "rgb24")
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        facts = facts_of(path)
        ok = facts.frames == 1 and facts.shown == kind.size and brightest_third(facts.first) == "top-left"
    except (av.error.FFmpegError, ValueError, TypeError, OSError, IndexError):
        ok = False
    if not ok:
        path.unlink(missing_ok=True)
    return ok


def made_table(folder: Path, axes: dict[str, tuple], kind_type, make_file, plain: bool = True) -> list:
    """The `covering` table of `kind_type`s (Kind, PictureKind), each made by `make_file` in
    `folder`: [(kind, path)]."""

    def make_one(candidate: dict):
        kind = kind_type(**candidate)
        path = folder / f"{len(list(folder.iterdir())):03d}{kind.suffix}"
        return (kind, path) if make_file(kind, path) else None

    return covering(axes, make_one, plain=plain)
