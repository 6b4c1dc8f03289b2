"""The DeepDream loss and its gradient, written as ordinary forward ops so it exports to ONNX.

`torch.onnx.export` cannot export a module that calls autograd, so the backward pass is
written by hand over the same wiring trees that `inception.py` evaluates (`layout()`):

- batch norm is folded into each convolution (in float64, then cast);
- conv backward, stride 1: a plain convolution with the transposed, flipped kernel (ORT's
  Conv runs 25-30 % faster than its ConvTranspose);
- conv backward, stride 2: ConvTranspose with the static output_padding stride - 1, then a
  crop to the input's shape (exact, and keeps H and W dynamic);
- ReLU backward: a mask; concat backward: split + sum over branches;
- 3x3 max pool backward: scatter-add at the argmax indices (MaxUnpool would be wrong: the
  windows overlap, so one input can win several windows); the indices' ONNX translation is
  our own (`translations.py`: the stock one pools the whole input a second time). The
  index-free variant (`ComparedMaxPool`, for providers without MaxPool's Indices output or
  int64 arithmetic: WebGPU) finds each window's winner by comparison instead;
- the include-pad 3x3/1 average pool is its own adjoint; the exclude-pad one is not, so
  divide by the window fractions first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from livedream.export.inception import (
    AvgPool,
    BasicConv2d,
    Block,
    Concat,
    InceptionV3,
    STAGE_CHANNELS,
    MaxPool,
    Node,
    Seq,
    canonical_layer,
)
from livedream.manifest import GUIDE_GRID, LAP_LEVELS, LAP_TAPS, LAPLACIAN_NORM, RMS_FLOOR, STD_NORM

Cache = Any
STD_EPSILON = 1e-8  # the tutorial's `gradients /= std + 1e-8`


class FoldedConv(nn.Module):
    """BasicConv2d with its batch norm folded in: relu(conv(x, w) + b), plus its backward."""

    def __init__(self, unit: BasicConv2d, dtype: torch.dtype) -> None:
        super().__init__()
        conv, bn = unit.conv, unit.bn
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = conv.weight.double() * scale[:, None, None, None]
        bias = bn.bias.double() - bn.running_mean.double() * scale
        self.stride = conv.stride
        self.padding = conv.padding
        self.register_buffer("weight", weight.to(dtype))
        self.register_buffer("bias", bias.to(dtype))
        kh, kw = weight.shape[2:]
        self.back_padding = (kh - 1 - self.padding[0], kw - 1 - self.padding[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        # ReLU backward as a 0/1 mask. Measured in ORT's CPU profile at 360x640 (all 50
        # masks): Greater + Cast + Mul 15 ms, Sign + Mul 25 ms, Where 41 ms.
        grad = grad * (y > 0).to(grad.dtype)
        if self.stride == (1, 1):
            # The adjoint of a stride-1 convolution is a convolution with the kernel's
            # in/out channels swapped and its taps flipped. Derived in the graph, not
            # stored: ORT folds it once at load, and the file stays half the size.
            back_weight = self.weight.transpose(0, 1).flip(2, 3)
            return F.conv2d(grad, back_weight, None, 1, self.back_padding)
        full = F.conv_transpose2d(
            grad,
            self.weight,
            None,
            self.stride,
            self.padding,
            output_padding=(self.stride[0] - 1, self.stride[1] - 1),
        )
        return full[:, :, : x.shape[2], : x.shape[3]]


@dataclass(frozen=True)
class ComparedMaxPool:
    """A 3x3 max pool whose backward needs no indices: each of the 9 window taps is compared
    with the pooled maximum, the first tap that equals it (row by row, as torch's argmax and
    so autograd) takes the window's gradient, and one grouped ConvTranspose with one-hot
    kernels puts every tap's share back where it came from (overlapping windows add up).
    Only float compares, multiplies and a convolution: what every GPU provider runs."""

    stride: int
    padding: int = 0

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        s, p = self.stride, self.padding
        padded = F.pad(x, (p, p, p, p), value=float("-inf")) if p else x  # a pad never wins
        out_h, out_w = y.shape[2:]
        taken = torch.zeros_like(y)
        shares = []
        for tap in range(9):
            row, column = divmod(tap, 3)
            window = padded[:, :, row: row + s * (out_h - 1) + 1: s, column: column + s * (out_w - 1) + 1: s]
            wins = (window == y).to(y.dtype) * (1.0 - taken)
            taken = taken + wins
            shares.append(grad * wins)
        channels = x.shape[1]
        stacked = torch.stack(shares, 2).flatten(1, 2)  # (N, C·9, h, w): channel c's 9 taps together
        one_hot = torch.eye(9, dtype=grad.dtype, device=grad.device).view(9, 1, 3, 3).repeat(channels, 1, 1, 1)
        full = F.conv_transpose2d(stacked, one_hot, None, s, 0, output_padding=s - 1, groups=channels)
        return full[:, :, p: p + x.shape[2], p: p + x.shape[3]]


def _window_fraction(like: torch.Tensor) -> torch.Tensor:
    """Share of each 3x3/1 window that lies inside the image (1 inside, 4/9 in corners)."""
    ones = torch.ones_like(like[:1, :1])
    return F.avg_pool2d(ones, 3, 1, 1, count_include_pad=True)


def node_forward(node: Node, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
    """Forward pass that keeps what `node_backward` needs."""
    if isinstance(node, Seq):
        caches = []
        for part in node.parts:
            x, cache = node_forward(part, x)
            caches.append(cache)
        return x, caches
    if isinstance(node, Concat):
        outputs, caches = zip(*(node_forward(branch, x) for branch in node.branches))
        return torch.cat(outputs, 1), (caches, [out.shape[1] for out in outputs])
    if isinstance(node, MaxPool):
        y, indices = F.max_pool2d(x, 3, node.stride, node.padding, return_indices=True)
        return y, (x, indices)
    if isinstance(node, ComparedMaxPool):
        y = F.max_pool2d(x, 3, node.stride, node.padding)
        return y, (x, y)
    if isinstance(node, AvgPool):
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=node.include_pad), None
    y = node(x)
    return y, (x, y)


def node_backward(node: Node, cache: Cache, grad: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. the node's input, given the gradient w.r.t. its output."""
    if isinstance(node, Seq):
        for part, part_cache in zip(reversed(node.parts), reversed(cache)):
            grad = node_backward(part, part_cache, grad)
        return grad
    if isinstance(node, Concat):
        caches, widths = cache
        pieces = torch.split(grad, widths, 1)
        total = None
        for branch, branch_cache, piece in zip(node.branches, caches, pieces):
            branch_grad = node_backward(branch, branch_cache, piece)
            total = branch_grad if total is None else total + branch_grad
        return total
    if isinstance(node, MaxPool):
        x, indices = cache
        # float16 scatter-add has no CPU kernel in ORT (and would round the sums): add in float32.
        sum_dtype = torch.float32 if x.dtype == torch.float16 else x.dtype
        flat = torch.zeros_like(x, dtype=sum_dtype).flatten(2)
        flat = flat.scatter_add(2, indices.flatten(2), grad.flatten(2).to(sum_dtype))
        return flat.view_as(x).to(x.dtype)
    if isinstance(node, AvgPool):
        if not node.include_pad:
            grad = grad / _window_fraction(grad)
        return F.avg_pool2d(grad, 3, 1, 1, count_include_pad=True)
    x, y = cache
    return node.backward(x, y, grad)


