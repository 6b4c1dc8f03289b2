"""One picture in a file, in and out: OpenCV where it reads or writes the kind (it turns a
photo by its EXIF orientation, and its JPEG and WebP encoders are the usual ones), FFmpeg for
every other kind it knows (TGA, DPX, EXR, QOI, PCX, SGI, XWD, PSD…).

Pixels leave here as uint8 RGB (H, W, 3); grey and 16-bit pictures become RGB, and a
picture's transparency comes apart as its alpha (H, W) where it is asked for.
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np

from livedream.errors import UserError
from livedream.files import IMAGE_FORMATS, file_problem, native_stderr_silenced
from livedream.media.clips import ClipInfo, ffmpeg_reason, first_picture, frames, probe
from livedream.media.headers import refuse_huge_header

JPEG_QUALITY = 95
PICTURE_HINT = "write a picture: .png, .jpg, .webp, .tiff or .tga"


def read_image(path: Path) -> np.ndarray:
    """The picture at `path` as uint8 RGB (H, W, 3), the first frame of a file with several.

    A path that is no readable file, a file no decoder reads, or one whose header claims
    more than `headers.MAX_IMAGE_PIXELS` is a one-line `UserError`.
    """
    problem = file_problem(path)
    if problem is not None:
        raise UserError(f"image {path} {problem}; give an image file ({IMAGE_FORMATS})")
    refuse_huge_header(path)
    bgr = _opencv_decoded(np.fromfile(str(path), dtype=np.uint8))
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        return first_picture(path)
    except UserError:
        raise UserError(f"cannot read {path} as an image (damaged, or not {IMAGE_FORMATS})") from None


def read_picture(path: Path, info: ClipInfo) -> tuple[np.ndarray, np.ndarray | None]:
    """The picture `info` describes, as RGB, and its alpha where it has transparency (then
    both from one decoding: OpenCV's colour reading drops the alpha)."""
    if not info.alpha:
        return read_image(path), None
    picture = next(frames(path, info))
    return picture.rgb, picture.alpha


def readable_picture(path: Path) -> bool:
    """Whether `read_image` reads a picture from `path`: OpenCV's answer from the header alone
    where it knows the kind (cheap enough for a control thread), else FFmpeg's first frame."""
    if cv2.haveImageReader(str(path)):
        return True
    try:
        first_picture(path)
    except UserError:
        return False
    return True


def _opencv_decoded(data: np.ndarray) -> np.ndarray | None:
    # imdecode of the bytes (not imread) so non-ASCII paths work on every platform.
    with native_stderr_silenced():
        try:
            return cv2.imdecode(data, cv2.IMREAD_COLOR)
        except cv2.error:
            return None


def encode_picture(extension: str, rgb: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """uint8 RGB (with `alpha`, where given) as the bytes of an `extension` file (".png",
    ".tga"…): OpenCV's encoder where it has one, else FFmpeg's; a one-line UserError when
    neither writes the kind. A kind without transparency drops the alpha (`keeps_alpha`)."""
    pixels = rgb if alpha is None else np.dstack((rgb, alpha))
    if cv2.haveImageWriter("picture" + extension):
        quality = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if extension in (".jpg", ".jpeg") else []
        colours = cv2.COLOR_RGB2BGR if alpha is None else cv2.COLOR_RGBA2BGRA
        with native_stderr_silenced():
            try:
                ok, encoded = cv2.imencode(extension, cv2.cvtColor(pixels, colours), quality)
            except cv2.error:
                ok = False
        if ok:
            return encoded.tobytes()
    codec = ffmpeg_picture_codec(extension)
    if codec is None:
        raise UserError(f"neither OpenCV nor FFmpeg here writes {extension or 'nameless'} pictures; {PICTURE_HINT}")
    return _ffmpeg_encoded(codec, pixels, extension)


def _ffmpeg_encoded(codec: str, pixels: np.ndarray, extension: str) -> bytes:
    layout = "rgba" if pixels.shape[2] == 4 else "rgb24"
    try:
        context = av.CodecContext.create(codec, "w")
        context.width, context.height = pixels.shape[1], pixels.shape[0]
        context.pix_fmt = _pixel_format(codec, layout == "rgba")
        context.time_base = Fraction(1, 25)  # an encoder needs a clock, even for one picture
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=layout).reformat(format=context.pix_fmt)
        packets = [*context.encode(frame), *context.encode(None)]
    except (av.error.FFmpegError, ValueError) as error:
        reason = ffmpeg_reason(error)
        raise UserError(f"FFmpeg cannot write this picture as {extension} ({reason}); {PICTURE_HINT}") from None
    return b"".join(bytes(packet) for packet in packets)


def _pixel_format(codec: str, alpha: bool) -> str:
    """rgb24 (rgba) where the encoder takes it, else its first colour format (with an alpha
    plane, where there is one): EXR's first is grey."""
    formats = [f for f in av.Codec(codec, "w").video_formats or () if len(f.components) >= 3 and not f.has_palette]
    wanted = "rgba" if alpha else "rgb24"
    with_alpha = [f.name for f in formats if any(c.is_alpha for c in f.components) == alpha]
    names = [f.name for f in formats]
    return wanted if wanted in names or not names else (with_alpha or names)[0]


def keeps_alpha(extension: str) -> bool:
    """Whether an `extension` picture keeps transparency: a small picture with a clear corner,
    written and read back."""
    rgb = np.full((16, 16, 3), 128, np.uint8)
    alpha = np.full((16, 16), 255, np.uint8)
    alpha[:8, :8] = 0
    with tempfile.TemporaryDirectory(prefix="livedream-alpha-") as folder:
        written = Path(folder) / ("clear" + extension)
        try:
            written.write_bytes(encode_picture(extension, rgb, alpha))
            info = probe(written)
        except UserError:
            return False
        back = next(frames(written, info)).alpha if info.alpha else None
    return back is not None and back[0, 0] < 128 and back[-1, -1] > 128


@lru_cache(maxsize=None)
def ffmpeg_picture_codec(extension: str) -> str | None:
    """FFmpeg's encoder for pictures named `extension`, or None. FFmpeg's image muxer knows
    which codec an extension means but PyAV does not ask it; its image reader does the same
    lookup when it opens a file by name, so a one-byte file of that name tells."""
    with tempfile.TemporaryDirectory() as folder:
        probe_file = Path(folder) / ("name" + extension)
        probe_file.write_bytes(b"\0")
        try:
            with av.open(str(probe_file), "r", format="image2") as container:
                name = container.streams.video[0].codec_context.name
        except (av.error.FFmpegError, IndexError, AttributeError):
            return None
    try:
        av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        return None
    return name
