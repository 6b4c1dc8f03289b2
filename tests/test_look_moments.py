"""tools/look.py --moments: one picture's figures move between runs, so the look can be judged
at several moments of a run and averaged; the pictures are kept as the outputs see them."""

from __future__ import annotations

import numpy as np
import pytest

from livedream.testing.look import MomentKeeper, moment_seconds


def test_the_moments_fall_evenly_over_the_last_60_percent_of_the_run():
    assert moment_seconds(30.0, 10) == pytest.approx([12, 14, 16, 18, 20, 22, 24, 26, 28, 30])
    assert moment_seconds(30.0, 1) == [30.0]


def test_the_keeper_keeps_the_picture_shown_at_each_moment_with_the_source_frame_under_it():
    """Frames every 0.1 s from t = 5 (the keeper's clock starts at the first it sees); each
    source frame and shown picture carries its time as a grey level. Buffers are reused, as the
    app's are: what is kept must be a copy."""
    keeper = MomentKeeper([0.25, 0.5])
    source = np.zeros((4, 6, 3), np.uint8)
    shown = np.zeros((8, 12, 3), np.uint8)
    for step in range(10):
        now = 5.0 + 0.1 * step
        source.fill(step)
        keeper.observe(source, now)
        shown.fill(100 + step)
        keeper.publish(shown, 30.0, now)
    assert [kept.at_s for kept in keeper.kept] == [0.25, 0.5]
    assert [int(kept.source[0, 0, 0]) for kept in keeper.kept] == [3, 5]  # the first frames at or after each moment
    assert [int(kept.shown[0, 0, 0]) for kept in keeper.kept] == [103, 105]  # shown over those very frames
