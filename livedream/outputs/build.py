"""`open_outputs`: the enabled outputs of a config behind the seam, the recorder always among them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from livedream.config import Config
from livedream.files import DiskFloor
from livedream.outputs.ndi import NdiOutput
from livedream.outputs.recording import Recorder
from livedream.outputs.seam import Output, Outputs
from livedream.outputs.texture import SpoutOutput, SyphonOutput
from livedream.outputs.virtualcam import VirtualCamera


def recorder_of(config: Config) -> Recorder:
    outputs = config.outputs
    return Recorder(Path(outputs.record_folder), outputs.record_fps, outputs.record_codec, outputs.segment_seconds,
                    DiskFloor(outputs.min_free_mb), outputs.keep_recordings_mb)


def open_outputs(config: Config, open_devices: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> tuple[Outputs, Recorder]:
    """Every output `config` enables, each on its own thread, and the recorder (idle until key r
    or /livedream/record). A missing optional library is a one-line UserError naming the extra."""
    recorder = recorder_of(config)
    chosen: list[Output] = [recorder]
    if config.ndi.enabled:
        chosen.append(NdiOutput(config.ndi))
    if config.outputs.spout:
        chosen.append(SpoutOutput(config.outputs.share_name))
    if config.outputs.syphon:
        chosen.append(SyphonOutput(config.outputs.share_name))
    if open_devices and config.outputs.virtualcam:
        camera = VirtualCamera.open(config.outputs)  # absent hardware is a warning: the show runs without it
        if camera is not None:
            chosen.append(camera)
    return Outputs(chosen, clock), recorder
