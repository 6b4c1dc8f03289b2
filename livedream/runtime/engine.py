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
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from livedream.config import DEVICES
from livedream.errors import UserError
from livedream.manifest import find_graph, read_manifest

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# The gradient graph is the reference path (stills, tests, a user's comparison): TF32
# convolutions put it 7 % (relative L2) off float64 autograd on an H100, plain float32 0.05 %.
# The live step graphs keep ORT's TF32 default: there speed matters and the error is noise.
ACCURATE_CUDA = {"use_tf32": "0"}
# Sizes whose output buffers are kept; live sizes are few, tiles of a still add a couple.
MAX_CACHED_SIZES = 8


CUDA_LIBRARIES_FIX = 'pip install "onnxruntime-gpu[cuda,cudnn]"  (the CUDA and cuDNN libraries as wheels)'
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


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads  # 0 = one per physical core
    options.log_severity_level = 3  # ORT's own warnings are noise here; failures still raise
    return options


def choose_providers(device: str) -> list[str]:
    """Provider list for `device`; "auto" prefers CUDA when this onnxruntime build has it."""
    if device not in DEVICES:
        raise UserError(f"device {device!r} is unknown; use one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        raise UserError(
            "device 'cuda' asked for, but this onnxruntime has no CUDA provider; "
            'pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]", or use device \'auto\''
        )
    return [CPU]


def open_session(
    model_path: Path,
    device: str,
    threads: int,
    cuda_options: dict[str, str] | None = None,
    options: ort.SessionOptions | None = None,
) -> tuple[ort.InferenceSession, str]:
    """Create the session; if CUDA fails to start, fall back to CPU with one warning."""
    providers: list = choose_providers(device)
    if providers[0] == CUDA:
        preload_cuda_libraries()
        if cuda_options:
            providers = [(CUDA, cuda_options), CPU]
    options = options or _session_options(threads)
    try:
        session = ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as error:  # ORT raises its own exception types for bad files
        if CPU not in providers[:1]:
            log.warning("CUDA provider failed to start (%s); using the CPU", error)
            return open_session(model_path, "cpu", threads)
        raise UserError(
            f"{model_path} is not a loadable ONNX graph ({str(error).splitlines()[0]}); "
            f"re-export it with `livedream export`"
        ) from None
    active = session.get_providers()[0]
    if providers[0] != CPU and active != CUDA:
        log.warning("CUDA provider unavailable (cuDNN or driver missing?); using the CPU")
    return session, "CUDA" if active == CUDA else "CPU"


class GradientEngine(Protocol):
    """What a dream needs of a graph: its minimum size and the gradient (tests use small fakes)."""

    min_size: int

    def gradient(self, image: np.ndarray) -> tuple[float, np.ndarray]: ...


