"""ONNX Runtime session for one exported graph: image in, loss and gradient out.

The runtime's only contract with the network. Arrays are NCHW float32 (1, 3, H, W) in
[-1, 1]. One session per model file and provider, created once; output buffers are made
once per image size and reused (IO binding), so a step allocates nothing large.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from livedream.errors import UserError, first_line
from livedream.manifest import CHANNELS_KEY, EARLIER_RELEASE, LAYERS_KEY, MASK_INPUT, OBJECTIVE_INPUTS, WEIGHTS_KEY
from livedream.objective import normalised, public_layer
from livedream.runtime.devices import CPU, CUDA, CUDA_LIBRARIES_FIX, Placement, place, provider_of
from livedream.runtime.objective import ObjectiveInputs

log = logging.getLogger(__name__)

# The gradient graph is the reference path (stills, tests, a user's comparison): TF32
# convolutions put it 7 % (relative L2) off float64 autograd on an H100, plain float32 0.05 %.
# The live step graphs keep ORT's TF32 default: there speed matters and the error is noise.
ACCURATE_CUDA = {"use_tf32": "0"}
# Sizes whose output buffers are kept; live sizes are few, tiles of a still add a couple.
MAX_CACHED_SIZES = 8


_FAILED_LIBRARY = re.compile(r"Failed to load (\S+?):")


@functools.cache
def preload_cuda_libraries() -> tuple[str, ...]:
    """Load the CUDA and cuDNN libraries of the nvidia-* wheels before the first CUDA session.

    Without a system CUDA toolkit the CUDA provider finds them only when they are already
    loaded (`onnxruntime.preload_dlls`, onnxruntime-gpu ≥ 1.21; a CPU build returns at once).
    Returns the libraries that failed to load, so `livedream doctor` can name them;
    onnxruntime reports those only by printing, which is captured here.
    """
    if not hasattr(ort, "preload_dlls"):  # an onnxruntime older than 1.21
        return ()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            ort.preload_dlls()
        except Exception as error:  # noqa: BLE001 - a failed preload must not stop the CPU path
            print(f"Failed to load CUDA libraries: {error}")
    failed = tuple(dict.fromkeys(Path(name).name for name in _FAILED_LIBRARY.findall(printed.getvalue())))
    if failed:
        log.warning("CUDA libraries not loaded: %s; %s", ", ".join(failed), CUDA_LIBRARIES_FIX)
    return failed


@dataclass(frozen=True)
class CpuThreads:
    """How ONNX Runtime's CPU provider spends the cores."""

    count: int = 0  # 0 = one per physical core
    # Between tasks idle threads spin-wait: about 10 % faster for a process alone on the machine
    # (a still, a video), but they hold a core the live show loop needs beside the dream.
    spin: bool = True

    @property
    def label(self) -> str:
        """"threads=N", with ",no spin" when the threads do not spin: both change what a step costs."""
        return f"threads={self.count}" + ("" if self.spin else ",no spin")


