"""Files LiveDream keeps: atomic writes (a failure or Ctrl-C never leaves half a file under
the real name) and the state folder (the web token; never the user's config.toml)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs


def write_atomically(path: Path, data: bytes) -> None:
    """`data` into a temp file in `path`'s folder, then renamed over `path` in one step."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def state_dir() -> Path:
    """Where LiveDream keeps what it makes for itself (Linux: ~/.local/state/livedream)."""
    return Path(platformdirs.user_state_dir("livedream", appauthor=False))
