"""ONNX translations of the torch ops whose stock export is slow on ONNX Runtime's CPU.

`max_pool2d(return_indices=True)`: ONNX's MaxPool numbers each index over the whole tensor,
torch's over its own (batch, channel) plane. The stock translation converts with a second,
1x1 MaxPool over the whole input just to read each plane's first index: 7 % of a step at
360x640 on 2 cores for one number per plane, plane · H · W. Here it comes from the shape.

Tried and not kept: an index-free backward (a separable pool; each window's gradient shared
among the inputs equal to its max). In ONNX ops it needs ~20 slices, pads and masks per pool,
which cost what the indices cost (303 against 305 ms a step at 360x640; README, Performance).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from onnxscript import opset18 as op


def max_pool2d_with_indices(
    self: Any,
    kernel_size: Sequence[int],
    stride: Sequence[int] = (),
    padding: Sequence[int] = (0, 0),
    dilation: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
) -> tuple[Any, Any]:
    pool, flat_indices = op.MaxPool(
        self,
        kernel_shape=list(kernel_size),
        strides=list(stride or kernel_size),
        pads=list(padding) * 2,
        dilations=list(dilation),
        ceil_mode=int(ceil_mode),
    )
    batch_channels = op.Shape(self, start=0, end=2)
    planes = op.ReduceProd(batch_channels, keepdims=0)
    plane_size = op.ReduceProd(op.Shape(self, start=2), keepdims=0)
    first = op.Mul(op.Range(op.Constant(value_int=0), planes, op.Constant(value_int=1)), plane_size)
    first = op.Reshape(first, op.Concat(batch_channels, op.Constant(value_ints=[1, 1]), axis=0))
    return pool, op.Sub(flat_indices, first)


TRANSLATIONS: dict[Any, Callable[..., Any]] = {
    torch.ops.aten.max_pool2d_with_indices.default: max_pool2d_with_indices,
}
