"""An objective turned into one graph's two fixed-shape inputs, filled in place.

`layer_weights` has one number per graph layer and `channel_weights` each layer's C_l
numbers, concatenated (`export.backward.DreamGradient`). For an objective term:

- a whole layer `l = w`: layer weight 1, channel weights += w (× the guide's, if any);
- a channel `l:c = w`: layer weight 1, channel c's weight += w · C_l, so one channel at
  weight 1 counts like a whole layer at weight 1 (the loss divides by C_l).

The arrays are made once per graph; a new objective rewrites them and bumps `version`, which
the GPU runners compare once per run to refresh their device copies.
"""

from __future__ import annotations

import numpy as np

from livedream.errors import UserError
from livedream.objective import Objective, covered_by, describe, public_layer, split_term


class ObjectiveInputs:
    def __init__(self, layers: tuple[str, ...], channels: tuple[int, ...], default: Objective) -> None:
        if len(layers) != len(channels):
            raise ValueError(f"{len(layers)} layers but {len(channels)} channel counts")
        self.layers = tuple(public_layer(layer) for layer in layers)
        self.channels = channels
        self.offsets = np.concatenate([[0], np.cumsum(channels)]).astype(int)
        self.layer_weights = np.zeros(len(layers), np.float32)
        self.channel_weights = np.zeros(int(self.offsets[-1]), np.float32)
        self.guide: np.ndarray | None = None  # per-channel weights from a guide image, or None
        self.version = 0
        self._covers_asked: Objective | None = None
        self._covers = False
        self.objective: Objective = ()
        self.set(default)
        self.default = default
        self.requested: Objective = default  # what a caller last asked for (`LoadedModel.aimed`)

    def covers(self, objective: Objective) -> bool:
        # Asked once per frame with the same Params' tuple: parse the names only when it changes.
        if objective is not self._covers_asked:
            self._covers_asked = objective
            self._covers = covered_by(objective, self.layers)
        return self._covers

    def set(self, objective: Objective, guide: np.ndarray | None = None) -> None:
        """Fill the arrays for `objective` (and `guide`'s channel weights); nothing if unchanged."""
        if objective == self.objective and guide is self.guide:
            return
        if not self.covers(objective):
            raise UserError(f"objective {describe(objective)} reaches beyond this graph's layers "
                            f"({', '.join(self.layers)}); use the deep graph (`livedream export`)")
        self.layer_weights[:] = 0.0
        self.channel_weights[:] = 0.0
        for name, weight in objective:
            layer, channel = split_term(name)
            index = self.layers.index(layer)
            start, end = self.offsets[index], self.offsets[index + 1]
            self.layer_weights[index] = 1.0
            if channel is not None:
                self.channel_weights[start + channel] += weight * self.channels[index]
            elif guide is not None:
                self.channel_weights[start:end] += weight * guide[start:end]
            else:
                self.channel_weights[start:end] += weight
        self.objective, self.guide = objective, guide
        self.version += 1

    def guide_weights(self, channel_means: np.ndarray) -> np.ndarray:
        """A guide image's per-channel mean activations as channel weights, each layer's
        scaled to mean 1: the dream then maximises the dot product of its features with the
        guide's (the notebook's guided objective, on whole-image means)."""
        weights = np.zeros_like(self.channel_weights)
        for index in range(len(self.layers)):
            start, end = self.offsets[index], self.offsets[index + 1]
            layer_means = channel_means[start:end]
            weights[start:end] = layer_means / max(float(layer_means.mean()), 1e-12)
        return weights
