"""What the next live dream visits: one octave of the pyramid, coarsest first, in turn.

Large DeepDream motifs (eyes, faces, animals) are drawn at the coarse octaves: a picture dreamed
at one scale carries fine texture that a judge at half size no longer sees. A still dreams every
octave, coarsest first; live, a CPU affords about one dream a second, so successive dreams
cycle through the pyramid instead, each at one scale and starting from the carried detail
resampled to it (`pipeline.dream`'s `octave`), each handing back a full-size detail that the
overlay lays over the frames as before. A coarse octave costs its area's share of the full one
(0.35x of the sides: 0.12x), so a cycle costs little more than its finest dream and the motifs
come for the price of the texture. Measured on the demo (tools/look.py, README: the look).

A path that dreams every octave in one run (a multi-octave GPU frame graph) ignores the octave.
"""

from __future__ import annotations

from dataclasses import dataclass

from livedream.params import Params


@dataclass(frozen=True)
class DreamPlan:
    """One dream's share of the cycle: the octave it visits (0 = the coarsest of `Params.octaves`;
    None = every octave in the one dream)."""

    octave: int | None = None


def octave_factors(params: Params) -> list[float]:
    """Each octave's size as a share of the dream's sides, coarsest first (the last is 1)."""
    return [params.octave_scale ** -(params.octaves - 1 - octave) for octave in range(params.octaves)]


def mean_area_share(params: Params) -> float:
    """What a dream of the cycle costs on average, as a share of a dream at the full size."""
    factors = octave_factors(params)
    return sum(factor**2 for factor in factors) / len(factors)


class OctaveCycle:
    """Hands out the octaves in turn, coarsest first; a change of `Params.octaves` starts over."""

    def __init__(self) -> None:
        self._turn = 0
        self._octaves = 1

    def next_plan(self, params: Params) -> DreamPlan:
        if params.octaves != self._octaves:
            self._octaves, self._turn = params.octaves, 0
        if params.octaves == 1:
            return DreamPlan()
        octave = self._turn % params.octaves
        self._turn += 1
        return DreamPlan(octave)
