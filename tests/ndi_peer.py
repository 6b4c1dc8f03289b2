"""The other side of the NDI tests, run as its own process (NDI reads its config when it starts):

    python -m tests.ndi_peer receive NAME OUT.npz SECONDS   # keep every frame of sender NAME
    python -m tests.ndi_peer send NAME SECONDS              # send `pattern()` as NAME
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction

import numpy as np

PATTERN_SIZE = (320, 180)  # width, height: 16:9 like the app's default dream


def pattern() -> np.ndarray:
    """A smooth RGB picture (NDI's 4:2:2 chroma blurs sharp colour edges) with structure everywhere."""
    width, height = PATTERN_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 100 * np.sin(x / 23.0)
    green = 128 + 100 * np.cos(y / 17.0)
    blue = 128 + 60 * np.sin((x + y) / 31.0)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def receive(name: str, out: str, seconds: float) -> None:
    from livedream.pipeline.ndi import NdiSource

    source = NdiSource(name)
    source.start()
    frames, stamps, last = [], [], None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = source.read()
        if frame is not None and frame.index != last:
            last = frame.index
            frames.append(frame.image.copy())
            stamps.append(time.time())
        time.sleep(0.002)
    source.close()
    np.savez(out, frames=np.array(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8), stamps=np.array(stamps))
    print(f"received {len(frames)} frames", flush=True)


def send(name: str, seconds: float) -> None:
    from cyndilib import FourCC, Sender, VideoSendFrame

    width, height = PATTERN_SIZE
    video = VideoSendFrame()
    video.set_resolution(width, height)
    video.set_frame_rate(Fraction(30, 1))
    video.set_fourcc(FourCC.RGBA)
    sender = Sender(name)
    sender.set_video_frame(video)
    rgba = np.full((height, width, 4), 255, np.uint8)
    rgba[..., :3] = pattern()
    deadline = time.monotonic() + seconds
    with sender:
        while time.monotonic() < deadline:
            sender.write_video(rgba.reshape(-1))
            time.sleep(1 / 30)


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        receive(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        send(sys.argv[2], float(sys.argv[3]))
