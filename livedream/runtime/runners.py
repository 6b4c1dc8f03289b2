"""The GPU live path's runners: whole ascent steps (`StepRunner`) and whole live frames
(`FrameRunner`) per ONNX Runtime run, with the image or the carried detail kept on the
device between runs. Sessions are made per size with fixed dimensions, once each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import onnxruntime as ort

from livedream.errors import first_line
from livedream.manifest import MASK_INPUT, SHARPEN_GRAPH, STD_NORM
from livedream.runtime.devices import VALUE_DEVICES, provider_of
from livedream.runtime.engine import MAX_CACHED_SIZES, CpuThreads, objective_inputs_of, open_session
from livedream.runtime.objective import ObjectiveInputs

log = logging.getLogger(__name__)


def shown_larger(shown_rgb: np.ndarray, dream_rgb: np.ndarray) -> bool:
    """Whether the frame is shown sharp (its pixels + the upscaled detail) rather than the dream
    itself: the one rule for the host path and the device's."""
    return shown_rgb.shape[0] * shown_rgb.shape[1] > dream_rgb.shape[0] * dream_rgb.shape[1]


def open_fixed_size_session(
    model_path: Path, device: str, threads: CpuThreads, dims: dict[str, int], cuda_options: dict[str, str] | None
) -> ort.InferenceSession:
    """A session with the graph's named dynamic dimensions fixed to `dims`.

    Fixed sizes let ORT fold every shape computation into constants, so no node is left on
    the CPU and the whole graph can be captured as one CUDA graph.
    """
    return open_session(model_path, device, threads, cuda_options, dims)[0]