class Engine:
    """`gradient(image) -> (loss, grad)` for one exported graph.

    The returned gradient array is a reused buffer: it is valid until the next call with
    the same image size.
    """

    def __init__(
        self,
        model_path: Path,
        device: str = "auto",
        threads: int = 0,
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
        if {"loss", "gradient"} - names or [i.name for i in self.session.get_inputs()] != ["image"]:
            raise UserError(
                f"{self.model_path} is not a LiveDream gradient graph (needs input 'image', "
                f"outputs 'loss' and 'gradient'); export one with `livedream export`"
            )
        self._binding = self.session.io_binding()
        self._outputs: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        # Whole steps / whole live frames on the device, when such graphs are loaded (GPU).
        self.stepper: StepRunner | None = None
        self.frame_runners: dict[int, FrameRunner] = {}  # by steps per frame

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

    def gradient(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and d loss / d image for `image` (1, 3, H, W) float32, C-contiguous."""
        if image.ndim != 4 or image.shape[:2] != (1, 3) or image.dtype != np.float32:
            raise ValueError(f"expected (1, 3, H, W) float32, got {image.shape} {image.dtype}")
        self.check_size(image.shape[2], image.shape[3])
        loss, grad = self._buffers(image.shape)
        binding = self._binding
        binding.bind_cpu_input("image", np.ascontiguousarray(image))
        binding.bind_output("loss", "cpu", 0, np.float32, [], loss.ctypes.data)
        binding.bind_output("gradient", "cpu", 0, np.float32, list(grad.shape), grad.ctypes.data)
        self.session.run_with_iobinding(binding)
        return float(loss), grad


def open_fixed_size_session(
    model_path: Path, device: str, threads: int, dims: dict[str, int], cuda_options: dict[str, str] | None
) -> ort.InferenceSession:
    """A session with the graph's named dynamic dimensions fixed to `dims`.

    Fixed sizes let ORT fold every shape computation into constants, so no node is left on
    the CPU and the whole graph can be captured as one CUDA graph.
    """
    options = _session_options(threads)
    for name, value in dims.items():
        options.add_free_dimension_override_by_name(name, value)
    return open_session(model_path, device, threads, cuda_options, options)[0]


class _PingPong:
    """Two image buffers on the session's device and the bindings that run A→B and B→A."""

    def __init__(self, session: ort.InferenceSession, shape: tuple[int, ...], device: str) -> None:
        def device_array(array_shape: tuple[int, ...]) -> ort.OrtValue:
            return ort.OrtValue.ortvalue_from_shape_and_type(array_shape, np.float32, device, 0)

        self.a, self.b = device_array(shape), device_array(shape)
        self.step_size, self.loss = device_array(()), device_array(())
        self.bindings = []
        for source, target in ((self.a, self.b), (self.b, self.a)):
            binding = session.io_binding()
            binding.bind_ortvalue_input("image", source)
            binding.bind_ortvalue_input("step_size", self.step_size)
            binding.bind_ortvalue_output("image_out", target)
            binding.bind_ortvalue_output("loss", self.loss)
            self.bindings.append(binding)


class StepRunner:
    """Runs a step graph (K whole ascent steps per run) with the image kept on the device.

    One host→device copy in and one device→host copy out per `ascend`, however many steps.
    With `cuda_graph` the CUDA provider replays captured graphs: then the session is made
    per image size (a CUDA graph is captured for fixed shapes and addresses), once each.
    """

    def __init__(
        self,
        model_path: Path,
        steps_per_run: int,
        device: str = "auto",
        threads: int = 0,
        cuda_graph: bool = False,
        cuda_options: dict[str, str] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.steps_per_run = steps_per_run
        self.device, self.threads = device, threads
        self.cuda_graph = cuda_graph
        self.cuda_options = dict(cuda_options or {})
        if cuda_graph:
            self.cuda_options["enable_cuda_graph"] = "1"
        self._shared = None if cuda_graph else self._open(None)
        self.provider = "CUDA" if (self._shared or self._open((1, 3, 96, 96))).get_providers()[0] == CUDA else "CPU"
        self._sessions: dict[tuple[int, ...], ort.InferenceSession] = {}
        self._buffers: dict[tuple[int, ...], _PingPong] = {}
        self._run_options = []
        for graph_id in (1, 2):
            options = ort.RunOptions()
            if cuda_graph:
                # Two captured graphs: one reads buffer A and writes B, the other B to A.
                options.add_run_config_entry("gpu_graph_id", str(graph_id))
            self._run_options.append(options)

    def _open(self, shape: tuple[int, ...] | None) -> ort.InferenceSession:
        dims = {} if shape is None else {"height": shape[2], "width": shape[3]}
        return open_fixed_size_session(self.model_path, self.device, self.threads, dims, self.cuda_options)

    def _drop_cuda_graph(self) -> None:
        self.cuda_graph = False
        self.cuda_options.pop("enable_cuda_graph", None)
        self._run_options = [ort.RunOptions(), ort.RunOptions()]
        self._sessions.clear()
        self._buffers.clear()
        self._shared = self._open(None)

    def _session_for(self, shape: tuple[int, ...]) -> tuple[ort.InferenceSession, _PingPong]:
        buffers = self._buffers.get(shape)
        if buffers is None:
            if len(self._buffers) >= MAX_CACHED_SIZES:
                oldest = next(iter(self._buffers))
                del self._buffers[oldest]
                self._sessions.pop(oldest, None)
            session = self._shared or self._open(shape)
            self._sessions[shape] = session
            device = "cuda" if self.provider == "CUDA" else "cpu"
            buffers = _PingPong(session, shape, device)
            if self.cuda_graph:  # the first runs capture the graphs; fail here, not mid-show
                for binding, options in zip(buffers.bindings, self._run_options):
                    session.run_with_iobinding(binding, options)
            self._buffers[shape] = buffers
        return self._sessions[shape], buffers

    def ascend(self, image: np.ndarray, steps: int, step_size: float) -> float:
        """`steps` (rounded up to whole runs) ascent steps on `image` in place.

        Returns the loss the last run saw before its first step (for one step per run: the
        loss before the last step, as `dream.Ascent` reports it).
        """
        try:
            session, buffers = self._session_for(image.shape)
        except Exception as error:  # capture refused (a node on the CPU): run without graphs
            if not self.cuda_graph:
                raise
            log.warning("CUDA graph capture unavailable (%s); running without it", str(error).splitlines()[0])
            self._drop_cuda_graph()
            session, buffers = self._session_for(image.shape)
        buffers.a.update_inplace(image)
        buffers.step_size.update_inplace(np.asarray(step_size, np.float32))
        runs = max(1, -(-steps // self.steps_per_run))
        for run in range(runs):
            session.run_with_iobinding(buffers.bindings[run % 2], self._run_options[run % 2])
        result = buffers.b if runs % 2 else buffers.a
        image[...] = result.numpy()
        return float(buffers.loss.numpy())


class FrameRunner:
    """Runs a frame graph: a whole live frame (warp the carried detail, add, K steps, uint8 out).

    The detail stays in two device buffers that the runs ping-pong between, so a frame
    costs the uint8 frame and the small flow in and the uint8 dream out. Sessions are made
    per size with fixed dimensions (CUDA graphs need them), once each.
    """

    def __init__(
        self,
        model_path: Path,
        steps_per_run: int,
        device: str = "auto",
        threads: int = 0,
        cuda_graph: bool = False,
    ) -> None:
        self.model_path = Path(model_path)
        self.steps_per_run = steps_per_run
        self.device, self.threads = device, threads
        self.cuda_graph = cuda_graph
        self._slots: dict[tuple[int, ...], _FrameSlot] = {}
        self.provider = "CUDA" if self._open((96, 96), (8, 8)).get_providers()[0] == CUDA else "CPU"

    def _open(self, size: tuple[int, int], flow_size: tuple[int, int]) -> ort.InferenceSession:
        dims = dict(zip(("height", "width", "flow_height", "flow_width"), (*size, *flow_size)))
        cuda_options = {"enable_cuda_graph": "1"} if self.cuda_graph else None
        return open_fixed_size_session(self.model_path, self.device, self.threads, dims, cuda_options)

    def reset(self) -> None:
        """Forget every carried detail (a cut, a new source)."""
        for slot in self._slots.values():
            slot.clear()

    def dream_frame(
        self, frame_rgb: np.ndarray, flow: np.ndarray, feedback: np.ndarray, decay: float, step_size: float
    ) -> tuple[np.ndarray, float]:
        """`frame_rgb` (H, W, 3) uint8 dreamed; flow (h, w, 2) in dream pixels; feedback (2, 3).

        Returns (dream (H, W, 3) uint8, loss). The detail carried from the previous call of
        this size is warped by `flow` and `feedback` and scaled by `decay`.
        """
        key = (*frame_rgb.shape[:2], *flow.shape[:2])
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= MAX_CACHED_SIZES:
                self._slots.pop(next(iter(self._slots)))
            session = self._open(frame_rgb.shape[:2], flow.shape[:2])
            device = "cuda" if self.provider == "CUDA" else "cpu"
            slot = self._slots[key] = _FrameSlot(session, frame_rgb.shape, flow.shape, device, self.cuda_graph)
        return slot.run(frame_rgb, flow, feedback, decay, step_size)


class _FrameSlot:
    """One size's session, device buffers and the two bindings (detail A→B, B→A)."""

    def __init__(self, session: ort.InferenceSession, frame_shape: tuple[int, ...],
                 flow_shape: tuple[int, ...], device: str, cuda_graph: bool) -> None:
        def device_array(shape: tuple[int, ...], dtype: type = np.float32) -> ort.OrtValue:
            return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, device, 0)

        height, width = frame_shape[:2]
        self.session = session
        self.frame = device_array(frame_shape, np.uint8)
        self.dream = device_array(frame_shape, np.uint8)
        self.flow = device_array(flow_shape)
        self.feedback, self.decay, self.step_size, self.loss = (
            device_array((2, 3)), device_array(()), device_array(()), device_array(())
        )
        self.details = [device_array((1, 3, height, width)) for _ in range(2)]
        self.bindings, self.run_options = [], []
        for index, (source, target) in enumerate(((0, 1), (1, 0))):
            binding = session.io_binding()
            for name, value in (("frame", self.frame), ("detail", self.details[source]), ("flow", self.flow),
                                ("feedback", self.feedback), ("decay", self.decay), ("step_size", self.step_size)):
                binding.bind_ortvalue_input(name, value)
            for name, value in (("dream", self.dream), ("detail_out", self.details[target]), ("loss", self.loss)):
                binding.bind_ortvalue_output(name, value)
            options = ort.RunOptions()
            if cuda_graph:
                options.add_run_config_entry("gpu_graph_id", str(index + 1))
            self.bindings.append(binding)
            self.run_options.append(options)
        self.parity = 0
        if cuda_graph:  # the first runs capture the two graphs; their outputs are discarded
            for binding, options in zip(self.bindings, self.run_options):
                session.run_with_iobinding(binding, options)
        self.clear()

    def clear(self) -> None:
        zeros = np.zeros(self.details[0].shape(), np.float32)
        for detail in self.details:
            detail.update_inplace(zeros)  # never warp uninitialised memory: NaN * 0 is NaN

    def run(self, frame_rgb: np.ndarray, flow: np.ndarray, feedback: np.ndarray,
            decay: float, step_size: float) -> tuple[np.ndarray, float]:
        self.frame.update_inplace(np.ascontiguousarray(frame_rgb))
        self.flow.update_inplace(np.ascontiguousarray(flow, np.float32))
        self.feedback.update_inplace(np.ascontiguousarray(feedback, np.float32))
        self.decay.update_inplace(np.asarray(decay, np.float32))
        self.step_size.update_inplace(np.asarray(step_size, np.float32))
        self.session.run_with_iobinding(self.bindings[self.parity], self.run_options[self.parity])
        self.parity ^= 1
        return self.dream.numpy(), float(self.loss.numpy())


def load_engine(
    model: str, models_dir: Path, device: str = "auto", threads: int = 0, cuda_graph: bool = True
) -> Engine:
    """Engine for a manifest name or .onnx path, checked against the manifest first.

    If the manifest also holds a step graph of the same model (`<model>-…-step<K>`) and the
    session runs on CUDA, the engine gets a `StepRunner` so whole steps stay on the GPU.
    """
    path, info = find_graph(model, models_dir)
    engine = Engine(path, device, threads, min_size=info.min_size, layers=info.layers)
    if engine.provider == "CUDA":
        step_graphs = _best_graphs(info.name, models_dir, "step")
        if step_graphs:
            step_path, step_info = find_graph(step_graphs[min(step_graphs)], models_dir)
            engine.stepper = StepRunner(step_path, step_info.steps_per_run, device, threads, cuda_graph)
            log.info("whole steps on the GPU with %s%s", step_info.name, " (CUDA graphs)" if cuda_graph else "")
        for steps, name in _best_graphs(info.name, models_dir, "frame").items():
            frame_path, _ = find_graph(name, models_dir)
            engine.frame_runners[steps] = FrameRunner(frame_path, steps, device, threads, cuda_graph)
            log.info("whole live frames of %d step(s) on the GPU with %s", steps, name)
    return engine


def _best_graphs(model: str, models_dir: Path, kind: str) -> dict[int, str]:
    """For each steps-per-run, the fastest graph of `kind` exported for `model`: float16 first
    (H100: 2.3 vs 2.6 ms a step at 360x640 with CUDA graphs; tools/bench.py), then float32."""
    best: dict[int, str] = {}
    candidates = [g for g in read_manifest(models_dir).values()
                  if g.kind == kind and g.name.startswith(f"{model}-")]
    for graph in sorted(candidates, key=lambda g: g.dtype != "float16"):
        best.setdefault(graph.steps_per_run, graph.name)
    return best