def _fold_node(node: Node, folded: dict[int, FoldedConv], index_free: bool) -> Node:
    """The same wiring tree with every BasicConv2d replaced by its FoldedConv (and with
    `index_free` every MaxPool by its ComparedMaxPool)."""
    if isinstance(node, Seq):
        return Seq(tuple(_fold_node(part, folded, index_free) for part in node.parts))
    if isinstance(node, Concat):
        return Concat(tuple(_fold_node(branch, folded, index_free) for branch in node.branches))
    if isinstance(node, BasicConv2d):
        return folded[id(node)]
    if index_free and isinstance(node, MaxPool):
        return ComparedMaxPool(node.stride, node.padding)
    return node


class DreamGradient(nn.Module):
    """(image, objective inputs, mask) → (loss, ascent direction, channel_means, feature_grid),
    with no autograd inside. The objective is an input, so one graph serves every look.

    Per layer l (C_l channels, act at h × w), with m the visitor mask resized to h × w
    (1 = a visitor), region gains (g_room, g_visitors), lw = layer_weights[l]:

        room(p)     = g_room · (1 − m(p)),   visitors(p) = g_visitors · m(p)
        loss_l = lw / C_l · mean_p [ room(p) · Σ_c channel_weights[c] · act[c, p]
                                   + visitors(p) · Σ_c visitor_weights[c] · act[c, p]
                                   + guided(p) · |act[:, p]| · |best(p)| · cos(act[:, p], best(p)) ]
        guided(p)   = room(p) · guide_weights[0, l] + visitors(p) · guide_weights[1, l]

    `channel_weights` (the room's objective) and `visitor_weights` are every layer's vector
    of C_l, concatenated in layer order; all ones and a mask of zeros make a layer's term its
    plain mean (the TF tutorial's objective). `best(p)` is the guide's feature vector that
    matches act[:, p] best among the guide's `guide_features` — every layer's feature map at
    GUIDE_GRID² positions, as `feature_grid` returns them for the guide image, each column
    scaled to one length, so the best dot product is the best cosine. As in Google's DeepDream
    notebook the match is held constant; unlike there, so is |act[:, p]|: the guide term turns
    each place toward its match (`turned_toward`) instead of growing it along the match, which
    mostly grows what the picture has already (measured: README, Guide images).

    The second output is d loss / d image times the pixel gain room + visitors at the image's
    size: the gradient of the masked loss, confined to its region (a deep layer's receptive
    field would spill a visitor's dream ~100 px into the room). With gains (1, 1) it is the
    gradient itself.

    `channel_means` is every layer's per-channel mean activation, concatenated: a guide
    image's features and the channel browser's ranking, from the forward pass that runs
    anyway. `layer_weights` (a dict: the graph's layers → their default weight) fixes which
    layers the graph covers; the defaults are what `forward` uses when no weights are given.
    `index_free`: max pools backward by comparison (`ComparedMaxPool`), for WebGPU.
    """

    def __init__(
        self,
        model: InceptionV3,
        layer_weights: dict[str, float],
        dtype: torch.dtype = torch.float32,
        index_free: bool = False,
    ) -> None:
        super().__init__()
        self.dtype = dtype
        stages_wanted = sorted((canonical_layer(k) for k in layer_weights), key=model.stage_names.index)
        by_stage = {canonical_layer(k): float(v) for k, v in layer_weights.items()}
        self.layers = tuple(stages_wanted)
        self.channels = tuple(STAGE_CHANNELS[name] for name in self.layers)
        self.register_buffer("default_layer_weights", torch.tensor([by_stage[n] for n in self.layers]))
        folded: dict[int, FoldedConv] = {}
        self.convs = nn.ModuleList()
        for unit in model.modules():
            if isinstance(unit, BasicConv2d):
                folded[id(unit)] = FoldedConv(unit, dtype)
                self.convs.append(folded[id(unit)])
        stages = model.stages()[: model.stage_names.index(self.layers[-1]) + 1]
        self.stages = [
            (name, _fold_node(node.layout() if isinstance(node, Block) else node, folded, index_free))
            for name, node in stages
        ]

    def default_inputs(self, like: torch.Tensor) -> "ObjectiveTensors":
        """The plain objective: the default layer weights, every channel 1, no visitor, no guide."""
        total = sum(self.channels)
        # Separate tensors: the exporter would take one tensor passed twice for one input.
        return ObjectiveTensors(self.default_layer_weights.to(like.dtype), like.new_ones(total), like.new_ones(total),
                                like.new_ones(2),
                                like.new_zeros(total, GUIDE_GRID * GUIDE_GRID), like.new_zeros(2, len(self.layers)))

    def forward(
        self, image: torch.Tensor, layer_weights: torch.Tensor | None = None,
        channel_weights: torch.Tensor | None = None, visitor_weights: torch.Tensor | None = None,
        region_gains: torch.Tensor | None = None, guide_features: torch.Tensor | None = None,
        guide_weights: torch.Tensor | None = None, mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positional tensors, in `INPUT_NAMES` order (the exporter takes no dataclass); any
        left out take the plain objective (`default_inputs`) and no mask."""
        given = (layer_weights, channel_weights, visitor_weights, region_gains, guide_features, guide_weights)
        defaults = self.default_inputs(image)
        inputs = ObjectiveTensors(*(d if g is None else g for g, d in zip(given, defaults.as_tuple())))
        mask = image.new_zeros(2, 2) if mask is None else mask
        x = image.to(self.dtype)
        caches = []
        for name, node in self.stages:
            x, cache = node_forward(node, x)
            caches.append((node, cache, x))

        # Per layer, d loss / d act = seed / (h · w). Seeding with seed · reference / (h · w)
        # and dividing by `reference` at the end keeps float16 gradients far above underflow
        # (1 / numel is ~1e-7 at HD sizes, below float16's normal range).
        reference = caches[-1][2].numel()
        room_gain, visitor_gain = inputs.region_gains[0], inputs.region_gains[1]
        room_weights = torch.split(inputs.channel_weights, self.channels)
        visitor_weights = torch.split(inputs.visitor_weights, self.channels)
        guides = torch.split(inputs.guide_features, self.channels)
        seeds: dict[str, torch.Tensor] = {}
        loss = image.new_zeros(())
        means, grids = [], []
        index = 0
        for (name, _), (_, _, output) in zip(self.stages, caches):
            if name not in self.layers:
                continue
            act = output.to(image.dtype)  # the loss is summed in the image's precision
            visitor = _resized(mask, act)
            room = room_gain * (1.0 - visitor)
            visitor = visitor_gain * visitor
            scale = inputs.layer_weights[index] / self.channels[index]
            seed = (room * room_weights[index].view(1, -1, 1, 1) + visitor * visitor_weights[index].view(1, -1, 1, 1))
            best = best_match(act, guides[index])
            guided = room * inputs.guide_weights[0, index] + visitor * inputs.guide_weights[1, index]
            spatial = act.shape[2] * act.shape[3]
            # The guide term's value is act · best; its gradient holds |act| constant.
            loss = loss + ((seed + guided * best) * scale * act).sum() / spatial
            seed = (seed + guided * turned_toward(act, best)) * scale
            means.append(act.mean((2, 3))[0])
            grids.append(F.interpolate(act, size=(GUIDE_GRID, GUIDE_GRID), mode="bilinear",
                                       align_corners=False)[0].flatten(1))
            seeds[name] = (seed * (reference / spatial)).to(output.dtype)
            index += 1
        grad = None
        for (name, _), (node, cache, output) in zip(reversed(self.stages), reversed(caches)):
            if name in seeds:
                grad = seeds[name] if grad is None else grad + seeds[name]
            grad = node_backward(node, cache, grad)
        gain = pixel_gain(mask, inputs.region_gains, image)
        return loss, grad.to(image.dtype) * (gain / reference), torch.cat(means), torch.cat(grids)


@dataclass(frozen=True)
class ObjectiveTensors:
    """The graph's objective inputs (`runtime.objective.ObjectiveInputs` fills them): what the
    room and the visitors dream, the regions' gains and the guide."""

    layer_weights: torch.Tensor  # (L,)
    channel_weights: torch.Tensor  # (ΣC,): the room's objective
    visitor_weights: torch.Tensor  # (ΣC,): the visitors'
    region_gains: torch.Tensor  # (2,): room, visitors
    guide_features: torch.Tensor  # (ΣC, GUIDE_GRID²): the guide's feature grid, each column of length √C_l
    guide_weights: torch.Tensor  # (2, L): each layer's weight of the matched guide term, room and visitors

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.layer_weights, self.channel_weights, self.visitor_weights, self.region_gains,
                self.guide_features, self.guide_weights)




