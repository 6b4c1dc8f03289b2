"""GPU texture sharing outputs: Spout (Windows, `SpoutGL`) and Syphon (macOS, `syphon-python`).

Both are optional extras and were written against those libraries' documented APIs and
tested against fakes of them only: neither can run on the Linux machines this project is
built on. Spout's `sendImage` needs a current OpenGL context on the sending thread (the
SpoutGL examples make one with a hidden window); Syphon's Metal server does not.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from livedream.errors import UserError
from livedream.outputs.seam import OpaqueRgba

log = logging.getLogger(__name__)

GL_RGBA = 0x1908  # OpenGL's enum, so PyOpenGL is not needed just for a constant


def _import(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise UserError(f'{module} is not installed; install it with: pip install "livedream[{extra}]"') from None


class SpoutOutput:
    """Each frame as the Spout sender `name` (TouchDesigner's Syphon Spout In TOP, Resolume)."""

    active = True
    status = ""

    def __init__(self, sender_name: str, spout: Any = None) -> None:
        self._sender_name = sender_name
        self._spout = spout or _import("SpoutGL", "spout")
        self._sender: Any = None
        self._rgba = OpaqueRgba()

    @property
    def name(self) -> str:
        return f"Spout {self._sender_name}"

    def send(self, frame_rgb: np.ndarray) -> None:
        if self._sender is None:
            self._sender = self._spout.SpoutSender()
            self._sender.setSenderName(self._sender_name)
        height, width = frame_rgb.shape[:2]
        if not self._sender.sendImage(self._rgba.of(frame_rgb), width, height, GL_RGBA, False, 0):
            raise RuntimeError("SpoutGL sendImage failed (is an OpenGL context current?)")
        self._sender.setFrameSync(self._sender_name)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.releaseSender()
            self._sender = None


class SyphonOutput:
    """Each frame as the Syphon server `name` on a Metal texture (macOS 11 or later)."""

    active = True
    status = ""

    def __init__(self, server_name: str, syphon: Any = None, textures: Any = None) -> None:
        self._server_name = server_name
        self._syphon = syphon or _import("syphon", "syphon")
        self._textures = textures  # syphon.utils.{raw, numpy}: create_mtl_texture, copy_image_to_mtl_texture
        self._server: Any = None
        self._texture: Any = None
        self._size: tuple[int, int] | None = None
        self._rgba = OpaqueRgba()

    @property
    def name(self) -> str:
        return f"Syphon {self._server_name}"

    def send(self, frame_rgb: np.ndarray) -> None:
        if self._textures is None:
            self._textures = _SyphonTextureTools()
        tools = self._textures
        if self._server is None:
            self._server = self._syphon.SyphonMetalServer(self._server_name)
        height, width = frame_rgb.shape[:2]
        if self._size != (width, height):
            self._texture = tools.create_mtl_texture(self._server.device, width, height)
            self._size = (width, height)
        tools.copy_image_to_mtl_texture(self._rgba.of(frame_rgb), self._texture)
        self._server.publish_frame_texture(self._texture)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


class _SyphonTextureTools:
    """syphon-python's two helper functions under one name (they live in two modules)."""

    def __init__(self) -> None:
        from syphon.utils.numpy import copy_image_to_mtl_texture
        from syphon.utils.raw import create_mtl_texture

        self.create_mtl_texture = create_mtl_texture
        self.copy_image_to_mtl_texture = copy_image_to_mtl_texture
