"""Audio-reactive input: the input level (or one frequency band) drives one [dream] value.

The analysis is pure (`rms_level`, `band_level`, `Envelope`) and tested with generated
signals. `AudioReactive` is an overlay `Control`: it adds `amount * level` to the param
it is given and never stores the result, so nothing accumulates. `AudioInput` opens a
sounddevice stream (optional dependency) whose callback feeds it; without sounddevice or
PortAudio the feature says how to install it in one line and stays off.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np

from livedream.config import AudioConfig
from livedream.params import Params

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
BLOCK = 1024


def level_from_db(db: float, floor_db: float) -> float:
    """dBFS → 0..1: 0 at or below `floor_db`, 1 at 0 dBFS."""
    return min(1.0, max(0.0, 1.0 - db / floor_db))


def rms_level(samples: np.ndarray, floor_db: float = -50.0) -> float:
    """Level 0..1 of a block of float samples in -1..1 (any shape; channels are mixed)."""
    if samples.size == 0:
        return 0.0
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64))))
    return 0.0 if rms <= 0 else level_from_db(20 * math.log10(rms), floor_db)


def band_level(samples: np.ndarray, rate: int, low_hz: float, high_hz: float, floor_db: float = -50.0) -> float:
    """Level 0..1 of the part of the signal between low_hz and high_hz (Hann-windowed FFT)."""
    mono = samples.reshape(len(samples), -1).mean(axis=1) if samples.ndim > 1 else samples
    if mono.size == 0:
        return 0.0
    window = np.hanning(mono.size)
    spectrum = np.fft.rfft(mono * window)
    frequencies = np.fft.rfftfreq(mono.size, 1.0 / rate)
    in_band = (frequencies >= low_hz) & (frequencies <= high_hz)
    # Parseval with the window's power: a full-scale sine in the band reads like its RMS.
    power = 2.0 * float(np.sum(np.abs(spectrum[in_band]) ** 2)) / (mono.size * float(np.sum(window**2)))
    rms = math.sqrt(power)
    return 0.0 if rms <= 0 else level_from_db(20 * math.log10(rms), floor_db)


class Envelope:
    """Follows a level with separate rise (attack) and fall (release) time constants in seconds."""

    def __init__(self, attack: float, release: float) -> None:
        self.attack = attack
        self.release = release
        self.value = 0.0
        self._last_time: float | None = None

    def follow(self, level: float, now: float) -> float:
        if self._last_time is None:
            self.value = level
        else:
            seconds = self.attack if level > self.value else self.release
            elapsed = max(0.0, now - self._last_time)
            weight = 1.0 if seconds <= 0 else 1.0 - math.exp(-elapsed / seconds)
            self.value += (level - self.value) * weight
        self._last_time = now
        return self.value


class AudioReactive:
    """Analyses audio blocks (any thread) and offsets `config.param` by `amount * level`."""

    def __init__(self, config: AudioConfig, rate: int = SAMPLE_RATE) -> None:
        self._config = config
        self._rate = rate
        self._envelope = Envelope(config.attack, config.release)
        self._lock = threading.Lock()

    @property
    def level(self) -> float:
        return self._envelope.value

    def analyse(self, samples: np.ndarray) -> float:
        config = self._config
        if config.band_high > 0:
            return band_level(samples, self._rate, config.band_low, config.band_high, config.floor_db)
        return rms_level(samples, config.floor_db)

    def feed(self, samples: np.ndarray, now: float) -> None:
        level = self.analyse(samples)
        with self._lock:
            self._envelope.follow(level, now)

    def update(self, params: Params, now: float) -> Params:
        name = self._config.param
        with self._lock:
            offset = self._config.amount * self._envelope.value
        if offset == 0:
            return params
        changed, _ = params.clamped(**{name: getattr(params, name) + offset})  # clamping is expected here
        return changed


class AudioInput:
    """A sounddevice input stream feeding `AudioReactive`; `open` returns None when unavailable."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @classmethod
    def open(cls, config: AudioConfig, reactive: AudioReactive, clock) -> "AudioInput | None":
        try:
            import sounddevice
        except ImportError:
            log.warning("audio-reactive off: install it with: pip install sounddevice")
            return None
        except OSError as error:  # the PortAudio library itself is missing
            log.warning("audio-reactive off: PortAudio is missing (%s); on Debian: apt install libportaudio2", error)
            return None

        def on_block(block: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            reactive.feed(block, clock())

        try:
            stream = sounddevice.InputStream(
                device=config.input_device if config.input_device != "" else None,
                channels=1, samplerate=SAMPLE_RATE, blocksize=BLOCK, dtype="float32", callback=on_block,
            )
            stream.start()
        except Exception as error:  # no device, device busy, bad name
            log.warning("audio-reactive off: cannot open the audio input (%s); check [audio] input_device", error)
            return None
        return cls(stream)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