def session_options(threads: CpuThreads, dims: dict[str, int] | None = None) -> ort.SessionOptions:
    """Options for every session; `dims` fixes the graph's named dynamic dimensions."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads.count
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads.spin else "0")
    options.log_severity_level = 3  # ORT's own warnings are noise here; failures still raise
    for name, value in (dims or {}).items():
        options.add_free_dimension_override_by_name(name, value)
    return options


def _providers(
    placement: Placement, options: ort.SessionOptions, cuda_options: dict[str, str] | None, fixed_size: bool
) -> list | None:
    """The `providers` argument for `placement`; a plugin provider (WebGPU) goes into `options`."""
    if placement.provider == "WebGPU":
        assert placement.adapter is not None
        options.add_provider_for_devices([placement.adapter.device], {})
        if fixed_size:
            # Fixed sizes fold every shape computation into constants, so a node left on the
            # CPU is a kernel the provider lacks, copying its tensors off and back every run:
            # refusing the session lets `open_session` fall back whole, with a warning. At
            # dynamic sizes ORT keeps the shape arithmetic (a few integers) on the CPU by design.
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        return None
    if placement.provider == "CUDA":
        preload_cuda_libraries()
        return [(CUDA, cuda_options) if cuda_options else CUDA, CPU]
    return [CPU]


def open_session(
    model_path: Path,
    device: str,
    threads: CpuThreads,
    cuda_options: dict[str, str] | None = None,
    dims: dict[str, int] | None = None,
) -> tuple[ort.InferenceSession, str]:
    """The session and where it runs ("CUDA", "WebGPU" or "CPU"); a GPU provider that fails
    to start falls back to the CPU (same sizes) with one warning."""
    placement = place(device)
    options = session_options(threads, dims)
    try:
        providers = _providers(placement, options, cuda_options, fixed_size=bool(dims))
        session = ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as error:  # ORT raises its own exception types for bad files
        if placement.provider != "CPU":
            log.warning("the %s provider failed to start (%s); using the CPU", placement.provider, first_line(error))
            return open_session(model_path, "cpu", threads, dims=dims)
        raise UserError(
            f"{model_path} is not a loadable ONNX graph ({first_line(error)}); "
            f"re-export it with `livedream export`"
        ) from None
    active = provider_of(session)
    if active != placement.provider:
        log.warning("the %s provider is unavailable (cuDNN or driver missing?); using the CPU", placement.provider)
    return session, active


class DreamInterrupted(Exception):
    """A dream was abandoned: its stop check said stop between two steps, or `Engine.interrupt`
    ended the run in flight (a quit waits for nothing; a visitor who arrives during a room's
    dream gets theirs at once, `live.schedule`)."""


class GradientEngine(Protocol):
    """What a dream needs of a graph: its minimum size and the gradient (tests use small fakes)."""

    min_size: int

    def gradient(self, image: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        """(loss, ascent direction) for `image` (1, 3, H, W) under the visitor `mask` (h, w)."""


GRADIENT_INPUTS = ["image", *OBJECTIVE_INPUTS, MASK_INPUT]
NO_VISITORS = np.zeros((2, 2), np.float32)  # a mask of nobody: every pixel is the room


class Engine:
    """`gradient(image) -> (loss, grad)` for one exported graph, under `objective`'s weights.

    The returned gradient array is a reused buffer: it is valid until the next call with
    the same image size. `objective` holds the graph's objective inputs; set it between
    calls to change what the dream amplifies (no session is touched).
    """

    def __init__(
        self,
        model_path: Path,
        device: str = "auto",
        threads: CpuThreads = CpuThreads(),
        min_size: int = 75,
        layers: tuple[str, ...] = (),
        cuda_options: dict[str, str] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        options = ACCURATE_CUDA if cuda_options is None else cuda_options
        self.session, self.provider = open_session(self.model_path, device, threads, options)
        self.min_size = min_size
        self.layers = layers
        names = {o.name for o in self.session.get_outputs()}
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs[0] == "image" and set(inputs) < set(GRADIENT_INPUTS):
            raise UserError(f"{self.model_path} {EARLIER_RELEASE}; export it again with `livedream export`")
        if {"loss", "gradient", "channel_means", "feature_grid"} - names or inputs != GRADIENT_INPUTS:
            raise UserError(
                f"{self.model_path} is not a LiveDream gradient graph (needs inputs {', '.join(GRADIENT_INPUTS)}, "
                f"outputs loss, gradient, channel_means and feature_grid); export one with `livedream export`"
            )
        self.objective = objective_inputs_of(self.session)
        self.channel_means = np.zeros_like(self.objective.channel_weights)
        self.feature_grid = np.zeros_like(self.objective.guide_features)
        self._binding = self.session.io_binding()
        self._run_options = ort.RunOptions()  # `interrupt` raises its terminate flag
        self._outputs: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def check_size(self, height: int, width: int) -> None:
        if min(height, width) < self.min_size:
            raise UserError(
                f"image {width}x{height} is smaller than the model's minimum "
                f"{self.min_size}x{self.min_size}; use a larger image or fewer octaves"
            )

    def _buffers(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        buffers = self._outputs.get(shape)
        if buffers is None:
            if len(self._outputs) >= MAX_CACHED_SIZES:
                self._outputs.pop(next(iter(self._outputs)))
            buffers = (np.empty((), np.float32), np.empty(shape, np.float32))
            self._outputs[shape] = buffers
        return buffers

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        """Loss and the ascent direction for `image` (1, 3, H, W) float32, C-contiguous, under
        the visitor `mask` (h, w) float32 of any size. `channel_means` and `feature_grid`
        hold the image's features afterwards."""
        if image.ndim != 4 or image.shape[:2] != (1, 3) or image.dtype != np.float32:
            raise ValueError(f"expected (1, 3, H, W) float32, got {image.shape} {image.dtype}")
        self.check_size(image.shape[2], image.shape[3])
        loss, grad = self._buffers(image.shape)
        binding = self._binding
        binding.bind_cpu_input("image", np.ascontiguousarray(image))
        for name, array in self.objective.arrays():
            binding.bind_cpu_input(name, array)
        binding.bind_cpu_input(MASK_INPUT, np.ascontiguousarray(mask, np.float32))
        binding.bind_output("loss", "cpu", 0, np.float32, [], loss.ctypes.data)
        binding.bind_output("gradient", "cpu", 0, np.float32, list(grad.shape), grad.ctypes.data)
        binding.bind_output("channel_means", "cpu", 0, np.float32, list(self.channel_means.shape),
                            self.channel_means.ctypes.data)
        binding.bind_output("feature_grid", "cpu", 0, np.float32, list(self.feature_grid.shape),
                            self.feature_grid.ctypes.data)
        # Each run starts unflagged: an interrupt meant for an earlier one must not end it. One
        # that lands between a dream's stop check and this line is seen at the next check.
        self._run_options.terminate = False
        try:
            self.session.run_with_iobinding(binding, self._run_options)
        except Exception:
            if self._run_options.terminate:
                raise DreamInterrupted from None
            raise
        return float(loss), grad

    def interrupt(self) -> None:
        """End the run in flight (from another thread) at its next node: it raises
        `DreamInterrupted`. ONNX Runtime checks the flag between nodes, so a whole-frame step of
        half a second on a CPU ends within one convolution."""
        self._run_options.terminate = True

    def features(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`image`'s per-channel mean activations and feature grid (copies): one gradient run."""
        self.gradient(image, NO_VISITORS)
        return self.channel_means.copy(), self.feature_grid.copy()


def objective_inputs_of(session: ort.InferenceSession) -> ObjectiveInputs:
    """The objective inputs a graph declares in its metadata (written by `livedream export`)."""
    meta = session.get_modelmeta().custom_metadata_map
    try:
        layers = tuple(meta[LAYERS_KEY].split(","))
        channels = tuple(int(c) for c in meta[CHANNELS_KEY].split(","))
        defaults = tuple(float(w) for w in meta[WEIGHTS_KEY].split(","))
    except (KeyError, ValueError):
        raise UserError("the graph does not list its objective layers; export it again with `livedream export`") from None
    default = normalised((public_layer(layer), w) for layer, w in zip(layers, defaults) if w)
    return ObjectiveInputs(layers, channels, default)
