"""Audio analysis on generated signals; the reactive overlay offsets a param without accumulating."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

from livedream.config import AudioConfig
from livedream.control.audio import (
    AudioInput,
    AudioReactive,
    Envelope,
    band_level,
    rms_level,
)
from livedream.params import Params

RATE = 48000


def sine(frequency: float, amplitude: float = 1.0, seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_rms_level_maps_dbfs_between_floor_and_full_scale() -> None:
    assert rms_level(np.zeros(1024, np.float32)) == 0.0
    assert rms_level(sine(440)) == pytest.approx(1 - 3.01 / 50, abs=0.002)  # full-scale sine: -3 dBFS
    assert rms_level(sine(440, amplitude=10 ** (-20 / 20) * np.sqrt(2))) == pytest.approx(1 - 20 / 50, abs=0.002)
    assert rms_level(sine(440, amplitude=1e-4)) == 0.0  # below the floor


def test_band_level_hears_only_its_band() -> None:
    bass = sine(80, amplitude=0.5)
    treble = sine(5000, amplitude=0.5)
    assert band_level(bass, RATE, 40, 150) == pytest.approx(rms_level(bass), abs=0.01)
    assert band_level(treble, RATE, 40, 150) < 0.2
    assert band_level(bass + treble, RATE, 3000, 8000) == pytest.approx(rms_level(treble), abs=0.01)


def test_envelope_rises_with_attack_and_falls_with_release() -> None:
    envelope = Envelope(attack=0.1, release=1.0)
    envelope.follow(0.0, 0.0)
    assert envelope.follow(1.0, 0.1) == pytest.approx(1 - np.exp(-1))
    high = envelope.follow(1.0, 1.0)
    assert envelope.follow(0.0, 2.0) == pytest.approx(high * np.exp(-1))


def test_reactive_offsets_the_param_and_never_accumulates() -> None:
    reactive = AudioReactive(AudioConfig(enabled=True, param="zoom_per_s", amount=0.02, attack=0.0, release=0.0), rate=RATE)
    reactive.feed(sine(440), 0.0)
    level = reactive.level
    base = Params(zoom_per_s=0.005)
    once = reactive.update(base, 0.0)
    assert once.zoom_per_s == pytest.approx(0.005 + 0.02 * level)
    assert reactive.update(base, 0.1) == once  # the same input gives the same output
    reactive.feed(np.zeros(1024, np.float32), 0.2)
    assert reactive.update(base, 0.2) == base


def test_reactive_clamps_to_the_param_range() -> None:
    reactive = AudioReactive(AudioConfig(enabled=True, param="strength", amount=5.0, attack=0.0), rate=RATE)
    reactive.feed(sine(440), 0.0)
    assert reactive.update(Params(), 0.0).strength == 0.5


@pytest.mark.skipif(importlib.util.find_spec("sounddevice") is not None, reason="sounddevice is installed here")
def test_missing_sounddevice_turns_audio_off_with_the_install_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert AudioInput.open(AudioConfig(enabled=True), AudioReactive(AudioConfig()), clock=lambda: 0.0) is None
    assert "pip install sounddevice" in caplog.text and len(caplog.records) == 1
