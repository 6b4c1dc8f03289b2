"""What one frame dreams, turned into one graph's fixed-shape objective inputs, filled in place.

The inputs (`manifest.OBJECTIVE_INPUTS`; `export.backward.DreamGradient` defines the loss):
`layer_weights` has one number per graph layer, `channel_weights` (the room's objective) and
`visitor_weights` each layer's C_l numbers concatenated, `region_gains` (room, visitors),
`guide_features` the guide's feature grid and `guide_weights` (2, L) the matched guide term's
weight per region and layer. For an objective term of a region:

- a whole layer `l = w`: layer weight 1, channel weights += w — or, with a guide, the mean
  form's channel weights += w × the guide's, the matching form's guide weight at the guide's
  own layer (`objective.GUIDE_LAYER`, else the graph's deepest) += w;
- a channel `l:c = w`: layer weight 1, channel c's weight += w · C_l, so one channel at
  weight 1 counts like a whole layer at weight 1 (the loss divides by C_l).

An `Aim` without a visitor objective gives the visitors the room's (guide included), so with
gains (1, 1) the mask changes nothing: today's picture. The arrays are made once per graph; a
new aim rewrites them and bumps `version`, which the GPU runners compare once per run to
refresh their device copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livedream.errors import UserError
from livedream.manifest import GUIDE_GRID, OBJECTIVE_INPUTS
from livedream.objective import GUIDE_LAYER, Objective, covered_by, describe, public_layer, split_term


@dataclass(frozen=True)
class Aim:
    """What a frame dreams: the room's objective, the visitors' ((): the room's), how much of
    the dream each region takes, and how a guide steers the objective."""

    room: Objective
    visitors: Objective = ()
    gains: tuple[float, float] = (1.0, 1.0)  # room, visitors (`params.WHERE`)
    guide_mode: str = "match"

    @property
    def terms(self) -> Objective:
        """Every term either region dreams: what the graph must cover."""
        return self.room + self.visitors

    @property
    def uses_mask(self) -> bool:
        """Whether the mask changes the picture (else the dreamer need not make one)."""
        return self.gains != (1.0, 1.0) or bool(self.visitors)


@dataclass(frozen=True)
class GuideFeatures:
    """A guide image as one graph reads it: per-channel weights (the mean form, each layer
    scaled to mean 1) and the feature grid (the matching form, each column of layer l scaled
    to length √C_l, the length of a plain term's all-ones weights)."""

    mean_weights: np.ndarray  # (ΣC,)
    grid: np.ndarray  # (ΣC, GUIDE_GRID²)


class ObjectiveInputs:
    def __init__(self, layers: tuple[str, ...], channels: tuple[int, ...], default: Objective) -> None:
        if len(layers) != len(channels):
            raise ValueError(f"{len(layers)} layers but {len(channels)} channel counts")
        self.layers = tuple(public_layer(layer) for layer in layers)
        self.channels = channels
        self.offsets = np.concatenate([[0], np.cumsum(channels)]).astype(int)
        total = int(self.offsets[-1])
        self.layer_weights = np.zeros(len(layers), np.float32)
        self.channel_weights = np.zeros(total, np.float32)
        self.visitor_weights = np.zeros(total, np.float32)
        self.region_gains = np.ones(2, np.float32)
        self.guide_features = np.zeros((total, GUIDE_GRID * GUIDE_GRID), np.float32)
        self.guide_weights = np.zeros((2, len(layers)), np.float32)
        self.guide: GuideFeatures | None = None
        # where the matched guide acts: its own layer where this graph reaches it, else the deepest
        self.guide_layer = self.layers.index(GUIDE_LAYER) if GUIDE_LAYER in self.layers else len(self.layers) - 1
        self.version = 0
        self._covers_asked: Objective | None = None
        self._covers = False
        self.aim = Aim(())
        self.set(Aim(default))
        self.default = default
        self.requested = Aim(default)  # what a caller last asked for (`LoadedModel.aimed`)

    @property
    def objective(self) -> Objective:
        """The room's objective as filled in now."""
        return self.aim.room

    def arrays(self) -> tuple[tuple[str, np.ndarray], ...]:
        """(input name, array) in the graph's order, for binding."""
        return tuple(zip(OBJECTIVE_INPUTS, (self.layer_weights, self.channel_weights, self.visitor_weights,
                                            self.region_gains, self.guide_features, self.guide_weights)))

    def covers(self, objective: Objective) -> bool:
        # Asked once per frame with the same Params' tuple: parse the names only when it changes.
        if objective is not self._covers_asked:
            self._covers_asked = objective
            self._covers = covered_by(objective, self.layers)
        return self._covers

    def set(self, aim: Aim, guide: GuideFeatures | None = None) -> None:
        """Fill the arrays for `aim` (and `guide`); nothing if unchanged."""
        if aim == self.aim and guide is self.guide:
            return
        if not covered_by(aim.terms, self.layers):
            raise UserError(f"objective {describe(aim.terms)} reaches beyond this graph's layers "
                            f"({', '.join(self.layers)}); use the deep graph (`livedream export`)")
        self.layer_weights[:] = 0.0
        self.guide_weights[:] = 0.0
        self._fill(aim.room, guide, aim.guide_mode, self.channel_weights, self.guide_weights[0])
        if aim.visitors:
            self._fill(aim.visitors, None, aim.guide_mode, self.visitor_weights, self.guide_weights[1])
        else:
            self.visitor_weights[:] = self.channel_weights
            self.guide_weights[1] = self.guide_weights[0]
        self.region_gains[:] = aim.gains
        if guide is not None:
            self.guide_features[:] = guide.grid
        self.aim, self.guide = aim, guide
        self.version += 1

    def _fill(self, objective: Objective, guide: GuideFeatures | None, mode: str, channel_weights: np.ndarray,
              guide_weights: np.ndarray) -> None:
        channel_weights[:] = 0.0
        for name, weight in objective:
            layer, channel = split_term(name)
            index = self.layers.index(layer)
            start, end = self.offsets[index], self.offsets[index + 1]
            self.layer_weights[index] = 1.0
            if channel is not None:
                channel_weights[start + channel] += weight * self.channels[index]
            elif guide is None:
                channel_weights[start:end] += weight
            elif mode == "mean":
                channel_weights[start:end] += weight * guide.mean_weights[start:end]
            else:
                self.layer_weights[self.guide_layer] = 1.0
                guide_weights[self.guide_layer] += weight

    def guide_features_of(self, channel_means: np.ndarray, grid: np.ndarray) -> GuideFeatures:
        """A guide image's features on the scale of a plain term: the mean form's channel
        weights (the dot product of the dream's mean features with the guide's), each layer
        scaled to mean 1, and the matching form's grid, each column scaled to length √C_l, so
        the graph's best dot product is the best cosine. A column of no features stays 0."""
        weights = np.zeros_like(self.channel_weights)
        scaled = np.zeros_like(self.guide_features)
        for index, channels in enumerate(self.channels):
            start, end = self.offsets[index], self.offsets[index + 1]
            weights[start:end] = channel_means[start:end] / max(float(channel_means[start:end].mean()), 1e-12)
            lengths = np.linalg.norm(grid[start:end], axis=0, keepdims=True)
            scaled[start:end] = grid[start:end] * (np.sqrt(channels) / np.maximum(lengths, 1e-12))
        return GuideFeatures(weights, scaled)
