"""The "show sharp" graph for the device: the full-size frame plus the upscaled dream detail.

inputs:  `dream` and `base` (h, w, 3) uint8 — the frame graph's dream and the frame it
         dreamed, both already on the device; `frame` (H, W, 3) uint8, the full-size frame.
outputs: `shown` (H, W, 3) uint8 = frame + round(resize(dream − base)), saturated — the host's
         `LiveDreamer._sharpened` (cv2.resize INTER_LINEAR: half-pixel centres) as graph ops.

It has no weights and dynamic sizes, so it ships built (`livedream/assets/sharpen.onnx`,
written by `python -m livedream.export.sharpen`): the runtime needs no `onnx` package.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from livedream.manifest import SHARPEN_GRAPH

OPSET = 18


def sharpen_model() -> onnx.ModelProto:
    def image(name: str, height: str, width: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.UINT8, [height, width, 3])

    def ints(name: str, values: list[int]) -> onnx.TensorProto:
        return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)

    node = helper.make_node
    nodes = [
        node("Cast", ["dream"], ["dream_f"], to=TensorProto.FLOAT),
        node("Cast", ["base"], ["base_f"], to=TensorProto.FLOAT),
        node("Sub", ["dream_f", "base_f"], ["detail"]),
        # Linear Resize runs on NCHW everywhere (ORT's CPU kernel refuses 3-D tensors).
        node("Transpose", ["detail"], ["detail_chw"], perm=[2, 0, 1]),
        node("Unsqueeze", ["detail_chw", "batch_axis"], ["detail_nchw"]),
        node("Shape", ["frame"], ["frame_hw"], start=0, end=2),
        node("Concat", ["one_three", "frame_hw"], ["sizes"], axis=0),
        node("Resize", ["detail_nchw", "", "", "sizes"], ["up_nchw"], mode="linear",
             coordinate_transformation_mode="half_pixel"),
        node("Squeeze", ["up_nchw", "batch_axis"], ["up_chw"]),
        node("Transpose", ["up_chw"], ["up"], perm=[1, 2, 0]),
        # Round half to even as cv2 does, from Floor: WebGPU has no Round kernel.
        # r = floor(x + 0.5) rounds halves up; an odd r on a tie (r - x = 0.5) steps down by 1.
        node("Add", ["up", "half"], ["up_half"]),
        node("Floor", ["up_half"], ["rounded_up"]),
        node("Sub", ["rounded_up", "up"], ["above"]),
        node("Equal", ["above", "half"], ["tie_bool"]),
        node("Cast", ["tie_bool"], ["tie"], to=TensorProto.FLOAT),
        node("Mul", ["rounded_up", "half"], ["halved"]),
        node("Floor", ["halved"], ["halved_down"]),
        node("Add", ["halved_down", "halved_down"], ["even"]),
        node("Sub", ["rounded_up", "even"], ["odd"]),
        node("Mul", ["tie", "odd"], ["step_down"]),
        node("Sub", ["rounded_up", "step_down"], ["up_levels"]),
        node("Cast", ["frame"], ["frame_f"], to=TensorProto.FLOAT),
        node("Add", ["frame_f", "up_levels"], ["sum"]),
        node("Clip", ["sum", "zero", "full"], ["clipped"]),
        node("Cast", ["clipped"], ["shown"], to=TensorProto.UINT8),
    ]
    constants = [
        ints("batch_axis", [0]),
        ints("one_three", [1, 3]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("full", TensorProto.FLOAT, [], [255.0]),
    ]
    graph = helper.make_graph(
        nodes, "livedream-sharpen",
        [image("dream", "height", "width"), image("base", "height", "width"), image("frame", "shown_height", "shown_width")],
        [image("shown", "shown_height", "shown_width")],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="livedream")
    model.ir_version = 8  # what every onnxruntime since 1.14 reads
    onnx.checker.check_model(model, full_check=True)
    return model


def write_asset(path: Path = SHARPEN_GRAPH) -> Path:
    onnx.save(sharpen_model(), str(path))
    return path


if __name__ == "__main__":
    print(write_asset())
