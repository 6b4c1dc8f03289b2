"""InceptionV3 in plain PyTorch, laid out like torchvision's `models/inception.py`.

Attribute names equal torchvision's checkpoint keys (`Mixed_5b.branch1x1.conv.weight`),
so its `inception_v3_google` file loads with `load_state_dict`; the other weight formats
are mapped onto these names in `weights.py`.

Each block describes its wiring once, as a small tree of `Seq` / `Concat` / pools over its
own sub-modules (`layout()`). `forward` evaluates that tree, and the hand-written backward
(`backward.py`) walks the same tree, so the two cannot drift apart.

Input: RGB scaled to [-1, 1], N x 3 x H x W, as the TensorFlow tutorial feeds Google's
weights. Only the stages up to the deepest requested layer are built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

# Keras `inception_v3` layer names → torchvision stage names. The TF tutorial's mixed3 and
# mixed5 (its default dream layers) are Mixed_6a and Mixed_6c.
KERAS_ALIASES: dict[str, str] = {
    "mixed0": "Mixed_5b",
    "mixed1": "Mixed_5c",
    "mixed2": "Mixed_5d",
    "mixed3": "Mixed_6a",
    "mixed4": "Mixed_6b",
    "mixed5": "Mixed_6c",
    "mixed6": "Mixed_6d",
    "mixed7": "Mixed_6e",
    "mixed8": "Mixed_7a",
    "mixed9": "Mixed_7b",
    "mixed10": "Mixed_7c",
}

DEFAULT_LAYERS: tuple[str, ...] = ("mixed3", "mixed5")

# Smallest square input that still leaves every stage with at least one pixel.
MIN_INPUT_SIZE = 75


@dataclass(frozen=True)
class Variant:
    """The two places where published InceptionV3 weights disagree on the pools.

    `pool_include_pad`: the 3x3/1 average pools count the zero padding (torchvision) or
    divide by the real window size (TensorFlow 2015 graph, Keras).
    `last_pool`: the pool branch of Mixed_7c / mixed10 (max in the TF 2015 graph).
    """

    pool_include_pad: bool
    last_pool: str  # "avg" or "max"
    name: str = field(default="custom", compare=False)  # as the manifest records it


TORCHVISION = Variant(pool_include_pad=True, last_pool="avg", name="torchvision")
TF2015 = Variant(pool_include_pad=False, last_pool="max", name="tf2015")
KERAS = Variant(pool_include_pad=False, last_pool="avg", name="keras")


# ---- the wiring vocabulary ------------------------------------------------------------


@dataclass(frozen=True)
class MaxPool:
    stride: int
    padding: int = 0


@dataclass(frozen=True)
class AvgPool:
    """3x3 average pool, stride 1, padding 1."""

    include_pad: bool


@dataclass(frozen=True)
class Seq:
    parts: tuple["Node", ...]


@dataclass(frozen=True)
class Concat:
    """Branches fed the same input, concatenated along channels."""

    branches: tuple["Node", ...]


Node = Union["BasicConv2d", MaxPool, AvgPool, Seq, Concat]


def seq(*parts: "Node") -> Seq:
    return Seq(tuple(parts))


def concat(*branches: "Node") -> Concat:
    return Concat(tuple(branches))


def evaluate(node: Node, x: torch.Tensor) -> torch.Tensor:
    """Forward pass of a wiring tree (autograd-friendly: the reference implementation)."""
    if isinstance(node, Seq):
        for part in node.parts:
            x = evaluate(part, x)
        return x
    if isinstance(node, Concat):
        return torch.cat([evaluate(branch, x) for branch in node.branches], 1)
    if isinstance(node, MaxPool):
        return F.max_pool2d(x, 3, node.stride, node.padding)
    if isinstance(node, AvgPool):
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=node.include_pad)
    return node(x)


# ---- blocks -----------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Conv without bias, batch norm (eps 0.001), ReLU: InceptionV3's only learned unit."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Block(nn.Module):
    def layout(self) -> Node:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return evaluate(self.layout(), x)


class InceptionA(Block):
    def __init__(self, in_channels: int, pool_features: int, variant: Variant) -> None:
        super().__init__()
        self.include_pad = variant.pool_include_pad
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def layout(self) -> Node:
        return concat(
            self.branch1x1,
            seq(self.branch5x5_1, self.branch5x5_2),
            seq(self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            seq(AvgPool(self.include_pad), self.branch_pool),
        )


class InceptionB(Block):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def layout(self) -> Node:
        return concat(
            self.branch3x3,
            seq(self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            MaxPool(stride=2),
        )


class InceptionC(Block):
    def __init__(self, in_channels: int, channels_7x7: int, variant: Variant) -> None:
        super().__init__()
        c7 = channels_7x7
        self.include_pad = variant.pool_include_pad
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def layout(self) -> Node:
        return concat(
            self.branch1x1,
            seq(self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            seq(
                self.branch7x7dbl_1,
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ),
            seq(AvgPool(self.include_pad), self.branch_pool),
        )


class InceptionD(Block):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def layout(self) -> Node:
        return concat(
            seq(self.branch3x3_1, self.branch3x3_2),
            seq(self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4),
            MaxPool(stride=2),
        )


class InceptionE(Block):
    def __init__(self, in_channels: int, variant: Variant, last: bool) -> None:
        super().__init__()
        self.include_pad = variant.pool_include_pad
        self.max_pool_branch = last and variant.last_pool == "max"
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def layout(self) -> Node:
        pool = MaxPool(stride=1, padding=1) if self.max_pool_branch else AvgPool(self.include_pad)
        return concat(
            self.branch1x1,
            seq(self.branch3x3_1, concat(self.branch3x3_2a, self.branch3x3_2b)),
            seq(
                self.branch3x3dbl_1,
                self.branch3x3dbl_2,
                concat(self.branch3x3dbl_3a, self.branch3x3dbl_3b),
            ),
            seq(pool, self.branch_pool),
        )


# ---- the trunk --------------------------------------------------------------------------

STAGE_NAMES: tuple[str, ...] = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "maxpool1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "maxpool2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)

# Each stage's output channels (the shape comments of `_make_stage`).
STAGE_CHANNELS: dict[str, int] = {
    "Conv2d_1a_3x3": 32, "Conv2d_2a_3x3": 32, "Conv2d_2b_3x3": 64, "maxpool1": 64, "Conv2d_3b_1x1": 80,
    "Conv2d_4a_3x3": 192, "maxpool2": 192, "Mixed_5b": 256, "Mixed_5c": 288, "Mixed_5d": 288,
    "Mixed_6a": 768, "Mixed_6b": 768, "Mixed_6c": 768, "Mixed_6d": 768, "Mixed_6e": 768,
    "Mixed_7a": 1280, "Mixed_7b": 2048, "Mixed_7c": 2048,
}

# Layers a dream may target: every learned stage (pools add nothing to dream on).
LAYER_NAMES: tuple[str, ...] = tuple(n for n in STAGE_NAMES if not n.startswith("maxpool"))


def canonical_layer(name: str) -> str:
    """Map a Keras or torchvision layer name to the torchvision stage name, or raise."""
    stage = KERAS_ALIASES.get(name, name)
    if stage not in LAYER_NAMES:
        allowed = ", ".join(list(KERAS_ALIASES) + list(LAYER_NAMES))
        raise ValueError(f"unknown layer {name!r}; choose from: {allowed}")
    return stage


def _make_stage(name: str, variant: Variant) -> nn.Module | MaxPool:
    builders = {
        # N x 3 x 299 x 299
        "Conv2d_1a_3x3": lambda: BasicConv2d(3, 32, kernel_size=3, stride=2),  # 32 x 149²
        "Conv2d_2a_3x3": lambda: BasicConv2d(32, 32, kernel_size=3),  # 32 x 147²
        "Conv2d_2b_3x3": lambda: BasicConv2d(32, 64, kernel_size=3, padding=1),  # 64 x 147²
        "maxpool1": lambda: MaxPool(stride=2),  # 64 x 73²
        "Conv2d_3b_1x1": lambda: BasicConv2d(64, 80, kernel_size=1),  # 80 x 73²
        "Conv2d_4a_3x3": lambda: BasicConv2d(80, 192, kernel_size=3),  # 192 x 71²
        "maxpool2": lambda: MaxPool(stride=2),  # 192 x 35²
        "Mixed_5b": lambda: InceptionA(192, 32, variant),  # 256 x 35²
        "Mixed_5c": lambda: InceptionA(256, 64, variant),  # 288 x 35²
        "Mixed_5d": lambda: InceptionA(288, 64, variant),  # 288 x 35²
        "Mixed_6a": lambda: InceptionB(288),  # 768 x 17²
        "Mixed_6b": lambda: InceptionC(768, 128, variant),  # 768 x 17²
        "Mixed_6c": lambda: InceptionC(768, 160, variant),  # 768 x 17²
        "Mixed_6d": lambda: InceptionC(768, 160, variant),  # 768 x 17²
        "Mixed_6e": lambda: InceptionC(768, 192, variant),  # 768 x 17²
        "Mixed_7a": lambda: InceptionD(768),  # 1280 x 8²
        "Mixed_7b": lambda: InceptionE(1280, variant, last=False),  # 2048 x 8²
        "Mixed_7c": lambda: InceptionE(2048, variant, last=True),  # 2048 x 8²
    }
    return builders[name]()


class InceptionV3(nn.Module):
    """The InceptionV3 trunk up to `last_stage`; `forward` returns the requested layers."""

    def __init__(self, variant: Variant = TF2015, last_stage: str = "Mixed_7c") -> None:
        super().__init__()
        self.variant = variant
        self.stage_names = STAGE_NAMES[: STAGE_NAMES.index(last_stage) + 1]
        self.pools: dict[str, MaxPool] = {}
        for name in self.stage_names:
            stage = _make_stage(name, variant)
            if isinstance(stage, MaxPool):
                self.pools[name] = stage
            else:
                self.add_module(name, stage)

    @classmethod
    def for_layers(cls, layers: tuple[str, ...], variant: Variant) -> "InceptionV3":
        stages = [canonical_layer(layer) for layer in layers]
        deepest = max(stages, key=STAGE_NAMES.index)
        return cls(variant, last_stage=deepest)

    def stages(self) -> list[tuple[str, Node]]:
        return [(name, self.pools.get(name) or getattr(self, name)) for name in self.stage_names]

    def forward(self, x: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        wanted = {canonical_layer(layer) for layer in layers}
        outputs: dict[str, torch.Tensor] = {}
        for name, stage in self.stages():
            x = evaluate(stage, x)
            if name in wanted:
                outputs[name] = x
        return outputs


def dream_loss(
    activations: dict[str, torch.Tensor], weights: dict[str, float]
) -> torch.Tensor:
    """The TF tutorial's objective: the weighted sum over layers of each mean activation."""
    return sum(weights[name] * act.mean() for name, act in activations.items())