def _sized(mask: np.ndarray, shape: list[int]) -> np.ndarray:
    """The visitor mask at a device buffer's (h, w): as given when it is (the dreamer sizes it
    once per frame), else resized here (a caller's small mask, such as 2x2 "nobody")."""
    if list(mask.shape) == list(shape):
        return np.ascontiguousarray(mask, np.float32)
    return cv2.resize(np.asarray(mask, np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)

class _DeviceObjective:
    """The objective inputs' copy on a session's device, refreshed when the objective changes
    (a version compare per run; CUDA graphs keep reading the same addresses)."""

    def __init__(self, objective: ObjectiveInputs, device: str) -> None:
        self.objective = objective
        self.values = [(name, ort.OrtValue.ortvalue_from_numpy(array.copy(), device, 0))
                       for name, array in objective.arrays()]
        self.version = objective.version

    def bind(self, binding: ort.IOBinding) -> None:
        for name, value in self.values:
            binding.bind_ortvalue_input(name, value)

    def refresh(self) -> None:
        if self.version != self.objective.version:
            for (_, value), (_, array) in zip(self.values, self.objective.arrays()):
                value.update_inplace(array)
            self.version = self.objective.version


class _PingPong:
    """Two image buffers on the session's device and the bindings that run A→B and B→A."""

    def __init__(self, session: ort.InferenceSession, shape: tuple[int, ...], device: str,
                 objective: ObjectiveInputs) -> None:
        def device_array(array_shape: tuple[int, ...]) -> ort.OrtValue:
            return ort.OrtValue.ortvalue_from_shape_and_type(array_shape, np.float32, device, 0)

        self.a, self.b = device_array(shape), device_array(shape)
        self.step_size, self.loss = device_array(()), device_array(())
        self.mask = device_array(shape[2:])  # the visitors at the image's size
        self.objective = _DeviceObjective(objective, device)
        self.bindings = []
        for source, target in ((self.a, self.b), (self.b, self.a)):
            binding = session.io_binding()
            binding.bind_ortvalue_input("image", source)
            binding.bind_ortvalue_input("step_size", self.step_size)
            self.objective.bind(binding)
            binding.bind_ortvalue_input(MASK_INPUT, self.mask)
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
        threads: CpuThreads = CpuThreads(),
        cuda_graph: bool = False,
        cuda_options: dict[str, str] | None = None,
        objective: ObjectiveInputs | None = None,
        gradient_norm: str = STD_NORM,
    ) -> None:
        """`objective`: the inputs shared with the gradient engine; None = the graph's default.
        `gradient_norm`: the one the graph was exported with (its manifest entry's)."""
        self.model_path = Path(model_path)
        self.steps_per_run = steps_per_run
        self.gradient_norm = gradient_norm
        self.device, self.threads = device, threads
        self.cuda_graph = cuda_graph
        self.cuda_options = dict(cuda_options or {})
        if cuda_graph:
            self.cuda_options["enable_cuda_graph"] = "1"
        self._shared = None if cuda_graph else self._open(None)
        probe = self._shared or self._open((1, 3, 96, 96))
        self.provider = provider_of(probe)
        self.objective = objective or objective_inputs_of(probe)
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
        dims = {} if shape is None else {"height": shape[2], "width": shape[3],
                                         "mask_height": shape[2], "mask_width": shape[3]}
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
            device = VALUE_DEVICES[self.provider]
            buffers = _PingPong(session, shape, device, self.objective)
            if self.cuda_graph:  # the first runs capture the graphs; fail here, not mid-show
                for binding, options in zip(buffers.bindings, self._run_options):
                    session.run_with_iobinding(binding, options)
            self._buffers[shape] = buffers
        return self._sessions[shape], buffers

    def ascend(self, image: np.ndarray, steps: int, step_size: float, mask: np.ndarray) -> float:
        """`steps` (rounded up to whole runs) ascent steps on `image` in place, under the
        visitor `mask` at the image's size.

        Returns the loss the last run saw before its first step (for one step per run: the
        loss before the last step, as `dream.Ascent` reports it).
        """
        try:
            session, buffers = self._session_for(image.shape)
        except Exception as error:  # capture refused (a node on the CPU): run without graphs
            if not self.cuda_graph:
                raise
            log.warning("CUDA graph capture unavailable (%s); running without it", first_line(error))
            self._drop_cuda_graph()
            session, buffers = self._session_for(image.shape)
        buffers.a.update_inplace(image)
        buffers.step_size.update_inplace(np.asarray(step_size, np.float32))
        buffers.mask.update_inplace(_sized(mask, buffers.mask.shape()))
        buffers.objective.refresh()
        runs = max(1, -(-steps // self.steps_per_run))
        for run in range(runs):
            session.run_with_iobinding(buffers.bindings[run % 2], self._run_options[run % 2])
        result = buffers.b if runs % 2 else buffers.a
        image[...] = result.numpy()
        return float(buffers.loss.numpy())


PROBE_SIDE = 96  # the size a frame runner's first session is opened at, to learn its provider


class FrameRunner:
    """Runs a frame graph: a whole live frame (warp the carried detail, add, K steps, uint8 out).

    The detail stays in two device buffers that the runs ping-pong between, so a frame
    costs the uint8 frame and the small flow in and the uint8 dream out — or, when the
    camera frame is larger than the dream, that full frame in and the sharp picture out. Sessions are made
    per size with fixed dimensions (CUDA graphs need them), once each.
    """

    def __init__(
        self,
        model_path: Path,
        steps_per_run: int,
        device: str = "auto",
        threads: CpuThreads = CpuThreads(),
        cuda_graph: bool = False,
        objective: ObjectiveInputs | None = None,
        min_size: int = PROBE_SIDE,
    ) -> None:
        """`objective`: the inputs shared with the gradient engine; None = the graph's default.
        `min_size`: the smallest side the graph takes (its manifest entry's: a graph of several
        octaves needs its coarsest to fit the network)."""
        self.model_path = Path(model_path)
        self.steps_per_run = steps_per_run
        self.min_size = min_size
        self.device, self.threads = device, threads
        self.cuda_graph = cuda_graph
        self._slots: dict[tuple[int, ...], _FrameSlot] = {}
        probe_side = max(PROBE_SIDE, min_size)
        probe = self._open((probe_side, probe_side), (8, 8))
        self.provider = provider_of(probe)
        self.objective = objective or objective_inputs_of(probe)

    def _open(self, size: tuple[int, int], flow_size: tuple[int, int]) -> ort.InferenceSession:
        dims = dict(zip(("height", "width", "flow_height", "flow_width"), (*size, *flow_size)))
        cuda_options = {"enable_cuda_graph": "1"} if self.cuda_graph else None
        return open_fixed_size_session(self.model_path, self.device, self.threads, dims, cuda_options)

    def reset(self) -> None:
        """Forget every carried detail (a cut, a new source)."""
        for slot in self._slots.values():
            slot.clear()

    def dream_frame(
        self, frame_rgb: np.ndarray, flow: np.ndarray, confidence: np.ndarray, feedback: np.ndarray, decay: float,
        step_size: float, mask: np.ndarray, shown_rgb: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        """`frame_rgb` (H, W, 3) uint8 dreamed; flow (h, w, 2) in dream pixels, its confidence
        and the visitor mask (h, w); feedback (2, 3); `shown_rgb` the full-size frame
        `frame_rgb` was shrunk from.

        Returns (picture, loss): the dream (H, W, 3) uint8, or when `shown_rgb` has more pixels,
        `shown_rgb` plus the upscaled dream detail, made on the device by the shipped sharpen
        graph (only the full frame travels in and out, no host resize). The detail carried
        from the previous call of this size is warped by `flow` and `feedback` and scaled by
        `decay`.
        """
        key = (*frame_rgb.shape[:2], *flow.shape[:2])
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= MAX_CACHED_SIZES:
                self._slots.pop(next(iter(self._slots)))
            session = self._open(frame_rgb.shape[:2], flow.shape[:2])
            device = VALUE_DEVICES[self.provider]
            slot = self._slots[key] = _FrameSlot(session, frame_rgb.shape, flow.shape, device, self.cuda_graph,
                                                 self.objective)
        dream, loss = slot.run(frame_rgb, flow, confidence, feedback, decay, step_size, mask)
        if shown_rgb is None or not shown_larger(shown_rgb, frame_rgb):
            return dream.numpy(), loss
        return slot.sharpened(shown_rgb, self._open_sharpen), loss

    def _open_sharpen(self, size: tuple[int, int], shown_size: tuple[int, int]) -> ort.InferenceSession:
        dims = dict(zip(("height", "width", "shown_height", "shown_width"), (*size, *shown_size)))
        return open_fixed_size_session(SHARPEN_GRAPH, self.device, self.threads, dims, None)


class _FrameSlot:
    """One size's session, device buffers and the two bindings (detail A→B, B→A)."""

    def __init__(self, session: ort.InferenceSession, frame_shape: tuple[int, ...],
                 flow_shape: tuple[int, ...], device: str, cuda_graph: bool, objective: ObjectiveInputs) -> None:
        def device_array(shape: tuple[int, ...], dtype: type = np.float32) -> ort.OrtValue:
            return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, device, 0)

        height, width = frame_shape[:2]
        self.session = session
        self.frame = device_array(frame_shape, np.uint8)
        self.dream = device_array(frame_shape, np.uint8)
        self.flow = device_array(flow_shape)
        self.confidence = device_array(flow_shape[:2])
        self.mask = device_array(flow_shape[:2])
        self.feedback, self.decay, self.step_size, self.loss = (
            device_array((2, 3)), device_array(()), device_array(()), device_array(())
        )
        self.details = [device_array((1, 3, height, width)) for _ in range(2)]
        self.objective = _DeviceObjective(objective, device)
        self.bindings, self.run_options = [], []
        for index, (source, target) in enumerate(((0, 1), (1, 0))):
            binding = session.io_binding()
            for name, value in (("frame", self.frame), ("detail", self.details[source]), ("flow", self.flow),
                                ("confidence", self.confidence), ("feedback", self.feedback), ("decay", self.decay),
                                ("step_size", self.step_size), (MASK_INPUT, self.mask)):
                binding.bind_ortvalue_input(name, value)
            self.objective.bind(binding)
            for name, value in (("dream", self.dream), ("detail_out", self.details[target]), ("loss", self.loss)):
                binding.bind_ortvalue_output(name, value)
            options = ort.RunOptions()
            if cuda_graph:
                options.add_run_config_entry("gpu_graph_id", str(index + 1))
            self.bindings.append(binding)
            self.run_options.append(options)
        self.parity = 0
        self._sharp: _SharpBinding | None = None  # one full size at a time
        if cuda_graph:  # the first runs capture the two graphs; their outputs are discarded
            for binding, options in zip(self.bindings, self.run_options):
                session.run_with_iobinding(binding, options)
        self.clear()

    def clear(self) -> None:
        zeros = np.zeros(self.details[0].shape(), np.float32)
        for detail in self.details:
            detail.update_inplace(zeros)  # never warp uninitialised memory: NaN * 0 is NaN

    def run(self, frame_rgb: np.ndarray, flow: np.ndarray, confidence: np.ndarray, feedback: np.ndarray,
            decay: float, step_size: float, mask: np.ndarray) -> tuple[np.ndarray, float]:
        self.frame.update_inplace(np.ascontiguousarray(frame_rgb))
        self.flow.update_inplace(np.ascontiguousarray(flow, np.float32))
        self.confidence.update_inplace(np.ascontiguousarray(confidence, np.float32))
        self.mask.update_inplace(_sized(mask, self.mask.shape()))
        self.feedback.update_inplace(np.ascontiguousarray(feedback, np.float32))
        self.decay.update_inplace(np.asarray(decay, np.float32))
        self.step_size.update_inplace(np.asarray(step_size, np.float32))
        self.objective.refresh()
        self.session.run_with_iobinding(self.bindings[self.parity], self.run_options[self.parity])
        self.parity ^= 1
        return self.dream, float(self.loss.numpy())

    def sharpened(self, shown_rgb: np.ndarray, open_sharpen: Callable[[tuple[int, int], tuple[int, int]], ort.InferenceSession]
                  ) -> np.ndarray:
        """The last dream's detail, upscaled and added to `shown_rgb` on the device."""
        if self._sharp is None or self._sharp.shown.shape != shown_rgb.shape:  # a new source replaces the old
            session = open_sharpen(self.frame.shape()[:2], shown_rgb.shape[:2])
            self._sharp = _SharpBinding(session, self.dream, self.frame, shown_rgb.shape)
        return self._sharp.run(shown_rgb)


class _SharpBinding:
    """The sharpen graph bound to a frame slot's dream and frame buffers (on the device) and to
    a host buffer for the picture: ORT copies the full frame in and the picture out itself,
    so a frame allocates nothing."""

    def __init__(self, session: ort.InferenceSession, dream: ort.OrtValue, base: ort.OrtValue,
                 shown_shape: tuple[int, ...]) -> None:
        self.session = session
        self.shown = np.empty(shown_shape, np.uint8)
        self._shown_value = ort.OrtValue.ortvalue_from_numpy(self.shown)  # kept alive: the binding points at it
        self.binding = session.io_binding()
        self.binding.bind_ortvalue_input("dream", dream)
        self.binding.bind_ortvalue_input("base", base)
        self.binding.bind_ortvalue_output("shown", self._shown_value)

    def run(self, shown_rgb: np.ndarray) -> np.ndarray:
        self.binding.bind_cpu_input("frame", np.ascontiguousarray(shown_rgb))  # wraps, copies nothing
        self.session.run_with_iobinding(self.binding)
        return self.shown