def _resized(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The (h, w) mask at `like`'s spatial size as (1, 1, H, W), bilinear with half-pixel centres."""
    return F.interpolate(mask.to(like.dtype)[None, None], size=(like.shape[2], like.shape[3]),
                         mode="bilinear", align_corners=False)


def pixel_gain(mask: torch.Tensor, region_gains: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """How much of the dream each pixel of `like` (1, C, H, W) takes: g_room where the room is,
    g_visitors on a visitor, blended by the soft mask; (1, 1, H, W)."""
    visitor = _resized(mask, like)
    return region_gains[0] * (1.0 - visitor) + region_gains[1] * visitor


def best_match(act: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """For each position of `act` (1, C, h, w), the column of `guide` (C, M) with the largest
    dot product, as (1, C, h, w); with columns of one length, the best cosine. The argmax is a
    comparison with the row maximum (a tie, which real activations never make, averages its
    columns): no int64 index, so every GPU provider runs it. Matched in float32: a float16 dot
    product over 768 channels overflows."""
    x = act.float()[0].flatten(1)  # (C, hw)
    y = guide.float()
    scores = x.transpose(0, 1) @ y  # (hw, M)
    wins = (scores == scores.amax(1, keepdim=True)).float()
    wins = wins / wins.sum(1, keepdim=True)
    return (y @ wins.transpose(0, 1)).view_as(act).to(act.dtype)


def laplacian_normalised(grad: torch.Tensor) -> torch.Tensor:
    """`grad` (1, C, H, W) split into the Laplacian bands and the low-pass rest of
    `manifest.LAP_LEVELS`' definition, each scaled to RMS 1 over all channels, merged back: the
    host's `pipeline.lapnorm.LaplacianNormaliser` as graph ops (grouped convolutions)."""
    channels = grad.shape[1]
    taps = torch.tensor(LAP_TAPS, dtype=grad.dtype, device=grad.device) / 16.0
    kernel = torch.outer(taps, taps).expand(channels, 1, 5, 5)

    def up(low: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        # The static output_padding 1 gives twice the low level's size; the crop takes the odd sizes'
        # extra row and column off (as FoldedConv.backward does), so H and W stay dynamic.
        full = F.conv_transpose2d(low, kernel * 4.0, None, 2, 2, output_padding=1, groups=channels)
        return full[:, :, : like.shape[2], : like.shape[3]]

    bands = []
    level = grad
    for _ in range(LAP_LEVELS):
        low = F.conv2d(level, kernel, None, 2, 2, groups=channels)
        bands.append(level - up(low, level))
        level = low
    rest = level - level.mean((2, 3), keepdim=True)  # no colour cast (`manifest.LAP_LEVELS`)
    merged = rest / _rms(level)  # at the notebook's scale, its mean included
    for band in reversed(bands):
        merged = up(merged, band) + _unit_rms(band)
    return merged


def _unit_rms(band: torch.Tensor) -> torch.Tensor:
    # A floor, not an added epsilon: the exporter's optimiser deletes an Add of a tiny constant,
    # and a zero gradient (nobody to dream under where = "visitors") must stay zero, not NaN.
    return band / _rms(band)


def _rms(band: torch.Tensor) -> torch.Tensor:
    return band.square().mean().sqrt().clamp_min(RMS_FLOOR)


def turned_toward(act: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """The gradient of |act| · |best| · cos(act, best) at each position of `act` (1, C, h, w)
    with |act| held: `best` less its projection onto act, so the ascent turns each place's
    feature vector toward its match rather than lengthening it. A place of no features takes
    `best` whole. In float32 at least: |act|² over 768 channels overflows float16."""
    dtype = torch.promote_types(act.dtype, torch.float32)
    x, y = act.to(dtype), best.to(dtype)
    # clamp, not + epsilon: the exporter's optimiser deletes an Add of a constant this small.
    along = (x * y).sum(1, keepdim=True) / (x * x).sum(1, keepdim=True).clamp_min(1e-12)
    return (y - along * x).to(act.dtype)


class AscentSteps(nn.Module):
    """`steps` whole DeepDream updates in one graph: (image, step_size) → (image', loss).

    Each update: gradient, (with `gradient_norm` laplacian: `laplacian_normalised`,) divided by
    its population std, times step_size, added, clipped to [-1, 1] — the same update
    `dream.Ascent.step` makes on the host, minus the random roll (a live frame is one tile,
    so there are no seams to hide). On a GPU the image then never leaves the device between
    steps. The returned loss is the first step's.
    """

    def __init__(self, gradient: DreamGradient, steps: int, gradient_norm: str = STD_NORM) -> None:
        super().__init__()
        self.gradient = gradient
        self.steps = steps
        self.gradient_norm = gradient_norm

    def forward(
        self, image: torch.Tensor, step_size: torch.Tensor, layer_weights: torch.Tensor | None = None,
        channel_weights: torch.Tensor | None = None, visitor_weights: torch.Tensor | None = None,
        region_gains: torch.Tensor | None = None, guide_features: torch.Tensor | None = None,
        guide_weights: torch.Tensor | None = None, mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """After `step_size`, the gradient's inputs in its order."""
        inputs = (layer_weights, channel_weights, visitor_weights, region_gains, guide_features, guide_weights, mask)
        first_loss = None
        for _ in range(self.steps):
            loss, grad, _, _ = self.gradient(image, *inputs)
            if self.gradient_norm == LAPLACIAN_NORM:
                grad = laplacian_normalised(grad)
            # step / (std + 1e-8), written as (step / 1e-8) / (std / 1e-8 + 1): the
            # exporter's optimiser deletes an Add of any constant as small as 1e-8, and
            # with gradients of ~1e-9 that epsilon matters.
            scale = (step_size / STD_EPSILON) / (grad.std(correction=0) / STD_EPSILON + 1.0)
            image = (image + grad * scale).clamp(-1.0, 1.0)
            first_loss = loss if first_loss is None else first_loss
        return image, first_loss
