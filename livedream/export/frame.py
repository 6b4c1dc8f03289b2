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
(one octave) written as graph ops: warp the detail where the flow says the pixels came from
(bilinear, zero outside, like cv2.remap), decay, add to the frame, clip, K ascent steps,
subtract the frame, round to uint8. The carried detail is kept only as far as the region
gains say (`where`): where the room is not dreamed, the room's carried detail fades too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from livedream.export.backward import AscentSteps, pixel_gain
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


class FrameDream(nn.Module):
    def __init__(self, ascent: AscentSteps) -> None:
        super().__init__()
        self.ascent = ascent

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
        image = (base + carried).clamp(-1.0, 1.0)
        image, loss = self.ascent(image, step_size, layer_weights, channel_weights, visitor_weights, region_gains,
                                  guide_features, guide_weights, mask)
        # `LiveDreamer._catch_up`: where nothing was carried the fresh steps count CATCH_UP times.
        carrying = (decay > 0).to(image.dtype)  # the host path skips it when nothing is carried
        image = image + (image - base - carried) * ((CATCH_UP - 1.0) * (1.0 - trust) * carrying)
        dreamed = ((image + 1.0) * 127.5 + 0.5).floor().clamp(0.0, 255.0)
        return dreamed.to(torch.uint8)[0].permute(1, 2, 0), image - base, loss
