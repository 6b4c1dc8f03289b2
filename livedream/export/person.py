"""The person model: MediaPipe's selfie segmentation (landscape), TFLite → ONNX.

MediaPipe ships the model only as TFLite, inside the `mediapipe==0.10.21` wheel (later releases
ship none); the runtime must not need mediapipe or a TFLite interpreter, and `tflite2onnx` /
`tf2onnx` fail on two of its eleven op kinds (HARD_SWISH, and MediaPipe's custom
`Convolution2DTransposeBias`). So this small converter reads the flatbuffer with the `tflite`
package and writes the same network with `onnx.helper`, in NCHW: one ONNX node (or two) per
TFLite op, weights dequantised from float16 exactly as TFLite's DEQUANTIZE does.

It is a build step, run by hand when the model changes; its result ships built
(`livedream/assets/person.onnx`, with `person.LICENSE`, Apache-2.0) and the runtime checks its
sha256 (`manifest.PERSON_SHA256`):

    pip download --no-deps mediapipe==0.10.21 --python-version 3.11 --only-binary=:all: \
        --platform manylinux_2_28_x86_64 -d /tmp/mp
    pip install tflite onnx ai-edge-litert
    python -m livedream.export.person /tmp/mp/mediapipe-0.10.21-*.whl \
        [--reference tests/data/person_reference.npz livedream/assets/sample.jpg]  # needs ai-edge-litert

The interface is the TFLite model's own: `input_1` (1, 144, 256, 3) float32 RGB in 0..1, NHWC;
`segment_back` (1, 144, 256, 1) float32, the chance that each pixel is a person.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from livedream.errors import UserError
from livedream.manifest import PERSON_GRAPH

OPSET = 17  # HardSwish needs 14; ReduceMean still takes its axes as an attribute here
MEDIAPIPE_WHEEL = "mediapipe==0.10.21"
WHEEL_MODEL = "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite"
WHEEL_LICENSE = "mediapipe-0.10.21.dist-info/LICENSE"
LICENSE_HEADER = """\
livedream/assets/person.onnx is MediaPipe's selfie segmentation model (landscape),
selfie_segmentation_landscape.tflite from the mediapipe 0.10.21 wheel, by the MediaPipe Authors
(https://github.com/google/mediapipe). LiveDream converted it from TFLite to ONNX
(livedream/export/person.py): the same layers and weights in another file format; nothing else
was changed. It is distributed under the Apache License 2.0, whose text follows.

"""
# TFLite's fused activations (ActivationFunctionType) and paddings (Padding; the custom op's
# TfLitePadding counts from 1), as ONNX sees them.
FUSED = {0: None, 1: "Relu"}
SAME, VALID = 0, 1
CUSTOM_SAME = 1
DOC_STRING = "MediaPipe selfie segmentation (landscape), Apache-2.0; see person.LICENSE"  # in the file: its hash


class _Converter:
    """Walks the TFLite subgraph in order, naming each ONNX value after its TFLite tensor."""

    def __init__(self, model: Any) -> None:
        import tflite

        self.tflite = tflite
        self.model = model
        self.graph = model.Subgraphs(0)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.constants: dict[int, np.ndarray] = {}  # TFLite tensor index → its value (NHWC)
        self.op_names = {value: name for name, value in vars(tflite.BuiltinOperator).items()
                         if not name.startswith("_")}

    # --- tensors ------------------------------------------------------------------------

    def shape(self, index: int) -> list[int]:
        return [int(n) for n in self.graph.Tensors(index).ShapeAsNumpy()]

    def stored(self, index: int) -> np.ndarray:
        """A constant tensor's value from its buffer (the flatbuffer holds them little-endian)."""
        tensor = self.graph.Tensors(index)
        kinds = {self.tflite.TensorType.FLOAT32: "<f4", self.tflite.TensorType.FLOAT16: "<f2",
                 self.tflite.TensorType.INT32: "<i4"}
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        return np.frombuffer(data.tobytes(), kinds[tensor.Type()]).reshape(self.shape(index))

    def constant(self, index: int) -> np.ndarray:
        if index not in self.constants:
            self.constants[index] = self.stored(index)
        return self.constants[index]

    def name(self, index: int) -> str:
        return f"t{index}"

    def initializer(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, kind: str, inputs: list[str], outputs: list[str], **attributes: Any) -> None:
        self.nodes.append(helper.make_node(kind, inputs, outputs, **attributes))

    def activated(self, kind: str, inputs: list[str], output: int, fused: int, **attributes: Any) -> None:
        """`kind` writing TFLite tensor `output`, then its fused activation (NONE or RELU here)."""
        if fused not in FUSED:
            raise ValueError(f"fused activation {fused} is not converted")
        if FUSED[fused] is None:
            self.node(kind, inputs, [self.name(output)], **attributes)
            return
        self.node(kind, inputs, [self.name(output) + "_raw"], **attributes)
        self.node(FUSED[fused], [self.name(output) + "_raw"], [self.name(output)])

    def operand(self, index: int) -> str:
        """An elementwise op's input: a value, or a constant laid out NCHW-broadcastable."""
        if index not in self.constants and not self.model.Buffers(self.graph.Tensors(index).Buffer()).DataLength():
            return self.name(index)  # computed by an earlier op
        value = self.constant(index).astype(np.float32)
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        elif value.ndim == 1 and value.size > 1:
            value = value.reshape(1, -1, 1, 1)
        return self.initializer(self.name(index), value)

    # --- padding --------------------------------------------------------------------------

    @staticmethod
    def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
        """TensorFlow's SAME padding along one axis: the odd pixel goes after."""
        out = -(-size // stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def pads(self, padding: int, input_shape: list[int], kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int] = (1, 1)) -> list[int]:
        if padding == VALID:
            return [0, 0, 0, 0]
        top, bottom = self.same_pads(input_shape[1], kernel[0], stride[0], dilation[0])
        left, right = self.same_pads(input_shape[2], kernel[1], stride[1], dilation[1])
        return [top, left, bottom, right]

    # --- ops ------------------------------------------------------------------------------

    def options(self, op: Any, kind: type) -> Any:
        table = op.BuiltinOptions()
        options = kind()
        options.Init(table.Bytes, table.Pos)
        return options

    def convert(self) -> None:
        handlers: dict[str, Callable[[Any, list[int], list[int]], None]] = {
            "DEQUANTIZE": self.dequantize, "CONV_2D": self.conv, "DEPTHWISE_CONV_2D": self.depthwise,
            "HARD_SWISH": self.unary("HardSwish"), "RELU": self.unary("Relu"), "LOGISTIC": self.unary("Sigmoid"),
            "AVERAGE_POOL_2D": self.average_pool, "MEAN": self.mean, "ADD": self.elementwise("Add"),
            "MUL": self.elementwise("Mul"), "RESIZE_BILINEAR": self.resize,
            "Convolution2DTransposeBias": self.transpose_conv_bias,
        }
        for position in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(position)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            custom = code.CustomCode()
            kind = custom.decode() if custom else self.op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            if kind not in handlers:
                raise ValueError(f"TFLite op {kind} (operator {position}) is not converted")
            inputs = [int(i) for i in op.InputsAsNumpy()]
            outputs = [int(i) for i in op.OutputsAsNumpy()]
            handlers[kind](op, inputs, outputs)

    def dequantize(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        self.constants[outputs[0]] = self.constant(inputs[0]).astype(np.float32)  # float16 → float32 is exact

    def conv(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        options = self.options(op, self.tflite.Conv2DOptions)
        weights = self.constant(inputs[1])  # (O, kh, kw, I)
        kernel = weights.shape[1:3]
        stride = (options.StrideH(), options.StrideW())
        dilation = (options.DilationHFactor(), options.DilationWFactor())
        names = [self.name(inputs[0]), self.initializer(self.name(inputs[1]), weights.transpose(0, 3, 1, 2))]
        if len(inputs) > 2 and inputs[2] >= 0:
            names.append(self.initializer(self.name(inputs[2]), self.constant(inputs[2])))
        self.activated("Conv", names, outputs[0], options.FusedActivationFunction(), kernel_shape=list(kernel),
                       strides=list(stride), dilations=list(dilation),
                       pads=self.pads(options.Padding(), self.shape(inputs[0]), kernel, stride, dilation))

    def depthwise(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        options = self.options(op, self.tflite.DepthwiseConv2DOptions)
        weights = self.constant(inputs[1])  # (1, kh, kw, C · multiplier)
        channels = self.shape(inputs[0])[3]
        kernel = weights.shape[1:3]
        stride = (options.StrideH(), options.StrideW())
        dilation = (options.DilationHFactor(), options.DilationWFactor())
        names = [self.name(inputs[0]), self.initializer(self.name(inputs[1]), weights.transpose(3, 0, 1, 2)),
                 self.initializer(self.name(inputs[2]), self.constant(inputs[2]))]
        self.activated("Conv", names, outputs[0], options.FusedActivationFunction(), group=channels,
                       kernel_shape=list(kernel), strides=list(stride), dilations=list(dilation),
                       pads=self.pads(options.Padding(), self.shape(inputs[0]), kernel, stride, dilation))

    def unary(self, kind: str) -> Callable[[Any, list[int], list[int]], None]:
        return lambda op, inputs, outputs: self.node(kind, [self.name(inputs[0])], [self.name(outputs[0])])

    def elementwise(self, kind: str) -> Callable[[Any, list[int], list[int]], None]:
        options_kind = self.tflite.AddOptions if kind == "Add" else self.tflite.MulOptions

        def convert(op: Any, inputs: list[int], outputs: list[int]) -> None:
            fused = self.options(op, options_kind).FusedActivationFunction() if op.BuiltinOptions() else 0
            self.activated(kind, [self.operand(i) for i in inputs], outputs[0], fused)
        return convert

    def average_pool(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        options = self.options(op, self.tflite.Pool2DOptions)
        kernel, stride = (options.FilterHeight(), options.FilterWidth()), (options.StrideH(), options.StrideW())
        # TFLite averages over the pixels inside the picture only: count_include_pad = 0.
        self.activated("AveragePool", [self.name(inputs[0])], outputs[0], options.FusedActivationFunction(),
                       kernel_shape=list(kernel), strides=list(stride), count_include_pad=0,
                       pads=self.pads(options.Padding(), self.shape(inputs[0]), kernel, stride))

    def mean(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        axes = [int(a) % 4 for a in self.constant(inputs[1]).ravel()]
        if sorted(axes) != [1, 2] or not self.options(op, self.tflite.ReducerOptions).KeepDims():
            raise ValueError(f"MEAN over axes {axes} without keep_dims is not converted")
        self.node("ReduceMean", [self.name(inputs[0])], [self.name(outputs[0])], axes=[2, 3], keepdims=1)

    def resize(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        options = self.options(op, self.tflite.ResizeBilinearOptions)
        height, width = (int(n) for n in self.constant(inputs[1]))
        channels = self.shape(inputs[0])[3]
        mode = ("align_corners" if options.AlignCorners() else
                "half_pixel" if options.HalfPixelCenters() else "asymmetric")
        sizes = self.initializer(self.name(inputs[1]), np.array([1, channels, height, width], np.int64))
        self.node("Resize", [self.name(inputs[0]), "", "", sizes], [self.name(outputs[0])], mode="linear",
                  coordinate_transformation_mode=mode)

    def transpose_conv_bias(self, op: Any, inputs: list[int], outputs: list[int]) -> None:
        """MediaPipe's transposed convolution with a bias (mediapipe/util/tflite/operations/
        transpose_conv_bias.cc): weights (O, kh, kw, I); SAME pads max(0, k − (n − 1) % s − 1)
        in all, half of it (rounded down) before."""
        padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes()[:12], "<i4")
        weights = self.constant(inputs[1])
        kernel = weights.shape[1:3]
        _, height, width, _ = self.shape(inputs[0])
        pads = [0, 0, 0, 0]
        if padding == CUSTOM_SAME:
            total_h = max(0, kernel[0] - (height - 1) % stride_h - 1)
            total_w = max(0, kernel[1] - (width - 1) % stride_w - 1)
            pads = [total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2]
        names = [self.name(inputs[0]), self.initializer(self.name(inputs[1]), weights.transpose(3, 0, 1, 2)),
                 self.initializer(self.name(inputs[2]), self.constant(inputs[2]))]
        self.node("ConvTranspose", names, [self.name(outputs[0])], kernel_shape=list(kernel),
                  strides=[int(stride_h), int(stride_w)], pads=pads)

    # --- the whole graph -----------------------------------------------------------------

    def onnx_model(self) -> onnx.ModelProto:
        self.convert()
        (source,), (result,) = self.graph.InputsAsNumpy(), self.graph.OutputsAsNumpy()
        input_name = self.graph.Tensors(source).Name().decode()
        output_name = self.graph.Tensors(result).Name().decode()
        # NHWC in and out as the TFLite model has them; NCHW inside.
        self.nodes.insert(0, helper.make_node("Transpose", [input_name], [self.name(source)], perm=[0, 3, 1, 2]))
        self.node("Transpose", [self.name(result)], [output_name], perm=[0, 2, 3, 1])
        graph = helper.make_graph(
            self.nodes, "mediapipe-selfie-segmentation-landscape",
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, self.shape(source))],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, self.shape(result))],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="livedream",
                                  doc_string=DOC_STRING)
        model.ir_version = 8  # what every onnxruntime since 1.14 reads
        onnx.checker.check_model(model, full_check=True)
        return model


def convert(tflite_bytes: bytes) -> onnx.ModelProto:
    """The ONNX model of a selfie segmentation TFLite flatbuffer."""
    try:
        import tflite
    except ImportError:
        raise UserError("converting the person model needs the `tflite` package: pip install tflite onnx") from None
    return _Converter(tflite.Model.GetRootAsModel(tflite_bytes, 0)).onnx_model()


def read_wheel(wheel: Path) -> tuple[bytes, str]:
    """The landscape model and the licence text from the mediapipe wheel (a zip)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(WHEEL_MODEL), archive.read(WHEEL_LICENSE).decode()
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(f"{wheel} is not the {MEDIAPIPE_WHEEL} wheel ({error}); "
                        f"pip download --no-deps {MEDIAPIPE_WHEEL} --only-binary=:all: -d DIR") from None


def write_asset(wheel: Path, path: Path = PERSON_GRAPH) -> Path:
    """The converted model and its licence notice beside it (`person.LICENSE`)."""
    model_bytes, licence = read_wheel(wheel)
    onnx.save(convert(model_bytes), str(path))
    path.with_suffix(".LICENSE").write_text(LICENSE_HEADER + licence)
    return path


def write_reference(wheel: Path, picture_rgb: np.ndarray, path: Path) -> Path:
    """What the TFLite model itself answers for `picture_rgb` (stretched to its input as the
    runtime does): `input` (1, 144, 256, 3) uint8 and `output` (1, 144, 256, 1) float32, saved
    for the test that holds the shipped ONNX to it. Needs `ai-edge-litert` (its XNNPACK
    delegate runs MediaPipe's custom op)."""
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    model_bytes, _ = read_wheel(wheel)
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    height, width = source["shape"][1:3]
    picture = cv2.resize(picture_rgb, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)[None]
    interpreter.set_tensor(source["index"], picture.astype(np.float32) / np.float32(255.0))
    interpreter.invoke()
    np.savez_compressed(path, input=picture, output=interpreter.get_tensor(result["index"]))
    return path


def main(argv: list[str]) -> int:
    """`python -m livedream.export.person WHEEL [--reference OUT.npz PICTURE]`: the asset, and the
    test's reference (tests/data/person_reference.npz from livedream/assets/sample.jpg, a portrait)."""
    from livedream.files import file_digest
    from livedream.media.pictures import read_image

    if len(argv) not in (1, 4) or (len(argv) == 4 and argv[1] != "--reference"):
        print(f"usage: python -m livedream.export.person {MEDIAPIPE_WHEEL.replace('==', '-')}-…whl "
              "[--reference OUT.npz PICTURE]")
        return 2
    written = write_asset(Path(argv[0]))
    print(f"{written}: sha256 {file_digest(written)} (manifest.PERSON_SHA256 must say so)")
    if len(argv) == 4:
        print(write_reference(Path(argv[0]), read_image(Path(argv[3])), Path(argv[2])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
