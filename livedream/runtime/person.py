"""The person model: for each pixel of a frame, the chance that it shows a person.

MediaPipe's selfie segmentation, landscape variant (Apache-2.0; `livedream/assets/person.LICENSE`),
converted to ONNX at build time (`export/person.py`) and shipped built, so the runtime needs
neither mediapipe nor a TFLite interpreter. The landscape variant: its input (256 x 144) has a
camera's 16:9 shape, it costs 56 % of the square model's pixels, and it keeps a body under
strongly coloured light better than the general model. It sees people near the camera; it
misses small, distant ones (the background model in `visitors` covers those).

The file is checked against `manifest.PERSON_SHA256` before ONNX Runtime opens it; a missing or
damaged file is a one-line `UserError` naming the fix. One session per process (ONNX Runtime
runs a session from several threads), one thread and no spinning: it runs beside the dream.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from livedream.errors import UserError, first_line
from livedream.files import file_digest, file_problem
from livedream.manifest import PERSON_GRAPH, PERSON_SHA256
from livedream.runtime.devices import CPU
from livedream.runtime.engine import CpuThreads, session_options

NAME = "MediaPipe selfie, landscape"
INPUT_SIZE = (256, 144)  # width, height: the model's fixed input
INPUT_NAME, OUTPUT_NAME = "input_1", "segment_back"
THREADS = CpuThreads(count=1, spin=False)
FIX = ("reinstall LiveDream (pip install --force-reinstall livedream), or rebuild it: "
       "python -m livedream.export.person MEDIAPIPE_WHEEL (see livedream/export/person.py)")


def person_model_problem(path: Path = PERSON_GRAPH, sha256: str = PERSON_SHA256) -> str | None:
    """Why the model file cannot be used (None when it can), in words for an error line."""
    problem = file_problem(path)
    if problem is not None:
        return f"the person model {path} {problem}"
    digest = file_digest(path)
    if digest != sha256:
        return f"the person model {path} is damaged (sha256 {digest[:12]}…, expected {sha256[:12]}…)"
    return None


@functools.cache
def person_session(path: Path = PERSON_GRAPH, sha256: str = PERSON_SHA256) -> ort.InferenceSession:
    """The model's session, opened once per process after the file passed its hash."""
    problem = person_model_problem(path, sha256)
    if problem is not None:
        raise UserError(f"{problem}; {FIX}")
    try:
        return ort.InferenceSession(str(path), session_options(THREADS), providers=[CPU])
    except Exception as error:  # ORT raises its own exception types for bad files
        raise UserError(f"the person model {path} is not a loadable ONNX graph ({first_line(error)}); {FIX}") from None


class PersonModel:
    """Runs the model on frames; its buffers are this object's, so each user makes its own."""

    def __init__(self, path: Path = PERSON_GRAPH, sha256: str = PERSON_SHA256) -> None:
        self._session = person_session(path, sha256)
        width, height = INPUT_SIZE
        self._resized = np.empty((height, width, 3), np.uint8)
        self._input = np.empty((1, height, width, 3), np.float32)
        self._output = np.empty((1, height, width, 1), np.float32)
        self._chance = self._output[0, :, :, 0]  # the answer, a view made once
        self._binding = self._session.io_binding()
        self._binding.bind_cpu_input(INPUT_NAME, self._input)
        self._binding.bind_output(OUTPUT_NAME, "cpu", 0, np.float32, list(self._output.shape), self._output.ctypes.data)

    def segment(self, frame_rgb: np.ndarray) -> np.ndarray:
        """(144, 256) float32, 0..1: how surely each pixel of `frame_rgb` (any size, uint8 RGB,
        stretched to the model's 16:9) is a person. This object's buffer, valid until the next call."""
        # Bilinear, as MediaPipe's own ImageToTensor feeds it (and several times cheaper than INTER_AREA here).
        cv2.resize(frame_rgb, INPUT_SIZE, dst=self._resized, interpolation=cv2.INTER_LINEAR)
        np.multiply(self._resized, 1.0 / 255.0, out=self._input[0], casting="unsafe")  # the model reads RGB in 0..1
        self._session.run_with_iobinding(self._binding)
        return self._chance
