"""Coherence v2: one dreamer for the live app and video files; the carried detail fades where
the flow is not trusted (what a moving disc uncovers) instead of leaving a trail; its fine
detail does not wash out over 100 frames; a still scene does not creep in brightness or
colour over ten minutes (a fake clock); octaves on a carried detail keep its fine detail."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livedream.offline import video as offline_video
from livedream.offline.video import VideoFrames
from livedream.params import Params
from livedream.pipeline.coherence import DetailWarper
from livedream.pipeline.dream import AscentSettings, dream
from livedream.pipeline.dreamer import LiveDreamer
from livedream.testing.bench_coherence import PAN_PX, disc_mask, make_clip
from tests.conftest import as_model
from tests.test_dreamer import PatternEngine


def test_video_files_are_dreamed_by_the_live_dreamer(small_graph, tmp_path, monkeypatch):
    """One class: a `livedream dream clip.mp4` render goes through `LiveDreamer.dream_frame`."""
    from livedream.cli import main
    from tests.test_video_files import make_clip as make_video

    calls = []
    real = LiveDreamer.dream_frame

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("settings"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LiveDreamer, "dream_frame", counting)
    source = make_video(tmp_path / "clip.mp4", frames=6)
    out = tmp_path / "out.mp4"
    assert main(["dream", str(source), "-o", str(out), "--model", str(small_graph), "--steps", "4",
                 "--octaves", "1", "--seed", "1"]) == 0
    assert len(calls) == 6
    assert calls[0].steps == 4 and all(settings.steps == 1 for settings in calls[1:])  # a tenth, at least 1
    assert all(not settings.jitter for settings in calls)  # one tile: no roll to flicker
    assert isinstance(VideoFrames(PatternEngine(), AscentSettings(), AscentSettings(), 1.0, 25.0, 0).dreamer,
                      LiveDreamer)
    assert not hasattr(offline_video, "CoherentFrames")


def test_what_a_moving_disc_uncovers_and_where_the_flow_fails_are_not_trusted():
    """The known-motion clip: on the background the disc uncovered this frame the flow's claim
    fails the checks (confidence low, so nothing is smeared there); far from the disc it holds."""
    clip = make_clip(6)
    warper = DetailWarper(method="dis-medium")
    warper.carry(clip.frames[0], None, 1.0)
    uncovered_confidence, far_confidence = [], []
    for t in range(1, 6):
        carried = warper.carry(clip.frames[t], np.ones((1, 3, *clip.frames[0].shape[:2]), np.float32), 1.0)
        inner = (slice(8, -8), slice(8, -8))  # the warp's own zero border aside
        assert np.allclose(carried[0, 0][inner], warper.confidence[inner], atol=1e-4)  # the detail fades with it
        uncovered = np.roll(disc_mask(clip.discs[t - 1], -3), -PAN_PX, axis=1) & ~disc_mask(clip.discs[t], 3)
        far = ~np.roll(disc_mask(clip.discs[t - 1], 20), -PAN_PX, axis=1) & ~disc_mask(clip.discs[t], 20)
        far[:, -8:] = far[:, :8] = far[:8] = far[-8:] = False
        uncovered_confidence.append(warper.confidence[uncovered].mean())
        far_confidence.append(warper.confidence[far].mean())
    print(f"confidence: uncovered {np.round(uncovered_confidence, 2)}, far background {np.round(far_confidence, 2)}")
    assert np.mean(uncovered_confidence) < 0.6 and min(far_confidence) > 0.95
    plain = DetailWarper(occlusion=False)
    plain.carry(clip.frames[0], None, 1.0)
    assert plain.carry(clip.frames[1], np.ones((1, 3, 192, 256), np.float32), 1.0)[0, 0, 20:-20, 20:-20].min() > 0.99


def test_detail_that_comes_from_outside_the_frame_is_not_invented():
    frames = make_clip(2).frames
    warper = DetailWarper()
    warper.carry(frames[0], None, 1.0)
    carried = warper.carry(frames[1], np.ones((1, 3, *frames[0].shape[:2]), np.float32), 1.0)
    assert carried[0, 0, 20:-20, -PAN_PX:].mean() < 0.35  # the pan's new column had no detail before
    assert carried[0, 0, 20:-20, 20:-20].mean() > 0.9


def test_the_carried_detail_keeps_its_fine_detail_over_100_panning_frames():
    """Each frame's warp resamples the detail; with the dream's fresh steps the detail's
    high-frequency energy settles and does not wash out (no downward trend)."""
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (120, 160 + 100, 3), dtype=np.uint8), (0, 0), 1.2)
    dreamer = LiveDreamer(seed=0)
    params = Params(dream_height=96, dream_width=128, steps=1, strength=0.03, half_life=1.0)
    model = as_model(PatternEngine())
    energies = []
    for t in range(100):
        frame = np.ascontiguousarray(cv2.resize(scene[:, t:t + 160], (128, 96), interpolation=cv2.INTER_AREA))
        out = dreamer.dream_frame(frame, params, model, frame_s=1 / 25).astype(np.float32)
        detail = cv2.cvtColor(out - frame, cv2.COLOR_RGB2GRAY)
        energies.append(float(np.mean(cv2.Laplacian(detail, cv2.CV_32F) ** 2)))
    early, late = np.mean(energies[10:30]), np.mean(energies[80:100])
    print(f"detail high-frequency energy: frames 10-30 {early:.1f}, frames 80-100 {late:.1f}")
    assert late >= 0.85 * early


def test_octaves_on_a_carried_detail_keep_its_fine_detail():
    """Three octaves on a carried detail with no steps: the detail comes back as it went in
    (the still's way would pass it through the coarsest octave and blur it)."""
    rng = np.random.default_rng(1)
    base = rng.uniform(-0.5, 0.5, (1, 3, 96, 128)).astype(np.float32)
    carried = (rng.standard_normal((1, 3, 96, 128)) * 0.1).astype(np.float32)
    settings = AscentSettings(steps=0, octaves=3, jitter=False)
    detail, _ = dream(PatternEngine(), base, settings, rng, carried.copy())
    assert np.abs(detail - carried).max() < 1e-5
    one_step = AscentSettings(steps=1, octaves=3, jitter=False, step_size=0.01)
    detail, _ = dream(PatternEngine(), base, one_step, rng, carried.copy())
    high = carried - cv2.GaussianBlur(carried[0].transpose(1, 2, 0), (0, 0), 1.5).transpose(2, 0, 1)[None]
    kept = detail - cv2.GaussianBlur(detail[0].transpose(1, 2, 0), (0, 0), 1.5).transpose(2, 0, 1)[None]
    assert np.corrcoef(high.ravel(), kept.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("half_life", [1.0, 4.0])
def test_a_still_scene_does_not_creep_in_brightness_or_colour_over_ten_minutes(half_life):
    """Ten minutes of a still scene at 5 fps on a fake clock (3000 frames): the carry does not
    behave additively — mean brightness and each colour of the first minute and the last agree."""
    rng = np.random.default_rng(2)
    still = cv2.GaussianBlur(rng.integers(0, 256, (75, 100, 3), dtype=np.uint8), (0, 0), 2.0)
    dreamer = LiveDreamer(seed=0)
    params = Params(dream_height=75, dream_width=100, steps=1, strength=0.04, half_life=half_life)
    model = as_model(PatternEngine())
    means = []
    for _ in range(10 * 60 * 5):
        means.append(dreamer.dream_frame(still, params, model, frame_s=0.2).reshape(-1, 3).mean(axis=0))
    first, last = np.mean(means[300:600], axis=0), np.mean(means[-300:], axis=0)
    print(f"half-life {half_life} s: colour means first minute {np.round(first, 2)}, last {np.round(last, 2)}")
    assert np.abs(last - first).max() < 0.5  # levels of 255
    assert abs(last.mean() - still.mean()) < 3.0  # and the dream does not wander from the scene
