"""One whole live frame as one graph, for the GPU: the frame never round-trips to the host.

inputs:  `frame` (H, W, 3) uint8 RGB at the dream size; `detail` (1, 3, H, W) float32, the
         previous frame's dream detail (stays on the device); `flow` (h, w, 2) float32, the
         backward optical flow on small frames, in dream pixels; `confidence` (h, w) float32,
         how far that flow is trusted (0 where occluded: the detail fades there); `feedback` (2, 3) float32,
         the inverse zoom/rotate/shift matrix; `decay` and `step_size` scalars;
         the objective inputs (`backward.DreamGradient`); `mask` (h, w) float32, the visitors
         at the flow's size (1 = a visitor).
outputs: `dream` (H, W, 3) uint8 RGB; `detail_out` (1, 3, H, W); `loss`.

It is the host path of `dreamer.LiveDreamer` + `coherence.DetailWarper` + `dream.dream`
written as graph ops: warp the detail where the flow says the pixels came from (bilinear, zero
outside, like cv2.remap), decay, add to the frame, clip, K ascent steps, subtract the frame,
round to uint8. The carried detail is kept only as far as the region gains say (`where`):
where the room is not dreamed, the room's carried detail fades too.

With several octaves (baked in: `octaves`, `octave_scale`) it dreams them as the host dreams
them on a carried detail (`dream._dream_on_carried`): coarsest first, each octave starts from the
frame at its size plus the whole detail so far resized there, takes its K steps, and adds what
they changed, resized back up, to the detail. The octave sizes are `manifest.octave_side`'s,
integer arithmetic on the dynamic size, so they equal the host's at every size; a frame smaller
than the coarsest octave allows (`min_side`) is not this graph's (the host skips that octave).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from livedream.export.backward import AscentSteps, pixel_gain
from livedream.export.inception import MIN_INPUT_SIZE
from livedream.manifest import OCTAVE_ONE, octave_factors, octave_side, smallest_side
from livedream.params import CATCH_UP


def warp_detail(detail: torch.Tensor, flow: torch.Tensor, confidence: torch.Tensor, feedback: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """detail sampled at feedback(p) + flow(p) for every pixel p, times the flow's confidence
    there (`DetailWarper`'s map and occlusion fade); and that confidence at the detail's size."""
    height, width = detail.shape[2], detail.shape[3]
    ys = torch.arange(height, dtype=torch.float32, device=detail.device)
    xs = torch.arange(width, dtype=torch.float32, device=detail.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # cv2.resize (INTER_LINEAR) of the small flow = bilinear with half-pixel centres.
    flow_up = F.interpolate(flow.permute(2, 0, 1).unsqueeze(0), size=(height, width),
                            mode="bilinear", align_corners=False)[0]
    trust = F.interpolate(confidence[None, None], size=(height, width), mode="bilinear", align_corners=False)
    source_x = feedback[0, 0] * grid_x + feedback[0, 1] * grid_y + feedback[0, 2] + flow_up[0]
    source_y = feedback[1, 0] * grid_x + feedback[1, 1] * grid_y + feedback[1, 2] + flow_up[1]
    # grid_sample's align_corners=True puts pixel centres 0 and W-1 at -1 and 1.
    grid = torch.stack(
        [source_x * (2.0 / (width - 1)) - 1.0, source_y * (2.0 / (height - 1)) - 1.0], dim=-1
    ).unsqueeze(0)
    return F.grid_sample(detail, grid, mode="bilinear", padding_mode="zeros", align_corners=True) * trust, trust


def _resized(image: torch.Tensor, height: torch.SymInt | int, width: torch.SymInt | int) -> torch.Tensor:
    """`dream.resize` (cv2.resize INTER_LINEAR): bilinear with half-pixel centres, no antialiasing."""
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False)


class FrameDream(nn.Module):
    def __init__(self, ascent: AscentSteps, octaves: int = 1, octave_scale: float = 1.0) -> None:
        super().__init__()
        self.ascent = ascent
        self.factors = octave_factors(octaves, octave_scale)

    @property
    def min_side(self) -> int:
        """The smallest frame side whose coarsest octave the network still takes."""
        return smallest_side(MIN_INPUT_SIZE, self.factors[0])

    def forward(
        self,
        frame: torch.Tensor,
        detail: torch.Tensor,
        flow: torch.Tensor,
        confidence: torch.Tensor,
        feedback: torch.Tensor,
        decay: torch.Tensor,
        step_size: torch.Tensor,
        layer_weights: torch.Tensor | None = None,
        channel_weights: torch.Tensor | None = None,
        visitor_weights: torch.Tensor | None = None,
        region_gains: torch.Tensor | None = None,
        guide_features: torch.Tensor | None = None,
        guide_weights: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Cast first: WebGPU reshapes no uint8 tensor (its Unsqueeze would fall back to the CPU).
        base = frame.to(torch.float32).permute(2, 0, 1).unsqueeze(0) * (1.0 / 127.5) - 1.0
        carried, trust = warp_detail(detail, flow, confidence, feedback)
        carried = carried * decay
        if region_gains is not None and mask is not None:
            carried = carried * pixel_gain(mask, region_gains, base)
        objective = (layer_weights, channel_weights, visitor_weights, region_gains, guide_features, guide_weights)
        image, loss = self._octaves(base, carried, step_size, *objective, mask)
        # `LiveDreamer._catch_up`: where nothing was carried the fresh steps count CATCH_UP times.
        carrying = (decay > 0).to(image.dtype)  # the host path skips it when nothing is carried
        image = image + (image - base - carried) * ((CATCH_UP - 1.0) * (1.0 - trust) * carrying)
        dreamed = ((image + 1.0) * 127.5 + 0.5).floor().clamp(0.0, 255.0)
        return dreamed.to(torch.uint8)[0].permute(1, 2, 0), image - base, loss

    def _octaves(self, base: torch.Tensor, carried: torch.Tensor, step_size: torch.Tensor, *inputs: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The dreamed image at the frame's size and the last octave's loss (`dream.dream`)."""
        if len(self.factors) == 1:  # one octave: the steps go on from the clipped start, as on the host
            return self.ascent((base + carried).clamp(-1.0, 1.0), step_size, *inputs)
        height, width = base.shape[2], base.shape[3]
        total = carried
        for factor in self.factors:
            full = factor == OCTAVE_ONE  # the host's resize to the same size is the image itself
            size = (octave_side(height, factor), octave_side(width, factor))
            start = base + total if full else _resized(base, *size) + _resized(total, *size)
            start = start.clamp(-1.0, 1.0)
            image, loss = self.ascent(start, step_size, *inputs)
            change = image - start
            total = total + (change if full else _resized(change, height, width))
        return (base + total).clamp(-1.0, 1.0), loss
